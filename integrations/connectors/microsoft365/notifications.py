"""Graph change notifications: the validationToken handshake, clientState checks, lifecycle events, subscriptions kept alive."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from integrations.connectors.base import Capability, TrackedObject, WebhookEvent, WebhookRequest, WebhookSpec
from integrations.connectors.microsoft365.calendar import attendee_responses
from integrations.connectors.microsoft365.client import ID, _route, register_permission_routes
from integrations.connectors.microsoft365.delta import DeltaMixin
from integrations.connectors.microsoft365.subscriptions import (
    SubscriptionClient,
    client_state,
    descriptor,
    earliest_expiry,
    parse_graph_time,
    plan_of,
    plans_for,
    renew_or_recreate,
)
from integrations.connectors.microsoft365.teams import channel_state
from integrations.errors import ApiBadRequest, ApiForbidden, WebhookRejected

logger = logging.getLogger(__name__)

VALIDATION_TOKEN_MAX = 1024  # Graph's tokens are far shorter; anything longer is not Graph
MAX_NOTIFICATIONS = 1000  # per delivery: Graph batches a few dozen at most
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
CHANGE_TYPES = ("created", "updated", "deleted")

WEBHOOK = WebhookSpec(
    event_types=(
        *(f"{entity}.{change}" for entity in ("channel_messages", "events") for change in CHANGE_TYPES),
        "drive_items.updated",
        *(f"subscription.{event}" for event in LIFECYCLE_EVENTS),
    ),
    signature=(
        "clientState shared secret: Bastion gives Graph an HMAC of the webhook secret as each subscription's clientState and "
        "compares it, in constant time, with every notification of a delivery (one mismatch refuses the whole delivery). "
        "Graph first validates the URL by POSTing ?validationToken=…, echoed back as text/plain."
    ),
)
NOTIFICATION_CAPABILITIES = (Capability.WEBHOOKS, Capability.WEBHOOK_REGISTRATION, Capability.STATUS_WEBHOOKS, Capability.INCREMENTAL, Capability.DELETIONS)
# Delegated scopes beyond the ones the calendar (Calendars.ReadWrite), channels (Channel.ReadBasic.All) and files
# (Files.ReadWrite.All) features already request: a subscription needs only the read permission of its resource.
NOTIFICATION_SCOPES = {
    "ChannelMessage.Read.All": "Read the war-room channels' messages as they change (delta) so replies reach Bastion (administrator consent).",
}
SUBSCRIPTION_NOTE = "a subscription needs the read permission of its resource: Channel.ReadBasic.All, ChannelMessage.Read.All, Calendars.Read, Files.Read.All"
register_permission_routes(
    [
        _route("(?:GET|POST)", r"subscriptions", ("Calendars.Read",), ("Calendars.Read",), SUBSCRIPTION_NOTE),
        _route("(?:GET|PATCH|DELETE)", rf"subscriptions/{ID}", ("Calendars.Read",), ("Calendars.Read",), SUBSCRIPTION_NOTE),
    ]
)

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Graph names resources either as paths ("Users/{id}/Events/{id}") or OData keys ("teams('{id}')/channels('{id}')").
_KEY = re.compile(r"\('([^']*)'\)")
_ENTITY_BY_SEGMENT = (("messages", "channel_messages"), ("replies", "channel_messages"), ("events", "events"), ("channels", "channels"))
_ENTITY_BY_TYPE = {"event": "events", "chatmessage": "channel_messages", "channel": "channels", "driveitem": "drive_items"}


def resource_segments(resource: str) -> list[str]:
    """'teams('1')/channels('2')' and 'teams/1/channels/2' both → ['teams', '1', 'channels', '2']."""
    return [part for part in _KEY.sub(r"/\1", resource.strip()).split("/") if part]


def entity_of(resource: str, resource_data: Mapping[str, Any] | None = None) -> str:
    """Which entity a notification is about, from its @odata.type or, failing that, its resource path ("" when neither says)."""
    odata_type = str((resource_data or {}).get("@odata.type") or "").rsplit(".", 1)[-1].lower()
    if odata_type in _ENTITY_BY_TYPE:
        return _ENTITY_BY_TYPE[odata_type]
    segments = [s.lower() for s in resource_segments(resource)]
    if segments[:1] == ["drives"]:
        return "drive_items"
    for index in range(len(segments) - 1, -1, -1):
        for segment, entity in _ENTITY_BY_SEGMENT:
            if segments[index] == segment or segments[index].startswith(f"{segment}"):
                return entity
    return ""


def _validation_token(request: WebhookRequest) -> str | None:
    """The handshake's URL-decoded validationToken, or None when the request is a notification."""
    values = parse_qs(urlsplit(request.url).query, keep_blank_values=True).get("validationToken")
    return values[0] if values else None


def _notifications(request: WebhookRequest) -> list[dict[str, Any]]:
    try:
        body = json.loads(request.body)
    except ValueError as exc:
        raise WebhookRejected(400, "invalid_json", "The Graph notification body is not JSON.") from exc
    items = body.get("value") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
        raise WebhookRejected(400, "invalid_payload", "A Graph notification needs a non-empty value array of notifications.")
    if len(items) > MAX_NOTIFICATIONS:
        raise WebhookRejected(413, "too_many_notifications", f"At most {MAX_NOTIFICATIONS} notifications per delivery.")
    return items


class NotificationsMixin(DeltaMixin):
    """verify_webhook, parse_webhook, register_webhook, refresh_webhooks and tracked_state for Microsoft365Connector."""

    # ------------------------------------------------------------ deliveries (classmethods: no client)
    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """A handshake carries no secret (it stores nothing); every notification must carry this integration's clientState."""
        token = _validation_token(request)
        if token is not None:
            if request.body.strip():
                raise WebhookRejected(400, "invalid_handshake", "A Graph validation request has an empty body.")
            if not token or len(token) > VALIDATION_TOKEN_MAX or not token.isprintable() or not token.isascii():
                raise WebhookRejected(400, "bad_validation_token", f"validationToken must be 1-{VALIDATION_TOKEN_MAX} printable ASCII characters.")
            return
        expected = client_state(secret).encode() if secret else b""
        tenant = str((config or {}).get("tenant_id") or "").lower()
        bad = foreign = 0
        items = _notifications(request)
        if any(not item.get("clientState") for item in items):  # unsigned, as a delivery without a signature header elsewhere
            raise WebhookRejected(400, "missing_client_state", "Every Graph notification must carry its subscription's clientState.")
        for item in items:
            received = item.get("clientState")
            # Every item is compared (no early exit): one forged notification refuses the whole delivery.
            bad += not (expected and isinstance(received, str) and hmac.compare_digest(received.encode(), expected))
            foreign += bool(_GUID.fullmatch(tenant) and item.get("tenantId") and str(item["tenantId"]).lower() != tenant)
        if bad:
            raise WebhookRejected(401, "bad_client_state", f"{bad} notification(s) carry a clientState that is not this integration's.")
        if foreign:
            raise WebhookRejected(403, "wrong_tenant", f"{foreign} notification(s) come from another Microsoft 365 tenant than this connection's.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        token = _validation_token(request)
        if token is not None:
            digest = hashlib.sha256(token.encode()).hexdigest()
            return [WebhookEvent(delivery_id=f"validation:{digest}", event_type="subscription.validation", action="sync", challenge_text=token)]
        delivery = hashlib.sha256(request.body).hexdigest()
        events: list[WebhookEvent] = []
        changed: dict[str, dict[str, Any]] = {}
        for item in _notifications(request):
            resource = str(item.get("resource") or "")
            data = item.get("resourceData") if isinstance(item.get("resourceData"), dict) else {}
            entity = entity_of(resource, data)
            lifecycle = str(item.get("lifecycleEvent") or "")
            meta = {"subscriptionId": str(item.get("subscriptionId") or ""), "resource": resource[:500]}
            if lifecycle:
                events.extend(_lifecycle_events(delivery, lifecycle, entity, meta))
                continue
            change = str(item.get("changeType") or "")
            external_id = str(data.get("id") or (resource_segments(resource) or [""])[-1])
            if change == "deleted" and entity and external_id:
                events.append(WebhookEvent(delivery, f"{entity}.deleted", entity, external_id, "delete", {**meta, "id": external_id}, None))
            elif change in ("created", "updated") and entity:
                # Graph sends no resource data without an encryption certificate: re-read the changes with delta (one sync per entity).
                entry = changed.setdefault(entity, {"event_type": f"{entity}.{change}", "ids": [], "change_types": []})
                entry["ids"].append(external_id)
                if change not in entry["change_types"]:
                    entry["change_types"].append(change)
        for entity, entry in changed.items():
            record = {"ids": entry["ids"][:100], "change_types": entry["change_types"]}
            events.append(WebhookEvent(delivery, entry["event_type"], entity, "", "sync", record, None))
        return events

    @classmethod
    def tracked_state(cls, entity: str, record: Mapping[str, Any], *, config: Mapping[str, Any]) -> TrackedObject | None:
        """An Outlook event's attendee responses (cancelled = done) or a Teams channel's state, read the way fetch_objects reads
        them; None for the identity-only records of notifications without resource data."""
        if entity == "events" and ("attendees" in record or "isCancelled" in record):
            cancelled = bool(record.get("isCancelled"))
            details: dict[str, Any] = {"attendees": attendee_responses(record)}
            if record.get("lastModifiedDateTime"):
                details["updated"] = str(record["lastModifiedDateTime"])
            status = "cancelled" if cancelled else "scheduled"
            return TrackedObject(
                title=str(record.get("subject") or ""), status=status, is_done=cancelled, url=str(record.get("webLink") or ""), details=details
            )
        if entity == "channels" and "@removed" in record:
            return TrackedObject(status="deleted", is_done=True)
        if entity == "channels" and ("displayName" in record or "isArchived" in record):
            return channel_state(record)
        return None

    # ------------------------------------------------------------ registration (needs the client)
    def _subscriptions(self) -> SubscriptionClient:
        if self.client is None:
            raise ApiBadRequest("Microsoft 365 subscriptions need a connected client.")
        return SubscriptionClient(self.client, self._path)

    def register_webhook(self, *, url: str, secret: str) -> dict[str, Any]:
        """Subscribe `url` to the calendar's events, the team's channel messages and the documents drive (replacing
        Bastion's earlier subscriptions to that URL); Graph validates the URL with the handshake before answering."""
        subs = self._subscriptions()
        for old in subs.list():
            if old.get("notificationUrl") == url and old.get("id"):
                subs.delete(str(old["id"]))
        state = client_state(secret)
        entries: list[dict[str, Any]] = []
        created: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        try:
            for plan in plans_for(self.config, calendar=self.user_path(), application=self.is_application):
                try:
                    subscription = subs.create(plan, url=url, state=state)
                except (ApiForbidden, ApiBadRequest) as refused:
                    if plan.required:
                        raise
                    # A permission not granted (ChannelMessage.Read.All): the rest still notifies; delta reads remain the backstop.
                    logger.warning("microsoft365.subscription_refused", extra={"key": plan.key, "error": str(refused)[:300]})
                    skipped.append({"key": plan.key, "reason": str(refused)[:300]})
                    continue
                created.append(subscription)
                entries.append(descriptor(plan, subscription, url=url))
        except Exception:
            for subscription in created:  # all or nothing: no half-registered integration left subscribed
                subs.delete(str(subscription.get("id") or ""))
            raise
        expires = earliest_expiry(created)
        return {"id": entries[0]["id"], "webhook_ids": entries, "expires_at": expires.isoformat(), "kind": "graph_subscriptions", "skipped": skipped}

    def refresh_webhooks(self, webhook_ids: list[Any]) -> datetime:
        """PATCH each subscription's expirationDateTime before its resource's maximum lifetime; recreate one Graph removed."""
        subs = self._subscriptions()
        plans = plans_for(self.config, calendar=self.user_path(), application=self.is_application)
        secret = str(self.credentials.get("webhook_secret") or "")
        live: list[dict[str, Any]] | None = None
        renewed: list[dict[str, Any]] = []
        for entry in webhook_ids:
            plan = plan_of(entry, plans) if isinstance(entry, Mapping) else None
            if plan is None:
                continue  # a subscription the settings no longer call for lapses on its own
            subscription, live = renew_or_recreate(subs, entry, plan, secret=secret, live=live)
            renewed.append(subscription)
        if not renewed:
            raise ApiBadRequest("No Microsoft 365 subscription to renew: register the webhook again.")
        return earliest_expiry(renewed)


def _lifecycle_events(delivery: str, lifecycle: str, entity: str, meta: dict[str, Any]) -> list[WebhookEvent]:
    """reauthorizationRequired → renew (a PATCH reauthorizes); subscriptionRemoved → renew (recreates) and resync; missed → resync."""
    record = {**meta, "lifecycleEvent": lifecycle}
    event_type = f"subscription.{lifecycle}" if lifecycle in LIFECYCLE_EVENTS else "subscription.unknown"
    if lifecycle == "reauthorizationRequired":
        return [WebhookEvent(delivery, event_type, entity, meta["subscriptionId"], "renew", record, None)]
    if lifecycle == "subscriptionRemoved":
        return [
            WebhookEvent(delivery, event_type, entity, meta["subscriptionId"], "renew", record, None),
            WebhookEvent(delivery, event_type, entity, "", "sync", record, None),
        ]
    if lifecycle == "missed":
        return [WebhookEvent(delivery, event_type, entity, "", "sync", record, None)]
    return [WebhookEvent(delivery, event_type, entity, meta["subscriptionId"], "unsupported", record, None)]


__all__ = ["NOTIFICATION_CAPABILITIES", "NOTIFICATION_SCOPES", "WEBHOOK", "NotificationsMixin", "parse_graph_time"]
