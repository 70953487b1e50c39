"""Sync metrics: job outcomes recorded as they happen, and the state read at scrape time (freshness, queues, backlog)."""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common import metrics
from integrations.models import DataSource, Integration
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob, DeliveryStatus, WebhookDelivery

logger = logging.getLogger(__name__)

PERIOD_SECONDS = {
    IntervalSchedule.DAYS: 86400,
    IntervalSchedule.HOURS: 3600,
    IntervalSchedule.MINUTES: 60,
    IntervalSchedule.SECONDS: 1,
    IntervalSchedule.MICROSECONDS: 1e-6,
}
# kombu's Redis transport keeps a queue's priority levels in separate lists: "celery", "celery\x06\x163", …
PRIORITY_SEPARATOR = "\x06\x16"


def sync_job_observe(job: DataSyncJob, *, outcome: str, connector: str = "") -> None:
    """Count a job that reached its final status and observe its wall time (start to end, queue wait excluded)."""
    try:
        connector = connector or (job.integration.connector_key if job.integration_id else "csv")
        started = job.started_at or job.created_at
        ended = job.completed_at or timezone.now()
        metrics.sync_jobs.labels(job.job_type, connector, outcome).inc()
        if started is not None:
            metrics.sync_job_duration.labels(job.job_type, connector, outcome).observe(max(0.0, (ended - started).total_seconds()))
        for change, count in (
            ("created", job.created_count),
            ("updated", job.updated_count),
            ("unchanged", job.unchanged_count),
            ("deleted", job.deleted_count),
        ):
            if count:
                metrics.sync_records.labels(connector, change).inc(count)
    except Exception:  # noqa: BLE001 - metrics never fail the job that reports them
        logger.exception("sync.metrics_failed", extra={"job": str(job.pk)})


def freshness_target_seconds(interval: Any) -> float:
    """A source is fresh while its last success is at most two schedule ticks old (one missed tick is tolerated)."""
    if interval is not None:
        return 2 * interval.every * PERIOD_SECONDS.get(interval.period, 1)
    return float(getattr(settings, "BASTION_SYNC_FRESHNESS_TARGET_SECONDS", 2 * int(getattr(settings, "BASTION_SYNC_DEFAULT_INTERVAL", 900))))


class SyncStateCollector(Collector):
    """Read at scrape time from PostgreSQL and the broker: freshness per data source, active and stalled jobs, webhook backlog, queues."""

    def __init__(self, *, per_source: bool = True, now: datetime | None = None):
        self.per_source = per_source
        self._now = now

    def collect(self) -> Iterator[Metric]:
        now = self._now or timezone.now()
        failed = GaugeMetricFamily(
            "bastion_metrics_collect_errors", "Sections of this scrape that could not be read (database or broker down).", labels=["section"]
        )
        for section, read in (
            ("freshness", lambda: list(self._freshness(now))),
            ("jobs", lambda: list(self._jobs(now))),
            ("webhooks", lambda: list(self._webhooks(now))),
            ("integrations", lambda: list(self._integrations())),
            ("queues", lambda: list(self._queues())),
            ("dispatch", lambda: list(self._dispatch(now))),
        ):
            try:
                families = read()
            except Exception:  # noqa: BLE001 - one unreadable section must not hide the others (nor the process counters)
                logger.warning("metrics.collect_failed", extra={"section": section}, exc_info=True)
                failed.add_metric([section], 1)
                continue
            yield from families
        yield failed

    def _freshness(self, now: datetime) -> Iterator[Metric]:
        if not self.per_source:
            yield from self._freshness_counts(now)
            return
        labels = ["organization", "integration", "connector", "entity"]
        age = GaugeMetricFamily(
            "bastion_sync_source_age_seconds", "Seconds since the data source's last successful sync (since it was added, if never).", labels=labels
        )
        target = GaugeMetricFamily("bastion_sync_source_target_seconds", "The freshness target of the data source: two schedule ticks.", labels=labels)
        over = GaugeMetricFamily(
            "bastion_sync_sources_over_target", "Enabled data sources older than their freshness target, by connector.", labels=["connector"]
        )
        total = GaugeMetricFamily("bastion_sync_sources", "Enabled data sources, by connector.", labels=["connector"])
        over_by: Tally[str] = Tally()
        total_by: Tally[str] = Tally()
        intervals = {i.pk: i for i in IntervalSchedule.objects.all()}
        rows = DataSource.objects.filter(is_enabled=True).values_list(
            "organization__slug", "integration_id", "integration__connector_key", "entity_type", "last_synced_at", "created_at", "schedule__interval_id"
        )
        for org, integration_id, connector, entity, synced_at, created_at, interval_id in rows.iterator(chunk_size=5000):
            seconds = (now - (synced_at or created_at)).total_seconds()
            goal = freshness_target_seconds(intervals.get(interval_id))
            total_by[connector] += 1
            over_by[connector] += seconds > goal
            if self.per_source:
                values = [org, str(integration_id), connector, entity]
                age.add_metric(values, max(0.0, seconds))
                target.add_metric(values, goal)
        for connector in sorted(total_by):
            total.add_metric([connector], total_by[connector])
            over.add_metric([connector], over_by[connector])
        yield from (age, target, over, total) if self.per_source else (over, total)

    def _freshness_counts(self, now: datetime) -> Iterator[Metric]:
        """The per-connector counts alone, aggregated in PostgreSQL (tens of thousands of sources cost one grouped scan)."""
        seconds = " ".join(f"WHEN '{period}' THEN {factor}" for period, factor in PERIOD_SECONDS.items())
        default = freshness_target_seconds(None)
        query = f"""
            SELECT i.connector_key, count(*),
                   count(*) FILTER (WHERE extract(epoch FROM (%s - coalesce(ds.last_synced_at, ds.created_at)))
                                    > coalesce(2 * iv.every * CASE iv.period {seconds} ELSE 1 END, %s))
            FROM {DataSource._meta.db_table} ds
            JOIN {Integration._meta.db_table} i ON i.id = ds.integration_id
            LEFT JOIN {PeriodicTask._meta.db_table} pt ON pt.id = ds.schedule_id
            LEFT JOIN {IntervalSchedule._meta.db_table} iv ON iv.id = pt.interval_id
            WHERE ds.is_enabled
            GROUP BY i.connector_key ORDER BY i.connector_key
        """
        over = GaugeMetricFamily(
            "bastion_sync_sources_over_target", "Enabled data sources older than their freshness target, by connector.", labels=["connector"]
        )
        total = GaugeMetricFamily("bastion_sync_sources", "Enabled data sources, by connector.", labels=["connector"])
        with connection.cursor() as cursor:
            cursor.execute(query, [now, default])
            for connector, count, stale in cursor.fetchall():
                total.add_metric([connector], count)
                over.add_metric([connector], stale)
        yield from (over, total)

    def _jobs(self, now: datetime) -> Iterator[Metric]:
        active = GaugeMetricFamily("bastion_sync_jobs_active", "Pending or running sync and import jobs, by type and phase.", labels=["job_type", "phase"])
        stalled = GaugeMetricFamily(
            "bastion_sync_jobs_stalled", "Active jobs with no heartbeat for longer than the reaper's timeout and no planned resume (a stalled run)."
        )
        oldest = GaugeMetricFamily("bastion_sync_job_oldest_heartbeat_age_seconds", "Age of the oldest heartbeat among active jobs that are not paused.")
        timeout = float(getattr(settings, "BASTION_SYNC_HEARTBEAT_TIMEOUT", 120))
        stalled_count, oldest_age = 0, 0.0
        by_phase: Tally[tuple[str, str]] = Tally()
        for job_type, phase, heartbeat, created, resume_at in DataSyncJob.objects.filter(status__in=ACTIVE_JOB_STATUSES).values_list(
            "job_type", "phase", "heartbeat_at", "created_at", "resume_at"
        ):
            by_phase[(job_type, phase or "")] += 1
            if resume_at is not None and resume_at > now:
                continue  # paused on purpose (rate limit, retry backoff)
            quiet = (now - (heartbeat or created)).total_seconds()
            oldest_age = max(oldest_age, quiet)
            stalled_count += quiet > timeout
        for (job_type, phase), count in sorted(by_phase.items()):
            active.add_metric([job_type, phase], count)
        stalled.add_metric([], stalled_count)
        oldest.add_metric([], oldest_age)
        yield from (active, stalled, oldest)

    def _webhooks(self, now: datetime) -> Iterator[Metric]:
        backlog = GaugeMetricFamily("bastion_webhook_backlog", "Webhook deliveries received and not yet processed.")
        oldest = GaugeMetricFamily("bastion_webhook_backlog_oldest_age_seconds", "Age of the oldest delivery waiting to be processed (0 when none).")
        waiting = WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).aggregate(count=Count("id"), oldest=Min("received_at"))
        backlog.add_metric([], waiting["count"] or 0)
        oldest.add_metric([], max(0.0, (now - waiting["oldest"]).total_seconds()) if waiting["oldest"] else 0.0)
        yield from (backlog, oldest)

    def _integrations(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "bastion_integrations",
            "Integrations by connector and status (auth_failed and disconnected need a person to reconnect).",
            labels=["connector", "status"],
        )
        for row in Integration.objects.values("connector_key", "status").annotate(count=Count("id")).order_by("connector_key", "status"):
            family.add_metric([row["connector_key"], row["status"]], row["count"])
        yield family

    def _dispatch(self, now: datetime) -> Iterator[Metric]:
        """The dispatcher's last tick (sync.services.backpressure): what was due, what it held back, the bound it kept."""
        from sync.services.backpressure import dispatch_state

        state = dispatch_state()  # empty before the first tick: zeros, and an unknown (NaN) tick age
        for name, key, text in (
            ("bastion_sync_dispatch_due", "due", "Scheduled data sources due at the dispatcher's last tick."),
            ("bastion_sync_dispatch_held_back", "held_back", "Due sources the last tick did not start: the workers had no room (backpressure)."),
            (
                "bastion_sync_dispatch_in_flight",
                "in_flight",
                "Syncs in flight after the last tick: active jobs holding or waiting for a worker, and starts sent.",
            ),
            ("bastion_sync_dispatch_bound", "bound", "The most syncs the dispatcher keeps in flight: the measured completion rate times the look-ahead."),
            ("bastion_sync_dispatch_completion_rate", "rate", "Sync jobs ended per second over the last minute, as the dispatcher measured it."),
        ):
            family = GaugeMetricFamily(name, text)
            family.add_metric([], state.get(key, 0.0))
            yield family
        age = GaugeMetricFamily("bastion_sync_dispatch_last_tick_age_seconds", "Seconds since the dispatcher's last tick (beat down: it grows).")
        age.add_metric([], max(0.0, now.timestamp() - state["at"]) if "at" in state else float("nan"))
        yield age

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("bastion_queue_depth", "Celery messages waiting in the broker, by queue (all priority levels).", labels=["queue"])
        reserved = GaugeMetricFamily(
            "bastion_queue_unacked", "Celery messages delivered to workers and not yet acknowledged (running, or held for a countdown)."
        )
        broker_up = GaugeMetricFamily("bastion_broker_up", "1 when the broker answered this scrape.")
        url = getattr(settings, "CELERY_BROKER_URL", "") or ""
        if not url.startswith(("redis://", "rediss://")):
            broker_up.add_metric([], 0)
            yield broker_up
            return
        try:
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
            try:
                lengths: Tally[str] = Tally()
                queues = {str(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")), *getattr(settings, "BASTION_METRICS_QUEUES", ())}
                for queue in sorted(queues):
                    names = [queue, *(f"{queue}{PRIORITY_SEPARATOR}{level}" for level in range(1, 10))]
                    with client.pipeline(transaction=False) as pipe:
                        for name in names:
                            pipe.llen(name)
                        lengths[queue] = sum(int(n) for n in pipe.execute())
                unacked = int(client.hlen("unacked"))
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - a broker outage must still let the rest of the scrape through
            logger.warning("metrics.broker_unreachable", exc_info=True)
            broker_up.add_metric([], 0)
            yield broker_up
            return
        for queue, length in sorted(lengths.items()):
            depth.add_metric([queue], length)
        reserved.add_metric([], unacked)
        broker_up.add_metric([], 1)
        yield from (depth, reserved, broker_up)
