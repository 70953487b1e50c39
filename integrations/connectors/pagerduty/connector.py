"""The PagerDuty connector: offset-paged reads, incident actions made safe to repeat, undo, status read back, webhook registration."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.connectors.base import ActionResult, ConnectionTest, FieldInfo, Page, TrackedObject
from integrations.connectors.entities import BastionIncident
from integrations.connectors.kit.fields import value_type
from integrations.connectors.kit.markers import idempotency_marker
from integrations.connectors.kit.once import create_once
from integrations.connectors.pagerduty.client import ACCEPT, PagerDutyTokenAuth, classify_pagerduty_response
from integrations.connectors.pagerduty.manifest import MANIFEST
from integrations.connectors.pagerduty.webhooks import STATUS_EVENTS, PagerDutyWebhooks, incident_state
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound, ApiRateLimited

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
NOTE_ATTEMPTS = 3


def _fields_from_sample(record: Mapping[str, Any], prefix: str = "$") -> list[FieldInfo]:
    """Describe the keys of a live record (one level of nesting), so discovery follows the account's real data."""
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


class PagerDutyConnector(PagerDutyWebhooks):
    manifest = MANIFEST

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None:
            if self.client.auth is None and self.credentials.get("api_key"):
                self.client.auth = PagerDutyTokenAuth(self.credentials["api_key"])
            self.client.default_headers["Accept"] = ACCEPT

    # Connection
    @classmethod
    def classify_response(cls, response: Any, path: str) -> ApiError | None:
        return classify_pagerduty_response(response, path)

    def test_connection(self) -> ConnectionTest:
        abilities = self.client.get("abilities").json().get("abilities", [])
        try:
            user = self.client.get("users/me").json()["user"]
        except ApiBadRequest:
            # An account-level API key has no user behind it; /abilities already proved it works.
            return ConnectionTest(ok=True, identity="account-level API key", scopes=self._scopes(), detail={"abilities": abilities, "key_type": "account"})
        return ConnectionTest(
            ok=True,
            identity=f"{user.get('name', '')} <{user.get('email', '')}>",
            scopes=self._scopes(),
            detail={"abilities": abilities, "key_type": "user", "user_id": user.get("id"), "role": user.get("role")},
        )

    def _scopes(self) -> list[str]:
        scope = self.credentials.get("scope") or ""
        return scope.split() if isinstance(scope, str) else list(scope)

    # Reading
    def discover_fields(self, entity: str) -> list[FieldInfo]:
        path, key = self._listing(entity)
        params = {"limit": 1, "date_range": "all"} if entity == "incidents" else {"limit": 1}
        sample = self.client.get(path, params=params).json().get(key) or []
        return _fields_from_sample(sample[0]) if sample else [FieldInfo("id", "Id")]

    @staticmethod
    def _listing(entity: str) -> tuple[str, str]:
        if entity not in ("services", "incidents", "oncalls"):
            raise KeyError(f"pagerduty has no entity '{entity}'")
        return entity, entity

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """Offset pages (`limit`/`offset`/`more`); incidents are incremental by creation time (`since`).

        One page per call (the offset is stored between the sync engine's tasks), so not HttpClient.paginate_offset.
        """
        path, key = self._listing(entity)
        position = dict(page or {})
        offset = int(position.get("offset", 0))
        limit = int(self.config.get("page_size", PAGE_SIZE))
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        is_full = True
        next_cursor = None
        if entity == "incidents":
            started = position.get("started") or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            since = position.get("since", cursor)
            params["sort_by"] = "created_at:asc"
            if since:
                # Overlap by 5 minutes so an incident created while the last run paged is not skipped.
                since_at = datetime.fromisoformat(str(since).replace("Z", "+00:00")) - timedelta(minutes=5)
                params.update(since=since_at.strftime("%Y-%m-%dT%H:%M:%SZ"), until=started)
                is_full = False
            else:
                params["date_range"] = "all"
            position.update(started=started, since=since)
        body = self.client.get(path, params=params).json()
        records = body.get(key, [])
        more = bool(body.get("more")) and bool(records)
        if entity == "incidents" and not more:
            next_cursor = position["started"]
        next_page = {**position, "offset": offset + len(records)} if more else None
        return Page(records=records, next_page=next_page, cursor=next_cursor, is_full_scan=is_full)

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        if entity == "oncalls":
            schedule = (record.get("schedule") or {}).get("id", "")
            return f"{record['escalation_policy']['id']}:{record['escalation_level']}:{record['user']['id']}:{schedule}"
        return str(record["id"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return record.get("updated_at") or record.get("last_status_change_at")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "incidents":
            return dict(
                BastionIncident(
                    external_id=str(record["id"]),
                    title=record.get("title") or record.get("summary", ""),
                    status=record.get("status", ""),
                    urgency=record.get("urgency", ""),
                    service=(record.get("service") or {}).get("summary", ""),
                    created_at=record.get("created_at", ""),
                    url=record.get("html_url", ""),
                )
            )
        if entity == "services":
            return {
                "external_id": str(record["id"]),
                "name": record.get("name", ""),
                "description": record.get("description", ""),
                "status": record.get("status", ""),
            }
        if entity == "oncalls":
            return {
                "external_id": self.external_id(entity, record),
                "user_name": record["user"].get("summary", ""),
                "user_external_id": record["user"]["id"],
                "escalation_policy": record["escalation_policy"].get("summary", ""),
                "escalation_level": record.get("escalation_level"),
                "start": record.get("start"),
                "end": record.get("end"),
            }
        return dict(record)

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
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

    # Acting
    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """known_new is not used: the incident_key and note-marker searches stay, so every attempt sends the same requests."""
        if action == "trigger_incident":
            return self._trigger(payload, idempotency_key)
        if action == "acknowledge_incident":
            return self._set_status(payload["incident_id"], "acknowledged")
        if action == "resolve_incident":
            return self._set_status(payload["incident_id"], "resolved")
        if action == "add_note":
            return self._add_note(payload["incident_id"], payload["content"], idempotency_key)
        raise KeyError(f"pagerduty has no action '{action}'")

    def _from_header(self) -> dict[str, str]:
        sender = self.config.get("from_email") or self.credentials.get("from_email")
        if not sender:
            raise ApiBadRequest("PagerDuty needs the email of a PagerDuty user (config from_email) to send as the From header of writes.")
        return {"From": sender, "Content-Type": "application/json"}

    def _find_by_key(self, incident_key: str) -> dict[str, Any] | None:
        found = self.client.get("incidents", params={"incident_key": incident_key, "date_range": "all", "limit": 1}).json().get("incidents") or []
        return found[0] if found else None

    @staticmethod
    def _paged(incident: Mapping[str, Any], *, created: bool) -> ActionResult:
        number = incident.get("incident_number") or incident.get("number")
        return ActionResult(
            external_id=incident["id"],
            url=incident.get("html_url", ""),
            data=dict(incident),
            created=created,
            tracked=incident_state(incident) or TrackedObject(title=str(incident.get("title") or ""), url=incident.get("html_url") or ""),
            link_text=f"Incident #{number}" if number else "",
        )

    def _trigger(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        # PagerDuty deduplicates open incidents on incident_key (Idempotency.VENDOR): the client may retry the POST.
        incident_key = idempotency_marker(idempotency_key)
        existing = self._find_by_key(incident_key)
        if existing:
            return self._paged(existing, created=False)
        body = {"incident": {**self.from_bastion("incidents", payload), "incident_key": incident_key}}
        try:
            incident = self.client.post("incidents", json=body, headers=self._from_header()).json()["incident"]
        except ApiBadRequest:
            # PagerDuty rejects a second open incident with the same incident_key: the first attempt landed.
            existing = self._find_by_key(incident_key)
            if existing is None:
                raise
            return self._paged(existing, created=False)
        return self._paged(incident, created=True)

    def _set_status(self, incident_id: str, status: str) -> ActionResult:
        current = self.client.get(f"incidents/{incident_id}").json()["incident"]
        # Re-sending "acknowledged" to a resolved incident would reopen it: a retry must never undo a later resolve.
        if current["status"] == status or (status == "acknowledged" and current["status"] == "resolved"):
            return ActionResult(external_id=incident_id, url=current.get("html_url", ""), data=current, created=False)
        body = {"incident": {"type": "incident_reference", "status": status}}
        incident = self.client.put(f"incidents/{incident_id}", json=body, headers=self._from_header()).json()["incident"]
        return ActionResult(external_id=incident_id, url=incident.get("html_url", ""), data=incident, created=False)

    def _add_note(self, incident_id: str, content: str, idempotency_key: str) -> ActionResult:
        marker = f"[ref {idempotency_marker(idempotency_key)}]"
        path = f"incidents/{incident_id}/notes"
        incident_url = self._incident_url(incident_id)

        def find() -> ActionResult | None:
            for note in self.client.get(path).json().get("notes", []):
                if marker in note.get("content", ""):
                    return ActionResult(external_id=note["id"], url=incident_url, data=note, created=False)
            return None

        def send() -> ActionResult:
            # retry=False: the note may be written before a failure; create_once searches before re-posting.
            note = self.client.post(path, json={"note": {"content": f"{content}\n\n{marker}"}}, headers=self._from_header(), retry=False).json()["note"]
            return ActionResult(external_id=note["id"], url=incident_url, data=note, created=True)

        existing = find()
        if existing:
            return existing
        try:
            return create_once(self.client, send, find, attempts=NOTE_ATTEMPTS, what="pagerduty.note")
        except ApiError as error:
            if not error.retryable:
                raise
            logger.warning("pagerduty.note.failed", extra={"incident": incident_id, "error": type(error).__name__})
            raise ApiError("PagerDuty kept failing while adding a note; it was not added.", path=path) from error

    def _incident_url(self, incident_id: str) -> str:
        return self.client.get(f"incidents/{incident_id}").json()["incident"].get("html_url", "")

    # Tracked objects: status read back, undo, webhook registration
    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        """GET /incidents/{id} per incident (the polling backstop); one PagerDuty no longer knows reads as deleted."""
        if kind not in ("incident", "incidents"):
            raise KeyError(f"pagerduty cannot read '{kind}' objects")
        found: dict[str, TrackedObject] = {}
        for external_id in external_ids:
            try:
                incident = self.client.get(f"incidents/{external_id}").json()["incident"]
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
            state = incident_state(incident) or TrackedObject(title=str(incident.get("title") or ""), url=incident.get("html_url") or "")
            # The vendor's own change time: a read older than what a webhook already applied changes nothing.
            state.details["updated"] = self.updated_at("incidents", incident)
            found[external_id] = state
        return found

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        """Undo trigger_incident: note why (once), then resolve (a resolved incident stays resolved)."""
        if action != "trigger_incident":
            raise KeyError(f"pagerduty cannot undo '{action}'")
        if reason:
            self._add_note(external_id, reason, f"{idempotency_key}:note")
        current = self.client.get(f"incidents/{external_id}").json()["incident"]
        if current["status"] == "resolved":
            return ActionResult(external_id=external_id, url=current.get("html_url", ""), data={"status": "resolved"}, created=False)
        body = {"incident": {"type": "incident_reference", "status": "resolved"}}
        incident = self.client.put(f"incidents/{external_id}", json=body, headers=self._from_header()).json()["incident"]
        return ActionResult(external_id=external_id, url=incident.get("html_url", ""), data={"status": incident.get("status", "resolved")}, created=True)

    def register_webhook(self, *, url: str, secret: str) -> dict[str, Any]:
        """Create a v3 webhook subscription for the status events.

        PagerDuty makes its own signing secret (`secret` cannot be given to it) and returns it only in this answer: it is
        handed back as "webhook_secret", which must be stored as the integration's webhook secret to verify deliveries.
        """
        body = {
            "webhook_subscription": {
                "type": "webhook_subscription",
                "delivery_method": {"type": "http_delivery_method", "url": url},
                "description": "Bastion",
                "events": sorted(STATUS_EVENTS),
                "filter": {"type": "account_reference"},
            }
        }
        subscription = self.client.post("webhook_subscriptions", json=body, headers={"Content-Type": "application/json"}).json()["webhook_subscription"]
        return {**subscription, "webhook_secret": str((subscription.get("delivery_method") or {}).get("secret") or "")}
