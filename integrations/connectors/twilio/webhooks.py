"""Twilio's signed delivery-status callbacks: X-Twilio-Signature over the URL and the sorted form parameters."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from integrations.connectors.base import BaseConnector, WebhookEvent, WebhookRequest
from integrations.connectors.kit.signatures import hmac_digest, require_header, verify_hmac
from integrations.errors import WebhookRejected

# A message's statuses (Messages API); a callback's event type is "message.<status>".
MESSAGE_STATUSES = (
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "read",
    "canceled",
    "receiving",
    "received",
    "partially_delivered",
)
FINAL_STATUSES = ("delivered", "undelivered", "failed", "read", "canceled")


def _signed_text(url: str, params: Mapping[str, Any]) -> str:
    payload = url
    for name in sorted(params):
        values = params[name] if isinstance(params[name], list) else [params[name]]
        for value in sorted(values):
            payload += f"{name}{value}"
    return payload


def twilio_signature(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """base64(HMAC-SHA1(auth token, full URL + every POST parameter as name+value, sorted by name))."""
    return hmac_digest(auth_token, _signed_text(url, params).encode(), algorithm="sha1", encoding="base64")


def _url_variants(url: str) -> list[str]:
    """Twilio signs the URL as it called it; proxies may add or drop the default port, so try both (as Twilio's SDKs do)."""
    parts = urlsplit(url)
    variants = [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if parts.port is None and default:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.hostname}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=parts.hostname or "")))
    return variants


def _form(request: WebhookRequest) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in parse_qsl(request.body.decode("utf-8", errors="replace"), keep_blank_values=True):
        if name in params:
            params[name] = [*params[name], value] if isinstance(params[name], list) else [params[name], value]
        else:
            params[name] = value
    return params


class TwilioWebhooks(BaseConnector):
    """Delivery-status callbacks, verified with the account's auth token."""

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """`secret` is the account's auth token (the key Twilio signs with). Twilio sends no timestamp: replays are
        caught by the delivery-id dedup (I-Twilio-Idempotency-Token, else MessageSid+status), not by a time window."""
        provided = require_header(request.header("X-Twilio-Signature"), "X-Twilio-Signature", "Twilio")
        params = _form(request)
        public_url = (config or {}).get("public_url") or request.url
        rejected: WebhookRejected | None = None
        for url in _url_variants(public_url):
            try:
                verify_hmac(provided, secret=secret, message=_signed_text(url, params).encode(), algorithm="sha1", encoding="base64", vendor="Twilio")
                return
            except WebhookRejected as exc:
                rejected = exc
        assert rejected is not None
        raise rejected

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        params = _form(request)
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = params.get("MessageStatus") or params.get("SmsStatus")
        if not sid or not status:
            raise WebhookRejected(400, "invalid_payload", "MessageSid and MessageStatus are required.")
        delivery_id = request.header("I-Twilio-Idempotency-Token") or hashlib.sha256(f"{sid}:{status}:{params.get('ErrorCode', '')}".encode()).hexdigest()
        record = {"status": str(status), "to": params.get("To", ""), "error_code": params.get("ErrorCode") or None, "is_final": status in FINAL_STATUSES}
        return [WebhookEvent(delivery_id, f"message.{status}", "messages", str(sid), "status", record, request.received_at)]
