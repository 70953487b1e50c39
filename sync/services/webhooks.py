"""Webhook intake (route → verify → parse → store in the inbox → enqueue) and processing (apply to the records store, then handlers)."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from common import json_input, metrics
from common.errors import error_body
from common.validators import is_uuid
from integrations.connectors.base import BastionType, WebhookEvent, WebhookRequest
from integrations.errors import WebhookRejected
from integrations.models import CredentialType, DataSource, Integration, IntegrationStatus
from integrations.registry import UnknownConnector, get_connector_class
from integrations.services import credential_secret
from people.services import people_mark_source_deleted, people_merge
from sync.models import DeliveryStatus, JobTrigger, WebhookDelivery
from sync.services.records import parse_source_time, records_mark_deleted, records_upsert
from sync.services.webhook_routes import flood_count, inbox_insert, pending_claim_drain, pending_drain, pending_push, route_forget, route_get, route_put

logger = logging.getLogger(__name__)
ACCEPTED_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/plain")


@dataclass
class IntakeResult:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # answered as text/plain instead of JSON (Microsoft Graph's validationToken echo)


# Response headers a reverse proxy or browser acts on: never echoed from a request, whatever a spec's handshake names.
PROXY_CONTROL_HEADERS = ("x-accel-", "x-sendfile", "x-lighttpd-", "x-forwarded-", "x-real-ip", "x-frame-options", "x-content-type-options", "x-xss-")
CHALLENGE_TEXT_MAX = 1024  # an echoed handshake token is attacker-controlled: printable ASCII, bounded, never sniffed as HTML


def _printable(value: str) -> bool:
    return len(value) <= CHALLENGE_TEXT_MAX and all(" " <= char <= "~" for char in value)


def _challenge_answer(token: str, echoed: dict[str, str] | None = None) -> IntakeResult:
    """200 text/plain echo of a handshake token (and of the X- headers the vendor asks back), or 400 when anything echoed is
    not sane: too long, controls, non-ASCII, or a header other than X-… (a handshake never sets cookies or content types)."""
    echoed = echoed or {}
    if not (token or echoed) or not _printable(token):
        return _reject(400, "bad_challenge", f"The handshake token must be 1-{CHALLENGE_TEXT_MAX} printable ASCII characters.")
    for name, value in echoed.items():
        if not (name[:2].lower() == "x-" and 2 < len(name) <= 64 and name.isascii() and all(c.isalnum() or c == "-" for c in name)) or not (
            value and _printable(value)
        ):
            return _reject(400, "bad_challenge", "A handshake may echo only X- headers with 1-1024 printable ASCII characters.")
        if name.lower().startswith(PROXY_CONTROL_HEADERS):  # a reverse proxy acts on these (internal redirects, files)
            return _reject(400, "bad_challenge", f"A handshake may not echo {name}.")
    headers = {**echoed, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    return IntakeResult(200, {"status": "challenge"}, headers, text=token)


def _reject(status: int, code: str, message: str, **headers: str) -> IntakeResult:
    return IntakeResult(status, error_body(code, message), dict(headers))


def _flooded(integration_id: Any) -> bool:
    """A per-integration, per-second counter in the shared cache (Redis in production): a flood gets 429 before any work."""
    limit = int(getattr(settings, "BASTION_WEBHOOK_MAX_PER_SECOND", 500))
    return flood_count(f"bastion:webhooks:rate:{integration_id}:{int(time.time())}") > limit


def event_as_dict(event: WebhookEvent) -> dict[str, Any]:
    """dataclasses.asdict with datetimes as ISO strings (the shape handlers receive)."""
    data = dataclasses.asdict(event)
    for key, value in list(data.items()):
        if isinstance(value, datetime):
            data[key] = value.isoformat()
    return data


def webhook_receive(*, integration_id: str, method: str, url: str, headers: Mapping[str, str], body: bytes, content_type: str) -> IntakeResult:
    """Verify, parse, store (deduplicated by delivery id) and enqueue one delivery; never raises for bad input."""
    result = _receive(integration_id=integration_id, method=method, url=url, headers=headers, body=body, content_type=content_type)
    return _counted(result)


def webhook_receive_by_account(*, connector_key: str, method: str, url: str, headers: Mapping[str, str], body: bytes, content_type: str) -> IntakeResult:
    """Route a delivery to the one integration connected to the vendor account it names, then receive it like webhook_receive.

    For vendors that send every account's deliveries to one URL (WebhookSpec.routes_by_account: Slack's team_id, HubSpot's
    portalId). The account is read before verification only to choose the integration whose secret verifies the delivery.
    """
    result = _receive_by_account(connector_key=connector_key, method=method, url=url, headers=headers, body=body, content_type=content_type)
    return _counted(result)


def _counted(result: IntakeResult) -> IntakeResult:
    outcome = str(result.body.get("status", "")) if result.status < 400 else "rejected"
    metrics.webhook_intake.labels(outcome or "answered", str(result.status)).inc()
    return result


def _receive(*, integration_id: str, method: str, url: str, headers: Mapping[str, str], body: bytes, content_type: str) -> IntakeResult:
    route = route_get(str(uuid.UUID(integration_id))) if is_uuid(integration_id) else None
    if route is not None:
        integration, connector_class = route.integration, route.connector_class
    else:
        integration = Integration.objects.select_related("organization").filter(pk=integration_id).first() if is_uuid(integration_id) else None
    if integration is None:
        return _reject(404, "unknown_integration", "No integration receives webhooks at this address.")
    if _flooded(integration.pk):
        logger.warning("sync.webhook.flood", extra={"integration": str(integration.pk)})
        return _reject(429, "too_many_deliveries", "Too many deliveries for this integration; retry shortly.", **{"Retry-After": "1"})
    if route is None:
        try:
            connector_class = get_connector_class(integration.connector_key)
        except UnknownConnector:
            return _reject(404, "unknown_connector", "This integration's connector is not installed.")
    if _content_type_refused(method, body, content_type):
        return _reject(400, "unsupported_content_type", f"Content type {content_type or '(none)'} is not accepted; send application/json.")
    request = WebhookRequest(method=method, url=url, headers=dict(headers), body=body, received_at=timezone.now())
    return _verified_and_stored(integration, connector_class, request)


def _receive_by_account(*, connector_key: str, method: str, url: str, headers: Mapping[str, str], body: bytes, content_type: str) -> IntakeResult:
    try:
        connector_class = get_connector_class(connector_key)
    except UnknownConnector:
        return _reject(404, "unknown_connector", "No connector with this key is installed.")
    spec = connector_class.manifest.webhook
    if spec is None or not spec.routes_by_account:
        message = f"{connector_class.manifest.name} deliveries are not routed by account: send them to the integration's own webhook URL."
        return _reject(404, "account_routing_unsupported", message)
    if _content_type_refused(method, body, content_type):
        return _reject(400, "unsupported_content_type", f"Content type {content_type or '(none)'} is not accepted; send application/json.")
    request = WebhookRequest(method=method, url=url, headers=dict(headers), body=body, received_at=timezone.now())
    try:
        account_id = str(connector_class.webhook_account_id(request) or "").strip()
    except WebhookRejected as rejected:
        return _reject(rejected.status, rejected.code, rejected.message)
    except Exception:  # noqa: BLE001 - a connector that chokes on a malformed body must answer 400, never 500
        logger.exception("sync.webhook.account_unreadable", extra={"connector": connector_key})
        return _reject(400, "malformed", "The webhook body could not be read to find the account it is for.")
    if not account_id:
        return _reject(404, "account_missing", f"The delivery names no {connector_class.manifest.name} account, so no integration can receive it.")
    # A disconnected integration receives nothing (its secret is gone): it neither takes the delivery nor makes the account ambiguous.
    candidates = list(
        Integration.objects.select_related("organization")
        .filter(connector_key=connector_key, external_account_id=account_id[: Integration._meta.get_field("external_account_id").max_length])
        .exclude(status=IntegrationStatus.DISCONNECTED)[:2]
    )
    if not candidates:
        return _reject(404, "unknown_account", f"No connected {connector_class.manifest.name} integration is for the account this delivery names.")
    if len(candidates) > 1:
        logger.warning("sync.webhook.ambiguous_account", extra={"connector": connector_key})
        message = (
            f"More than one {connector_class.manifest.name} integration is connected to the account this delivery names: "
            "send its deliveries to each integration's own webhook URL instead."
        )
        return _reject(404, "ambiguous_account", message)
    integration = candidates[0]
    if _flooded(integration.pk):
        logger.warning("sync.webhook.flood", extra={"integration": str(integration.pk)})
        return _reject(429, "too_many_deliveries", "Too many deliveries for this integration; retry shortly.", **{"Retry-After": "1"})
    return _verified_and_stored(integration, connector_class, request)


def _content_type_refused(method: str, body: bytes, content_type: str) -> bool:
    return bool(body) and content_type.split(";")[0].strip().lower() not in ACCEPTED_CONTENT_TYPES and method != "GET"


def _verified_and_stored(integration: Integration, connector_class: Any, request: WebhookRequest) -> IntakeResult:
    """Verify with the integration's key before anything is written, parse, then store and enqueue."""
    # Not audited per request: forged deliveries must write nothing before their signature is checked (nothing after either).
    route = route_get(str(integration.pk))
    secret = route.key if route is not None else webhook_verification_key(integration, connector_class.manifest)
    if not secret:
        logger.warning("sync.webhook.no_secret", extra={"integration": str(integration.pk)})
        return _reject(401, "webhook_secret_missing", "No webhook secret is configured for this integration, so nothing can be verified.")
    if route is None:
        route_put(integration, connector_class, secret)
    try:
        connector_class.verify_webhook(request, secret=secret, config=integration.config)
        events = connector_class.parse_webhook(request)
        # Signed is not the same as storable: a NUL or absurd nesting in a vendor's body is a 400, not a database error.
        # These dicts are the ones stored: each event is converted once.
        stored_events = json_input.check_value([event_as_dict(event) for event in events])
    except WebhookRejected as rejected:
        logger.warning("sync.webhook.rejected", extra={"integration": str(integration.pk), "code": rejected.code, "status": rejected.status})
        return _reject(rejected.status, rejected.code, rejected.message)
    except json_input.UnsafeJson as unsafe:
        logger.warning("sync.webhook.unsafe_body", extra={"integration": str(integration.pk)})
        return _reject(400, "malformed", f"The webhook body cannot be stored: {unsafe}")
    except Exception:  # noqa: BLE001 - a connector that chokes on a malformed body must answer 400, never 500
        logger.exception("sync.webhook.parse_failed", extra={"integration": str(integration.pk)})
        return _reject(400, "malformed", "The webhook body could not be parsed.")
    for event in events:
        if event.challenge_response is not None:
            return IntakeResult(200, dict(event.challenge_response))
        if event.challenge_text is not None or event.challenge_headers:
            return _challenge_answer(event.challenge_text or "", event.challenge_headers)
    if not events:
        # A verified delivery the connector found nothing in is still kept (and counted) as unsupported, never dropped.
        events = [WebhookEvent(delivery_id=hashlib.sha256(request.body).hexdigest(), event_type="unknown", action="unsupported")]
        stored_events = [event_as_dict(event) for event in events]
    return _store(integration, events, stored_events, request.received_at)


def webhook_verification_key(integration: Integration, manifest: Any) -> str:
    """The key deliveries are verified with: the vendor's own signing key when it signs with a credential (Twilio's auth
    token), else the webhook secret Bastion generated. Never audited per request: forged deliveries must write nothing."""
    if manifest.webhook is not None and manifest.webhook.oauth_jwt and integration.credentials.filter(credential_type=CredentialType.OAUTH).exists():
        from integrations.oauth import oauth_client

        return oauth_client(integration.connector_key).client_secret
    if manifest.webhook is not None and manifest.webhook.key_field:
        credential = credential_secret(integration=integration, credential_type=CredentialType.API_KEY, purpose="webhook_verify", audited=False)
        return str((credential or {}).get(manifest.webhook.key_field) or "")
    credential = credential_secret(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, purpose="webhook_verify", audited=False)
    return str((credential or {}).get("secret") or "")


def _store(integration: Integration, events: list[WebhookEvent], stored_events: list[dict[str, Any]], received_at: datetime) -> IntakeResult:
    delivery_id = events[0].delivery_id[:255]
    event_types = sorted({e.event_type for e in events})
    if connection.vendor == "postgresql":
        try:
            delivery_pk, created = inbox_insert(
                integration=integration, delivery_id=delivery_id, event_types=event_types, events=stored_events, received_at=received_at
            )
        except IntegrityError:  # the integration was deleted after this process read it
            route_forget(integration.pk)
            return _reject(404, "unknown_integration", "No integration receives webhooks at this address.")
        if not created:
            return IntakeResult(200, {"status": "duplicate", "delivery_id": delivery_id})
        transaction.on_commit(lambda: webhook_delivery_enqueue(delivery_pk=delivery_pk))
        return IntakeResult(202, {"status": "accepted", "delivery_id": delivery_id, "id": str(delivery_pk)})
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                organization_id=integration.organization_id,
                integration=integration,
                delivery_id=delivery_id,
                event_types=event_types,
                events=stored_events,
                received_at=received_at,
            )
            transaction.on_commit(lambda: webhook_delivery_enqueue(delivery_pk=delivery.pk))
    except IntegrityError:
        WebhookDelivery.objects.filter(integration=integration, delivery_id=delivery_id).update(duplicates=F("duplicates") + 1)
        return IntakeResult(200, {"status": "duplicate", "delivery_id": delivery_id})
    return IntakeResult(202, {"status": "accepted", "delivery_id": delivery_id, "id": str(delivery.pk)})


def webhook_delivery_enqueue(*, delivery_pk: Any) -> None:
    """Queue a delivery for processing: through the pending list and its drain on Redis, straight to Celery otherwise."""
    from sync.tasks import webhook_deliveries_drain_task, webhook_delivery_process_task

    if webhook_delivery_process_task.app.conf.task_always_eager:  # in-process (tests, embedded demo): processed right here
        webhook_delivery_process_task.delay(str(delivery_pk))
        return
    must_drain = pending_push(delivery_pk)
    if must_drain is None:
        webhook_delivery_process_task.delay(str(delivery_pk))
    elif must_drain:
        webhook_deliveries_drain_task.delay()


def webhook_deliveries_drain() -> int:
    """Send each waiting delivery to its processing task (run by the one drain task the first push scheduled)."""
    from sync.tasks import webhook_delivery_process_task

    return pending_drain(lambda delivery_pk: webhook_delivery_process_task.delay(delivery_pk))


def webhook_deliveries_nudge() -> bool:
    """Periodic: schedule a drain when deliveries wait and none is scheduled (its task was lost); True if one was sent."""
    from sync.tasks import webhook_deliveries_drain_task

    if pending_claim_drain():
        webhook_deliveries_drain_task.delay()
        return True
    return False


def webhook_delivery_process(*, delivery_pk: Any) -> WebhookDelivery | None:
    """Apply a delivery's events (upsert / delete / sync) and call the event handlers; failures are kept for replay."""
    from sync.services.jobs import data_sources_ensure, sync_start

    delivery = WebhookDelivery.objects.select_related("integration", "integration__organization").filter(pk=delivery_pk).first()
    if delivery is None:
        return None
    integration = delivery.integration
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
    result: dict[str, Any] = {"upserted": 0, "unchanged": 0, "stale": 0, "deleted": 0, "syncs": [], "ignored": 0, "events": {}}
    try:
        # Applying events needs only the connector's transformers: no HTTP client, so no secret is decrypted here.
        connector = get_connector_class(integration.connector_key)(config=integration.config)
        with transaction.atomic():
            for event in delivery.events:
                outcome = _apply_event(connector, integration, event, result)
                result["events"].setdefault(str(event.get("event_type") or "unknown"), outcome)
            result["outcome"] = delivery_outcome(list(result["events"].values()))
        for event in delivery.events:
            if event.get("action") == "sync":
                data_sources_ensure(integration=integration)
                sources = DataSource.objects.filter(integration=integration, is_enabled=True).select_related("integration")
                if event.get("entity"):
                    sources = sources.filter(entity_type=event["entity"])
                for source in sources:
                    job = sync_start(data_source=source, trigger=JobTrigger.WEBHOOK)
                    result["syncs"].append(str(job.pk))
        if any(event.get("action") == "renew" for event in delivery.events):
            result["renewed_until"] = webhook_registration_renew(integration=integration)
        for path in getattr(settings, "BASTION_EVENT_HANDLERS", []):
            try:
                handler = import_string(path)
                handler(str(integration.pk), list(delivery.events))
            except Exception as error:
                raise RuntimeError(f"Event handler {path} failed: {type(error).__name__}: {error}") from error
    except Exception as error:  # noqa: BLE001 - recorded on the delivery (failed, replayable) and logged with its cause
        logger.exception("sync.webhook.process_failed", extra={"delivery": str(delivery.pk)})
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, last_error=str(error)[:2000], result=result)
        metrics.webhook_processed.labels(integration.connector_key, "failed").inc()
    else:
        processed_at = timezone.now()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.PROCESSED, processed_at=processed_at, last_error="", result=result)
        metrics.webhook_processed.labels(integration.connector_key, "processed").inc()
        metrics.webhook_processing_lag.labels(integration.connector_key).observe(max(0.0, (processed_at - delivery.received_at).total_seconds()))
    delivery.refresh_from_db()
    return delivery


def webhook_registration_renew(*, integration: Integration) -> str:
    """Extend the integration's expiring registration now because the vendor asked (a "renew" event: Graph's
    reauthorizationRequired or subscriptionRemoved) instead of on the next beat; returns the new expiry ("" if none)."""
    from integrations.services import build_connector

    registration = dict(integration.config.get("webhook_registration") or {})
    if not registration.get("ids"):
        return ""
    expiry = build_connector(integration).refresh_webhooks(list(registration["ids"]))
    integration.refresh_from_db(fields=["config"])
    integration.config = {**integration.config, "webhook_registration": {**registration, "expires_at": expiry.isoformat()}}
    integration.save(update_fields=["config", "updated_at"])
    return expiry.isoformat()


class Outcome:
    """What was done with a delivery's events: applied to Bastion, not used (a known event with nothing to act on), unsupported."""

    APPLIED = "applied"
    NOT_USED = "not_used"
    UNSUPPORTED = "unsupported"


def delivery_outcome(outcomes: list[str]) -> str:
    """A delivery is applied if any event was, else unsupported if any event was, else not used."""
    for outcome in (Outcome.APPLIED, Outcome.UNSUPPORTED):
        if outcome in outcomes:
            return outcome
    return Outcome.NOT_USED


def _apply_event(connector: Any, integration: Integration, event: Mapping[str, Any], result: dict[str, Any]) -> str:
    """Apply one parsed event; returns its Outcome."""
    action, entity = event.get("action"), event.get("entity") or ""
    if action == "unsupported":
        return Outcome.UNSUPPORTED
    if action in ("sync", "status", "renew"):
        return Outcome.APPLIED  # a sync or a renewal is started below; status events go to the handlers (playbook tasks)
    if action not in ("upsert", "delete"):
        result["ignored"] += 1
        return Outcome.NOT_USED
    try:
        spec = connector.manifest.entity(entity)
    except KeyError:
        result["ignored"] += 1
        return Outcome.UNSUPPORTED
    is_person = spec.bastion_type == BastionType.PERSON
    if action == "upsert" and event.get("record"):
        outcome = records_upsert(integration=integration, entity_type=entity, records=[event["record"]], connector=connector)
        result["upserted"] += outcome.created + outcome.updated
        result["unchanged"] += outcome.unchanged
        result["stale"] += outcome.stale
        if is_person and outcome.changed:
            people_merge(
                organization=integration.organization, source=integration.connector_key, integration=integration, entity_type=entity, items=outcome.changed
            )
    elif action == "delete" and event.get("external_id"):
        deleted = records_mark_deleted(
            integration=integration, entity_type=entity, external_ids=[event["external_id"]], occurred_at=parse_source_time(event.get("occurred_at"))
        )
        result["deleted"] += len(deleted)
        if is_person and deleted:
            people_mark_source_deleted(organization=integration.organization, source=integration.connector_key, integration=integration, external_ids=deleted)
    else:
        result["ignored"] += 1
        return Outcome.NOT_USED
    return Outcome.APPLIED


def webhook_delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Process a stored delivery again (idempotent: the records store skips what it already has)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.RECEIVED, last_error="")
    transaction.on_commit(lambda: webhook_delivery_enqueue(delivery_pk=delivery.pk))
    delivery.refresh_from_db()
    return delivery
