"""Jira Cloud dynamic webhooks for OAuth 2.0 apps (/rest/api/3/webhook): registration, refresh before the 30-day expiry, JWT check."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from integrations.errors import ApiBadRequest, WebhookRejected
from integrations.http import HttpClient

DYNAMIC_WEBHOOKS = "rest/api/3/webhook"
# The events the published v3 spec lets a dynamic webhook listen for (user_* are admin-webhook only).
DYNAMIC_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")
LIFETIME = timedelta(days=30)  # "Webhooks registered through the REST API expire after 30 days" (v3 spec, refreshWebhooks)
REFRESH_AHEAD = timedelta(days=7)  # refreshed when less than this is left: a week of failed refresh runs before anything is lost
JWT_LEEWAY_SECONDS = 60


def _millis(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError):
        return None


def dynamic_webhooks_list(client: HttpClient) -> list[dict[str, Any]]:
    """Every dynamic webhook this app registered on the site (PageBeanWebhook, paged by startAt)."""
    pages = client.paginate_offset(
        DYNAMIC_WEBHOOKS,
        items_key="values",
        limit=100,
        offset_param="startAt",
        limit_param="maxResults",
        more=lambda page, _offset: not page.get("isLast", True),
    )
    return [hook for values, _response in pages for hook in values or []]


def dynamic_webhook_register(client: HttpClient, *, url: str, jql: str) -> dict[str, Any]:
    """Replace this app's dynamic webhooks with one sending issue events to `url`; returns its id(s) and expiry."""
    existing = [int(h["id"]) for h in dynamic_webhooks_list(client) if "id" in h]
    if existing:
        # One URL per app and site: the app's earlier registrations (an older Bastion URL) are removed first.
        client.delete(DYNAMIC_WEBHOOKS, json={"webhookIds": existing})
    body = {"url": url, "webhooks": [{"events": list(DYNAMIC_EVENTS), "jqlFilter": jql}]}
    results = client.post(DYNAMIC_WEBHOOKS, json=body).json().get("webhookRegistrationResult") or []
    created = [int(r["createdWebhookId"]) for r in results if "createdWebhookId" in r]
    if not created:
        errors = "; ".join(e for r in results for e in r.get("errors") or []) or "no webhook was created"
        raise ApiBadRequest(f"Jira refused the webhook: {errors}")
    expiry = min(
        (when for h in dynamic_webhooks_list(client) if int(h.get("id", 0)) in created and (when := _millis(h.get("expirationDate")))),
        default=datetime.now(UTC) + LIFETIME,
    )
    return {"id": created[0], "webhook_ids": created, "expires_at": expiry.isoformat(), "kind": "dynamic"}


def dynamic_webhooks_refresh(client: HttpClient, webhook_ids: list[int]) -> datetime:
    """Extend the webhooks' life (PUT /rest/api/3/webhook/refresh); returns the new expiry."""
    answer = client.put(f"{DYNAMIC_WEBHOOKS}/refresh", json={"webhookIds": [int(i) for i in webhook_ids]}).json()
    expiry = _millis(answer.get("expirationDate"))
    if expiry is None:
        raise ApiBadRequest("Jira's refresh answer has no expirationDate.")
    return expiry


def needs_refresh(expires_at: str | None, now: datetime) -> bool:
    """Whether a registration expiring at `expires_at` (ISO) is due for a refresh."""
    if not expires_at:
        return False
    try:
        expiry = datetime.fromisoformat(expires_at)
    except ValueError:
        return True
    return expiry - now <= REFRESH_AHEAD


def jwt_verify(authorization: str, *, secret: str, now: datetime) -> Mapping[str, Any]:
    """Check the JWT an OAuth 2.0 app's dynamic webhook carries (HS256 with the app's client secret, not expired); its claims."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() not in ("jwt", "bearer") or not token:
        raise WebhookRejected(400, "missing_signature", "A Jira dynamic webhook carries Authorization: Bearer <JWT>.")
    try:
        decoded = jwt.decode(token, OctKey.import_key(secret.encode()), algorithms=["HS256"])
        jwt.JWTClaimsRegistry(leeway=JWT_LEEWAY_SECONDS, now=int(now.timestamp()), exp={"essential": True}).validate(decoded.claims)
    except JoseError as exc:
        raise WebhookRejected(401, "bad_signature", f"The Jira webhook JWT is not valid for this app: {exc.error}") from exc
    except ValueError as exc:
        raise WebhookRejected(401, "bad_signature", "The Jira webhook JWT cannot be read.") from exc
    return decoded.claims
