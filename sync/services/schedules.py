"""The sync dispatcher: one beat entry starts every due scheduled sync, found with one indexed query.

Beat's DatabaseScheduler keeps one heap entry per data source and sends about 3 tasks a second; the dispatcher replaces
that walk with `next_sync_at <= now()` over an index, so 50,000 sources on a 5-minute schedule (167 starts a second) cost
a bounded batch query every tick. The per-source PeriodicTask rows stay the place ops edit a schedule (admin, API).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from integrations.models import DataSource, Integration, IntegrationStatus

logger = logging.getLogger(__name__)

SCHEDULE_PREFIX = "sync:"  # a data source's own schedule row is named sync:<data source id>
PERIOD_SECONDS = {
    IntervalSchedule.DAYS: 86400,
    IntervalSchedule.HOURS: 3600,
    IntervalSchedule.MINUTES: 60,
    IntervalSchedule.SECONDS: 1,
    IntervalSchedule.MICROSECONDS: 1e-6,
}
PAUSED_STATUSES = (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DISCONNECTED)


def dispatch_batch_size() -> int:
    return int(getattr(settings, "BASTION_SYNC_DISPATCH_BATCH", 5000))


def dispatch_chunk_size() -> int:
    """Sources started per message: one publish per source costs more than the broker round trip the start saves."""
    return max(1, int(getattr(settings, "BASTION_SYNC_DISPATCH_CHUNK", 50)))


def next_run(task: PeriodicTask, after: datetime) -> datetime | None:
    """When `task` is next due after `after` (interval: one period later; crontab: its next match); None if it has no schedule."""
    if task.interval_id:
        return after + timedelta(seconds=task.interval.every * PERIOD_SECONDS.get(task.interval.period, 1))
    if task.crontab_id:
        return crontab_next(task.crontab.schedule, after)
    return None


def crontab_next(cron: Any, after: datetime) -> datetime | None:
    """The first minute after `after` that celery's crontab matches (all fields must match, as celery beat reads them)."""
    zone = getattr(cron, "tz", None) or UTC
    start = after.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.date()
    for _ in range(5 * 366):  # a 29 February schedule matches within four years
        if day.month in cron.month_of_year and day.day in cron.day_of_month and day.isoweekday() % 7 in cron.day_of_week:
            for hour in sorted(cron.hour):
                for minute in sorted(cron.minute):
                    candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    if candidate >= start:
                        return candidate
        day += timedelta(days=1)
    return None


def data_source_next_sync_refresh(*, schedule: PeriodicTask) -> None:
    """A schedule row changed (API, admin, migration): its data source's next sync follows, counted from its last run."""
    if not schedule.name.startswith(SCHEDULE_PREFIX) or not schedule.task.endswith("sync_data_source_scheduled"):
        return
    base = schedule.last_run_at or timezone.now()
    DataSource.objects.filter(schedule_id=schedule.pk).update(next_sync_at=next_run(schedule, base) if schedule.enabled else None)


def _plan_unplanned(now: datetime, limit: int) -> int:
    """Give sources scheduled before the dispatcher existed a next_sync_at from their last run (no start-up stampede)."""
    seconds = " ".join(f"WHEN '{period}' THEN {factor}" for period, factor in PERIOD_SECONDS.items())
    with connection.cursor() as cursor:  # interval schedules, set-wise
        cursor.execute(
            f"""UPDATE {DataSource._meta.db_table} ds
                SET next_sync_at = coalesce(pt.last_run_at, %s) + make_interval(secs => iv.every * CASE iv.period {seconds} ELSE 1 END)
                FROM {PeriodicTask._meta.db_table} pt JOIN {IntervalSchedule._meta.db_table} iv ON iv.id = pt.interval_id
                WHERE pt.id = ds.schedule_id AND pt.enabled AND ds.next_sync_at IS NULL AND ds.id IN (
                    SELECT id FROM {DataSource._meta.db_table} WHERE next_sync_at IS NULL AND schedule_id IS NOT NULL LIMIT %s)""",
            [now, limit],
        )
        planned = cursor.rowcount
    unplanned = DataSource.objects.filter(next_sync_at__isnull=True, schedule__enabled=True, schedule__crontab__isnull=False).values("schedule_id")[:limit]
    for task in PeriodicTask.objects.select_related("crontab").filter(pk__in=unplanned):  # crontabs: few, and matched in Python
        planned += DataSource.objects.filter(schedule_id=task.pk, next_sync_at__isnull=True).update(next_sync_at=next_run(task, task.last_run_at or now))
    return planned


def _due_sources(now: datetime, limit: int) -> list[tuple[Any, Any]]:
    """(data source id, schedule id) of due sources, most overdue first, locked so two dispatchers never share one."""
    query = f"""
        SELECT ds.id, ds.schedule_id
        FROM {DataSource._meta.db_table} ds
        JOIN {Integration._meta.db_table} i ON i.id = ds.integration_id
        JOIN {PeriodicTask._meta.db_table} pt ON pt.id = ds.schedule_id
        WHERE ds.next_sync_at <= %s AND ds.is_enabled AND pt.enabled AND i.status <> ALL(%s)
        ORDER BY ds.next_sync_at
        LIMIT %s
        FOR UPDATE OF ds SKIP LOCKED
    """
    with connection.cursor() as cursor:
        cursor.execute(query, [now, [str(s) for s in PAUSED_STATUSES], limit])
        return cursor.fetchall()


def _advance(due: Iterable[tuple[Any, Any]], now: datetime) -> None:
    """Move each dispatched source's next_sync_at one period on (from now: a late tick never bursts) and stamp its row."""
    by_schedule: dict[Any, list[Any]] = {}
    for source_id, schedule_id in due:
        by_schedule.setdefault(schedule_id, []).append(source_id)
    tasks = PeriodicTask.objects.select_related("interval", "crontab").in_bulk(list(by_schedule))
    pairs = [(source_id, next_run(tasks[schedule_id], now)) for schedule_id, ids in by_schedule.items() if schedule_id in tasks for source_id in ids]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {DataSource._meta.db_table} ds SET next_sync_at = v.next_at
                FROM unnest(%s::uuid[], %s::timestamptz[]) AS v(id, next_at) WHERE ds.id = v.id""",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )
    PeriodicTask.objects.filter(pk__in=list(by_schedule)).update(last_run_at=now)


def sync_schedules_dispatch(*, now: datetime | None = None, limit: int | None = None, queue: str | None = None) -> int:
    """Start every due scheduled sync (at most `limit` per call) and plan each one's next run. Returns how many started.

    The starts go out in messages of dispatch_chunk_size() sources, spread over the workers.
    The starts are sent inside the transaction that advances next_sync_at: a crash before the commit leaves them due
    (sent again next tick; sync_start returns the running job instead of a second one), never silently skipped.
    """
    from sync import tasks

    now = now or timezone.now()
    limit = limit or dispatch_batch_size()
    _plan_unplanned(now, limit)
    with transaction.atomic():
        due = _due_sources(now, limit)
        if not due:
            return 0
        _advance(due, now)
        ids = [str(source_id) for source_id, _schedule_id in due]
        chunk = dispatch_chunk_size()
        with tasks.sync_data_sources_scheduled.app.producer_or_acquire() as producer:
            for start in range(0, len(ids), chunk):
                tasks.sync_data_sources_scheduled.apply_async(args=[ids[start : start + chunk]], producer=producer, queue=queue)
    if len(due) == limit:
        logger.warning("sync.dispatch.batch_full", extra={"started": len(due), "limit": limit})
    return len(due)
