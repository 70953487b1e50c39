"""Infrastructure faults under a real Celery worker: Redis restarted mid-sync, PostgreSQL connections dropped mid-sync.

The vendor-side faults (429 storms, 5xx bursts, revoked tokens, outages) live in tests/sync/test_faults.py and the
playbook ones in tests/playbooks; these add the two stores Bastion itself depends on. Each run ends with exactly the
directory's 20 people stored once: nothing lost, nothing duplicated. Recovery is what production has: the worker
reconnects, and the beat-driven reaper (`sync.services.sync_jobs_reap`, called here as beat would) resumes a job whose
queued step was lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection

from people.models import Person
from sync import services as sync_services
from sync.models import DataSyncJob, JobStatus, SyncRecord
from tests.conftest import RedisServer, wait_for
from tests.hardening.conftest import set_faults

ALL_IDS = {f"p{i:06d}" for i in range(1, 21)}
PAGE_LATENCY_MS = 600  # each of the 3 pages takes this long at the vendor, so a fault lands mid-run


@pytest.fixture
def own_redis(settings) -> Iterator[RedisServer]:
    """Point this process (cache, coordination, Celery producer) at our own Redis for the test; restore afterwards."""
    from bastion_site.celery import app

    server = RedisServer()  # no persistence: a restart loses every queued message, lease and counter
    server.start()
    previous_broker = app.conf.broker_url
    settings.REDIS_URL = server.url
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url}}
    _reset_producer(app, server.url)
    yield server
    server.kill()
    _reset_producer(app, previous_broker)


def _reset_producer(app, url: str) -> None:
    """Celery caches its broker pools: drop the cached ones (without closing kombu's shared pools) so the next publish uses `url`."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def directory(connect_one, transactional_db, sandbox):
    """The sandbox directory (20 people over 3 pages of 7) with per-page latency, so faults land mid-sync."""
    from accounts.models import Organization
    from integrations.models import DataSource

    organization = Organization.objects.create(name="Faults", slug="faults")
    item = connect_one(organization, "sandbox_directory")
    set_faults(sandbox, "sandbox_directory", latency_ms=PAGE_LATENCY_MS)
    return item.integration, DataSource.objects.get(integration=item.integration, entity_type="people")


WORKER_APPLICATION = "bastion-fault-worker"


def _wait_for_first_page(job: DataSyncJob, worker: subprocess.Popen) -> None:
    try:
        wait_for(lambda: DataSyncJob.objects.get(pk=job.pk).pages >= 1, timeout=60, message="the first page to be stored")
    except AssertionError as failure:
        os.killpg(worker.pid, signal.SIGKILL)  # with its pool children, which hold the output pipe open too
        raise AssertionError(f"{failure}; worker log:\n{worker.stdout.read()[-4000:]}") from failure


def _finish_with_reaper(job: DataSyncJob, worker: subprocess.Popen, timeout: float = 60.0) -> DataSyncJob:
    """Wait for the job to finish, running the reaper as beat would (a job whose step was lost has no heartbeat)."""

    def done() -> bool:
        assert worker.poll() is None, "the worker exited instead of riding out the fault"
        job.refresh_from_db()
        if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
            sync_services.sync_jobs_reap(stale_after=timedelta(seconds=3))
            return False
        return True

    try:
        wait_for(done, timeout=timeout, interval=0.25, message=f"job {job.pk} to finish")
    except AssertionError as failure:
        os.killpg(worker.pid, signal.SIGKILL)  # with its pool children, which hold the output pipe open too
        log = worker.stdout.read()
        notable = [line for line in log.splitlines() if any(word in line for word in ("ERROR", "CRITICAL", "WARNING", "onnection", "Traceback"))]
        raise AssertionError(f"{failure}; job in {job.status}/{job.phase}; worker log (notable lines):\n" + "\n".join(notable[:60])) from failure
    return job


def _assert_exact(integration, job: DataSyncJob) -> None:
    assert job.status == JobStatus.SUCCEEDED, (job.status, job.last_error)
    stored = list(SyncRecord.objects.filter(integration=integration).values_list("external_id", flat=True))
    assert sorted(stored) == sorted(ALL_IDS), "every person exactly once"
    assert Person.objects.filter(organization=integration.organization).count() == 20
    assert (job.created_count, job.pages) == (20, 3), "no page was stored twice"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_redis_restarted_mid_sync_recovers_with_exact_records(own_redis, celery_worker_process, directory):
    integration, source = directory
    worker = celery_worker_process(concurrency=2, extra_env={"REDIS_URL": own_redis.url})
    job = sync_services.sync_start(data_source=source)

    _wait_for_first_page(job, worker)
    own_redis.kill()  # queued steps, leases and counters are gone with it
    # The outage lasts while the worker finishes its page and tries to queue the next one (an outage, not a wait).
    time.sleep(PAGE_LATENCY_MS / 1000)
    own_redis.start()

    job = _finish_with_reaper(job, worker)
    _assert_exact(integration, job)
    assert worker.poll() is None, "the same worker process reconnected (bastion_site/broker.py), no supervisor restarted it"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_postgres_connections_dropped_mid_sync_recover_with_exact_records(celery_worker_process, directory):
    integration, source = directory
    db = connection.settings_dict
    # Tag the worker's connections so only they are dropped (the test process and its live servers keep theirs).
    worker_url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}?application_name={WORKER_APPLICATION}"
    worker = celery_worker_process(concurrency=2, extra_env={"DATABASE_URL": worker_url})
    job = sync_services.sync_start(data_source=source)

    _wait_for_first_page(job, worker)

    def drop_worker_connections() -> int:
        # The worker closes its connection between tasks, so keep trying until one is caught mid-task.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
                [WORKER_APPLICATION],
            )
            return cursor.fetchone()[0]

    wait_for(drop_worker_connections, timeout=30, interval=0.02, message="a worker connection to drop mid-sync")

    job = _finish_with_reaper(job, worker)
    _assert_exact(integration, job)
