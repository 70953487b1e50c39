"""Webhooks at the vendor: Bastion's endpoint URL for an integration, registering it, and refreshing registrations that expire."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from accounts.services import audit_record
from common.errors import ApplicationError
from integrations.connectors.base import Capability
from integrations.errors import ApiError
from integrations.models import CredentialType, Integration, IntegrationStatus
from integrations.services.connection import build_connector
from integrations.services.credentials import credential_store, webhook_secret_generate
from integrations.services.health import integration_record_failure, vendor_error

logger = logging.getLogger(__name__)


def integration_webhook_url(integration: Integration) -> str:
    return f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/api/webhooks/{integration.pk}"


def integration_webhook_register(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None) -> dict[str, Any]:
    """Register Bastion's webhook at the vendor with a fresh signing secret, for connectors that can do it themselves."""
    connector = build_connector(integration)
    if not connector.supports(Capability.WEBHOOK_REGISTRATION):
        raise ApplicationError(
            f"{connector.manifest.name} cannot register webhooks through its API: paste the webhook URL and secret into its settings.",
            code="webhook_registration_unsupported",
            status_code=409,
        )
    secret = webhook_secret_generate(integration=integration, actor=actor, request=request)
    # The secret was handed to the vendor, not to a person: it is not revealed again.
    Integration.objects.filter(pk=integration.pk).update(webhook_secret_revealed_at=timezone.now())
    url = integration_webhook_url(integration)
    try:
        registered = connector.register_webhook(url=url, secret=secret)
    except ApiError as error:
        raise vendor_error(integration, error)
    if isinstance(registered, Mapping) and registered.get("webhook_secret"):
        # The vendor signs with a secret of its own choosing (PagerDuty): deliveries verify against that one, never shown.
        credential_store(
            integration=integration,
            credential_type=CredentialType.WEBHOOK_SECRET,
            data={"secret": str(registered["webhook_secret"])},
            actor=actor,
            request=request,
            audit_action="webhook_secret.vendor_issued",
        )
    if isinstance(registered, Mapping) and registered.get("expires_at"):
        # A registration that expires (Jira's dynamic webhooks, 30 days) is refreshed by integration_webhooks_refresh.
        integration.refresh_from_db(fields=["config"])
        integration.config = {
            **integration.config,
            "webhook_registration": {"ids": list(registered.get("webhook_ids") or [registered.get("id")]), "expires_at": registered["expires_at"]},
        }
        integration.save(update_fields=["config", "updated_at"])
    audit_record(
        action="integration.webhook_register", organization=integration.organization, actor=actor, target=integration, changes={"url": url}, request=request
    )
    return {"url": url, "vendor_id": str(registered.get("id", "") or registered.get("webhook_id", "")) if isinstance(registered, Mapping) else ""}


WEBHOOK_REFRESH_AHEAD = timedelta(days=7)  # expiring registrations are refreshed this long before they lapse


def integration_webhooks_refresh(*, now: datetime | None = None) -> int:
    """Extend vendor webhook registrations that expire within WEBHOOK_REFRESH_AHEAD (Jira dynamic webhooks); returns how many."""
    now = now or timezone.now()
    refreshed = 0
    due = Integration.objects.filter(
        config__has_key="webhook_registration", status__in=[IntegrationStatus.CONNECTED, IntegrationStatus.DEGRADED]
    ).select_related("organization")
    for integration in due:
        registration = dict(integration.config.get("webhook_registration") or {})
        try:
            expires_at = datetime.fromisoformat(str(registration.get("expires_at")))
        except ValueError:
            expires_at = now
        if expires_at - now > WEBHOOK_REFRESH_AHEAD:
            continue
        connector = build_connector(integration)
        try:
            new_expiry = connector.refresh_webhooks(list(registration.get("ids") or []))
        except ApiError as error:
            integration_record_failure(integration=integration, error=error)
            logger.warning("integrations.webhook_refresh_failed", extra={"integration": str(integration.pk), "error": str(error)[:300]})
            continue
        integration.config = {**integration.config, "webhook_registration": {**registration, "expires_at": new_expiry.isoformat()}}
        integration.save(update_fields=["config", "updated_at"])
        refreshed += 1
    return refreshed
