"""Reads of the sync engine, always scoped by organization."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Case, Count, DateTimeField, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import Organization
from integrations.models import DataSource, Integration
from sync.models import DataSyncJob, JobStatus, JobType, SyncJobLog, SyncRecord, WebhookDelivery

# The seed's targets.
TARGET_SYNC_SUCCESS = 0.95
TARGET_API_ERROR_RATE = 0.01
TARGET_FRESHNESS_SECONDS = 300
METRICS_WINDOW = timedelta(hours=24)


def records_with_last_seen(queryset: QuerySet[SyncRecord]) -> QuerySet[SyncRecord]:
    """Annotate `seen_at`: when a sync last saw each record.

    A full scan lists unchanged records instead of re-stamping them, and marks deleted whatever it did not see: so every record
    still live after the latest complete scan of its source was seen by that scan (as of its start).
    """
    last_scan = (
        DataSyncJob.objects.filter(
            integration_id=OuterRef("integration_id"),
            data_source__entity_type=OuterRef("entity_type"),
            job_type=JobType.SYNC,
            status=JobStatus.SUCCEEDED,
            is_full_scan=True,
            start_cursor__isnull=True,
        )
        .order_by("-completed_at")
        .values("started_at")[:1]
    )
    vouched = Case(When(is_deleted=False, then=Subquery(last_scan)), output_field=DateTimeField())
    return queryset.annotate(seen_at=Greatest(F("last_seen_at"), Coalesce(vouched, F("last_seen_at"))))


def sync_job_list(*, organization: Organization, status: str | None = None, integration_id: Any = None, data_source_id: Any = None) -> QuerySet[DataSyncJob]:
    queryset = DataSyncJob.objects.filter(organization=organization).select_related("integration", "data_source", "actor")
    if status:
        queryset = queryset.filter(status=status)
    if integration_id:
        queryset = queryset.filter(integration_id=integration_id)
    if data_source_id:
        queryset = queryset.filter(data_source_id=data_source_id)
    return queryset.order_by("-created_at")


def sync_job_log_list(*, job: DataSyncJob) -> QuerySet[SyncJobLog]:
    return SyncJobLog.objects.filter(job=job).order_by("id")


def sync_record_list(*, organization: Organization, entity_type: str | None = None, integration_id: Any = None, include_deleted: bool = False) -> QuerySet:
    queryset = SyncRecord.objects.filter(organization=organization)
    if entity_type:
        queryset = queryset.filter(entity_type=entity_type)
    if integration_id:
        queryset = queryset.filter(integration_id=integration_id)
    if not include_deleted:
        queryset = queryset.filter(is_deleted=False)
    return queryset


def webhook_delivery_list(*, organization: Organization, status: str | None = None, outcome: str | None = None) -> QuerySet[WebhookDelivery]:
    queryset = WebhookDelivery.objects.filter(organization=organization).select_related("integration")
    if outcome:
        queryset = queryset.filter(result__outcome=outcome)
    return queryset.filter(status=status) if status else queryset


def webhook_outcome_counts(*, organization: Organization) -> list[dict[str, Any]]:
    """Per integration: processed deliveries by outcome (applied / not_used / unsupported)."""
    rows = (
        WebhookDelivery.objects.filter(organization=organization, result__has_key="outcome")
        .values("integration_id", "integration__display_name", "integration__connector_key", "result__outcome")
        .annotate(count=Count("id"))
        .order_by("integration__display_name", "integration_id")
    )
    counts: dict[Any, dict[str, Any]] = {}
    for row in rows:
        entry = counts.setdefault(
            row["integration_id"],
            {
                "integration": str(row["integration_id"]),
                "name": row["integration__display_name"],
                "connector": row["integration__connector_key"],
                "applied": 0,
                "not_used": 0,
                "unsupported": 0,
            },
        )
        if row["result__outcome"] in ("applied", "not_used", "unsupported"):
            entry[row["result__outcome"]] += row["count"]
    return list(counts.values())


def _rate(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def sync_metrics(*, organization: Organization) -> dict[str, Any]:
    """Per-integration and overall: sync success rate (24 h), API error rate, freshness; each beside the seed's target."""
    since = timezone.now() - METRICS_WINDOW
    now = timezone.now()
    finished = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PARTIAL]
    jobs = (
        DataSyncJob.objects.filter(organization=organization, job_type="sync", created_at__gte=since, status__in=finished)
        .values("integration_id")
        .annotate(total=Count("id"), ok=Count("id", filter=Q(status=JobStatus.SUCCEEDED)))
    )
    by_integration = {row["integration_id"]: row for row in jobs}
    sources = DataSource.objects.filter(organization=organization, is_enabled=True).values("integration_id", "last_synced_at", "is_stale", "entity_type")
    freshness: dict[Any, list[dict[str, Any]]] = {}
    for source in sources:
        age = (now - source["last_synced_at"]).total_seconds() if source["last_synced_at"] else None
        freshness.setdefault(source["integration_id"], []).append({"entity_type": source["entity_type"], "age_seconds": age, "is_stale": source["is_stale"]})
    rows = []
    totals = {"jobs": 0, "ok": 0, "calls": 0, "failures": 0}
    worst_age: float | None = None
    any_unsynced = False
    for integration in Integration.objects.filter(organization=organization).order_by("display_name"):
        job_row = by_integration.get(integration.pk, {"total": 0, "ok": 0})
        ages = [f["age_seconds"] for f in freshness.get(integration.pk, [])]
        known = [a for a in ages if a is not None]
        oldest = max(known) if known else None
        any_unsynced = any_unsynced or (None in ages)
        if oldest is not None:
            worst_age = oldest if worst_age is None else max(worst_age, oldest)
        totals["jobs"] += job_row["total"]
        totals["ok"] += job_row["ok"]
        totals["calls"] += integration.calls_24h
        totals["failures"] += integration.failures_24h
        rows.append(
            {
                "integration_id": str(integration.pk),
                "display_name": integration.display_name,
                "connector_key": integration.connector_key,
                "status": integration.status,
                **_metric_block(job_row["ok"], job_row["total"], integration.failures_24h, integration.calls_24h, oldest, None in ages and bool(ages)),
                "data_sources": freshness.get(integration.pk, []),
                "last_error": integration.last_error,
                "last_error_at": integration.last_error_at.isoformat() if integration.last_error_at else None,
            }
        )
    return {
        "window_hours": int(METRICS_WINDOW.total_seconds() // 3600),
        "targets": {"sync_success_rate": TARGET_SYNC_SUCCESS, "api_error_rate": TARGET_API_ERROR_RATE, "freshness_seconds": TARGET_FRESHNESS_SECONDS},
        "overall": _metric_block(totals["ok"], totals["jobs"], totals["failures"], totals["calls"], worst_age, any_unsynced),
        "integrations": rows,
    }


def _metric_block(ok: int, total: int, failures: int, calls: int, oldest_age: float | None, has_unsynced: bool) -> dict[str, Any]:
    success = _rate(ok, total)
    errors = _rate(failures, calls)
    fresh_met = None if oldest_age is None and not has_unsynced else (not has_unsynced and oldest_age is not None and oldest_age <= TARGET_FRESHNESS_SECONDS)
    return {
        "syncs": total,
        "sync_success_rate": success,
        "sync_success_met": None if success is None else success > TARGET_SYNC_SUCCESS,
        "api_calls": calls,
        "api_error_rate": errors,
        "api_error_met": None if errors is None else errors < TARGET_API_ERROR_RATE,
        "freshness_seconds": round(oldest_age, 1) if oldest_age is not None else None,
        "freshness_met": fresh_met,
    }


def sync_error_log(*, organization: Organization, limit: int = 50) -> QuerySet[SyncJobLog]:
    """The latest error lines of the organization's jobs (the failing call's status and message)."""
    return SyncJobLog.objects.filter(job__organization=organization, level="error").select_related("job", "job__integration").order_by("-id")[:limit]


def integration_health(*, organization: Organization) -> QuerySet[Integration]:
    return Integration.objects.filter(organization=organization).annotate(
        records=Count("sync_records", filter=Q(sync_records__is_deleted=False), distinct=True),
        stale_sources=Count("data_sources", filter=Q(data_sources__is_stale=True), distinct=True),
    )
