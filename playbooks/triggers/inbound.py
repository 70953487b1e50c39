"""The signed generic inbound webhook, for systems Bastion has no connector for: verify → parse → store → enqueue → 2xx.

Signing: `X-Bastion-Timestamp: <unix seconds>` and `X-Bastion-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`
(several comma-separated signatures are accepted while a secret rotates); the timestamp must be within 5 minutes.
Body: a JSON object with `id` (the delivery), `event_type`, optional `resource_id` (fire once per resource) and `data`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization
from accounts.services import audit_record
from integrations.connectors.base import WebhookRequest
from integrations.errors import WebhookRejected
from playbooks.triggers.models import FIRED_OUTCOMES, InboundDelivery, InboundEndpoint, TriggerRule

logger = logging.getLogger(__name__)
REPLAY_WINDOW = timedelta(minutes=5)
SIGNATURE_HEADER = "X-Bastion-Signature"
TIMESTAMP_HEADER = "X-Bastion-Timestamp"


def inbound_sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature a sender puts in X-Bastion-Signature."""
    return "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def inbound_verify(request: WebhookRequest, *, secret: str) -> None:
    """Signature in constant time, then the timestamp within the replay window; raises WebhookRejected (400/401/409)."""
    signature = request.header(SIGNATURE_HEADER)
    stamp = request.header(TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise WebhookRejected(400, "missing_signature", f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required.")
    expected = inbound_sign(secret, stamp.strip(), request.body)
    if not any(hmac.compare_digest(candidate.strip(), expected) for candidate in signature.split(",")):
        raise WebhookRejected(401, "bad_signature", "The signature does not match this endpoint's secret.")
    try:
        sent_at = datetime.fromtimestamp(int(stamp.strip()), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookRejected(400, "bad_timestamp", f"{TIMESTAMP_HEADER} must be Unix seconds.")
    if abs(request.received_at - sent_at) > REPLAY_WINDOW:
        raise WebhookRejected(409, "stale", "The delivery is older than the 5-minute replay window.")


def inbound_parse(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"")
    except ValueError:
        raise WebhookRejected(400, "invalid_json", "The body is not JSON.")
    if not isinstance(data, dict) or not str(data.get("id") or "").strip() or not str(data.get("event_type") or "").strip():
        raise WebhookRejected(400, "invalid_payload", "The body must be a JSON object with id and event_type.")
    if data.get("data") is not None and not isinstance(data["data"], dict):
        raise WebhookRejected(400, "invalid_payload", "data must be a JSON object.")
    return data


def _flooded(endpoint_id: Any) -> bool:
    """Per endpoint and second, in the shared cache, with the webhook intake's limit: a flood gets 429 before any work."""
    limit = int(getattr(settings, "BASTION_WEBHOOK_MAX_PER_SECOND", 500))
    key = f"bastion:inbound:rate:{endpoint_id}:{int(time.time())}"
    cache.add(key, 0, timeout=2)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this request starts the new second
        cache.add(key, 1, timeout=2)
        count = 1
    return int(count) > limit


@dataclass
class InboundResult:
    status: int
    body: dict[str, Any]


def _reject(status: int, code: str, message: str) -> InboundResult:
    return InboundResult(status, {"error": {"code": code, "message": message, "fields": {}}})


def inbound_receive(*, endpoint_id: str, headers: dict[str, str], body: bytes) -> InboundResult:
    """Verify, parse and store one delivery (deduplicated by its id), enqueue its evaluation; never raises for bad input."""
    try:
        endpoint = InboundEndpoint.objects.filter(pk=uuid.UUID(str(endpoint_id)), is_enabled=True).first()
    except ValueError:
        endpoint = None
    if endpoint is None:
        return _reject(404, "unknown_endpoint", "No inbound endpoint receives events at this address.")
    if _flooded(endpoint.pk):
        logger.warning("playbooks.inbound.flood", extra={"endpoint": str(endpoint.pk)})
        return _reject(429, "too_many_deliveries", "Too many deliveries for this endpoint; retry shortly.")
    request = WebhookRequest(method="POST", url="", headers=headers, body=body, received_at=timezone.now())
    try:
        stored = endpoint.secret if isinstance(endpoint.secret, dict) else {}
        if not stored.get("secret"):
            raise WebhookRejected(401, "secret_missing", "This endpoint has no secret, so nothing can be verified.")
        inbound_verify(request, secret=str(stored["secret"]))
        data = inbound_parse(body)
    except WebhookRejected as rejected:
        logger.warning("playbooks.inbound.rejected", extra={"endpoint": str(endpoint.pk), "code": rejected.code})
        return _reject(rejected.status, rejected.code, rejected.message)
    event = {
        "delivery_id": str(data["id"])[:255],
        "event_type": str(data["event_type"])[:120],
        "entity": str(data.get("entity") or "event")[:60],
        "external_id": str(data.get("resource_id") or data["id"])[:200],
        "action": "upsert",
        "record": dict(data.get("data") or {}),
        "occurred_at": request.received_at.isoformat(),
    }
    try:
        with transaction.atomic():
            delivery = InboundDelivery.objects.create(endpoint=endpoint, delivery_id=event["delivery_id"], event=event, received_at=request.received_at)
            transaction.on_commit(lambda: _enqueue(delivery.pk))
    except IntegrityError:
        return InboundResult(200, {"status": "duplicate", "delivery_id": event["delivery_id"]})
    return InboundResult(202, {"status": "accepted", "delivery_id": event["delivery_id"], "id": str(delivery.pk)})


def _enqueue(delivery_pk: Any) -> None:
    from playbooks.triggers import tasks

    tasks.inbound_delivery_process.delay(str(delivery_pk))


def inbound_delivery_process(*, delivery_pk: Any) -> int:
    """Evaluate the rules of the endpoint against a stored delivery (idempotent: a rule fires once per resource)."""
    from playbooks.triggers.services import event_facts, rule_evaluate

    delivery = InboundDelivery.objects.select_related("endpoint").filter(pk=delivery_pk).first()
    if delivery is None or delivery.processed_at is not None:
        return 0
    facts = event_facts("inbound", delivery.event, integration_id=str(delivery.endpoint_id))
    fired = 0
    for rule in TriggerRule.objects.filter(source="inbound", inbound_endpoint=delivery.endpoint):
        firing = rule_evaluate(rule=rule, facts=facts, delivery_id=delivery.delivery_id, received_at=delivery.received_at)
        fired += int(firing.outcome in FIRED_OUTCOMES)
    InboundDelivery.objects.filter(pk=delivery.pk).update(processed_at=timezone.now(), last_error="")
    return fired


def inbound_endpoint_create(*, organization: Organization, name: str, actor: Any = None) -> tuple[InboundEndpoint, str]:
    """Create an endpoint with a fresh secret; the secret is returned once (stored encrypted)."""
    secret = secrets.token_urlsafe(32)
    endpoint = InboundEndpoint(organization=organization, name=name[:200])
    endpoint.save()
    endpoint.secret = {"secret": secret}
    endpoint.save(update_fields=["secret"])
    audit_record(action="inbound_endpoint.create", organization=organization, actor=actor, target=endpoint, changes={"name": name})
    return endpoint, secret
