"""Sandbox Directory deliveries: v1 HMAC-SHA256 of '<timestamp>.<body>', a 5-minute window, person and directory events."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import WebhookEvent, WebhookRequest
from integrations.connectors.kit.signatures import check_window, hmac_digest, verify_hmac
from integrations.errors import WebhookRejected

SIGNATURE_PREFIX = "v1="


def webhook_signature(secret: str, body: bytes, timestamp: int | None = None) -> tuple[str, str]:
    """(timestamp, signature header) as the vendor computes them; used by tests and benchmarks to send deliveries."""
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    return stamp, SIGNATURE_PREFIX + hmac_digest(secret, stamp.encode() + b"." + body)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class SandboxDirectoryWebhooksMixin:
    """For SandboxDirectoryConnector: verify and parse deliveries (its own rejection codes, which its tests and sandbox expect)."""

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        signature = request.header("X-Directory-Signature")
        stamp = request.header("X-Directory-Timestamp")
        if not signature or not stamp:
            raise WebhookRejected(400, "signature_missing", "X-Directory-Signature and X-Directory-Timestamp are required.")
        try:
            sent_at = int(stamp)
        except ValueError:
            raise WebhookRejected(400, "timestamp_invalid", "X-Directory-Timestamp must be unix seconds.") from None
        try:
            verify_hmac(signature, secret=secret, message=stamp.encode() + b"." + request.body, prefix=SIGNATURE_PREFIX, vendor="Sandbox Directory")
        except WebhookRejected as rejected:
            raise WebhookRejected(401, "signature_invalid", rejected.message) from None
        try:
            check_window(sent_at, now=request.received_at.timestamp(), vendor="Sandbox Directory")
        except WebhookRejected as rejected:
            raise WebhookRejected(409, "timestamp_stale", rejected.message) from None

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRejected(400, "malformed", "The webhook body is not JSON.") from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not isinstance(body.get("data", {}), dict):
            raise WebhookRejected(400, "malformed", "The webhook body lacks a type or data object.")
        delivery_id = str(body.get("delivery_id") or request.header("X-Directory-Delivery") or hashlib.sha256(request.body).hexdigest())
        data = body.get("data") or {}
        kind = body["type"]
        occurred = _parse_time(body.get("occurred_at"))
        if kind in ("person.created", "person.updated"):
            if not data.get("id"):
                raise WebhookRejected(400, "malformed", "A person event needs data.id.")
            return [WebhookEvent(delivery_id, kind, "people", str(data["id"]), "upsert", dict(data), occurred)]
        if kind == "person.deleted":
            if not data.get("id"):
                raise WebhookRejected(400, "malformed", "A person event needs data.id.")
            return [WebhookEvent(delivery_id, kind, "people", str(data["id"]), "delete", None, occurred)]
        if kind == "directory.changed":
            return [WebhookEvent(delivery_id, kind, str(data.get("entity") or "people"), "", "sync", None, occurred)]
        return [WebhookEvent(delivery_id, kind, "", str(data.get("id") or ""), "status", {"status": str(data.get("status", kind))}, occurred)]
