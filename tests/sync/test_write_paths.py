"""The two write paths agree: COPY + set-based SQL (PostgreSQL) and the portable ORM path (SQLite, the embedded demo).

The ORM path is exercised here on PostgreSQL by calling it directly (records_upsert_orm, people_merge_orm) and by whole runs with
settings.BASTION_SYNC_BULK_SQL = False; the same inputs must leave the same records, people, identities, counts and job logs.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from integrations.models import Integration, IntegrationStatus
from integrations.services import build_connector
from sync import services
from sync.models import DataSyncJob, JobStatus, Person, PersonIdentity, SyncRecord, SyncScanSeen
from sync.selectors import records_with_last_seen
from sync.services.people import people_merge_orm
from sync.services.records import bulk_sql_available, records_upsert_orm
from tests.sync.conftest import directory_control

pytestmark = pytest.mark.django_db


def person_snapshot(organization) -> list[tuple]:
    """Everything the merge decides about each person, without ids and times that differ between two organizations."""
    rows = []
    for person in Person.objects.filter(organization=organization).select_related("manager").order_by("email", "display_name"):
        provenance = {
            field: (entry.get("value"), entry.get("source"), entry.get("external_id")) for field, entry in person.provenance.items() if field != "manager"
        }
        identities = sorted((i.source, i.external_id, i.entity_type, tuple(sorted(k for k in i.attributes))) for i in person.identities.all())
        rows.append(
            (
                person.email,
                person.display_name,
                person.given_name,
                person.family_name,
                person.title,
                person.department,
                person.phone,
                tuple(person.groups),
                person.is_active,
                person.manager.email if person.manager else None,
                person.search_text,
                tuple(sorted(provenance.items())),
                tuple(identities),
            )
        )
    return rows


def test_postgres_uses_the_copy_path_and_the_setting_falls_back(settings):
    assert connection.vendor == "postgresql" and bulk_sql_available()
    settings.BASTION_SYNC_BULK_SQL = False
    assert not bulk_sql_available()


MERGES: list[tuple[str, list[dict[str, Any]]]] = [
    (
        "okta",
        [
            {"external_id": "m1", "email": "Boss@Acme.example", "name": "Boss", "title": "CEO", "groups": ["exec"]},
            {"external_id": "r1", "email": "report@acme.example", "name": "Report", "manager_external_id": "m1", "groups": ["eng"]},
            {"external_id": "r2", "email": "later@acme.example", "name": "Later", "manager_external_id": "m9"},  # manager arrives later
            {"external_id": "b1", "email": "", "name": "Bot One"},
            {"external_id": "b2", "email": "", "name": "Bot Two"},
        ],
    ),
    (
        "slack",
        [
            {"external_id": "U1", "email": "boss@acme.example", "name": "boss", "title": "Chief (Slack)", "phone": "+1 555", "groups": ["general"]},
            {"external_id": "U2", "email": "REPORT@acme.example", "name": "Rep", "is_active": False},
            {"external_id": "U3", "email": "twin@acme.example", "name": "Twin A"},
            {"external_id": "U4", "email": "twin@acme.example", "name": "Twin B"},  # same email in one batch: one person, two identities
        ],
    ),
    ("okta", [{"external_id": "m9", "email": "m9@acme.example", "name": "Nine"}, {"external_id": "r1", "email": "renamed@acme.example", "name": "Report R"}]),
    ("csv", [{"external_id": "new@acme.example", "email": "new@acme.example", "name": "New", "manager_email": "BOSS@acme.example", "department": "Ops"}]),
    ("csv", [{"external_id": "new@acme.example", "email": "new@acme.example", "name": "New Again", "department": "Ops 2"}]),
]


def run_merges(organization, merge) -> list[tuple[int, int, int]]:
    okta = Integration.objects.create(organization=organization, connector_key="okta", display_name="Okta", status=IntegrationStatus.CONNECTED)
    slack = Integration.objects.create(organization=organization, connector_key="slack", display_name="Slack", status=IntegrationStatus.CONNECTED)
    integrations = {"okta": okta, "slack": slack, "csv": None}
    results = []
    for source, items in MERGES:
        with transaction.atomic():
            result = merge(organization=organization, source=source, integration=integrations[source], entity_type="users", items=items)
        results.append((result.created, result.updated, result.identities))
    return results


def test_people_merge_copy_and_orm_paths_agree(organization, other_organization):
    copy_results = run_merges(organization, services.people_merge)
    orm_results = run_merges(other_organization, people_merge_orm)

    assert copy_results == orm_results
    assert person_snapshot(organization) == person_snapshot(other_organization)
    people = {p.email: p for p in Person.objects.filter(organization=organization).select_related("manager")}
    assert people["boss@acme.example"].title == "CEO" and people["boss@acme.example"].phone == "+1 555"  # okta outranks slack; only slack has a phone
    assert people["boss@acme.example"].groups == ["exec", "general"]
    assert people["renamed@acme.example"].manager == people["boss@acme.example"]  # email followed the stored identity
    assert people["new@acme.example"].manager == people["boss@acme.example"] and people["new@acme.example"].department == "Ops 2"
    assert Person.objects.filter(organization=organization, email="twin@acme.example").get().identities.count() == 2
    assert Person.objects.filter(organization=organization, email="").count() == 2
    assert Person.objects.filter(organization=organization).count() == 8 and PersonIdentity.objects.filter(organization=organization).count() == 11


def raw_person(pid: str, **fields) -> dict[str, Any]:
    record = {"id": pid, "email": f"{pid}@acme.example", "name": pid.upper(), "title": "Engineer", "active": True, "updated_at": "2030-01-01T00:00:00+00:00"}
    record.update(fields)
    return record


def upsert_sequence(integration, upsert) -> list[tuple]:
    connector = build_connector(integration)
    steps = [
        [raw_person("a"), raw_person("b"), raw_person("c")],  # 3 created
        [raw_person("a"), raw_person("b", title="Lead", updated_at="2030-02-01T00:00:00+00:00"), raw_person("d")],  # unchanged, updated, created
        [raw_person("b", title="Older", updated_at="2029-01-01T00:00:00+00:00")],  # stale: a newer version is stored
        [raw_person("c")],  # revived after deletion below, same hash
    ]
    outcomes = []
    for index, records in enumerate(steps):
        if index == 3:
            services.records_mark_deleted(integration=integration, entity_type="people", external_ids=["c"])
        with transaction.atomic():
            result = upsert(integration=integration, entity_type="people", records=records, connector=connector)
        outcomes.append((result.created, result.updated, result.unchanged, result.stale, sorted(d["external_id"] for d in result.changed)))
    stored = sorted(
        SyncRecord.objects.filter(integration=integration).values_list("external_id", "data__title", "content_hash", "is_deleted", "source_updated_at")
    )
    return [*outcomes, stored]


def test_record_upserts_copy_and_orm_paths_agree(make_directory, organization, other_organization):
    copy_outcome = upsert_sequence(make_directory(organization), services.records_upsert)
    orm_outcome = upsert_sequence(make_directory(other_organization, name="Other"), records_upsert_orm)

    assert copy_outcome == orm_outcome
    assert copy_outcome[:4] == [(3, 0, 0, 0, ["a", "b", "c"]), (1, 1, 1, 0, ["b", "d"]), (0, 0, 0, 1, []), (0, 1, 0, 0, ["c"])]
    assert [(row[0], row[1], row[3]) for row in copy_outcome[4]] == [
        ("a", "Engineer", False),
        ("b", "Lead", False),
        ("c", "Engineer", False),
        ("d", "Engineer", False),
    ]


@pytest.mark.parametrize("bulk_sql", [True, False], ids=["copy", "orm"])
def test_engine_run_on_each_path(settings, bulk_sql, run_sync, people_source, directory, sandbox):
    """Full sync, unchanged re-sync, incremental change, then a full scan that deletes what vanished: same counts on both paths."""
    settings.BASTION_SYNC_BULK_SQL = bulk_sql
    first = run_sync(people_source)
    assert (first.status, first.created_count, first.pages) == (JobStatus.SUCCEEDED, 20, 3)
    marcus = Person.objects.get(email="marcus.okafor@acme.example")
    assert marcus.manager.email == "ava.chen@acme.example"

    again = run_sync(people_source, full_refresh=True)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 20)
    # Every record counts as seen by the re-scan; on PostgreSQL the scan listed them instead of rewriting them, then dropped its list.
    assert all(record.seen_at >= again.started_at for record in records_with_last_seen(SyncRecord.objects.filter(integration=directory)))
    stamped_by = set(SyncRecord.objects.filter(integration=directory).values_list("last_seen_job", flat=True))
    assert stamped_by == ({first.pk} if bulk_sql else {again.pk})
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


@pytest.mark.parametrize("bulk_sql", [True, False], ids=["copy", "orm"])
def test_csv_import_on_each_path(settings, bulk_sql, api, organization, django_capture_on_commit_callbacks, monkeypatch):
    """Row errors with lines, duplicates within and across batches, managers named before or after their reports."""
    from tests.sync.test_csv_import import run

    settings.BASTION_SYNC_BULK_SQL = bulk_sql
    monkeypatch.setattr("sync.services.imports.BATCH_SIZE", 3)
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
    settings.BASTION_SYNC_BULK_SQL = False
    assert tables_analyze_on_growth(before=0, after=10_000, tables=["sync_syncrecord"]) is False  # the portable path leaves it to the database


@pytest.mark.parametrize("bulk_sql", [True, False], ids=["copy", "orm"])
def test_managers_that_arrive_after_their_reports_are_linked_at_the_end(settings, bulk_sql, organization):
    settings.BASTION_SYNC_BULK_SQL = bulk_sql
    okta = Integration.objects.create(organization=organization, connector_key="okta", display_name="Okta", status=IntegrationStatus.CONNECTED)
    report = {"external_id": "r1", "email": "report@acme.example", "name": "Report", "manager_external_id": "m1"}
    with transaction.atomic():
        services.people_merge(organization=organization, source="okta", integration=okta, entity_type="users", items=[report])
        services.people_merge(
            organization=organization,
            source="okta",
            integration=okta,
            entity_type="users",
            items=[{"external_id": "m1", "email": "m@acme.example", "name": "M"}],
        )
    assert Person.objects.get(email="report@acme.example").manager is None  # the manager was unknown when the report was merged

    from sync.services.people import people_link_managers

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
