"""HubSpot's v3 webhooks: X-HubSpot-Signature-v3 over method, URI, body and timestamp; events as JSON arrays."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import BaseConnector, WebhookEvent, WebhookRequest
from integrations.connectors.kit.signatures import check_window, epoch_seconds, hmac_digest, require_header, verify_hmac
from integrations.errors import WebhookRejected

logger = logging.getLogger(__name__)

WEBHOOK_OBJECTS = {"deal": "deals", "contact": "contacts", "company": "companies", "0-3": "deals", "0-1": "contacts", "0-2": "companies"}
# HubSpot signs the URI with these characters decoded (request-validation docs, v3).
URI_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}
CHANGES = ("creation", "deletion", "propertyChange", "merge", "restore", "associationChange")
# The subscription types parse_webhook reads (others, such as tickets, are logged and skipped).
EVENT_TYPES = (
    *(f"{name}.{change}" for name in ("deal", "contact", "company", "object") for change in CHANGES),
    "contact.privacyDeletion",
)


def _signed_message(method: str, uri: str, body: bytes, timestamp: str) -> bytes:
    return method.upper().encode() + uri.encode() + body + timestamp.encode()


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, method + URI + raw body + timestamp)), as HubSpot computes X-HubSpot-Signature-v3."""
    return hmac_digest(secret, _signed_message(method, uri, body, timestamp), encoding="base64")


def _decoded_uri(uri: str) -> str:
    for encoded, char in URI_DECODE.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


class HubSpotWebhooks(BaseConnector):
    """v3 deliveries: verified with the app's client secret, routed by the portal they are for."""

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        signature = require_header(request.header("X-HubSpot-Signature-v3"), "X-HubSpot-Signature-v3", "HubSpot")
        timestamp = require_header(request.header("X-HubSpot-Request-Timestamp"), "X-HubSpot-Request-Timestamp", "HubSpot")
        if not timestamp.isdigit():
            raise WebhookRejected(400, "bad_timestamp", "X-HubSpot-Request-Timestamp must be milliseconds since the epoch.")
        # Behind a proxy the URL HubSpot signed may differ from the one we see: config["webhook_url"] names it.
        uris = [_decoded_uri(u) for u in dict.fromkeys([request.url, (config or {}).get("webhook_url") or request.url])]
        rejected: WebhookRejected | None = None
        for uri in uris:
            try:
                verify_hmac(
                    signature, secret=secret, message=_signed_message(request.method, uri, request.body, timestamp), encoding="base64", vendor="HubSpot"
                )
                break
            except WebhookRejected as exc:
                rejected = exc
        else:
            assert rejected is not None
            raise rejected
        check_window(epoch_seconds(timestamp, unit="ms"), now=request.received_at.timestamp(), vendor="HubSpot")

    @classmethod
    def webhook_account_id(cls, request: WebhookRequest) -> str:
        """The portalId the events are for (read before verification, for routing only)."""
        try:
            events = json.loads(request.body or b"null")
        except ValueError:
            return ""
        first = events[0] if isinstance(events, list) and events else None
        return str(first.get("portalId") or "") if isinstance(first, dict) else ""

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            events = json.loads(request.body or b"null")
        except ValueError as exc:
            raise WebhookRejected(400, "invalid_json", "The HubSpot webhook body is not JSON.") from exc
        if not isinstance(events, list):
            raise WebhookRejected(400, "invalid_payload", "HubSpot webhook bodies are JSON arrays of events.")
        parsed: list[WebhookEvent] = []
        for event in events:
            if not isinstance(event, dict) or "subscriptionType" not in event or "objectId" not in event or "eventId" not in event:
                raise WebhookRejected(400, "invalid_event", "Each HubSpot event needs eventId, subscriptionType and objectId.")
            subscription = str(event["subscriptionType"])
            object_name, _, change = subscription.partition(".")
            if object_name == "object":
                object_name = str(event.get("objectTypeId", ""))
            entity = WEBHOOK_OBJECTS.get(object_name)
            if entity is None:
                logger.info("hubspot.webhook.ignored", extra={"subscription_type": subscription})
                continue
            action = "delete" if change == "deletion" else "sync"
            occurred = event.get("occurredAt")
            parsed.append(
                WebhookEvent(
                    delivery_id=str(event["eventId"]),
                    event_type=subscription,
                    entity=entity,
                    external_id=str(event["objectId"]),
                    action=action,
                    record=None,
                    occurred_at=datetime.fromtimestamp(int(occurred) / 1000, tz=UTC) if occurred else None,
                )
            )
            for merged in event.get("mergedObjectIds") or []:
                if str(merged) != str(event.get("primaryObjectId", event["objectId"])):
                    parsed.append(
                        WebhookEvent(
                            delivery_id=f"{event['eventId']}:{merged}", event_type=subscription, entity=entity, external_id=str(merged), action="delete"
                        )
                    )
        return parsed
