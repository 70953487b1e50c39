"""Fault tests: 429 storms, 5xx bursts, token expiry mid-sync, a vendor down for the whole sync; each ends with exactly the right records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from integrations.models import IntegrationStatus
from people.models import Person
from sync import services
from sync.models import JobStatus, SyncRecord
from tests.sync.conftest import DIRECTORY_TOKEN, set_faults

pytestmark = pytest.mark.django_db
ALL_IDS = {f"p{i:06d}" for i in range(1, 21)}


def stored(integration) -> dict[str, str]:
    return dict(SyncRecord.objects.filter(integration=integration, is_deleted=False).values_list("external_id", "data__title"))


def test_429_storm_pauses_and_resumes_without_failing(run_sync, reap, people_source, directory, sandbox):
    set_faults(sandbox, rate_limit_next=2, retry_after=30)

    job = run_sync(people_source)

    assert job.status == JobStatus.RUNNING and job.phase == "paused" and job.is_paused
    assert 25 <= (job.resume_at - timezone.now()).total_seconds() <= 40
    assert job.log_lines.filter(event="job.paused", level="warning").exists()
    # The beat-driven reaper picks the job up once its resume time has passed (the countdown task would too).
    for _ in range(3):
        reap(now=timezone.now() + timedelta(minutes=10))
        job.refresh_from_db()
        if job.status == JobStatus.SUCCEEDED:
            break
    assert job.status == JobStatus.SUCCEEDED and job.error_count == 0
    assert (job.records_processed, job.created_count) == (20, 20)
    assert set(stored(directory)) == ALL_IDS
    directory.refresh_from_db()
    assert directory.status == IntegrationStatus.CONNECTED


def test_5xx_burst_is_retried_then_completes(run_sync, people_source, directory, sandbox):
    set_faults(sandbox, error_next=2, error_status=502)

    job = run_sync(people_source)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.records_processed, job.created_count, job.pages) == (20, 20, 3)
    assert job.log_lines.filter(event="page.retry").count() == 2
    assert set(stored(directory)) == ALL_IDS


def test_token_revoked_mid_sync_marks_auth_failed_keeps_data_and_stops_schedules(people_source, directory, sandbox, django_capture_on_commit_callbacks):
    job = services.sync_start(data_source=people_source)
    assert not services.sync_job_step(job_id=job.pk).is_done  # page 1 of 3 stored
    set_faults(sandbox, revoked=True)

    assert services.sync_job_step(job_id=job.pk).is_done

    job.refresh_from_db()
    directory.refresh_from_db()
    people_source.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error_class == "auth"
    assert directory.status == IntegrationStatus.AUTH_FAILED
    assert people_source.is_stale and "Authorization failed" in people_source.stale_reason
    # Paused by the integration's status, not by flipping the schedule row: beat still fires, the run is skipped.
    assert PeriodicTask.objects.get(pk=people_source.schedule_id).enabled is True
    assert services.schedules_paused_for_reconnect(integration=directory) is True
    assert services.sync_scheduled_run(data_source_id=people_source.pk) is None
    assert len(stored(directory)) == 7, "the page stored before the failure is kept"
    assert Person.objects.filter(organization=directory.organization).count() == 7
    with pytest.raises(Exception, match="reconnect"):
        services.sync_start(data_source=people_source)

    # Reconnected through the real service (new credential, tested): the next scheduled run syncs, exactly, and clears the staleness.
    set_faults(sandbox, revoked=False)
    from integrations.services import integration_reconnect

    assert integration_reconnect(integration=directory, credentials={"token": DIRECTORY_TOKEN}).ok is True
    directory.refresh_from_db()
    assert directory.status == IntegrationStatus.CONNECTED and services.schedules_paused_for_reconnect(integration=directory) is False
    with django_capture_on_commit_callbacks(execute=True):
        again = services.sync_scheduled_run(data_source_id=people_source.pk)
    again.refresh_from_db()
    people_source.refresh_from_db()
    assert again.status == JobStatus.SUCCEEDED and again.trigger == "schedule" and set(stored(directory)) == ALL_IDS
    assert people_source.is_stale is False and people_source.stale_reason == ""


def test_vendor_down_for_whole_sync_keeps_last_good_data_and_marks_stale(run_sync, people_source, directory, sandbox):
    good = run_sync(people_source)
    assert good.status == JobStatus.SUCCEEDED
    before = stored(directory)
    set_faults(sandbox, down=True)

    job = run_sync(people_source, full_refresh=True)

    assert job.status == JobStatus.FAILED and job.error_class == "transient"
    assert job.log_lines.filter(event="page.retry").count() == 2  # BASTION_SYNC_MAX_ATTEMPTS = 3
    assert "503" in job.last_error or "unavailable" in job.last_error
    people_source.refresh_from_db()
    assert people_source.is_stale and "Last sync failed" in people_source.stale_reason
    assert stored(directory) == before and len(before) == 20
    directory.refresh_from_db()
    assert directory.last_error and directory.status != IntegrationStatus.AUTH_FAILED

    set_faults(sandbox, down=False)
    recovered = run_sync(people_source)
    people_source.refresh_from_db()
    assert recovered.status == JobStatus.SUCCEEDED and not people_source.is_stale


def test_quota_exhaustion_pauses_until_window(people_source, directory):
    from integrations.errors import ApiQuotaExhausted
    from sync.services.jobs import _handle_error

    job = services.sync_start(data_source=people_source)
    reset = timezone.now() + timedelta(hours=2)
    outcome = _handle_error(job, ApiQuotaExhausted("Daily API quota used", reset_at=reset, status=403))
    job.refresh_from_db()
    assert not outcome.is_done and outcome.countdown >= 7199
    assert job.status == JobStatus.PENDING and job.phase == "paused" and job.resume_at >= reset


def test_reaper_fails_a_dead_import_whose_upload_is_gone_and_leaves_live_jobs_alone(organization, reap):
    """A dead import resumes from its committed position (tests/sync/test_csv_resume.py); with no stored upload it cannot, and says so."""
    from sync.models import DataSyncJob

    dead = DataSyncJob.objects.create(organization=organization, job_type="import", status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    alive = DataSyncJob.objects.create(organization=organization, job_type="import", status=JobStatus.RUNNING, heartbeat_at=timezone.now())

    assert reap() == []

    dead.refresh_from_db()
    alive.refresh_from_db()
    line = dead.log_lines.get()
    assert dead.status == JobStatus.FAILED and line.event == "import.abandoned" and dead.error_count == 1
    assert "upload" in line.message
    assert alive.status == JobStatus.RUNNING
