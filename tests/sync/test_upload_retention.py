"""Stored CSV uploads (people's data) do not outlive their use: real files under a temporary MEDIA_ROOT, imports in every state.

An ended import's upload goes at once (or at the next sweep when its worker died before deleting it), one never imported goes
after the grace, and one a pending or running import holds stays: the reaper may still resume that import from its position.
"""

from __future__ import annotations

import io
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from people.models import Person
from sync import services
from sync.models import DataSyncJob, JobStatus
from sync.services.imports import UploadCleanup, csv_import_start, csv_upload_path, csv_upload_store, csv_uploads_sweep

pytestmark = pytest.mark.django_db

CONTENT = b"email,name,title\nava.chen@acme.example,Ava Chen,CEO\nliam.novak@acme.example,Liam Novak,Engineer\n"
MAPPING = {"email": "email", "name": "name", "title": "title"}


def store(organization, *, age: timedelta = timedelta(0)) -> tuple[str, Path]:
    upload_id = csv_upload_store(organization=organization, uploaded=io.BytesIO(CONTENT))
    path = csv_upload_path(organization=organization, upload_id=upload_id)
    if age:
        stamp = (timezone.now() - age).timestamp()
        os.utime(path, (stamp, stamp))
    return upload_id, path


def queue(organization, upload_id: str, django_capture_on_commit_callbacks) -> DataSyncJob:
    """Queue an import whose task message is never delivered (it stays pending, as when a broker lost it)."""
    with django_capture_on_commit_callbacks(execute=False):
        return csv_import_start(organization=organization, upload_id=upload_id, mapping=MAPPING)


def on_disk(settings) -> set[Path]:
    return {path for path in (Path(settings.MEDIA_ROOT) / "imports").rglob("*") if path.is_file()}


def test_sweep_deletes_every_upload_no_import_needs_and_keeps_those_an_import_may_resume(
    settings, organization, other_organization, django_capture_on_commit_callbacks, reap
):
    long_ago = timezone.now() - timedelta(hours=2)
    keep: dict[str, Path] = {}
    gone: dict[str, Path] = {}

    upload_id, keep["pending (its task lost)"] = store(organization, age=timedelta(days=3))
    pending = queue(organization, upload_id, django_capture_on_commit_callbacks)
    upload_id, keep["running, worker dead"] = store(organization, age=timedelta(days=3))
    dead = queue(organization, upload_id, django_capture_on_commit_callbacks)
    DataSyncJob.objects.filter(pk=dead.pk).update(status=JobStatus.RUNNING, started_at=long_ago, heartbeat_at=long_ago)
    for status in (JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED):
        # Ended while its file stayed (the worker died between the job's commit and the delete, or before this cleanup existed).
        upload_id, gone[status] = store(organization)
        DataSyncJob.objects.filter(pk=queue(organization, upload_id, django_capture_on_commit_callbacks).pk).update(status=status, completed_at=timezone.now())
    upload_id, gone["cancelled"] = store(organization)
    services.sync_job_cancel(job=queue(organization, upload_id, django_capture_on_commit_callbacks))
    # One file imported twice: the first import failed, the second is still queued.
    upload_id, keep["failed once, queued again"] = store(organization, age=timedelta(days=3))
    DataSyncJob.objects.filter(pk=queue(organization, upload_id, django_capture_on_commit_callbacks).pk).update(status=JobStatus.FAILED)
    queue(organization, upload_id, django_capture_on_commit_callbacks)
    _, gone["never imported, 25 h old"] = store(organization, age=timedelta(hours=25))
    _, keep["never imported, 23 h old"] = store(organization, age=timedelta(hours=23))
    _, gone["other organization, 25 h old"] = store(other_organization, age=timedelta(hours=25))
    upload_id, keep["other organization, running"] = store(other_organization, age=timedelta(days=3))
    DataSyncJob.objects.filter(pk=queue(other_organization, upload_id, django_capture_on_commit_callbacks).pk).update(status=JobStatus.RUNNING)
    stray = keep["never imported, 23 h old"].with_name("leftover.part")
    stray.write_bytes(CONTENT)
    os.utime(stray, (long_ago.timestamp() - 86400, long_ago.timestamp() - 86400))
    gone["not an upload's name, 26 h old"] = stray

    assert csv_uploads_sweep() == UploadCleanup(deleted=len(gone), held_by_active_import=4, kept_within_grace=1)
    assert on_disk(settings) == set(keep.values())
    assert csv_uploads_sweep() == UploadCleanup(deleted=0, held_by_active_import=4, kept_within_grace=1)

    # The imports the sweep left alone are resumed by the reaper from their files, and each file goes when its import ends.
    assert set(reap(now=timezone.now() + timedelta(minutes=10))) >= {str(pending.pk), str(dead.pk)}
    for job in (pending, dead):
        job.refresh_from_db()
        assert (job.status, job.created_count + job.updated_count) == (JobStatus.SUCCEEDED, 2)
    assert not keep["pending (its task lost)"].exists() and not keep["running, worker dead"].exists()
    assert Person.objects.filter(organization=organization).count() == 2


def test_the_grace_for_unused_uploads_is_a_setting(settings, organization):
    settings.BASTION_CSV_UPLOAD_GRACE_HOURS = 2
    _, old = store(organization, age=timedelta(hours=3))
    _, recent = store(organization, age=timedelta(hours=1))
    assert csv_uploads_sweep() == UploadCleanup(deleted=1, held_by_active_import=0, kept_within_grace=1)
    assert on_disk(settings) == {recent}
    # `now` is the sweep's clock: a day later the recent one is past the grace too.
    assert csv_uploads_sweep(now=timezone.now() + timedelta(days=1)).deleted == 1
    assert on_disk(settings) == set()
    assert not old.exists()


def test_an_import_that_fails_deletes_its_upload_at_once(settings, organization, django_capture_on_commit_callbacks, reap):
    upload_id, path = store(organization)
    job = queue(organization, upload_id, django_capture_on_commit_callbacks)
    # A committed position the stored file does not match: the resumed run refuses it and the import fails.
    DataSyncJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, pages=1, next_page={"rows": 1, "line": 7})

    assert reap(now=timezone.now() + timedelta(minutes=10)) == [str(job.pk)]

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "no longer matches" in job.last_error
    assert not path.exists()
    assert on_disk(settings) == set()


def test_an_ended_import_leaves_the_upload_another_active_import_reads(settings, organization, django_capture_on_commit_callbacks):
    upload_id, path = store(organization)
    first = queue(organization, upload_id, django_capture_on_commit_callbacks)
    second = queue(organization, upload_id, django_capture_on_commit_callbacks)

    services.csv_import_run(job_id=first.pk)
    first.refresh_from_db()
    assert first.status == JobStatus.SUCCEEDED
    assert path.exists(), "the second import still reads this file"

    services.csv_import_run(job_id=second.pk)
    second.refresh_from_db()
    assert second.status == JobStatus.SUCCEEDED and second.updated_count + second.created_count == 2
    assert not path.exists()


def test_sweep_logs_counts_never_names(settings, organization, caplog):
    upload_id, _ = store(organization, age=timedelta(days=2))
    with caplog.at_level(logging.INFO, logger="sync.services.imports"):
        csv_uploads_sweep()
    [record] = [r for r in caplog.records if r.msg == "sync.csv_uploads.swept"]
    assert (record.deleted, record.held_by_active_import, record.kept_within_grace) == (1, 0, 0)
    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert upload_id not in everything and "ava.chen" not in everything


def test_sweep_without_any_upload_stored(settings):
    assert not (Path(settings.MEDIA_ROOT) / "imports").exists()
    assert csv_uploads_sweep() == UploadCleanup()


def test_a_cancelled_import_deletes_its_upload_when_its_task_runs(settings, organization, django_capture_on_commit_callbacks):
    upload_id, path = store(organization)
    job = queue(organization, upload_id, django_capture_on_commit_callbacks)
    services.sync_job_cancel(job=job)
    assert path.exists()  # cancelling only marks the job; the task (or the daily sweep) deletes the file

    services.csv_import_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.records_processed == 0
    assert not path.exists()
    assert not Person.objects.filter(organization=organization).exists()
