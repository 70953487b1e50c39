"""What PagerDuty's spec.yaml cannot say: the two-step connection test, nested field discovery, notes found by their marker,
undo, and a status read-back tolerant of one unreadable incident."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import ActionResult, ConnectionTest, FieldInfo, TrackedObject
from integrations.connectors.kit.fields import value_type
from integrations.connectors.kit.markers import idempotency_marker
from integrations.connectors.kit.once import create_once
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound, ApiRateLimited

logger = logging.getLogger(__name__)

NOTE_ATTEMPTS = 3
WRITE_HEADERS = {"Content-Type": "application/json"}


def _writes(connector: Any) -> dict[str, str]:
    """The From header PagerDuty requires on writes (the spec's from_email variable: a clear 400 when unset)."""
    return {"From": str(connector.scope()["vars"]["from_email"]), **WRITE_HEADERS}


def test_connection(connector: Any) -> ConnectionTest:
    abilities = connector.client.get("abilities").json().get("abilities", [])
    scope = connector.credentials.get("scope") or ""
    scopes = scope.split() if isinstance(scope, str) else list(scope)
    try:
        user = connector.client.get("users/me").json()["user"]
    except ApiBadRequest:
        # An account-level API key has no user behind it; /abilities already proved it works.
        return ConnectionTest(ok=True, identity="account-level API key", scopes=scopes, detail={"abilities": abilities, "key_type": "account"})
    return ConnectionTest(
        ok=True,
        identity=f"{user.get('name', '')} <{user.get('email', '')}>",
        scopes=scopes,
        detail={"abilities": abilities, "key_type": "user", "user_id": user.get("id"), "role": user.get("role")},
    )


def _fields_from_sample(record: Mapping[str, Any], prefix: str = "$") -> list[FieldInfo]:
    """The keys of a live record (one level of nesting), so discovery follows the account's real data."""
    fields: list[FieldInfo] = []
    for key, value in record.items():
        kind = value_type(value)
        if kind == "string" and (key.endswith("_at") or key in ("start", "end")):
            kind = "datetime"
        fields.append(
            FieldInfo(name=key if prefix == "$" else f"{prefix[2:]}.{key}", label=key.replace("_", " ").capitalize(), type=kind, path=f"{prefix}.{key}")
        )
        if isinstance(value, dict) and prefix == "$":
            fields.extend(_fields_from_sample(value, f"$.{key}"))
    return fields


def discover_fields(connector: Any, entity: str) -> list[FieldInfo]:
    connector._entity(entity)
    params = {"limit": 1, "date_range": "all"} if entity == "incidents" else {"limit": 1}
    sample = connector.client.get(entity, params=params).json().get(entity) or []
    return _fields_from_sample(sample[0]) if sample else [FieldInfo("id", "Id")]


def from_bastion(connector: Any, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Bastion incident → PagerDuty create body (the `incident` object of POST /incidents)."""
    if entity != "incidents":
        return dict(data)
    incident: dict[str, Any] = {
        "type": "incident",
        "title": data["title"],
        "service": {"id": data["service_id"], "type": "service_reference"},
        "urgency": data.get("urgency") or "high",
    }
    if data.get("body"):
        incident["body"] = {"type": "incident_body", "details": data["body"]}
    return incident


def _note(connector: Any, incident_id: str, content: str, idempotency_key: str) -> ActionResult:
    marker = f"[ref {idempotency_marker(idempotency_key)}]"
    path = f"incidents/{incident_id}/notes"
    incident_url = connector.client.get(f"incidents/{incident_id}").json()["incident"].get("html_url", "")

    def find() -> ActionResult | None:
        for note in connector.client.get(path).json().get("notes", []):
            if marker in note.get("content", ""):
                return ActionResult(external_id=note["id"], url=incident_url, data=note, created=False)
        return None

    def send() -> ActionResult:
        # retry=False: the note may be written before a failure; create_once searches before re-posting.
        body = {"note": {"content": f"{content}\n\n{marker}"}}
        note = connector.client.post(path, json=body, headers=_writes(connector), retry=False).json()["note"]
        return ActionResult(external_id=note["id"], url=incident_url, data=note, created=True)

    existing = find()
    if existing:
        return existing
    try:
        return create_once(connector.client, send, find, attempts=NOTE_ATTEMPTS, what="pagerduty.note")
    except ApiError as error:
        if not error.retryable:
            raise
        logger.warning("pagerduty.note.failed", extra={"incident": incident_id, "error": type(error).__name__})
        raise ApiError("PagerDuty kept failing while adding a note; it was not added.", path=path) from error


def add_note(connector: Any, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
    """known_new is not used: the note-marker search stays, so every attempt sends the same requests."""
    return _note(connector, payload["incident_id"], payload["content"], idempotency_key)


def undo(
    connector: Any, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
) -> ActionResult:
    """Undo trigger_incident: note why (once), then resolve (a resolved incident stays resolved)."""
    if action != "trigger_incident":
        raise KeyError(f"pagerduty cannot undo '{action}'")
    if reason:
        _note(connector, external_id, reason, f"{idempotency_key}:note")
    current = connector.client.get(f"incidents/{external_id}").json()["incident"]
    if current["status"] == "resolved":
        return ActionResult(external_id=external_id, url=current.get("html_url", ""), data={"status": "resolved"}, created=False)
    body = {"incident": {"type": "incident_reference", "status": "resolved"}}
    incident = connector.client.put(f"incidents/{external_id}", json=body, headers=_writes(connector)).json()["incident"]
    return ActionResult(external_id=external_id, url=incident.get("html_url", ""), data={"status": incident.get("status", "resolved")}, created=True)


def fetch_objects(connector: Any, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
    """GET /incidents/{id} per incident (the polling backstop); one PagerDuty no longer knows reads as deleted."""
    if kind not in ("incident", "incidents"):
        raise KeyError(f"pagerduty cannot read '{kind}' objects")
    found: dict[str, TrackedObject] = {}
    for external_id in external_ids:
        try:
            incident = connector.client.get(f"incidents/{external_id}").json()["incident"]
        except ApiNotFound:
            found[external_id] = TrackedObject(status="deleted", is_done=True)
            continue
        except ApiRateLimited:
            raise
        except ApiError as error:
            if error.category == "auth":
                raise
            # One unreadable incident must not hide the others.
            logger.warning("pagerduty.fetch_objects.failed", extra={"incident": external_id, "error": str(error)})
            continue
        state = connector.tracked_state("incidents", incident, config=connector.config)
        # The vendor's own change time: a read older than what a webhook already applied changes nothing.
        state.details["updated"] = connector.updated_at("incidents", incident)
        found[external_id] = state
    return found
