"""Celery tasks for integrations: thin wrappers taking ids."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from integrations import services
from integrations.errors import ApiError
from integrations.models import CredentialType, Integration, IntegrationCredential, IntegrationStatus

logger = logging.getLogger(__name__)
KEEPALIVE_WINDOW = timedelta(minutes=12)  # the keep-alive runs every 10 minutes; refresh what would expire before the next run


@shared_task(ignore_result=True)
def integration_health_refresh() -> int:
    """Recompute the 24-hour call counters and prune the call log."""
    return services.integration_health_refresh()


@shared_task(ignore_result=True, autoretry_for=(ApiError,), retry_backoff=30, retry_jitter=True, max_retries=5)
def oauth_refresh(integration_id: str) -> None:
    """Refresh one integration's OAuth token if it is about to expire (single-flight under the lock)."""
    from integrations.errors import AuthRefreshFailed
    from integrations.services import oauth_refresh as refresh

    if not Integration.objects.filter(pk=integration_id, status__in=[IntegrationStatus.CONNECTED, IntegrationStatus.DEGRADED]).exists():
        return
    try:
        refresh(integration_id=integration_id)
    except AuthRefreshFailed:
        return  # already marked auth_failed and the admins alerted; retrying cannot help


@shared_task(ignore_result=True)
def oauth_keepalive() -> int:
    """Refresh tokens that expire soon even when nothing used them, so idle connections stay alive."""
    soon = timezone.now() + KEEPALIVE_WINDOW
    ids = list(
        IntegrationCredential.objects.filter(
            credential_type=CredentialType.OAUTH,
            expires_at__lte=soon,
            integration__status__in=[IntegrationStatus.CONNECTED, IntegrationStatus.DEGRADED],
        ).values_list("integration_id", flat=True)
    )
    for integration_id in ids:
        transaction.on_commit(lambda i=str(integration_id): oauth_refresh.delay(i))
    logger.info("oauth.keepalive", extra={"integrations": len(ids)})
    return len(ids)


@shared_task(ignore_result=True, soft_time_limit=600, time_limit=660)
def integration_webhooks_refresh() -> int:
    """Extend vendor webhook registrations before they expire (Jira's dynamic webhooks live 30 days)."""
    return services.integration_webhooks_refresh()
