"""The Widgets Inc. connector: read widgets, file and withdraw tickets, read tickets back, accept signed ticket webhooks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from integrations.connectors.base import (
    ActionResult,
    BaseConnector,
    ConnectionTest,
    FieldInfo,
    Page,
    TrackedObject,
    WebhookEvent,
    WebhookRequest,
)
from integrations.connectors.kit.signatures import check_window, epoch_seconds, require_header, verify_hmac
from integrations.errors import ApiNotFound, WebhookRejected

from . import client
from .manifest import DONE_STATES, MANIFEST, TICKET_EVENTS


def _ticket_state(ticket: Mapping[str, Any]) -> TrackedObject:
    state = str(ticket.get("state") or "open")
    return TrackedObject(
        title=str(ticket.get("title") or ""),
        owner=str(ticket.get("owner") or ""),
        status=state,
        is_done=state in DONE_STATES,
        url=str(ticket.get("link") or ""),
        key=str(ticket.get("id") or ""),
    )


class WidgetsConnector(BaseConnector):
    manifest = MANIFEST

    @classmethod
    def classify_response(cls, response, path):
        return client.classify_response(response, path)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Widgets {self.credentials.get('api_key', '')}"}

    def test_connection(self) -> ConnectionTest:
        if self.client is None:
            return ConnectionTest(ok=bool(self.credentials.get("api_key")), identity="widgets-partner")
        account = self.client.request("GET", "/v1/me", headers=self._headers()).json()
        return ConnectionTest(ok=True, identity=str(account["account"]), account_id=str(account["account"]))

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        return [FieldInfo("id", "Id"), FieldInfo("name", "Name")]

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        if self.client is None:
            return Page(records=[{"id": "w1", "name": "Sprocket"}])
        return Page(records=self.client.request("GET", f"/v1/{entity}", headers=self._headers()).json()[entity])

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        if action != "file_ticket":
            raise ValueError(f"Widgets Inc. has no action '{action}'")
        headers = {**self._headers(), "Widgets-Idempotency-Key": idempotency_key}
        response = self.client.request("POST", "/v1/tickets", json=dict(payload), headers=headers)
        ticket = response.json()["ticket"]
        return ActionResult(
            external_id=str(ticket["id"]),
            url=str(ticket.get("link") or ""),
            data={"id": ticket["id"]},
            created=response.status_code == 201,  # 200: Widgets found the ticket this key already filed
            tracked=_ticket_state(ticket),
            link_text=str(ticket["id"]),
        )

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        try:
            self.client.request("POST", f"/v1/tickets/{external_id}/withdraw", json={"reason": reason}, headers=self._headers())
        except ApiNotFound:
            pass  # already gone at Widgets: nothing left to withdraw
        return ActionResult(external_id=external_id, created=False, tracked=TrackedObject(status="withdrawn", is_done=True))

    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        # Tickets are the only objects Widgets tracks, whatever name the war room keeps them under.
        tickets = self.client.request("GET", "/v1/tickets", params={"ids": ",".join(external_ids)}, headers=self._headers()).json()["tickets"]
        found = {str(t["id"]): _ticket_state(t) for t in tickets}
        return {ref: found.get(ref) or TrackedObject(status="deleted", is_done=True) for ref in external_ids}

    @classmethod
    def tracked_state(cls, entity: str, record: Mapping[str, Any], *, config: Mapping[str, Any]) -> TrackedObject | None:
        return _ticket_state(record) if entity == "tickets" and record.get("id") else None

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        stamp = require_header(request.header("Widgets-Timestamp"), "Widgets-Timestamp", cls.manifest.name)
        signature = require_header(request.header("Widgets-Signature"), "Widgets-Signature", cls.manifest.name)
        verify_hmac(signature, secret=secret, message=stamp.encode() + b"." + request.body, vendor=cls.manifest.name)
        check_window(epoch_seconds(stamp), vendor=cls.manifest.name)

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except ValueError:
            raise WebhookRejected(400, "invalid_payload", "Widgets Inc.: the delivery is not JSON.") from None
        if body.get("type") not in TICKET_EVENTS:
            raise WebhookRejected(400, "unsupported_event", f"Widgets Inc. sends no '{body.get('type')}' events.")
        ticket = body.get("ticket") or {}
        return [
            WebhookEvent(
                delivery_id=str(body.get("delivery") or ""),
                event_type=str(body["type"]),
                entity="tickets",
                external_id=str(ticket.get("id") or ""),
                action="delete" if body["type"] == "ticket.deleted" else "status",
                record=ticket,
                occurred_at=datetime.fromisoformat(body["at"]) if body.get("at") else None,
            )
        ]
