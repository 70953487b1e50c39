"""PagerDuty's v3 webhooks: X-PagerDuty-Signature (v1=hex HMAC-SHA256 of the raw body) and the event's occurred_at window."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from integrations.connectors.base import BaseConnector, TrackedObject, WebhookEvent, WebhookRequest
from integrations.connectors.kit.signatures import check_window, epoch_seconds, require_header, verify_hmac
from integrations.errors import WebhookRejected

# Incident events that carry a status change, and the status each means.
STATUS_EVENTS = {
    "incident.triggered": "triggered",
    "incident.acknowledged": "acknowledged",
    "incident.unacknowledged": "triggered",
    "incident.reopened": "triggered",
    "incident.resolved": "resolved",
}
# Every v3 event parse_webhook reads: status changes as status records, other changes as a re-read, the ping as nothing.
EVENT_TYPES = (
    *sorted(STATUS_EVENTS),
    "incident.annotated",
    "incident.conference_bridge.updated",
    "incident.custom_field_values.updated",
    "incident.delegated",
    "incident.escalated",
    "incident.priority_updated",
    "incident.reassigned",
    "incident.responder.added",
    "incident.responder.replied",
    "incident.status_update_published",
    "service.created",
    "service.deleted",
    "service.updated",
    "pagey.ping",
)
DONE_STATUSES = frozenset({"resolved"})


def _event_of(request: WebhookRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise WebhookRejected(400, "invalid_json", "PagerDuty webhook body is not JSON.") from None
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict):
        raise WebhookRejected(400, "invalid_payload", "PagerDuty webhook body has no event object.")
    return event


def incident_state(record: Mapping[str, Any]) -> TrackedObject | None:
    """A PagerDuty incident (API record or webhook status record) as the war room tracks it; None without a status."""
    status = str(record.get("status") or "")
    if not status:
        return None
    return TrackedObject(
        title=str(record.get("title") or record.get("summary") or ""),
        status=status,
        is_done=status.lower() in DONE_STATUSES,
        url=str(record.get("html_url") or record.get("url") or ""),
    )


class PagerDutyWebhooks(BaseConnector):
    """v3 webhook deliveries: verified, then read as status changes of tracked incidents or re-reads."""

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        header = require_header(request.header("X-PagerDuty-Signature"), "X-PagerDuty-Signature", "PagerDuty")
        # Several signatures are sent while a secret rotates; any one valid signature is enough.
        verify_hmac(header.split(","), secret=secret, message=request.body, prefix="v1=", vendor="PagerDuty")
        occurred = _event_of(request).get("occurred_at")
        try:
            occurred_at = epoch_seconds(str(occurred) if occurred else None)
        except WebhookRejected:
            raise WebhookRejected(400, "missing_timestamp", "event.occurred_at is missing or unreadable.") from None
        try:
            check_window(occurred_at, now=request.received_at.timestamp(), vendor="PagerDuty")
        except WebhookRejected as exc:
            raise WebhookRejected(409, "stale", exc.message) from None  # PagerDuty's code for it, which callers read

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

    @classmethod
    def tracked_state(cls, entity: str, record: Mapping[str, Any], *, config: Mapping[str, Any]) -> TrackedObject | None:
        """An incident's status from a webhook status record or an incident record."""
        return incident_state(record) if entity == "incidents" else None
