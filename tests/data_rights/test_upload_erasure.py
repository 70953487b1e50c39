"""Erasing a person leaves them in no stored CSV upload, and the daily retention task sweeps uploads no import needs."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.models import AuditEvent, Role
from data_rights.models import DataRightsRequest
from data_rights.tasks import enforce_retention
from people.models import Person
from sync import services
from sync.models import DataSyncJob, JobStatus
from sync.services.imports import csv_import_start, csv_upload_path, csv_upload_store

pytestmark = pytest.mark.django_db

EMAIL = "zoe.muller@acme.example"
CONTENT = f"email,name\n{EMAIL},Zoë Müller\nava.chen@acme.example,Ava Chen\n".encode()


def store(organization, *, age: timedelta = timedelta(0)) -> tuple[str, Path]:
    upload_id = csv_upload_store(organization=organization, uploaded=io.BytesIO(CONTENT))
    path = csv_upload_path(organization=organization, upload_id=upload_id)
    if age:
        stamp = (timezone.now() - age).timestamp()
        os.utime(path, (stamp, stamp))
    return upload_id, path


def queue(organization, upload_id: str, django_capture_on_commit_callbacks) -> DataSyncJob:
    with django_capture_on_commit_callbacks(execute=False):
        return csv_import_start(organization=organization, upload_id=upload_id, mapping={"email": "email", "name": "name"})


def files_naming(settings, needle: str) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(path for path in root.rglob("*") if path.is_file() and needle.encode() in path.read_bytes())


def test_erasure_deletes_the_organizations_stored_uploads_except_one_an_active_import_reads(
    settings, organization, other_organization, api_for, users_by_role, django_capture_on_commit_callbacks
):
    person = Person.objects.create(organization=organization, email=EMAIL, display_name="Zoë Müller")
    _, fresh = store(organization)  # uploaded a minute ago, not imported yet: within the grace, but it names her
    upload_id, of_failed = store(organization)
    DataSyncJob.objects.filter(pk=queue(organization, upload_id, django_capture_on_commit_callbacks).pk).update(status=JobStatus.FAILED)
    upload_id, held = store(organization)
    running = queue(organization, upload_id, django_capture_on_commit_callbacks)
    _, elsewhere = store(other_organization)

    response = api_for(users_by_role[Role.ADMIN]).post(f"/api/data-rights/people/{person.pk}/erase")

    assert response.status_code == 200, response.content
    erased = response.json()["erased"]
    assert (erased["csv_uploads_deleted"], erased["csv_uploads_held_by_active_imports"]) == (2, 1)
    assert not fresh.exists() and not of_failed.exists()
    assert held.exists() and elsewhere.exists()  # another organization's files are not this erasure's
    request = DataRightsRequest.objects.get(kind="erase")
    assert (request.summary["csv_uploads_deleted"], request.summary["csv_uploads_held_by_active_imports"]) == (2, 1)
    audit = AuditEvent.objects.get(action="data_rights.erase")
    assert audit.changes["counts"]["csv_uploads_deleted"] == 2
    assert upload_id not in str(audit.changes) and upload_id not in str(request.summary)

    # The import that held its file skips her (suppressed) and deletes the file when it ends: nothing on disk names her.
    services.csv_import_run(job_id=running.pk)
    running.refresh_from_db()
    assert (running.status, running.created_count, running.metadata["suppressed"]) == (JobStatus.SUCCEEDED, 1, 1)
    assert not Person.objects.filter(organization=organization, email=EMAIL).exists()
    assert files_naming(settings, EMAIL) == [elsewhere]


def test_erasure_with_no_upload_stored_reports_zero(organization, api_for, users_by_role):
    person = Person.objects.create(organization=organization, email=EMAIL, display_name="Zoë Müller")
    erased = api_for(users_by_role[Role.ADMIN]).post(f"/api/data-rights/people/{person.pk}/erase").json()["erased"]
    assert (erased["sync.Person"], erased["csv_uploads_deleted"], erased["csv_uploads_held_by_active_imports"]) == (1, 0, 0)


def test_daily_retention_task_sweeps_uploads(settings, organization, django_capture_on_commit_callbacks):
    _, unused_old = store(organization, age=timedelta(hours=30))
    _, unused_recent = store(organization, age=timedelta(hours=2))
    upload_id, ended = store(organization)
    services.sync_job_cancel(job=queue(organization, upload_id, django_capture_on_commit_callbacks))
    upload_id, queued = store(organization, age=timedelta(days=5))
    queue(organization, upload_id, django_capture_on_commit_callbacks)

    totals = enforce_retention()

    assert totals["csv_uploads"] == 2
    assert not unused_old.exists() and not ended.exists()
    assert unused_recent.exists() and queued.exists()
    assert AuditEvent.objects.get(action="data_rights.retention").changes["csv_uploads"] == 2
    assert enforce_retention()["csv_uploads"] == 0
