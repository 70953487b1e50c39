"""Okta event hooks: the one-time GET verification, the static secret header, and the user lifecycle events Bastion reads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from integrations.connectors.base import WebhookEvent, WebhookRequest
from integrations.connectors.kit.signatures import equal_secret
from integrations.errors import WebhookRejected

DELETE_EVENTS = frozenset({"user.lifecycle.deactivate", "user.lifecycle.delete.initiated", "user.lifecycle.delete.completed"})
CHANGE_EVENTS = frozenset(
    {"user.account.update_profile", "user.lifecycle.create", "user.lifecycle.activate", "user.lifecycle.reactivate", "user.lifecycle.unsuspend"}
)


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


class OktaWebhooksMixin:
    """For OktaConnector: verify and parse event hook deliveries."""

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """Okta sends no HMAC: the configured header must carry the shared secret (constant-time compare)."""
        header_name = str((config or {}).get("webhook_auth_header") or "Authorization")
        presented = request.header(header_name)
        if request.method.upper() == "GET":
            if not request.header("X-Okta-Verification-Challenge"):
                raise WebhookRejected(400, "missing_challenge", "Okta's verification request carries X-Okta-Verification-Challenge.")
            # The handshake echoes a value and changes nothing; a wrong secret is still refused when one is sent.
            if presented is not None and not equal_secret(presented, secret):
                raise WebhookRejected(401, "bad_secret", f"The {header_name} header does not match the event hook secret.")
            return
        if not presented:
            raise WebhookRejected(400, "missing_secret", f"The event hook delivery has no {header_name} header.")
        if not equal_secret(presented, secret):
            raise WebhookRejected(401, "bad_secret", f"The {header_name} header does not match the event hook secret.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        challenge = request.header("X-Okta-Verification-Challenge")
        if request.method.upper() == "GET":
            if not challenge:
                raise WebhookRejected(400, "missing_challenge", "Okta's verification request carries X-Okta-Verification-Challenge.")
            return [
                WebhookEvent(
                    delivery_id=f"okta-verification:{challenge[:64]}", event_type="verification", action="sync", challenge_response={"verification": challenge}
                )
            ]
        try:
            body = json.loads(request.body or b"null")
        except ValueError as exc:
            raise WebhookRejected(400, "invalid_json", "The Okta event hook body is not JSON.") from exc
        if not isinstance(body, dict) or not body.get("eventId") or not isinstance((body.get("data") or {}).get("events"), list):
            raise WebhookRejected(400, "invalid_payload", "An Okta event hook delivery has eventId and data.events.")
        events = body["data"]["events"]
        parsed: list[WebhookEvent] = []
        for index, event in enumerate(events if all(isinstance(e, dict) for e in events) else []):
            event_type = str(event.get("eventType", ""))
            delivery_id = str(body["eventId"]) if len(events) == 1 else f"{body['eventId']}:{event.get('uuid') or index}"
            occurred = parse_time(event.get("published"))
            users = [t for t in event.get("target") or [] if isinstance(t, dict) and t.get("type") == "User"]
            applied = False
            for target in users:
                if target.get("id") and event_type in DELETE_EVENTS:
                    parsed.append(WebhookEvent(delivery_id, event_type, "users", str(target["id"]), "delete", None, occurred))
                    applied = True
                elif event_type in DELETE_EVENTS | CHANGE_EVENTS:
                    # The event names the user (by id, or only by login) without its profile: the sync engine re-reads the users.
                    parsed.append(WebhookEvent(delivery_id, event_type, "users", str(target.get("id") or ""), "sync", None, occurred))
                    applied = True
            if not applied:
                known = event_type in DELETE_EVENTS | CHANGE_EVENTS
                # A user event without a user target is not used; an event type Bastion does not read is unsupported.
                parsed.append(WebhookEvent(delivery_id, event_type or "unknown", action="ignore" if known else "unsupported", occurred_at=occurred))
        if not events:
            parsed.append(WebhookEvent(str(body["eventId"]), "empty", action="ignore"))
        return parsed
