"""Graph change-notification subscriptions: what Bastion subscribes to, clientState, creation, renewal before each lifetime ends."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from integrations.errors import ApiBadRequest, ApiError, ApiNotFound
from integrations.http import HttpClient

SUBSCRIPTIONS = "subscriptions"
# Requested this long before a resource's maximum lifetime: Graph refuses an expirationDateTime past the maximum, and
# the two clocks differ a little.
LIFETIME_MARGIN = timedelta(minutes=10)
# Teams answers 400 for more than 1 hour on services that still apply the older 60-minute maximum: fall back to it.
TEAMS_SHORT_LIFETIME = timedelta(minutes=60)
CLIENT_STATE_CONTEXT = b"bastion microsoft365 clientState v1"


@dataclass(frozen=True)
class Plan:
    """One subscription Bastion keeps: the Graph resource, its change types, the entity its notifications are about."""

    key: str  # stable name of this subscription among the integration's ("channels", "channel_messages", "events", "drive_items")
    entity: str
    resource: str  # relative to the Graph root, no leading slash
    change_type: str
    lifetime: timedelta  # Graph's maximum for this resource (FACTS §15)
    required: bool = True  # False: a refusal (a permission not granted) skips it instead of failing the registration


def client_state(secret: str) -> str:
    """The clientState sent to Graph and expected back: an HMAC of the webhook secret (64 hex chars; Graph allows 128)."""
    if not secret:
        raise ApiBadRequest("No webhook secret: Bastion cannot derive the clientState its Graph subscriptions are checked with.")
    return hmac.new(secret.encode(), CLIENT_STATE_CONTEXT, hashlib.sha256).hexdigest()


def config_value(config: Mapping[str, Any], *names: str) -> str:
    """The first of `names` set in the connection's settings ("" when none is)."""
    for name in names:
        value = str(config.get(name) or "").strip()
        if value:
            return value
    return ""


def documents_drive(config: Mapping[str, Any]) -> str:
    """The drive holding the incident documents ("" when none is configured)."""
    return config_value(config, "documents_drive_id", "drive_id")


def plans_for(config: Mapping[str, Any], *, calendar: str, application: bool) -> list[Plan]:
    """The subscriptions the settings call for: the calendar's events (`calendar`: "me" or "users/{id}"), the team's channel
    messages (application permissions only) and the documents drive."""
    plans = [Plan("events", "events", f"{calendar}/events", "created,updated,deleted", timedelta(minutes=4230))]
    team = config_value(config, "team_id")
    if team and application:
        # getAllMessages is application-only (permissions map); a delegate's channel messages come back through delta.
        # Teams allows up to 3 days (4,320 min) when a lifecycleNotificationUrl is set, which Bastion always sets.
        resource = f"teams/{team}/channels/getAllMessages"
        plans.append(Plan("channel_messages", "channel_messages", resource, "created,updated,deleted", timedelta(minutes=4320), required=False))
    drive = documents_drive(config)
    if drive:
        # Drive root subscriptions support only "updated" (the published description): deletions come back through delta.
        plans.append(Plan("drive_items", "drive_items", f"drives/{drive}/root", "updated", timedelta(minutes=42300), required=False))
    return plans


def expiry_for(lifetime: timedelta, *, now: datetime | None = None) -> datetime:
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    return moment + lifetime - LIFETIME_MARGIN


def graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_graph_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SubscriptionClient:
    """Create, find, renew and delete Bastion's subscriptions through the connection's HTTP client."""

    def __init__(self, client: HttpClient, path: Any):
        self.client = client
        self.path = path  # relative Graph path → the path on this client's base URL

    def list(self) -> list[dict[str, Any]]:
        """Every subscription of this app (GET /subscriptions, following @odata.nextLink on the same host)."""
        found: list[dict[str, Any]] = []
        url: str | None = self.path(SUBSCRIPTIONS)
        while url:
            body = self.client.get(url).json()
            found.extend(item for item in body.get("value") or [] if isinstance(item, dict))
            url = same_host_link(self.client, body.get("@odata.nextLink"))
        return found

    def create(self, plan: Plan, *, url: str, state: str, now: datetime | None = None) -> dict[str, Any]:
        """POST /subscriptions (Graph validates `url` with the handshake first); Teams falls back to 60 minutes when refused."""
        body = {
            "changeType": plan.change_type,
            "notificationUrl": url,
            "lifecycleNotificationUrl": url,
            "resource": plan.resource,
            "expirationDateTime": graph_time(expiry_for(plan.lifetime, now=now)),
            "clientState": state,
        }
        try:
            return self.client.post(self.path(SUBSCRIPTIONS), json=body).json()
        except ApiBadRequest:
            if not plan.resource.startswith("teams/") or plan.lifetime <= TEAMS_SHORT_LIFETIME:
                raise
            body["expirationDateTime"] = graph_time(expiry_for(TEAMS_SHORT_LIFETIME + LIFETIME_MARGIN, now=now))
            return self.client.post(self.path(SUBSCRIPTIONS), json=body).json()

    def renew(self, subscription_id: str, plan: Plan, *, now: datetime | None = None) -> dict[str, Any]:
        """PATCH expirationDateTime (a renewal also reauthorizes the subscription); Teams falls back to 60 minutes when refused."""
        path = self.path(f"{SUBSCRIPTIONS}/{subscription_id}")
        try:
            return self.client.patch(path, json={"expirationDateTime": graph_time(expiry_for(plan.lifetime, now=now))}).json()
        except ApiBadRequest:
            if not plan.resource.startswith("teams/") or plan.lifetime <= TEAMS_SHORT_LIFETIME:
                raise
            return self.client.patch(path, json={"expirationDateTime": graph_time(expiry_for(TEAMS_SHORT_LIFETIME + LIFETIME_MARGIN, now=now))}).json()

    def delete(self, subscription_id: str) -> None:
        try:
            self.client.delete(self.path(f"{SUBSCRIPTIONS}/{subscription_id}"))
        except ApiNotFound:
            pass  # already gone: what deleting wanted


def same_host_link(client: HttpClient, link: Any) -> str | None:
    """A Graph @odata.nextLink/deltaLink, refused unless it points at the configured Graph host (it is followed with our token)."""
    if not link:
        return None
    base, target = urlsplit(client.base_url), urlsplit(str(link))
    if (target.scheme, target.netloc) != (base.scheme, base.netloc):
        raise ApiBadRequest(f"Graph returned a link to another host ({target.netloc or 'none'}); Bastion follows links on {base.netloc} only.")
    return str(link)


def descriptor(plan: Plan, subscription: Mapping[str, Any], *, url: str) -> dict[str, Any]:
    """What the integration stores per subscription (no secret: the clientState is derived again from the webhook secret)."""
    return {"id": str(subscription.get("id") or ""), "key": plan.key, "url": url, "expires_at": str(subscription.get("expirationDateTime") or "")}


def plan_of(ids_entry: Mapping[str, Any], plans: list[Plan]) -> Plan | None:
    return next((plan for plan in plans if plan.key == ids_entry.get("key")), None)


def renew_or_recreate(
    subs: SubscriptionClient, entry: Mapping[str, Any], plan: Plan, *, secret: str, live: list[dict[str, Any]] | None, now: datetime | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """Renew the stored subscription; when Graph removed it, renew the one an earlier refresh recreated, else create it again.

    Returns the subscription and the (lazily read) list of live subscriptions, reused for the next entry.
    """
    try:
        return subs.renew(str(entry.get("id") or ""), plan, now=now), live
    except ApiNotFound:
        pass
    if live is None:
        live = subs.list()
    url = str(entry.get("url") or "")
    resource = plan.resource.lower()
    twin = next((s for s in live if str(s.get("resource") or "").strip("/").lower() == resource and s.get("notificationUrl") == url), None)
    if twin is not None:
        try:
            return subs.renew(str(twin["id"]), plan, now=now), live
        except ApiNotFound:
            pass
    created = subs.create(plan, url=url, state=client_state(secret), now=now)
    live.append(created)
    return created, live


def earliest_expiry(subscriptions: list[Mapping[str, Any]], *, now: datetime | None = None) -> datetime:
    """When the first of these subscriptions lapses (the integration's registration expiry, refreshed on beat before it)."""
    moments = [when for s in subscriptions if (when := parse_graph_time(s.get("expirationDateTime") or s.get("expires_at")))]
    if not moments:
        raise ApiError("Graph answered without an expirationDateTime for Bastion's subscriptions.")
    return min(moments)
