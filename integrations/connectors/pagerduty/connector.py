"""PagerDuty connector: REST API v2 (services, incidents, on-calls, incident actions) and v3 webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.connectors.base import (
    ActionResult,
    ActionSpec,
    BaseConnector,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldInfo,
    OAuthSpec,
    Page,
    WebhookEvent,
    WebhookRequest,
    WebhookSpec,
)
from integrations.errors import ApiBadRequest, ApiError, WebhookRejected

logger = logging.getLogger(__name__)

ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_SIZE = 100
REPLAY_WINDOW = timedelta(minutes=5)
STATUS_EVENTS = {
    "incident.triggered": "triggered",
    "incident.acknowledged": "acknowledged",
    "incident.unacknowledged": "triggered",
    "incident.reopened": "triggered",
    "incident.resolved": "resolved",
}


class PagerDutyTokenAuth:
    """`Authorization: Token token=<key>`, PagerDuty's REST API key scheme."""

    def __init__(self, api_key: str):
        self._value = f"Token token={api_key}"

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._value

    def refresh(self) -> bool:
        return False


def _marker(idempotency_key: str) -> str:
    return "bastion-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def _fields_from_sample(record: Mapping[str, Any], prefix: str = "$") -> list[FieldInfo]:
    """Describe the keys of a live record (one level of nesting), so discovery follows the account's real data."""
    fields: list[FieldInfo] = []
    for key, value in record.items():
        kind = (
            "boolean"
            if isinstance(value, bool)
            else "number"
            if isinstance(value, int | float)
            else "array"
            if isinstance(value, list)
            else "object"
            if isinstance(value, dict)
            else "datetime"
            if key.endswith("_at") or key in ("start", "end")
            else "string"
        )
        fields.append(
            FieldInfo(name=key if prefix == "$" else f"{prefix[2:]}.{key}", label=key.replace("_", " ").capitalize(), type=kind, path=f"{prefix}.{key}")
        )
        if isinstance(value, dict) and prefix == "$":
            fields.extend(_fields_from_sample(value, f"$.{key}"))
    return fields


class PagerDutyConnector(BaseConnector):
    manifest = ConnectorManifest(
        key="pagerduty",
        name="PagerDuty",
        category="incident",
        description="Read services, incident history and on-calls; trigger, acknowledge and resolve incidents and add notes.",
        logo="connectors/pagerduty.svg",
        auth_methods=("api_key", "oauth2"),
        credential_fields=(CredentialField("api_key", "REST API key", help_text="A user or account REST API key (Integrations → API Access Keys)."),),
        config_fields=(
            CredentialField(
                "from_email", "Acting user email", is_secret=False, help_text="PagerDuty requires a valid user email in the From header for writes."
            ),
        ),
        oauth=OAuthSpec(
            authorize_url="https://identity.pagerduty.com/oauth/authorize",
            token_url="https://identity.pagerduty.com/oauth/token",
            scopes=("services.read", "incidents.read", "incidents.write", "oncalls.read"),
            scope_purposes={
                "services.read": "List services to pick where incidents are raised",
                "incidents.read": "Import incident history and follow incident status",
                "incidents.write": "Trigger, acknowledge and resolve incidents and add notes from playbooks",
                "oncalls.read": "Show who is on call when a crisis starts",
            },
        ),
        default_base_url="https://api.pagerduty.com",
        entities=(
            EntitySpec("services", "Services", "Technical services incidents are raised on"),
            EntitySpec("incidents", "Incidents", "Incident history, newest changes by creation date", supports_incremental=True, bastion_type="incident"),
            EntitySpec("oncalls", "On-calls", "Who is on call for each escalation policy level"),
        ),
        actions=(
            ActionSpec(
                "trigger_incident",
                "Trigger incident",
                "Open an incident on a service (deduplicated by an incident_key derived from the idempotency key).",
                {"service_id": "string", "title": "string", "urgency": "high|low", "body": "string?"},
                idempotency="vendor",
            ),
            ActionSpec("acknowledge_incident", "Acknowledge incident", "", {"incident_id": "string"}, idempotency="natural"),
            ActionSpec("resolve_incident", "Resolve incident", "", {"incident_id": "string"}, idempotency="natural"),
            ActionSpec(
                "add_note", "Add note", "Add a note to an incident (a reference marker prevents duplicates).", {"incident_id": "string", "content": "string"}
            ),
        ),
        webhook=WebhookSpec(
            signature="X-PagerDuty-Signature: v1=<hex HMAC-SHA256(secret, raw body)>, comma-separated during rotation; occurred_at within 5 minutes"
        ),
        capabilities=("read", "incremental", "actions", "webhooks", "undo", "webhook_registration"),
        docs_url="https://developer.pagerduty.com/api-reference/",
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None:
            if self.client.auth is None and self.credentials.get("api_key"):
                self.client.auth = PagerDutyTokenAuth(self.credentials["api_key"])
            self.client.default_headers["Accept"] = ACCEPT

    # Connection
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
        """Offset pages (`limit`/`offset`/`more`); incidents are incremental by creation time (`since`)."""
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
            return {
                "external_id": str(record["id"]),
                "title": record.get("title") or record.get("summary", ""),
                "status": record.get("status", ""),
                "urgency": record.get("urgency", ""),
                "service": (record.get("service") or {}).get("summary", ""),
                "created_at": record.get("created_at", ""),
                "url": record.get("html_url", ""),
            }
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
    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
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

    def _trigger(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        incident_key = _marker(idempotency_key)
        existing = self._find_by_key(incident_key)
        if existing:
            return ActionResult(external_id=existing["id"], url=existing.get("html_url", ""), data=existing, created=False)
        body = {"incident": {**self.from_bastion("incidents", payload), "incident_key": incident_key}}
        try:
            incident = self.client.post("incidents", json=body, headers=self._from_header()).json()["incident"]
        except ApiBadRequest:
            # PagerDuty rejects a second open incident with the same incident_key: the first attempt landed.
            existing = self._find_by_key(incident_key)
            if existing is None:
                raise
            return ActionResult(external_id=existing["id"], url=existing.get("html_url", ""), data=existing, created=False)
        return ActionResult(external_id=incident["id"], url=incident.get("html_url", ""), data=incident, created=True)

    def _set_status(self, incident_id: str, status: str) -> ActionResult:
        current = self.client.get(f"incidents/{incident_id}").json()["incident"]
        # Re-sending "acknowledged" to a resolved incident would reopen it: a retry must never undo a later resolve.
        if current["status"] == status or (status == "acknowledged" and current["status"] == "resolved"):
            return ActionResult(external_id=incident_id, url=current.get("html_url", ""), data=current, created=False)
        body = {"incident": {"type": "incident_reference", "status": status}}
        incident = self.client.put(f"incidents/{incident_id}", json=body, headers=self._from_header()).json()["incident"]
        return ActionResult(external_id=incident_id, url=incident.get("html_url", ""), data=incident, created=False)

    def _add_note(self, incident_id: str, content: str, idempotency_key: str) -> ActionResult:
        marker = f"[ref {_marker(idempotency_key)}]"
        incident_url = f"{self._incident_url(incident_id)}"
        for _attempt in range(3):
            for note in self.client.get(f"incidents/{incident_id}/notes").json().get("notes", []):
                if marker in note.get("content", ""):
                    return ActionResult(external_id=note["id"], url=incident_url, data=note, created=False)
            try:
                note = self.client.post(
                    f"incidents/{incident_id}/notes", json={"note": {"content": f"{content}\n\n{marker}"}}, headers=self._from_header(), retry=False
                ).json()["note"]
            except ApiError as error:
                if not error.retryable:
                    raise
                # The note may have been written before the failure: search again before re-posting.
                logger.warning("pagerduty.note.retry", extra={"incident": incident_id, "error": type(error).__name__})
                continue
            return ActionResult(external_id=note["id"], url=incident_url, data=note, created=True)
        raise ApiError("PagerDuty kept failing while adding a note; it was not added.", path=f"incidents/{incident_id}/notes")

    def _incident_url(self, incident_id: str) -> str:
        return self.client.get(f"incidents/{incident_id}").json()["incident"].get("html_url", "")

    # Tracked objects: status polling and undo
    UNDO_ACTIONS: dict[str, str] = {"trigger_incident": "Resolve the incident with a note saying why."}

    def fetch_object(self, kind: str, external_id: str) -> dict[str, Any]:
        """GET /incidents/{id} → Bastion's incident shape (the polling backstop)."""
        if kind not in ("incident", "incidents"):
            raise KeyError(f"pagerduty cannot read '{kind}' objects")
        incident = self.client.get(f"incidents/{external_id}").json()["incident"]
        return {**self.to_bastion("incidents", incident), "updated": self.updated_at("incidents", incident)}

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

    def register_webhook(self, url: str, *, events: list[str] | None = None, description: str = "Bastion") -> dict[str, Any]:
        """Create a v3 webhook subscription; PagerDuty returns the signing secret only in this response."""
        body = {
            "webhook_subscription": {
                "type": "webhook_subscription",
                "delivery_method": {"type": "http_delivery_method", "url": url},
                "description": description,
                "events": events or sorted(STATUS_EVENTS),
                "filter": {"type": "account_reference"},
            }
        }
        return self.client.post("webhook_subscriptions", json=body, headers={"Content-Type": "application/json"}).json()["webhook_subscription"]

    # Webhooks
    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        header = request.header("X-PagerDuty-Signature")
        if not header:
            raise WebhookRejected(400, "missing_signature", "X-PagerDuty-Signature header is missing.")
        expected = "v1=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        # Several signatures are sent while a secret rotates; any one valid signature is enough.
        if not any(hmac.compare_digest(candidate.strip(), expected) for candidate in header.split(",")):
            raise WebhookRejected(401, "bad_signature", "PagerDuty signature does not match.")
        event = _event_of(request)
        occurred = event.get("occurred_at")
        try:
            occurred_at = datetime.fromisoformat(str(occurred).replace("Z", "+00:00"))
        except ValueError:
            raise WebhookRejected(400, "missing_timestamp", "event.occurred_at is missing or unreadable.")
        if abs(request.received_at - occurred_at) > REPLAY_WINDOW:
            raise WebhookRejected(409, "stale", "PagerDuty event is older than the 5-minute replay window.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        event = _event_of(request)
        event_type = str(event.get("event_type", ""))
        data = event.get("data") or {}
        if not event_type or not event.get("id"):
            raise WebhookRejected(400, "invalid_payload", "PagerDuty event has no id or event_type.")
        if event_type == "pagey.ping":
            return []
        occurred = datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00")) if event.get("occurred_at") else None
        if event.get("resource_type") != "incident":
            return [
                WebhookEvent(
                    delivery_id=str(event["id"]),
                    event_type=event_type,
                    entity=f"{event.get('resource_type', '')}s",
                    external_id=str(data.get("id", "")),
                    action="sync",
                    occurred_at=occurred,
                )
            ]
        status = data.get("status") or STATUS_EVENTS.get(event_type)
        if event_type in STATUS_EVENTS and status:
            record = {
                "status": status,
                "title": data.get("title", ""),
                "urgency": data.get("urgency", ""),
                "url": data.get("html_url", ""),
                "event_type": event_type,
            }
            return [WebhookEvent(str(event["id"]), event_type, "incidents", str(data.get("id", "")), "status", record, occurred)]
        # Other incident changes (priority, responders, notes): re-read the incident.
        return [WebhookEvent(str(event["id"]), event_type, "incidents", str(data.get("id", "")), "sync", None, occurred)]


def _event_of(request: WebhookRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise WebhookRejected(400, "invalid_json", "PagerDuty webhook body is not JSON.")
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict):
        raise WebhookRejected(400, "invalid_payload", "PagerDuty webhook body has no event object.")
    return event


CONNECTOR = PagerDutyConnector
