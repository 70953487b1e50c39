"""The one write path (COPY into staging tables + set-based SQL) end to end: engine runs, CSV imports, planner statistics, managers."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from integrations.models import Integration, IntegrationStatus
from people import services as people_services
from people.models import Person
from sync import services
from sync.models import DataSyncJob, JobStatus, SyncRecord, SyncScanSeen
from sync.selectors import records_with_last_seen
from tests.sync.conftest import directory_control

pytestmark = pytest.mark.django_db


def test_engine_run_stores_records_and_scan_list(settings, run_sync, people_source, directory, sandbox):
    """Full sync, unchanged re-sync, incremental change, then a full scan that deletes what vanished: same counts on both paths."""
    first = run_sync(people_source)
    assert (first.status, first.created_count, first.pages) == (JobStatus.SUCCEEDED, 20, 3)
    marcus = Person.objects.get(email="marcus.okafor@acme.example")
    assert marcus.manager.email == "ava.chen@acme.example"

    again = run_sync(people_source, full_refresh=True)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 20)
    # Every record counts as seen by the re-scan; on PostgreSQL the scan listed them instead of rewriting them, then dropped its list.
    assert all(record.seen_at >= again.started_at for record in records_with_last_seen(SyncRecord.objects.filter(integration=directory)))
    stamped_by = set(SyncRecord.objects.filter(integration=directory).values_list("last_seen_job", flat=True))
    assert stamped_by == {first.pk}
    assert not SyncScanSeen.objects.exists()

    directory_control(sandbox, "/_control/people", id="p000003", title="Chief Legal Officer")
    incremental = run_sync(people_source)
    assert (incremental.records_processed, incremental.updated_count) == (1, 1)
    assert Person.objects.get(email="priya.raman@acme.example").title == "Chief Legal Officer"

    directory_control(sandbox, "/_control/load", count=0)
    directory_control(sandbox, "/_control/people", id="p000001", email="ava.chen@acme.example", name="Ava Chen")
    scan = run_sync(people_source, full_refresh=True)
    assert scan.status == JobStatus.SUCCEEDED and scan.deleted_count == 19
    assert Person.objects.get(email="marcus.okafor@acme.example").is_active is False


def test_csv_import_end_to_end(settings, api, organization, django_capture_on_commit_callbacks, monkeypatch):
    """Row errors with lines, duplicates within and across batches, managers named before or after their reports."""
    from tests.sync.test_csv_import import run

    settings.BASTION_CSV_IMPORT_BATCH_SIZE = 3
    content = (
        b"email,name,manager\n"
        b"report@acme.example,Report,boss@acme.example\n"  # 2: the manager comes in a later batch
        b"bad,Bad,\n"  # 3
        b"x@acme.example,X,\n"  # 4
        b"boss@acme.example,Boss,\n"  # 5
        b"X@acme.example,X again,\n"  # 6: duplicate of line 4, in another batch
        b"y@acme.example,Y,boss@acme.example\n"  # 7
    )
    _, job = run(api, content, django_capture_on_commit_callbacks, mapping={"email": "email", "name": "name", "manager_email": "manager"})

    assert job.status == JobStatus.PARTIAL and (job.created_count, job.error_count) == (4, 2)
    assert job.error_log == [
        {"line": 3, "reason": "email 'bad' is not an email address"},
        {"line": 6, "reason": "duplicate of line 4 (x@acme.example); not imported twice"},
    ]
    boss = Person.objects.get(organization=organization, email="boss@acme.example")
    assert Person.objects.get(email="report@acme.example").manager == boss and Person.objects.get(email="y@acme.example").manager == boss
    assert Person.objects.get(email="x@acme.example").display_name == "X"


def test_bulk_loads_refresh_planner_statistics_at_thresholds(settings):
    from sync.services.records import tables_analyze_on_growth

    assert tables_analyze_on_growth(before=0, after=2_000, tables=["sync_syncrecord"]) is True
    assert tables_analyze_on_growth(before=2_000, after=9_999, tables=["sync_syncrecord"]) is False  # between thresholds: nothing to do
    assert tables_analyze_on_growth(before=9_000, after=60_000, tables=["sync_person", "sync_personidentity"]) is True


def test_managers_that_arrive_after_their_reports_are_linked_at_the_end(settings, organization):
    okta = Integration.objects.create(organization=organization, connector_key="okta", display_name="Okta", status=IntegrationStatus.CONNECTED)
    report = {"external_id": "r1", "email": "report@acme.example", "name": "Report", "manager_external_id": "m1"}
    with transaction.atomic():
        people_services.people_merge(organization=organization, source="okta", integration=okta, entity_type="users", items=[report])
        people_services.people_merge(
            organization=organization,
            source="okta",
            integration=okta,
            entity_type="users",
            items=[{"external_id": "m1", "email": "m@acme.example", "name": "M"}],
        )
    assert Person.objects.get(email="report@acme.example").manager is None  # the manager was unknown when the report was merged

    from people.services import people_link_managers

    assert people_link_managers(organization=organization, source="okta", integration=okta, changed_rows=10_000) == 1
    assert Person.objects.get(email="report@acme.example").manager.email == "m@acme.example"
    assert people_link_managers(organization=organization, source="okta", integration=okta) == 0  # idempotent


def test_reaper_drops_scan_lists_of_ended_jobs_only(run_sync, people_source, directory):
    """A full scan's list of unchanged records outlives its job only after a crash; the reaper's sweep keeps active jobs' lists."""
    ended = run_sync(people_source)
    active = DataSyncJob.objects.create(
        organization=ended.organization, integration=ended.integration, data_source=people_source, status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )
    SyncScanSeen.objects.bulk_create([SyncScanSeen(job_id=ended.pk, external_id="p000001"), SyncScanSeen(job_id=active.pk, external_id="p000002")])

    services.sync_jobs_reap()

    assert list(SyncScanSeen.objects.values_list("job_id", "external_id")) == [(active.pk, "p000002")]
