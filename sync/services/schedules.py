"""The sync dispatcher: one beat entry starts the due scheduled syncs, most overdue first, as many as the workers can take.

Beat's DatabaseScheduler keeps one heap entry per data source and sends about 3 tasks a second; the dispatcher replaces
that walk with `next_sync_at <= now()` over an index, so 50,000 sources on a 5-minute schedule (167 starts a second) cost
a bounded batch query every tick. The per-source PeriodicTask rows stay the place ops edit a schedule (admin, API).
When the workers serve less than the schedule asks, the sources not sent stay due (sync.services.backpressure).
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
from sync.services import backpressure

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


def _due_sources(now: datetime, limit: int, *, busy: dict[str, int] | None = None, per_org: int | None = None) -> tuple[list[tuple[Any, Any, Any]], int]:
    """(data source id, schedule id, organization id) of due sources, most overdue first, locked so two dispatchers never
    share one; and how many are due in all.

    With `per_org`, an organization's sources are taken only while its syncs in flight (`busy`, by organization id) plus
    those taken now stay within `per_org`: one organization with thousands of due sources cannot fill the whole bound
    with syncs that would only wait for its per-organization slots while other organizations wait behind them.
    """
    due = f"""
        FROM {DataSource._meta.db_table} ds
        JOIN {Integration._meta.db_table} i ON i.id = ds.integration_id
        JOIN {PeriodicTask._meta.db_table} pt ON pt.id = ds.schedule_id
        WHERE ds.next_sync_at <= %s AND ds.is_enabled AND pt.enabled AND i.status <> ALL(%s)
    """
    paused = [str(s) for s in PAUSED_STATUSES]
    busy = busy or {}
    query = f"""
        WITH due AS (
            SELECT ds.id, ds.organization_id, ds.next_sync_at, count(*) OVER () AS due_total,
                   row_number() OVER (PARTITION BY ds.organization_id ORDER BY ds.next_sync_at) AS org_rank
            {due}
        )
        SELECT ds.id, ds.schedule_id, ds.organization_id, due.due_total
        FROM {DataSource._meta.db_table} ds
        JOIN due ON due.id = ds.id
        LEFT JOIN unnest(%s::uuid[], %s::int[]) AS busy(organization_id, in_flight) ON busy.organization_id = due.organization_id
        WHERE due.org_rank + coalesce(busy.in_flight, 0) <= %s
        ORDER BY due.next_sync_at
        LIMIT %s
        FOR UPDATE OF ds SKIP LOCKED
    """
    with connection.cursor() as cursor:
        rows: list[Any] = []
        if limit > 0:
            cursor.execute(query, [now, paused, list(busy), list(busy.values()), per_org or limit, limit])
            rows = cursor.fetchall()
        if rows:
            return [row[:3] for row in rows], int(rows[0][3])
        cursor.execute(f"SELECT count(*) {due}", [now, paused])
        return [], int(cursor.fetchone()[0])


def _advance(due: Iterable[tuple[Any, Any, Any]], now: datetime) -> None:
    """Move each dispatched source's next_sync_at one period on (from now: a late tick never bursts) and stamp its row."""
    by_schedule: dict[Any, list[Any]] = {}
    for source_id, schedule_id, _organization_id in due:
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
    """Start the most overdue due scheduled syncs the workers can take soon, and plan each one's next run. Returns how many.

    At most `limit` per call, and only as many as keep the syncs in flight under the backpressure bound (sync.services.
    backpressure): the others stay due with their next_sync_at, and the next tick takes the most overdue first.
    The starts go out in messages of dispatch_chunk_size() sources, spread over the workers.
    The starts are sent inside the transaction that advances next_sync_at: a crash before the commit leaves them due
    (sent again next tick; sync_start returns the running job instead of a second one), never silently skipped.
    """
    from sync import tasks

    now = now or timezone.now()
    limit = limit or dispatch_batch_size()
    _plan_unplanned(now, limit)
    bounded = backpressure.is_enabled()
    flight = backpressure.in_flight(now=now) if bounded else backpressure.InFlight()
    bound, rate = backpressure.dispatch_bound(at=now.timestamp(), in_flight_now=flight.total) if bounded else (limit, 0.0)
    room = min(limit, max(0, bound - flight.total)) if bounded else limit
    with transaction.atomic():
        due, due_total = _due_sources(now, room, busy=dict(flight.by_organization), per_org=backpressure.per_organization_cap() if bounded else None)
        if due:
            _advance(due, now)
            ids = [str(source_id) for source_id, _schedule_id, _organization_id in due]
            sent = [(organization_id, source_id) for source_id, _schedule_id, organization_id in due]
            # Recorded before sending: a worker may run a start before this transaction commits, and removes it then.
            if bounded:
                backpressure.starts_sent_record(sources=sent, at=now.timestamp())
            chunk = dispatch_chunk_size()
            try:
                with tasks.sync_data_sources_scheduled.app.producer_or_acquire() as producer:
                    for start in range(0, len(ids), chunk):
                        tasks.sync_data_sources_scheduled.apply_async(args=[ids[start : start + chunk]], producer=producer, queue=queue)
            except Exception:
                for organization_id, source_id in sent if bounded else ():
                    backpressure.start_run_record(organization_id=organization_id, data_source_id=source_id)
                raise
    if bounded:
        backpressure.dispatch_state_record(due=due_total, sent=len(due), in_flight_before=flight.total, bound=bound, rate=rate, at=now.timestamp())
        if due_total > len(due):
            logger.info(
                "sync.dispatch.held_back",
                extra={"due": due_total, "started": len(due), "in_flight": flight.total, "bound": bound, "rate_per_second": round(rate, 2)},
            )
    if len(due) == limit:
        logger.warning("sync.dispatch.batch_full", extra={"started": len(due), "limit": limit})
    return len(due)
