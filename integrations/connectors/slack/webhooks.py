"""Slack Events API deliveries: v0 signature and window through kit.signatures, events parsed, channel state for the war room."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import BaseConnector, TrackedObject, WebhookEvent, WebhookRequest
from integrations.connectors.kit.signatures import check_window, verify_hmac
from integrations.connectors.slack.actions import channel_state
from integrations.connectors.slack.manifest import ARCHIVE_EVENTS, CHANNEL_EVENTS, DELETE_EVENTS, MEMBER_EVENTS, UNARCHIVE_EVENTS, USER_EVENTS
from integrations.errors import WebhookRejected


class SlackWebhooks(BaseConnector):
    """verify_webhook, parse_webhook, webhook_account_id and tracked_state (classmethods: no client needed)."""

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """Slack v0 signature over the raw body, compared in constant time, then the 5-minute window."""
        signature = request.header("X-Slack-Signature")
        timestamp = request.header("X-Slack-Request-Timestamp")
        if not signature or not timestamp:
            raise WebhookRejected(400, "missing_signature", "X-Slack-Signature and X-Slack-Request-Timestamp are required.")
        if not timestamp.strip().isdigit():
            raise WebhookRejected(400, "bad_timestamp", "X-Slack-Request-Timestamp must be epoch seconds.")
        base = b"v0:" + timestamp.strip().encode() + b":" + request.body
        verify_hmac(signature, secret=secret, message=base, prefix="v0=", vendor="Slack")
        check_window(int(timestamp), now=request.received_at.timestamp(), vendor="Slack")

    @classmethod
    def webhook_account_id(cls, request: WebhookRequest) -> str:
        """The workspace (team_id) a delivery names, read before verification and only to route it."""
        try:
            body = json.loads(request.body)
        except ValueError:
            return ""
        return str(body.get("team_id") or "") if isinstance(body, dict) else ""

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise WebhookRejected(400, "invalid_json", "The Slack event body is not JSON.") from exc
        if not isinstance(body, dict) or "type" not in body:
            raise WebhookRejected(400, "invalid_payload", "The Slack event has no type.")
        if body["type"] == "url_verification":
            return [
                WebhookEvent(
                    delivery_id=hashlib.sha256(request.body).hexdigest(),
                    event_type="url_verification",
                    action="sync",
                    challenge_response={"challenge": str(body.get("challenge", ""))},
                )
            ]
        if body["type"] != "event_callback":
            return []
        event = body.get("event")
        if not isinstance(event, dict) or not body.get("event_id"):
            raise WebhookRejected(400, "invalid_payload", "An event_callback needs event and event_id.")
        return _events_from_callback(body["event_id"], event, body.get("event_time"))

    @classmethod
    def tracked_state(cls, entity: str, record: Mapping[str, Any], *, config: Mapping[str, Any]) -> TrackedObject | None:
        """A channel's archive state from an archive/unarchive event or a channel object (active unless it says archived).

        Membership events carry neither and say nothing.
        """
        if entity != "channels" or ("is_archived" not in record and "id" not in record):
            return None
        return channel_state(str(record.get("name") or ""), bool(record.get("is_archived")))


def _events_from_callback(delivery_id: str, event: dict[str, Any], event_time: Any) -> list[WebhookEvent]:
    kind = str(event.get("type", ""))
    occurred = datetime.fromtimestamp(int(event_time), tz=UTC) if str(event_time or "").isdigit() else None
    channel = event.get("channel")
    channel_id = channel.get("id") if isinstance(channel, dict) else channel
    if kind in ARCHIVE_EVENTS:
        record = {"status": "archived", "is_archived": True, "user": event.get("user", "")}
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "status", record, occurred)]
    if kind in UNARCHIVE_EVENTS:
        record = {"status": "active", "is_archived": False, "user": event.get("user", "")}
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "status", record, occurred)]
    if kind in DELETE_EVENTS:
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "delete", None, occurred)]
    if kind in CHANNEL_EVENTS and isinstance(channel, dict):
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "upsert", channel, occurred)]
    if kind in MEMBER_EVENTS:
        # Membership changed: re-read the channel (its member count) rather than guess.
        record = {"user": event.get("user", ""), "inviter": event.get("inviter", ""), "channel_type": event.get("channel_type", "")}
        return [WebhookEvent(delivery_id, kind, "channels", str(channel_id), "sync", record, occurred)]
    if kind in USER_EVENTS and isinstance(event.get("user"), dict):
        user = event["user"]
        return [WebhookEvent(delivery_id, kind, "users", str(user.get("id", "")), "upsert", user, occurred)]
    return []
