"""The sync engine against the Sandbox Directory over real HTTP: paging, cursors, hashing, deletions, one active job."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from integrations.models import DataSource
from people.models import Person, PersonIdentity
from sync import services
from sync.models import DataSyncJob, JobStatus, SyncRecord
from tests.sync.conftest import directory_control, set_faults

pytestmark = pytest.mark.django_db


def live_ids(integration) -> set[str]:
    return set(SyncRecord.objects.filter(integration=integration, entity_type="people", is_deleted=False).values_list("external_id", flat=True))


def test_full_sync_pages_records_cursor_and_people(run_sync, people_source, directory):
    job = run_sync(people_source)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.pages, job.records_processed, job.created_count, job.updated_count, job.deleted_count) == (3, 20, 20, 0, 0)
    assert job.is_full_refresh and job.started_at and job.completed_at and job.phase == "done"
    assert live_ids(directory) == {f"p{i:06d}" for i in range(1, 21)}
    ava = SyncRecord.objects.get(integration=directory, external_id="p000001")
    assert ava.data["email"] == "ava.chen@acme.example" and ava.raw["title"] == "Chief Executive Officer"
    assert ava.last_seen_job_id == job.pk and ava.source_updated_at is not None
    people_source.refresh_from_db()
    assert set(people_source.cursor) == {"updated_since"} and people_source.last_synced_at and not people_source.is_stale
    assert people_source.schedule is not None and people_source.schedule.task == "sync.tasks.sync_data_source_scheduled"
    assert Person.objects.filter(organization=directory.organization).count() == 20
    marcus = Person.objects.get(email="marcus.okafor@acme.example")
    assert marcus.manager.email == "ava.chen@acme.example"
    assert marcus.provenance["title"]["source"] == "sandbox_directory"
    events = list(job.log_lines.values_list("event", flat=True))
    assert events == ["job.queued", "page.stored", "page.stored", "page.stored", "job.succeeded"]


def test_resync_unchanged_skips_by_hash_then_incremental_reads_only_changes(run_sync, people_source, directory, sandbox):
    run_sync(people_source)
    before = dict(SyncRecord.objects.filter(integration=directory).values_list("external_id", "updated_at"))

    again = run_sync(people_source, full_refresh=True)
    assert (again.created_count, again.updated_count, again.unchanged_count, again.deleted_count) == (0, 0, 20, 0)
    assert dict(SyncRecord.objects.filter(integration=directory).values_list("external_id", "updated_at")) == before

    directory_control(sandbox, "/_control/people", id="p000003", title="Chief Legal Officer")
    directory_control(sandbox, "/_control/people", id="p000099", email="New.Hire@Acme.example", name="New Hire")
    incremental = run_sync(people_source)
    assert not incremental.is_full_refresh
    assert (incremental.records_processed, incremental.created_count, incremental.updated_count) == (2, 1, 1)
    assert SyncRecord.objects.get(integration=directory, external_id="p000003").data["title"] == "Chief Legal Officer"
    assert Person.objects.get(email="priya.raman@acme.example").title == "Chief Legal Officer"
    assert Person.objects.get(email="new.hire@acme.example").display_name == "New Hire"


def test_incremental_applies_explicit_deletions(run_sync, people_source, directory, sandbox):
    run_sync(people_source)
    directory_control(sandbox, "/_control/people/p000020", method="DELETE")

    job = run_sync(people_source)

    assert job.deleted_count == 1 and job.status == JobStatus.SUCCEEDED
    assert live_ids(directory) == {f"p{i:06d}" for i in range(1, 20)}
    record = SyncRecord.objects.get(integration=directory, external_id="p000020")
    assert record.is_deleted and record.deleted_at
    amara = Person.objects.get(email="amara.nwosu@acme.example")
    assert amara.is_active is False
    assert PersonIdentity.objects.get(person=amara).attributes["deleted"] is True


def test_full_refresh_marks_vanished_records_deleted_only_after_complete_scan(run_sync, people_source, directory, sandbox):
    run_sync(people_source)
    # Gone without a trace in the deletions feed: only a full scan can notice.
    directory_control(sandbox, "/_control/load", count=0)  # empties the directory (also clears the feed)
    directory_control(sandbox, "/_control/people", id="p000001", email="ava.chen@acme.example", name="Ava Chen")

    set_faults(sandbox, error_next=99, error_status=503)
    failed = run_sync(people_source, full_refresh=True)
    assert failed.status == JobStatus.FAILED
    assert len(live_ids(directory)) == 20, "a failed full scan must not delete anything"

    set_faults(sandbox, error_next=0)
    done = run_sync(people_source, full_refresh=True)
    assert done.status == JobStatus.SUCCEEDED and done.deleted_count == 19
    assert live_ids(directory) == {"p000001"}


def test_one_active_job_per_data_source(run_sync, people_source, directory):
    first = services.sync_start(data_source=people_source)  # not committed to the queue: stays pending
    second = services.sync_start(data_source=people_source)
    assert first.already_running is False and second.already_running is True and second.pk == first.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        DataSyncJob.objects.create(organization=directory.organization, integration=directory, data_source=people_source, status=JobStatus.RUNNING)
    assert DataSyncJob.objects.filter(data_source=people_source).count() == 1


def test_redelivered_step_commits_nothing_twice(run_sync, people_source, directory):
    job = run_sync(people_source)
    pages, processed = job.pages, job.records_processed

    outcome = services.sync_job_step(job_id=job.pk)  # a late duplicate delivery of the task

    assert outcome.is_done
    job.refresh_from_db()
    assert (job.pages, job.records_processed, job.status) == (pages, processed, JobStatus.SUCCEEDED)


def test_superseded_page_is_discarded(people_source, directory, django_capture_on_commit_callbacks):
    job = services.sync_start(data_source=people_source)
    services.sync_job_step(job_id=job.pk)  # page 1 stored
    job.refresh_from_db()
    # Simulate a second worker that read page 1 before the first committed it: its copy must not be applied.
    DataSyncJob.objects.filter(pk=job.pk).update(pages=0, next_page=None)
    stale_copy_position = job.next_page
    DataSyncJob.objects.filter(pk=job.pk).update(pages=1, next_page=stale_copy_position)
    services.sync_job_step(job_id=job.pk)
    job.refresh_from_db()
    assert job.pages == 2 and job.records_processed == 14 and job.created_count == 14


def test_groups_entity_syncs_without_people_merge(run_sync, directory):
    source = DataSource.objects.get(integration=directory, entity_type="groups")
    job = run_sync(source)
    assert job.status == JobStatus.SUCCEEDED and job.created_count == 2
    assert SyncRecord.objects.get(integration=directory, entity_type="groups", external_id="g1").data == {
        "external_id": "g1",
        "name": "security",
        "members": ["p000002", "p000007"],
    }
    assert PersonIdentity.objects.filter(entity_type="groups").count() == 0


def test_webhook_newer_record_wins_over_older_polled_page(run_sync, people_source, directory):
    from integrations.services import build_connector
    from sync.services.records import records_upsert

    run_sync(people_source)
    connector = build_connector(directory)
    record = SyncRecord.objects.get(integration=directory, external_id="p000005")
    newer = {**record.raw, "title": "CTO", "updated_at": "2099-01-01T00:00:00+00:00"}
    older = {**record.raw, "title": "Old title", "updated_at": "2000-01-01T00:00:00+00:00"}
    with transaction.atomic():
        assert records_upsert(integration=directory, entity_type="people", records=[newer], connector=connector).updated == 1
        assert records_upsert(integration=directory, entity_type="people", records=[older], connector=connector).stale == 1
    assert SyncRecord.objects.get(pk=record.pk).data["title"] == "CTO"
