"""Connector for the sandbox's generic action target: idempotent create/update, bulk create, status reads and webhooks.

It exists to exercise the playbook engine end to end over real HTTP. Besides the generic `create_object` and
`update_object` it accepts the contract's action names (create_channel, invite_users, create_issue,
create_event, send_email…) and maps them onto objects of a matching kind, so a playbook template written for
Slack/Jira/Calendar can be bound to this stand-in in tests and benchmarks. Idempotency: every created object
carries a deterministic marker derived from the idempotency key; the connector searches by marker before
creating, so a retry or a re-run returns the existing object with created=False.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import (
    ActionResult,
    ActionSpec,
    BaseConnector,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    WebhookEvent,
    WebhookRequest,
    WebhookSpec,
)
from integrations.errors import ApiBadRequest, WebhookRejected
from integrations.http import BearerAuth

MAX_BULK = 50
WEBHOOK_TOLERANCE_SECONDS = 300

# Contract action → (object kind, payload field holding the title, task owner field).
ALIASES: dict[str, tuple[str, str]] = {
    "create_channel": ("channel", "name"),
    "post_message": ("message", "text"),
    "send_dm": ("message", "text"),
    "create_issue": ("issue", "summary"),
    "create_event": ("event", "summary"),
    "trigger_incident": ("incident", "title"),
    "create_incident": ("status_incident", "name"),
    "send_email": ("email", "subject"),
    "send_sms": ("sms", "body"),
    "create_note": ("note", "body"),
    "create_task": ("task", "subject"),
}


def marker_for(idempotency_key: str) -> str:
    """The deterministic marker stored on the vendor object (no secrets, stable across retries)."""
    return "bst-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def _owner(action: str, payload: Mapping[str, Any]) -> str:
    if action == "create_issue":
        return str(payload.get("assignee_email") or "")
    if action == "send_email":
        to = payload.get("to") or []
        return str(to[0] if isinstance(to, list) and to else to or "")
    if action in ("send_dm",):
        return str(payload.get("email") or "")
    return str(payload.get("owner") or "")


class SandboxActionsConnector(BaseConnector):
    manifest = ConnectorManifest(
        key="sandbox_actions",
        name="Sandbox actions",
        category="collaboration",
        description="A generic action target in the vendor sandbox for testing playbooks (idempotent creates, bulk, status webhooks).",
        auth_methods=("api_key",),
        credential_fields=(CredentialField("api_key", "API token"),),
        actions=(
            ActionSpec("create_object", "Create an object", "Create an object of any kind.", {"kind": "string", "title": "string"}),
            ActionSpec("update_object", "Update an object", "Change an object's status, title or attributes.", {"id": "string"}, idempotency="natural"),
            ActionSpec("invite_users", "Invite people to a channel object", "Adds e-mails to the channel's members.", idempotency="natural"),
            *(ActionSpec(alias, f"Stand-in for {alias}", f"Creates a '{kind}' object.") for alias, (kind, _) in ALIASES.items()),
        ),
        webhook=WebhookSpec(signature="HMAC-SHA256 of '<timestamp>.<body>' in X-Sandbox-Signature (v1=…), timestamp in X-Sandbox-Timestamp."),
        capabilities=("actions", "bulk_actions", "status_webhooks"),
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None and self.client.auth is None and self.credentials.get("api_key"):
            self.client.auth = BearerAuth(str(self.credentials["api_key"]))

    def test_connection(self) -> ConnectionTest:
        body = self.client.get("api/me").json()
        return ConnectionTest(ok=True, identity=str(body.get("identity", "")), account_id=str(body.get("account_id", "")))

    # Acting
    def _object_body(self, action: str, payload: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        if action == "create_object":
            kind, title = payload.get("kind"), payload.get("title")
            attrs = dict(payload.get("attrs") or {})
        else:
            kind, title_field = ALIASES[action]
            title = payload.get(title_field)
            attrs = {k: v for k, v in payload.items() if k != title_field}
        if not kind or not isinstance(title, str) or not title.strip():
            raise ApiBadRequest(f"{action} needs a kind and a non-empty title.")
        return {"kind": kind, "title": title, "owner": _owner(action, payload), "marker": marker_for(idempotency_key), "attrs": attrs}

    def _result(self, obj: Mapping[str, Any], *, created: bool) -> ActionResult:
        return ActionResult(
            external_id=str(obj["id"]), url=str(obj.get("url", "")), data={"key": obj.get("key", ""), "status": obj.get("status", "")}, created=created
        )

    def _find(self, markers: list[str]) -> dict[str, dict[str, Any]]:
        body = self.client.get("api/objects", params={"markers": ",".join(markers)}).json()
        return {obj["marker"]: obj for obj in body.get("objects", [])}

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        if action == "update_object":
            body = {k: payload[k] for k in ("status", "title", "owner", "attrs") if k in payload}
            obj = self.client.patch(f"api/objects/{payload['id']}", json=body).json()
            return self._result(obj, created=False)
        if action == "invite_users":
            emails = [str(e) for e in payload.get("emails") or []]
            obj = self.client.patch(f"api/objects/{payload['channel']}", json={"add_members": emails}).json()
            not_found = obj.get("not_found", [])
            return ActionResult(
                external_id=str(obj["id"]),
                url=str(obj.get("url", "")),
                data={"invited": [e for e in emails if e not in not_found], "not_found": not_found},
                created=False,
            )
        if action != "create_object" and action not in ALIASES:
            raise ApiBadRequest(f"Sandbox actions cannot perform '{action}'.")
        body = self._object_body(action, payload, idempotency_key)
        existing = self._find([body["marker"]]).get(body["marker"])
        if existing:
            return self._result(existing, created=False)
        return self._result(self.client.post("api/objects", json=body).json(), created=True)

    def perform_bulk(self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str]) -> list[ActionResult | Exception]:
        """Search all markers in one call, then create the missing ones ≤50 per bulk call; errors come back per item."""
        if action != "create_object" and action not in ALIASES:
            return super().perform_bulk(action, payloads, idempotency_keys=idempotency_keys)
        results: list[ActionResult | Exception | None] = [None] * len(payloads)
        bodies: list[dict[str, Any] | None] = []
        for index, (payload, key) in enumerate(zip(payloads, idempotency_keys, strict=True)):
            try:
                bodies.append(self._object_body(action, payload, key))
            except ApiBadRequest as exc:
                bodies.append(None)
                results[index] = exc
        markers = [b["marker"] for b in bodies if b]
        existing = self._find(markers) if markers else {}
        missing: list[int] = []
        for index, body in enumerate(bodies):
            if body is None:
                continue
            if body["marker"] in existing:
                results[index] = self._result(existing[body["marker"]], created=False)
            else:
                missing.append(index)
        for start in range(0, len(missing), MAX_BULK):
            chunk = missing[start : start + MAX_BULK]
            response = self.client.request("POST", "api/objects/bulk", json={"objects": [bodies[i] for i in chunk]}, retry=True)
            body = response.json()
            for created in body.get("objects", []):
                results[chunk[created["index"]]] = self._result(created["object"], created=True)
            for error in body.get("errors", []):
                results[chunk[error["index"]]] = ApiBadRequest(
                    str(error.get("message", "rejected")), status=int(error.get("status", 400)), path="api/objects/bulk"
                )
        return [r if r is not None else ApiBadRequest("No result returned for this item.") for r in results]

    def fetch_object(self, kind: str, external_id: str) -> dict[str, Any]:
        """Read one object's current state in Bastion's task shape (the polling backstop uses this)."""
        obj = self.client.get(f"api/objects/{external_id}").json()
        return {
            "external_id": str(obj["id"]),
            "key": obj.get("key", ""),
            "status": obj.get("status", ""),
            "url": obj.get("url", ""),
            "owner": obj.get("owner", ""),
        }

    # Webhooks
    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        timestamp = request.header("X-Sandbox-Timestamp")
        signature = request.header("X-Sandbox-Signature")
        if not timestamp or not signature:
            raise WebhookRejected(400, "missing_signature", "X-Sandbox-Timestamp and X-Sandbox-Signature are required.")
        expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise WebhookRejected(401, "bad_signature", "The signature does not match.")
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            raise WebhookRejected(400, "bad_timestamp", "X-Sandbox-Timestamp must be epoch seconds.")
        if age > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRejected(409, "stale", "The delivery is older than five minutes.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
            obj = body["object"]
            return [
                WebhookEvent(
                    delivery_id=str(body["event_id"]),
                    event_type=str(body.get("type", "object.status_changed")),
                    entity=str(obj["kind"]),
                    external_id=str(obj["id"]),
                    action="status",
                    record={"status": obj.get("status", ""), "key": obj.get("key", ""), "owner": obj.get("owner", "")},
                    occurred_at=datetime.fromtimestamp(float(body.get("occurred_at") or time.time()), tz=UTC),
                )
            ]
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected(400, "invalid_payload", "The webhook body is not a sandbox status event.")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        return {"external_id": str(record.get("id", "")), "key": record.get("key", ""), "status": record.get("status", ""), "owner": record.get("owner", "")}


CONNECTOR = SandboxActionsConnector
