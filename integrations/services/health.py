"""An integration's health: the call log, failure counting, degraded and auth-failed states, and errors a person can act on."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from accounts.models import Membership, Organization, Role
from accounts.services import audit_record
from common.errors import ApplicationError
from integrations.errors import ApiError
from integrations.http import CallRecord
from integrations.models import Integration, IntegrationCall, IntegrationStatus

logger = logging.getLogger(__name__)


DEGRADED_AFTER_FAILURES = 5


# An integration whose calls keep failing is degraded: at least this many failed calls in the window, at this failure rate.
DEGRADED_WINDOW = timedelta(minutes=15)


DEGRADED_MIN_FAILED_CALLS = 5


DEGRADED_FAILURE_RATE = 0.5


CALL_LOG_RETENTION = timedelta(hours=48)


def record_call(integration_id: Any, *, status: str | None = None) -> Any:
    """Return a recorder that logs every call (method, path, status, latency) and feeds the integration's health.

    The log row and the counters are written in one transaction (one commit per call). Health is re-evaluated after a
    failed call, and after a success only while the integration is degraded, so the healthy path costs no extra reads.
    """
    known = {"status": status}

    def recorder(call: CallRecord) -> None:
        updates: dict[str, Any] = {"calls_24h": F("calls_24h") + 1}
        if not call.ok:
            updates["failures_24h"] = F("failures_24h") + 1
        owns_transaction = not connection.in_atomic_block
        with transaction.atomic():
            if owns_transaction and connection.vendor == "postgresql":
                # A call log row and two counters are monitoring, not state: the commit need not wait for the disk. Waiting, it
                # also flushed the WAL of the sync page committed just before without waiting (sync.services.records): 0.38 s of
                # the call log's 0.98 s over 300 pages in a profiled import and re-sync. Never set on a caller's transaction.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            IntegrationCall.objects.create(
                integration_id=integration_id,
                method=call.method[:10],
                path=call.path[:500],
                status=call.status,
                latency_ms=call.latency_ms,
                is_ok=call.ok,
                error=call.error[:80],
                vendor_code=call.vendor_code[:120],
                attempt=call.attempt,
            )
            Integration.objects.filter(pk=integration_id).update(**updates)
        if not call.ok or known["status"] in (None, IntegrationStatus.DEGRADED):
            changed = integration_health_evaluate(integration_id=integration_id)
            if changed:
                known["status"] = changed
            elif known["status"] is None:
                known["status"] = Integration.objects.filter(pk=integration_id).values_list("status", flat=True).first()

    return recorder


def integration_health_evaluate(*, integration_id: Any) -> str | None:
    """Degrade an integration whose recent calls keep failing; restore it once they succeed again. Returns the new status."""
    integration = Integration.objects.filter(pk=integration_id).only("status").first()
    if integration is None or integration.status not in (IntegrationStatus.CONNECTED, IntegrationStatus.DEGRADED):
        return None
    since = timezone.now() - DEGRADED_WINDOW
    counts = IntegrationCall.objects.filter(integration_id=integration_id, created_at__gte=since).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(is_ok=False))
    )
    total, failed = counts["total"] or 0, counts["failed"] or 0
    failing = failed >= DEGRADED_MIN_FAILED_CALLS and failed / max(total, 1) >= DEGRADED_FAILURE_RATE
    status = IntegrationStatus.DEGRADED if failing else IntegrationStatus.CONNECTED
    if status != integration.status:
        updated = Integration.objects.filter(pk=integration_id, status=integration.status).update(status=status, updated_at=timezone.now())
        if updated:  # another worker may have made the same transition first: audit it once
            changed = Integration.objects.select_related("organization").get(pk=integration_id)
            audit_record(
                action="integration.degraded" if status == IntegrationStatus.DEGRADED else "integration.recovered",
                organization=changed.organization,
                target=changed,
                changes={"status": [integration.status, status], "failed_calls": failed, "calls": total},
            )
        logger.warning("integration.health_changed", extra={"integration": str(integration_id), "status": status, "failed": failed, "total": total})
        return status
    return None


def integration_health_refresh(*, integration: Integration | None = None) -> int:
    """Recompute calls_24h / failures_24h from the call log and prune old log rows (run periodically)."""
    now = timezone.now()
    IntegrationCall.objects.filter(created_at__lt=now - CALL_LOG_RETENTION).delete()
    integrations = Integration.objects.all() if integration is None else Integration.objects.filter(pk=integration.pk)
    since = now - timedelta(hours=24)
    updated = 0
    for row in integrations.annotate(
        window_calls=Count("calls", filter=Q(calls__created_at__gte=since)),
        window_failures=Count("calls", filter=Q(calls__created_at__gte=since, calls__is_ok=False)),
    ).values("pk", "window_calls", "window_failures"):
        updated += Integration.objects.filter(pk=row["pk"]).update(calls_24h=row["window_calls"], failures_24h=row["window_failures"])
    return updated


def integration_record_success(*, integration: Integration) -> None:
    """Record a success; an integration that was broken or degraded is recovered (and that is audited, like the break)."""
    now = timezone.now()
    previous = Integration.objects.filter(pk=integration.pk).values_list("status", flat=True).first()
    Integration.objects.filter(pk=integration.pk).update(
        last_success_at=now, last_sync_at=now, error_count=0, status=IntegrationStatus.CONNECTED, auth_failed_at=None
    )
    integration.refresh_from_db()
    if previous in (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DEGRADED):
        audit_record(action="integration.recovered", organization=integration.organization, target=integration, changes={"status": [previous, "connected"]})
        logger.info("integration.recovered", extra={"integration": str(integration.pk), "from": previous})


def integration_record_failure(*, integration: Integration, error: Exception) -> None:
    """Count a failure; auth failures mark auth_failed (and alert), repeated ones degrade the integration."""
    now = timezone.now()
    # One UPDATE each (never read-modify-write): parallel steps failing at once all count.
    Integration.objects.filter(pk=integration.pk).update(
        error_count=F("error_count") + 1, last_error=str(error)[:2000], last_error_at=now, last_sync_at=now, updated_at=now
    )
    if isinstance(error, ApiError) and error.category == "auth":
        integration.refresh_from_db()
        integration_auth_failed(integration=integration, error=error)
        return
    Integration.objects.filter(pk=integration.pk, status=IntegrationStatus.CONNECTED, error_count__gte=DEGRADED_AFTER_FAILURES).update(
        status=IntegrationStatus.DEGRADED
    )
    integration.refresh_from_db()


def organization_admin_emails(organization: Organization) -> list[str]:
    return sorted(
        set(
            Membership.objects.filter(organization=organization, role__in=[Role.ADMIN, Role.OWNER], user__is_active=True)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )


def integration_auth_failed(*, integration: Integration, error: Exception) -> bool:
    """Mark the integration auth_failed and alert its organization's admins once per break; settings and mappings are kept."""
    now = timezone.now()
    with transaction.atomic():
        locked = Integration.objects.select_for_update().get(pk=integration.pk)
        already = locked.status == IntegrationStatus.AUTH_FAILED
        locked.status = IntegrationStatus.AUTH_FAILED
        locked.last_error = str(error)[:2000]
        locked.last_error_at = now
        if not already:
            locked.auth_failed_at = now
        locked.save(update_fields=["status", "last_error", "last_error_at", "auth_failed_at", "updated_at"])
        if not already:
            audit_record(action="integration.auth_failed", organization=locked.organization, target=locked, changes={"error": str(error)[:500]})
    integration.refresh_from_db()
    if already:
        return False
    recipients = organization_admin_emails(integration.organization)
    if recipients:
        link = f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/integrations/{integration.pk}/"
        try:
            send_mail(
                subject=f"[Bastion] {integration.display_name} needs reconnecting",
                message=(
                    f"Bastion can no longer authenticate to {integration.display_name} ({integration.connector_key}).\n\n"
                    f"Reason: {error}\n\n"
                    "Its settings, field mappings and data sources are kept. Reconnect it here to resume syncs and playbook steps:\n"
                    f"{link}\n"
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=recipients,
            )
        except OSError:
            # The banner still shows; a mail outage must not hide the auth failure itself.
            logger.exception("integration.auth_failed_mail_error", extra={"integration": str(integration.pk)})
    logger.warning("integration.auth_failed", extra={"integration": str(integration.pk), "alerted": len(recipients)})
    return True


def vendor_error(integration: Integration, error: ApiError) -> ApplicationError:
    """Count the failure against the integration and turn it into an answer a person can act on."""
    from integrations.errors import ApiRateLimited

    integration_record_failure(integration=integration, error=error)
    if isinstance(error, ApiRateLimited):
        return ApplicationError(
            f"The vendor is rate limiting: {error.message}. Retry in {error.retry_after:.0f}s.", code="vendor_rate_limited", status_code=429
        )
    if error.category == "auth":
        return ApplicationError(f"{integration.display_name} needs reconnecting: {error.message}", code="integration_auth_failed", status_code=409)
    return ApplicationError(f"{integration.display_name} answered with an error: {error}", code="vendor_error", status_code=502)
