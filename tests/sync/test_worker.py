"""Real Celery workers (and beat) on real Redis: SIGKILL mid-sync loses and duplicates nothing; fairness; scheduled syncs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from integrations.models import DataSource
from people.models import Person, PersonIdentity
from sync import services
from sync.models import DataSyncJob, JobStatus, SyncRecord
from sync.services.fairness import org_slot_acquire, org_slot_release
from tests.conftest import wait_for
from tests.sync.conftest import directory_control, set_faults

ROOT = Path(__file__).resolve().parents[2]


def kill_worker_tree(process: subprocess.Popen) -> None:
    """SIGKILL the worker and its prefork children at once: no warm shutdown, no acknowledgement, no cleanup."""
    pids = [process.pid]
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)


def job_state(job_id) -> DataSyncJob:
    return DataSyncJob.objects.get(pk=job_id)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_sigkilled_mid_sync_resumes_from_cursor_with_nothing_lost_or_doubled(celery_worker_process, make_directory, organization, sandbox):
    directory_control(sandbox, "/_control/load", count=400, prefix="w")
    integration = make_directory(organization, page_size=10)
    source = DataSource.objects.get(integration=integration, entity_type="people")
    set_faults(sandbox, latency_ms=60)
    worker = celery_worker_process(concurrency=1)

    job = services.sync_start(data_source=source)
    wait_for(lambda: job_state(job.pk).pages >= 5, timeout=60, message="five pages stored")
    kill_worker_tree(worker)

    at_kill = job_state(job.pk)
    assert at_kill.status == JobStatus.RUNNING and 5 <= at_kill.pages < 40
    assert SyncRecord.objects.filter(integration=integration).count() == at_kill.pages * 10 == at_kill.records_processed
    assert at_kill.next_page == {"after": f"w{at_kill.pages * 10 - 1:07d}", "mark": at_kill.next_page["mark"]}

    celery_worker_process(concurrency=1)
    assert services.sync_jobs_reap(now=timezone.now() + timedelta(minutes=10)) == [str(job.pk)]
    wait_for(lambda: job_state(job.pk).status == JobStatus.SUCCEEDED, timeout=90, message="resumed job to finish")

    done = job_state(job.pk)
    assert (done.pages, done.records_processed, done.created_count, done.updated_count, done.deleted_count) == (40, 400, 400, 0, 0)
    records = dict(SyncRecord.objects.filter(integration=integration, is_deleted=False).values_list("external_id", "data__email"))
    assert records == {f"w{i:07d}": f"person{i}.w@bulk.example" for i in range(400)}
    assert Person.objects.filter(organization=organization).count() == 400 == PersonIdentity.objects.filter(integration=integration).count()
    source.refresh_from_db()
    assert source.cursor == {"updated_since": at_kill.next_page["mark"]} and not source.is_stale
    assert done.log_lines.filter(event="job.resumed").count() == 1
    assert done.log_lines.filter(event="page.stored").count() == 40


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_small_tenant_is_not_starved_by_a_large_one(celery_worker_process, make_directory, organization, other_organization, sandbox):
    directory_control(sandbox, "/_control/load", count=300, prefix="f")
    big = DataSource.objects.get(integration=make_directory(organization, page_size=5), entity_type="people")
    small = DataSource.objects.get(integration=make_directory(other_organization, page_size=1000), entity_type="people")
    set_faults(sandbox, latency_ms=20)
    celery_worker_process(concurrency=1)

    big_job = services.sync_start(data_source=big)
    wait_for(lambda: job_state(big_job.pk).pages >= 1, timeout=60, message="the large sync to begin")
    small_job = services.sync_start(data_source=small)
    wait_for(lambda: job_state(small_job.pk).status == JobStatus.SUCCEEDED, timeout=60, message="the small sync")

    big_at_small_done = job_state(big_job.pk)
    assert big_at_small_done.status == JobStatus.RUNNING and big_at_small_done.pages < 30, "the small tenant waited for at most a few pages"
    wait_for(lambda: job_state(big_job.pk).status == JobStatus.SUCCEEDED, timeout=120, message="the large sync")
    assert job_state(big_job.pk).created_count == 300 and job_state(small_job.pk).created_count == 300


@pytest.mark.django_db
def test_per_organization_slots_cap_concurrency(settings):
    settings.BASTION_SYNC_MAX_CONCURRENT_PER_ORG = 1
    assert org_slot_acquire(organization_id="org-a", job_id="j1")
    assert org_slot_acquire(organization_id="org-a", job_id="j1"), "re-entrant for the same job"
    assert not org_slot_acquire(organization_id="org-a", job_id="j2")
    assert org_slot_acquire(organization_id="org-b", job_id="j3")
    org_slot_release(organization_id="org-a", job_id="j1")
    assert org_slot_acquire(organization_id="org-a", job_id="j2")
    org_slot_release(organization_id="org-a", job_id="j2")
    org_slot_release(organization_id="org-b", job_id="j3")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_celery_beat_runs_the_data_source_schedule(celery_worker_process, make_directory, organization, sandbox):
    from django.db import connection

    source = DataSource.objects.get(integration=make_directory(organization), entity_type="people")
    task = PeriodicTask.objects.get(pk=source.schedule_id)
    task.interval = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)[0]
    task.save()
    celery_worker_process(concurrency=1)
    db = connection.settings_dict
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bastion_site", "beat", "-l", "info", "--scheduler", "sync.scheduler:SyncDispatchingScheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        job = wait_for(
            lambda: DataSyncJob.objects.filter(data_source=source, trigger="schedule", status=JobStatus.SUCCEEDED).first(),
            timeout=60,
            message="a scheduled sync",
        )
    finally:
        beat.kill()
        beat.wait(timeout=10)
    assert job.created_count == 20 and SyncRecord.objects.filter(integration=source.integration).count() == 20
