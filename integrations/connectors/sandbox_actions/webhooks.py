"""Sandbox action target deliveries: v1 HMAC-SHA256 of '<timestamp>.<body>', a 5-minute window, object status changes."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import TrackedObject, WebhookEvent, WebhookRequest
from integrations.connectors.kit.signatures import check_window, epoch_seconds, verify_hmac
from integrations.errors import WebhookRejected

DONE_STATUSES = frozenset({"done", "closed", "resolved", "archived", "cancelled", "deleted", "completed"})


def object_state(status: str, *, owner: str = "", key: str = "", url: str = "", title: str = "") -> TrackedObject:
    """An object of the target as the war room tracks it: done when its status says it is over."""
    return TrackedObject(title=title, owner=owner, status=status, is_done=status.lower() in DONE_STATUSES, url=url, key=key)


class SandboxActionsWebhooksMixin:
    """For SandboxActionsConnector: status webhooks, verified and parsed, and the tracked state they carry."""

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        timestamp = request.header("X-Sandbox-Timestamp")
        signature = request.header("X-Sandbox-Signature")
        if not timestamp or not signature:
            raise WebhookRejected(400, "missing_signature", "X-Sandbox-Timestamp and X-Sandbox-Signature are required.")
        verify_hmac(signature, secret=secret, message=f"{timestamp}.".encode() + request.body, prefix="v1=", vendor="Sandbox actions")
        try:
            check_window(epoch_seconds(timestamp), vendor="Sandbox actions")
        except WebhookRejected as rejected:
            if rejected.status != 409:
                raise
            raise WebhookRejected(409, "stale", rejected.message) from None  # the code this target has always answered

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
            raise WebhookRejected(400, "invalid_payload", "The webhook body is not a sandbox status event.") from None

    @classmethod
    def tracked_state(cls, entity: str, record: Mapping[str, Any], *, config: Mapping[str, Any]) -> TrackedObject | None:
        """A status record's object, read as any vendor's would be (the target stands in for channels, meetings, issues…).

        is_archived reads as archived/active, status_category "done" is done, attendees' responses are kept; None when the
        record says nothing of status, owner or attendees.
        """
        if "is_archived" in record:
            status = "archived" if record.get("is_archived") else "active"
        else:
            status = str(record.get("status") or "")
        owner = record.get("assignee_email") or record.get("owner")
        owner = owner if isinstance(owner, str) else ""
        details: dict[str, Any] = {}
        if isinstance(record.get("attendees"), list):
            details["attendees"] = [{"email": a.get("email", ""), "response": a.get("response", "")} for a in record["attendees"] if isinstance(a, dict)]
        if record.get("status_category"):
            details["status_category"] = record["status_category"]
        if not status and not owner and not details:
            return None
        tracked = object_state(status, owner=owner, key=str(record.get("key") or ""))
        tracked.is_done = tracked.is_done or record.get("status_category") == "done"
        tracked.details = details
        return tracked
