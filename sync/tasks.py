"""Celery tasks of the sync engine: thin, take ids, acknowledge late (settings), call one service."""

from __future__ import annotations

import logging
import time

from celery import shared_task

from common.bulk import collector_relaxed
from sync import services
from sync.metrics import sync_job_observe
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob
from sync.services import schedules as sync_schedules
from sync.services.jobs import sync_job_page_budget

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def sync_job_step(self, job_id: str) -> None:
    """Process one page, then re-enqueue for the next (so syncs of different tenants interleave page by page)."""
    with collector_relaxed():  # a page is a bulk load: the default collector thresholds re-walk its rows over and over
        _sync_job_steps(self, job_id)


def _sync_job_steps(task, job_id: str) -> None:  # noqa: ANN001 - the bound Celery task
    outcome = services.sync_job_step(job_id=job_id)
    if task.request.is_eager:
        # In-process (tests, embedded demo): keep going while no wait is asked; a paused job is resumed by the reaper.
        while not outcome.is_done and outcome.countdown <= 0:
            outcome = services.sync_job_step(job_id=job_id)
        return
    # A connector whose next page continues on this process's connection (LDAP) reads on here for a bounded time: in
    # another process the paged search would replay from the start. Each page still commits (and frees the org slot) alone.
    budget = sync_job_page_budget(job_id=job_id) if not outcome.is_done and outcome.countdown <= 0 else 0.0
    deadline = time.monotonic() + budget
    while not outcome.is_done and outcome.countdown <= 0 and time.monotonic() < deadline:
        outcome = services.sync_job_step(job_id=job_id)
    if not outcome.is_done:
        sync_job_step.apply_async(args=[job_id], countdown=outcome.countdown or None)


@shared_task(ignore_result=True)
def sync_data_source_scheduled(data_source_id: str) -> None:
    """The per-source schedule row's task (kept so ops see what each row runs; beat leaves these rows to the dispatcher)."""
    services.sync_scheduled_run(data_source_id=data_source_id)


@shared_task(ignore_result=True)
def sync_data_sources_scheduled(data_source_ids: list[str]) -> None:
    """Sent by the dispatcher: start the scheduled syncs of a chunk of due sources (each start is its own transaction)."""
    for data_source_id in data_source_ids:
        try:
            services.sync_scheduled_run(data_source_id=data_source_id)
        except Exception:  # noqa: BLE001 - one source's failed start (a race with a disconnect) must not skip the rest of the chunk
            logger.exception("sync.scheduled_start_failed", extra={"data_source": str(data_source_id)})


@shared_task(ignore_result=True)
def sync_schedules_dispatch() -> None:
    """Start the scheduled syncs that are due (beat runs the dispatcher itself, in its process: sync.scheduler; kept to run it by hand)."""
    sync_schedules.sync_schedules_dispatch()


@shared_task(ignore_result=True)
def sync_jobs_reap() -> None:
    """Periodic: resume jobs whose worker died (stale heartbeat) or whose pause is over."""
    services.sync_jobs_reap()
    from sync.services.webhooks import webhook_deliveries_nudge

    webhook_deliveries_nudge()  # a drain task lost with its worker: the deliveries it would have handed over wait no longer


@shared_task(acks_late=True, ignore_result=True)
def webhook_delivery_process_task(delivery_id: str) -> None:
    services.webhook_delivery_process(delivery_pk=delivery_id)


@shared_task(acks_late=True, ignore_result=True)
def webhook_deliveries_drain_task() -> None:
    """Hand the deliveries waiting in the pending list to their processing tasks."""
    from sync.services.webhooks import webhook_deliveries_drain

    webhook_deliveries_drain()


# Longer than the default limit: a large file is read in one run (a killed run is resumed from its last committed batch).
@shared_task(acks_late=True, ignore_result=True, soft_time_limit=3000, time_limit=3300)
def csv_import_task(job_id: str) -> None:
    """Run a CSV import, or resume it from its committed position; a duplicate delivery commits no batch twice."""
    was_active = DataSyncJob.objects.filter(pk=job_id, status__in=ACTIVE_JOB_STATUSES).exists()
    services.csv_import_run(job_id=job_id)
    # Counted here, once: only the run that took the job from active to ended (a redelivery of an ended import is not).
    job = DataSyncJob.objects.filter(pk=job_id).first()
    if was_active and job is not None and job.status not in ACTIVE_JOB_STATUSES:
        sync_job_observe(job, outcome=job.status, connector="csv")
