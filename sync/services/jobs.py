"""Sync jobs: start (one active per data source), one page per step committed with its cursor, pause, retry, fail, reap."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.schedules import crontab as celery_crontab
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from common.errors import ApplicationError
from integrations.access import integration_access_check
from integrations.errors import ApiError, ApiQuotaExhausted, ApiRateLimited
from integrations.models import DataSource, Integration, IntegrationStatus
from integrations.services import data_sources_ensure as integration_data_sources_ensure
from integrations.services import integration_record_failure, integration_record_success, shared_connector
from people.services import people_link_managers, people_mark_source_deleted, people_merge, people_overlong_fields
from sync.metrics import sync_job_observe
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob, JobStatus, JobTrigger, JobType, SyncJobLog, SyncRecord
from sync.services import read_ahead
from sync.services.backpressure import start_run_record, sync_completion_record
from sync.services.fairness import org_slot_acquire, org_slot_release
from sync.services.records import (
    PEOPLE_ANALYZED_COLUMNS,
    RECORDS_ANALYZED_COLUMNS,
    page_commit_asynchronous,
    records_mark_deleted,
    records_mark_vanished,
    records_upsert,
    scan_seen_discard,
    tables_analyze_on_growth,
)

logger = logging.getLogger(__name__)

ERROR_LOG_CAP = 100
SCHEDULED_TASK = "sync.tasks.sync_data_source_scheduled"


@dataclass(frozen=True)
class StepOutcome:
    """What the task does next: run another step (after `countdown` seconds) or stop."""

    is_done: bool
    countdown: float = 0.0


DONE = StepOutcome(is_done=True)


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# Logging ---------------------------------------------------------------------------------------------------------------


def _log_overlong(job: DataSyncJob, overlong: list[dict[str, Any]]) -> None:
    """Never cut silently: name each record and field a person shows shortened (the first 20 of a page, then a count)."""
    for entry in overlong[:20]:
        job_log(
            job,
            "person.field_shortened",
            f"Record {entry['external_id']}: {entry['field'].replace('_', ' ')} has {entry['length']} characters; the person shows the first "
            f"{entry['limit']} (the record and the field's provenance keep the whole value).",
            level="warning",
            data=entry,
        )
    if len(overlong) > 20:
        job_log(job, "person.field_shortened", f"{len(overlong) - 20} more values were shortened the same way on this page.", level="warning")


def job_log(job: DataSyncJob, event: str, message: str = "", *, level: str = "info", data: dict[str, Any] | None = None) -> SyncJobLog:
    """Append one line to the job's log (and the first errors to job.error_log); never secrets or vendor bodies."""
    line = SyncJobLog.objects.create(job=job, level=level, event=event, message=message[:2000], data=data or {})
    if level == "error":
        entry = {"at": line.at.isoformat(), "event": event, "message": message[:500], **(data or {})}
        DataSyncJob.objects.filter(pk=job.pk).update(error_count=F("error_count") + 1)
        # Capped in Python under a row lock would cost a round-trip per error; a bounded list is rewritten instead.
        current = DataSyncJob.objects.filter(pk=job.pk).values_list("error_log", flat=True).first() or []
        if len(current) < ERROR_LOG_CAP:
            DataSyncJob.objects.filter(pk=job.pk).update(error_log=[*current, entry])
    log = logger.warning if level in ("warning", "error") else logger.info
    log(f"sync.{event}", extra={"job": str(job.pk), "detail": data or {}})
    return line


# Starting ------------------------------------------------------------------------------------------------------------------


def data_sources_ensure(*, integration: Integration) -> list[DataSource]:
    """The integration's data sources (created by integrations.services.data_sources_ensure), each with its schedule."""
    sources = integration_data_sources_ensure(integration=integration)
    for source in sources:
        if source.schedule_id is None:
            data_source_schedule_ensure(data_source=source)
    return sources


def sync_start(*, data_source: DataSource, trigger: str = JobTrigger.MANUAL, actor: Any = None, full_refresh: bool = False) -> DataSyncJob:
    """Start a sync of one data source, or return the active one (`job.already_running` tells which)."""
    integration = Integration.objects.get(pk=data_source.integration_id)  # fresh status, never a caller's stale copy
    # A person starting a sync uses the integration: its allowed_roles apply (schedules and webhooks have no actor).
    integration_access_check(integration=integration, actor=actor)
    if integration.status in (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DISCONNECTED):
        raise ApplicationError(
            f"{integration.display_name} is not connected ({integration.get_status_display()}): reconnect it before syncing.",
            code="integration_not_connected",
            status_code=409,
        )
    if not data_source.is_enabled:
        raise ApplicationError(f"The data source {data_source} is disabled.", code="data_source_disabled", status_code=409)
    try:
        with transaction.atomic():
            # The row lock serializes concurrent starts; the partial unique index is the last word.
            source = DataSource.objects.select_for_update().get(pk=data_source.pk)
            active = DataSyncJob.objects.filter(data_source=source, status__in=ACTIVE_JOB_STATUSES).first()
            if active is not None:
                active.already_running = True
                return active
            is_full = bool(full_refresh or source.cursor is None)
            job = DataSyncJob.objects.create(
                organization_id=source.organization_id,
                integration_id=source.integration_id,
                data_source=source,
                job_type=JobType.SYNC,
                status=JobStatus.PENDING,
                trigger=trigger,
                actor=actor if getattr(actor, "is_authenticated", False) else None,
                is_full_refresh=is_full,
                start_cursor=None if is_full else source.cursor,
                phase="queued",
                heartbeat_at=timezone.now(),
            )
            job_log(job, "job.queued", f"{trigger} sync of {source.entity_type} queued ({'full refresh' if is_full else 'incremental'}).")
            transaction.on_commit(lambda: sync_job_enqueue(job_id=job.pk))
    except IntegrityError:
        active = DataSyncJob.objects.filter(data_source=data_source, status__in=ACTIVE_JOB_STATUSES).first()
        if active is None:
            raise
        active.already_running = True
        return active
    if source.schedule_id is None:
        data_source_schedule_ensure(data_source=source)
    job.already_running = False
    return job


def sync_job_enqueue(*, job_id: Any, countdown: float = 0.0) -> None:
    from sync.tasks import sync_job_step

    sync_job_step.apply_async(args=[str(job_id)], countdown=max(0.0, countdown) or None)


def sync_job_cancel(*, job: DataSyncJob, actor: Any = None) -> DataSyncJob:
    """Cancel an active job; a page being read is discarded at commit (the status check under the row lock)."""
    with transaction.atomic():
        locked = DataSyncJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in ACTIVE_JOB_STATUSES:
            raise ApplicationError("Only a pending or running job can be cancelled.", code="job_not_active", status_code=409)
        locked.status, locked.phase, locked.completed_at, locked.is_cancel_requested = JobStatus.CANCELLED, "cancelled", timezone.now(), True
        locked.save(update_fields=["status", "phase", "completed_at", "is_cancel_requested", "updated_at"])
        scan_seen_discard(job_ids=[locked.pk])
        transaction.on_commit(lambda: sync_job_observe(locked, outcome="cancelled"))
        transaction.on_commit(sync_completion_record)
        who = getattr(actor, "username", "") or "system"
        job_log(locked, "job.cancelled", f"Cancelled by {who}; records stored so far are kept.", level="warning")
    return locked


# Running one step ------------------------------------------------------------------------------------------------------------


def _configure_client(connector: Any) -> None:
    """The engine re-queues on its own (countdown, not sleep): keep the client's inline retries short when configured."""
    client = connector.client
    if client is None:
        return
    client.max_retries = int(settings.BASTION_SYNC_HTTP_RETRIES)
    client.backoff_base = float(settings.BASTION_SYNC_HTTP_BACKOFF)


def sync_job_step(*, job_id: Any) -> StepOutcome:
    """Process one page of a job (or finalize it). Idempotent: a redelivered or duplicated step commits nothing twice."""
    job = DataSyncJob.objects.select_related("data_source", "integration", "organization").filter(pk=job_id).first()
    if job is None or job.status not in ACTIVE_JOB_STATUSES or job.job_type != JobType.SYNC:
        return DONE
    now = timezone.now()
    if job.resume_at and job.resume_at > now + timedelta(seconds=1):
        return StepOutcome(False, (job.resume_at - now).total_seconds())
    if not org_slot_acquire(organization_id=job.organization_id, job_id=job.pk):
        DataSyncJob.objects.filter(pk=job.pk).update(phase="waiting", heartbeat_at=now)
        return StepOutcome(False, 0.5 + random.uniform(0, 1.0))
    try:
        if job.phase == "finalizing":
            return _finalize(job)
        return _read_page(job)
    finally:
        org_slot_release(organization_id=job.organization_id, job_id=job.pk)


def sync_job_page_budget(*, job_id: Any) -> float:
    """Seconds a step task may go on reading the job's next pages itself: only when the connector's paging lives in the process."""
    from integrations.registry import UnknownConnector, get_connector_class

    key = DataSyncJob.objects.filter(pk=job_id).values_list("integration__connector_key", flat=True).first()
    try:
        bound = bool(key) and get_connector_class(key).pages_bound_to_process
    except UnknownConnector:
        return 0.0
    return float(_setting("BASTION_SYNC_PROCESS_BOUND_PAGE_BUDGET_SECONDS", 30.0)) if bound else 0.0


def _read_page(job: DataSyncJob) -> StepOutcome:
    now = timezone.now()
    updates: dict[str, Any] = {"phase": "reading", "heartbeat_at": now, "resume_at": None}
    if job.status == JobStatus.PENDING:
        updates.update(status=JobStatus.RUNNING, started_at=now)
    # The previous page's commit already left the job "reading" with a fresh heartbeat: skip a write (and a commit) per page then.
    fresh = job.heartbeat_at is not None and now - job.heartbeat_at < timedelta(seconds=10)
    if job.status != JobStatus.RUNNING or job.phase != "reading" or job.resume_at is not None or not fresh:
        DataSyncJob.objects.filter(pk=job.pk, status__in=ACTIVE_JOB_STATUSES).update(**updates)
    if job.started_at is None:
        job.started_at = now
    integration, source = job.integration, job.data_source
    sequence, position = job.pages, job.next_page
    try:
        connector = shared_connector(integration, purpose="sync")
        _configure_client(connector)
        spec = connector.manifest.entity(source.entity_type)
        page = read_ahead.take(job.pk, sequence, position) or connector.read(source.entity_type, cursor=job.start_cursor, page=position)
    except ApiError as error:
        return _handle_error(job, error)
    except Exception as error:  # noqa: BLE001 - a connector bug is a "system" failure: recorded on the job, never swallowed
        logger.exception("sync.page.system_error", extra={"job": str(job.pk)})
        _fail(job, error, category="system")
        return DONE
    if page.next_page is not None and connector.pages_bound_to_process and read_ahead.enabled():
        # The next page is fetched while this one is written (LDAP: the directory answers while PostgreSQL works).
        following = page.next_page
        read_ahead.start(job.pk, sequence + 1, following, lambda: connector.read(source.entity_type, cursor=job.start_cursor, page=following))
    with transaction.atomic():
        page_commit_asynchronous()
        locked = DataSyncJob.objects.select_for_update().get(pk=job.pk)
        if locked.status not in ACTIVE_JOB_STATUSES or locked.pages != sequence or locked.next_page != position:
            # Another step (a reaper resume racing a slow worker, a redelivery) already committed this page, or the job was cancelled.
            job_log(locked, "page.superseded", f"Page {sequence + 1} was already stored or the job stopped; this copy is discarded.", level="warning")
            read_ahead.forget(job.pk)
            return DONE
        full_scan = locked.is_full_scan and page.is_full_scan and locked.start_cursor is None
        result = records_upsert(
            integration=integration, entity_type=source.entity_type, records=page.records, connector=connector, job=locked, full_scan=full_scan
        )
        deleted = records_mark_deleted(integration=integration, entity_type=source.entity_type, external_ids=page.deleted_ids)
        if page.present_ids is not None:
            deleted += records_mark_deleted(
                integration=integration, entity_type=source.entity_type, external_ids=_absent_ids(integration, source.entity_type, page.present_ids)
            )
        if spec.bastion_type == "person":
            people_merge(
                organization=job.organization, source=integration.connector_key, integration=integration, entity_type=source.entity_type, items=result.changed
            )
            _log_overlong(locked, people_overlong_fields(result.changed))
            people_mark_source_deleted(organization=job.organization, source=integration.connector_key, integration=integration, external_ids=deleted)
        if page.cursor is not None:
            DataSource.objects.filter(pk=source.pk).update(cursor=page.cursor)
        written = locked.created_count + locked.updated_count
        tables = [RECORDS_ANALYZED_COLUMNS, *PEOPLE_ANALYZED_COLUMNS] if spec.bastion_type == "person" else [RECORDS_ANALYZED_COLUMNS]
        tables_analyze_on_growth(before=written, after=written + result.created + result.updated, tables=tables)
        locked.pages += 1
        locked.records_processed += len(page.records)
        locked.created_count += result.created
        locked.updated_count += result.updated
        locked.unchanged_count += result.unchanged + result.stale
        locked.deleted_count += len(deleted)
        locked.next_page = json.loads(json.dumps(page.next_page, default=str)) if page.next_page is not None else None
        locked.is_full_scan = locked.is_full_scan and page.is_full_scan
        locked.heartbeat_at = timezone.now()
        locked.attempts = 0
        locked.resume_at = None
        locked.phase = "finalizing" if page.next_page is None else "reading"
        locked.save()
        job_log(
            locked,
            "page.stored",
            f"Page {locked.pages}: {len(page.records)} records ({result.created} new, {result.updated} changed, {result.unchanged} unchanged"
            f"{f', {result.stale} older than stored' if result.stale else ''}), {len(deleted)} deleted.",
            data={"page": locked.pages, "records": len(page.records), "created": result.created, "updated": result.updated, "deleted": len(deleted)},
        )
    if page.next_page is None:
        return _finalize(locked)
    return StepOutcome(False, 0.0)


def _absent_ids(integration: Any, entity_type: str, present_ids: list[str]) -> list[str]:
    """Stored, not-deleted records of the entity whose id the connector's scan of everything in scope did not return."""
    present = set(present_ids)
    stored = SyncRecord.objects.filter(integration=integration, entity_type=entity_type, is_deleted=False).values_list("external_id", flat=True)
    return [external_id for external_id in stored.iterator(chunk_size=5000) if external_id not in present]


def _finalize(job: DataSyncJob) -> StepOutcome:
    """Deletion detection after a complete full scan, manager links, success on job, data source and integration."""
    with transaction.atomic():
        locked = DataSyncJob.objects.select_for_update(of=("self",)).select_related("integration", "data_source", "organization").get(pk=job.pk)
        if locked.status not in ACTIVE_JOB_STATUSES or locked.phase != "finalizing":
            return DONE
        integration, source = locked.integration, locked.data_source
        from integrations.registry import get_connector_class

        spec = get_connector_class(integration.connector_key).manifest.entity(source.entity_type)
        vanished: list[str] = []
        if locked.is_full_scan and locked.start_cursor is None:
            vanished = records_mark_vanished(job=locked, entity_type=source.entity_type)
        scan_seen_discard(job_ids=[locked.pk])
        if spec.bastion_type == "person":
            people_mark_source_deleted(organization=locked.organization, source=integration.connector_key, integration=integration, external_ids=vanished)
            # No second ANALYZE before the join (changed_rows=0): the pages refreshed the statistics as the run's writes crossed
            # 2k/10k/50k/… rows, so the planner sees at least a fifth of what the run wrote (0.4 s of a 100,000-person import).
            people_link_managers(organization=locked.organization, source=integration.connector_key, integration=integration, changed_rows=0)
        now = timezone.now()
        locked.deleted_count += len(vanished)
        locked.status = JobStatus.SUCCEEDED
        locked.phase = "done"
        locked.completed_at = now
        locked.heartbeat_at = now
        locked.save()
        DataSource.objects.filter(pk=source.pk).update(last_synced_at=now, is_stale=False, stale_reason="")
        integration_record_success(integration=integration)
        transaction.on_commit(lambda: sync_job_observe(locked, outcome="succeeded", connector=integration.connector_key))
        transaction.on_commit(sync_completion_record)
        job_log(
            locked,
            "job.succeeded",
            f"Done: {locked.records_processed} records in {locked.pages} pages; {locked.created_count} new, {locked.updated_count} changed, "
            f"{locked.unchanged_count} unchanged, {locked.deleted_count} deleted"
            + (" (full scan: records not seen were marked deleted)." if locked.is_full_scan and locked.start_cursor is None else "."),
        )
    return DONE


def _handle_error(job: DataSyncJob, error: ApiError) -> StepOutcome:
    """Rate limits pause (not fail); transient errors retry with backoff, then fail; auth and configuration errors fail at once."""
    now = timezone.now()
    if isinstance(error, ApiRateLimited):
        wait = float(error.retry_after or 1.0)
        if isinstance(error, ApiQuotaExhausted) and error.reset_at:
            wait = max(wait, (error.reset_at - now).total_seconds())
        countdown = max(1.0, wait) + random.uniform(0, min(5.0, 0.1 * wait + 0.5))
        DataSyncJob.objects.filter(pk=job.pk).update(phase="paused", resume_at=now + timedelta(seconds=countdown), heartbeat_at=now)
        job_log(
            job,
            "job.paused",
            f"{'Quota exhausted' if isinstance(error, ApiQuotaExhausted) else 'Rate limited'} by the vendor ({error.status or '-'} {error.message}); "
            f"resuming in {countdown:.0f}s.",
            level="warning",
            data={"status": error.status, "retry_after": round(countdown, 1)},
        )
        return StepOutcome(False, countdown)
    max_attempts = int(_setting("BASTION_SYNC_MAX_ATTEMPTS", 5))
    if error.retryable and job.attempts + 1 < max_attempts:
        base = float(_setting("BASTION_SYNC_RETRY_BASE_SECONDS", 5.0))
        countdown = min(600.0, base * (2**job.attempts)) * random.uniform(0.8, 1.2)
        DataSyncJob.objects.filter(pk=job.pk).update(
            attempts=F("attempts") + 1, phase="retrying", resume_at=now + timedelta(seconds=countdown), heartbeat_at=now, last_error=str(error)[:2000]
        )
        job_log(
            job,
            "page.retry",
            f"Transient failure ({error.status or 'network'} {error.message}); attempt {job.attempts + 1} of {max_attempts}, retrying in {countdown:.1f}s.",
            level="warning",
            data={"status": error.status, "attempt": job.attempts + 1},
        )
        return StepOutcome(False, countdown)
    _fail(job, error, category=error.category)
    return DONE


def _fail(job: DataSyncJob, error: Exception, *, category: str) -> None:
    """Fail the job, keep every record stored so far, mark the data source stale and say why."""
    integration = job.integration
    status = getattr(error, "status", None)
    message = str(error)[:2000]
    with transaction.atomic():
        updated = DataSyncJob.objects.filter(pk=job.pk, status__in=ACTIVE_JOB_STATUSES).update(
            status=JobStatus.FAILED, phase="failed", completed_at=timezone.now(), last_error=message, error_class=category, resume_at=None
        )
        if not updated:
            return
        scan_seen_discard(job_ids=[job.pk])
        transaction.on_commit(lambda: sync_job_observe(job, outcome="failed", connector=integration.connector_key))
        transaction.on_commit(sync_completion_record)
        job_log(job, "job.failed", f"{category} failure: {message}", level="error", data={"status": status, "class": category})
        if category == "auth":
            reason = f"Authorization failed ({message}). Cached data is kept; reconnect {integration.display_name} to resume syncing."
            DataSource.objects.filter(integration=integration).update(is_stale=True, stale_reason=reason)
            # Schedules stay enabled: "paused" is the integration's auth_failed status (sync_scheduled_run skips it), so a
            # successful reconnect resumes them with nothing to flip back, and the next sync clears the staleness.
        else:
            reason = f"Last sync failed ({category}: {message}); showing the last good data."
            DataSource.objects.filter(pk=job.data_source_id).update(is_stale=True, stale_reason=reason)
        integration_record_failure(integration=integration, error=error)


# Reaper -----------------------------------------------------------------------------------------------------------------------


def sync_jobs_reap(*, now: Any = None, stale_after: timedelta | None = None) -> list[str]:
    """Resume active jobs with no sign of life (heartbeat, planned resume) for `stale_after`: their worker died. Returns job ids."""
    now = now or timezone.now()
    stale_after = stale_after or timedelta(seconds=int(_setting("BASTION_SYNC_HEARTBEAT_TIMEOUT", 120)))
    cutoff = now - stale_after
    candidates = DataSyncJob.objects.filter(status__in=ACTIVE_JOB_STATUSES, job_type=JobType.SYNC).annotate(
        alive_at=Greatest(F("heartbeat_at"), F("created_at"))
    )
    candidates = candidates.filter(alive_at__lt=cutoff).filter(Q(resume_at__isnull=True) | Q(resume_at__lt=cutoff))
    resumed = []
    for job in candidates:
        # Claim: move the heartbeat so a concurrent reaper run does not resume it twice.
        claimed = DataSyncJob.objects.filter(pk=job.pk, heartbeat_at=job.heartbeat_at, status__in=ACTIVE_JOB_STATUSES).update(heartbeat_at=now, resume_at=None)
        if not claimed:
            continue
        job_log(job, "job.resumed", f"No heartbeat since {job.heartbeat_at:%H:%M:%S}: the worker died; resuming from page {job.pages + 1}.", level="warning")
        transaction.on_commit(lambda job_id=job.pk: sync_job_enqueue(job_id=job_id))
        resumed.append(str(job.pk))
    # A CSV import resumes from the position committed with its last batch (imported here: sync.services.imports imports this module).
    from sync.services.imports import csv_imports_reap

    resumed += csv_imports_reap(now=now, cutoff=cutoff)
    scan_seen_discard()  # lists left by jobs that ended without cleaning up (a crash between commit and cleanup)
    return resumed


# Schedules ------------------------------------------------------------------------------------------------------------------


MAX_INTERVAL_SECONDS = 366 * 24 * 3600


def _schedule_name(data_source: DataSource) -> str:
    return f"sync:{data_source.pk}"


@transaction.atomic
def data_source_schedule_set(*, data_source: DataSource, every_seconds: int | None = None, crontab: str | None = None, is_enabled: bool = True) -> PeriodicTask:
    """Create or update the data source's PeriodicTask (interval seconds, or a 5-field crontab 'm h dom mon dow')."""
    if not every_seconds and not crontab:
        raise ApplicationError("Give an interval in seconds or a crontab.", code="schedule_required")
    defaults: dict[str, Any] = {
        "task": SCHEDULED_TASK,
        "args": json.dumps([str(data_source.pk)]),
        "enabled": is_enabled and data_source.integration.status != IntegrationStatus.AUTH_FAILED,
        "description": f"Sync {data_source.integration.display_name} · {data_source.entity_type} ({data_source.organization.name})",
    }
    if crontab:
        parts = crontab.split()
        if len(parts) != 5:
            raise ApplicationError("A crontab has five fields: minute hour day-of-month month day-of-week.", code="invalid_crontab")
        try:
            # Celery's own parser: each field within its range (minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6).
            celery_crontab(minute=parts[0], hour=parts[1], day_of_month=parts[2], month_of_year=parts[3], day_of_week=parts[4])
        except (ValueError, TypeError, IndexError) as error:
            message = f"The crontab '{crontab[:100]}' is not valid ({error}): minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6."
            raise ApplicationError(message, code="invalid_crontab", fields={"crontab": [message]}) from None
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=parts[0], hour=parts[1], day_of_month=parts[2], month_of_year=parts[3], day_of_week=parts[4], timezone="UTC"
        )
        defaults.update(crontab=schedule, interval=None)
    else:
        if int(every_seconds) < 30:
            raise ApplicationError("Syncs run at most every 30 seconds.", code="interval_too_short")
        if int(every_seconds) > MAX_INTERVAL_SECONDS:
            message = f"Syncs run at least once a year (every_seconds at most {MAX_INTERVAL_SECONDS})."
            raise ApplicationError(message, code="interval_too_long", fields={"every_seconds": [message]})
        schedule, _ = IntervalSchedule.objects.get_or_create(every=int(every_seconds), period=IntervalSchedule.SECONDS)
        defaults.update(interval=schedule, crontab=None)
    task, _ = PeriodicTask.objects.update_or_create(name=_schedule_name(data_source), defaults=defaults)
    if data_source.schedule_id != task.pk:
        DataSource.objects.filter(pk=data_source.pk).update(schedule=task)
        data_source.schedule = task
    return task


def data_source_schedule_ensure(*, data_source: DataSource) -> PeriodicTask:
    """Give a data source its default schedule (editable in the admin) if it has none."""
    if data_source.schedule_id:
        return data_source.schedule
    return data_source_schedule_set(data_source=data_source, every_seconds=int(_setting("BASTION_SYNC_DEFAULT_INTERVAL", 900)))


def schedules_paused_for_reconnect(*, integration: Integration) -> bool:
    """Whether scheduled syncs of the integration are paused because it needs reconnecting (derived from its status)."""
    return integration.status in (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DISCONNECTED)


def integration_schedules_pause(*, integration: Integration) -> int:
    """Disable an integration's schedule rows (an operator's explicit stop; an auth failure pauses through the status instead)."""
    return PeriodicTask.objects.filter(name__in=[_schedule_name(s) for s in integration.data_sources.all()]).update(enabled=False)


def integration_schedules_resume(*, integration: Integration) -> int:
    """Re-enable schedules after a reconnect (called by the integrations layer) and clear auth staleness."""
    sources = list(integration.data_sources.filter(is_enabled=True))
    count = PeriodicTask.objects.filter(name__in=[_schedule_name(s) for s in sources]).update(enabled=True)
    DataSource.objects.filter(integration=integration, stale_reason__startswith="Authorization failed").update(is_stale=False, stale_reason="")
    return count


def sync_scheduled_run(*, data_source_id: Any) -> DataSyncJob | None:
    """The dispatcher sent a start: start a scheduled sync unless the data source or its integration cannot run."""
    source = DataSource.objects.select_related("integration").filter(pk=data_source_id).first()
    if source is None:
        return None
    try:
        if not source.is_enabled or schedules_paused_for_reconnect(integration=source.integration):
            return None
        return sync_start(data_source=source, trigger=JobTrigger.SCHEDULE)
    finally:
        # Counted in flight as a job from now on (or not at all): no longer as a start waiting for a worker.
        start_run_record(organization_id=source.organization_id, data_source_id=source.pk)


def sync_integration_start(
    *, integration: Integration, actor: Any = None, full_refresh: bool = False, data_source: DataSource | None = None
) -> list[DataSyncJob]:
    """Start syncs of every enabled data source of an integration (or just one)."""
    integration_access_check(integration=integration, actor=actor)
    if data_source is None:
        data_sources_ensure(integration=integration)
        sources = list(integration.data_sources.filter(is_enabled=True).select_related("integration"))
    else:
        sources = [data_source]
    return [sync_start(data_source=s, trigger=JobTrigger.MANUAL, actor=actor, full_refresh=full_refresh) for s in sources]
