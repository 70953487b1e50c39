"""After an erasure, no sync, webhook page or CSV import brings the person back until the suppression is lifted."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent, Role
from data_rights.models import DataRightsRequest
from integrations.models import DataSource
from integrations.services import shared_connector
from people.models import Person, PersonIdentity, SuppressedIdentity
from people.services import people_merge, suppression_digest
from sync.models import DataSyncJob, JobStatus, SyncJobLog, SyncRecord
from sync.services.records import records_upsert
from tests.sync.conftest import directory_control

pytestmark = pytest.mark.django_db

EMAIL = "emma.rossi@acme.example"  # p000007 in the Sandbox Directory; nobody reports to her
NAME = "Emma Rossi"
SOURCE_ID = "p000007"


def people_source(integration) -> DataSource:
    return DataSource.objects.get(integration=integration, entity_type="people")


def erase(api, organization, email: str = EMAIL) -> dict:
    person = Person.objects.get(organization=organization, email=email)
    response = api.post(f"/api/data-rights/people/{person.pk}/erase")
    assert response.status_code == 200, response.content
    return response.json()["erased"]


def import_csv(api, content: bytes, django_capture_on_commit_callbacks) -> DataSyncJob:
    with django_capture_on_commit_callbacks(execute=True):
        preview = api.post("/api/imports/csv/preview", {"file": SimpleUploadedFile("people.csv", content, content_type="text/csv")}, format="multipart")
        assert preview.status_code == 200, preview.content
        body = preview.json()
        response = api.post("/api/imports/csv", {"upload_id": body["upload_id"], "mapping": json.dumps(body["suggested_mapping"])}, format="multipart")
    assert response.status_code == 202, response.content
    return DataSyncJob.objects.get(pk=response.json()["id"])


def log_of(api, job) -> list[dict]:
    return api.get(f"/api/sync-jobs/{job.pk}/log/").json()["results"]


def plaintext_anywhere(*needles: str) -> list[str]:
    """Every (table.column) of the whole database whose text or JSON holds one of `needles` (case-insensitive)."""
    hits = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND data_type IN ('text', 'character varying', 'json', 'jsonb') ORDER BY table_name, column_name"
        )
        for table, column in cursor.fetchall():
            for needle in needles:
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s', [f"%{needle}%"])
                if cursor.fetchone()[0]:
                    hits.append(f"{table}.{column} ∋ {needle}")
    return hits


@pytest.fixture
def admin_api(api_for, users_by_role):
    return api_for(users_by_role[Role.ADMIN])


@pytest.fixture
def synced(make_directory, organization, run_sync):
    """The organization's Sandbox Directory, synced once (20 people)."""
    directory = make_directory(organization)
    job = run_sync(people_source(directory))
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert Person.objects.filter(organization=organization).count() == 20
    return directory


def test_erased_person_is_not_brought_back_by_a_sync_or_a_csv_import(synced, organization, admin_api, run_sync, sandbox, django_capture_on_commit_callbacks):
    erased = erase(admin_api, organization)
    assert erased["sync.Person"] == 1 and erased["sync.SyncRecord"] == 1
    assert SuppressedIdentity.objects.filter(organization=organization).count() == 2  # her email and her directory id
    request = DataRightsRequest.objects.get(kind="erase")
    assert request.summary["suppressed"] == 2
    assert set(SuppressedIdentity.objects.values_list("erasure_reference", flat=True)) == {str(request.pk)}

    # The source still holds her, changed since; and a second account with her address (other case) appears.
    directory_control(sandbox, "/_control/people", id=SOURCE_ID, title="Principal Security Engineer")
    directory_control(sandbox, "/_control/people", id="p000777", email="Emma.Rossi@ACME.example", name=NAME)
    directory_control(sandbox, "/_control/people", id="p000778", email="new.hire@acme.example", name="New Hire")
    job = run_sync(people_source(synced), full_refresh=True)

    assert job.status == JobStatus.SUCCEEDED
    assert (job.records_processed, job.created_count, job.unchanged_count) == (22, 1, 19)
    assert job.metadata["suppressed"] == 2
    suppressed_lines = [line for line in job.log_lines.all() if line.event == "records.suppressed"]
    # One line per page that skipped someone (her id is on page 1, the new account on page 3): counts, never names.
    assert [line.message for line in suppressed_lines] == ["1 records suppressed (erased data subjects)."] * 2
    assert not SyncRecord.objects.filter(integration=synced, external_id__in=[SOURCE_ID, "p000777"]).exists()
    assert not Person.objects.filter(organization=organization, email=EMAIL).exists()
    assert not PersonIdentity.objects.filter(organization=organization, external_id__in=[SOURCE_ID, "p000777"]).exists()
    assert Person.objects.get(organization=organization, email="new.hire@acme.example").display_name == "New Hire"
    assert Person.objects.filter(organization=organization).count() == 20  # 19 kept + the new hire

    # A CSV re-upload that still lists her: her row is reported by line as suppressed, not as an error.
    content = (
        b"email,name,title\nnew.joiner@acme.example,New Joiner,Analyst\n EMMA.ROSSI@acme.example ,Emma Rossi,Engineer\nava.chen@acme.example,Ava Chen,CEO\n"
    )
    csv_job = import_csv(admin_api, content, django_capture_on_commit_callbacks)

    assert csv_job.status == JobStatus.SUCCEEDED and csv_job.error_count == 0 and csv_job.error_log == []
    assert (csv_job.created_count, csv_job.updated_count, csv_job.metadata["suppressed"]) == (1, 1, 1)
    log = log_of(admin_api, csv_job)
    assert [(line["level"], line["data"]) for line in log if line["event"] == "csv.row_suppressed"] == [
        ("info", {"line": 3, "reason": "suppressed: erased data subject"})
    ]
    finished = next(line for line in log if line["event"] == "import.finished")
    assert finished["message"].endswith("0 rows rejected (see the log for each line and reason); 1 rows suppressed (erased data subjects).")
    assert Person.objects.filter(organization=organization, email="new.joiner@acme.example").exists()
    assert not Person.objects.filter(organization=organization, email=EMAIL).exists()

    # The suppression list holds digests only: neither her address nor her name is anywhere in the database.
    assert plaintext_anywhere(EMAIL, NAME) == []
    digests = set(SuppressedIdentity.objects.values_list("digest", flat=True))
    assert hashlib.sha256(EMAIL.encode()).hexdigest() not in digests  # keyed: a guessed address cannot be checked without the key
    assert request.subject_reference != hashlib.sha256(EMAIL.encode()).hexdigest()
    assert all(EMAIL not in line.message and NAME not in line.message for line in SyncJobLog.objects.all())


def test_lifting_the_suppression_lets_the_next_sync_import_them(synced, organization, api_for, users_by_role, run_sync):
    erase(api_for(users_by_role[Role.ADMIN]), organization)
    for role in (Role.VIEWER, Role.EDITOR):
        response = api_for(users_by_role[role]).post("/api/data-rights/suppressions/lift", {"email": EMAIL}, format="json")
        assert response.status_code == 403
    assert SuppressedIdentity.objects.filter(organization=organization).count() == 2

    owner = api_for(users_by_role[Role.OWNER])
    unknown = owner.post("/api/data-rights/suppressions/lift", {"email": "nobody@acme.example"}, format="json")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_suppressed"
    assert owner.post("/api/data-rights/suppressions/lift", {"email": "not an address"}, format="json").status_code == 400

    response = owner.post("/api/data-rights/suppressions/lift", {"email": "  Emma.Rossi@Acme.Example "}, format="json")

    assert response.status_code == 200 and response.json() == {"lifted": 2}  # the email and the source id of that erasure
    assert not SuppressedIdentity.objects.exists()
    event = AuditEvent.objects.get(action="data_rights.suppression_lift")
    assert event.actor_id == users_by_role[Role.OWNER].pk and event.changes["lifted"] == 2
    assert event.changes["subject"] == DataRightsRequest.objects.get(kind="erase").subject_reference
    assert EMAIL not in json.dumps(event.changes).lower()

    job = run_sync(people_source(synced), full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED and job.created_count == 1 and "suppressed" not in job.metadata
    assert Person.objects.get(organization=organization, email=EMAIL).display_name == NAME
    assert owner.post("/api/data-rights/suppressions/lift", {"email": EMAIL}, format="json").status_code == 404


def test_one_organizations_suppressions_never_affect_another(
    synced, organization, other_organization, make_directory, make_user, api_for, admin_api, run_sync, sandbox
):
    theirs = make_directory(other_organization, name="Their directory")
    run_sync(people_source(theirs))
    erase(admin_api, organization)
    their_admin = api_for(make_user(Role.ADMIN, organization=other_organization, username="their-admin"))
    directory_control(sandbox, "/_control/people", id=SOURCE_ID, title="Principal Security Engineer")

    # Their admin cannot lift ours (404), and their syncs still see her.
    assert their_admin.post("/api/data-rights/suppressions/lift", {"email": EMAIL}, format="json").status_code == 404
    assert SuppressedIdentity.objects.filter(organization=organization).count() == 2
    their_job = run_sync(people_source(theirs), full_refresh=True)
    assert their_job.updated_count == 1 and "suppressed" not in their_job.metadata
    assert Person.objects.get(organization=other_organization, email=EMAIL).title == "Principal Security Engineer"
    ours = run_sync(people_source(synced), full_refresh=True)
    assert ours.metadata["suppressed"] == 1 and not Person.objects.filter(organization=organization, email=EMAIL).exists()

    # The same address gives unrelated digests in two organizations: the table does not say who was erased where.
    assert suppression_digest(organization_id=organization.pk, kind="email", value=EMAIL) != suppression_digest(
        organization_id=other_organization.pk, kind="email", value=EMAIL
    )
    assert not SuppressedIdentity.objects.filter(organization=other_organization).exists()


def test_the_write_path_skips_suppressed_records_and_people(synced, organization, admin_api):
    erase(admin_api, organization)
    connector = shared_connector(synced, purpose="sync")
    upsert, merge = records_upsert, people_merge
    records = [
        {"id": SOURCE_ID, "email": "renamed@acme.example", "name": "Renamed"},  # her id with a new address
        {"id": "p000900", "email": EMAIL.upper(), "name": NAME},  # her address under a new id
        {"id": "p000901", "email": "someone.else@acme.example", "name": "Someone Else"},
    ]

    result = upsert(integration=synced, entity_type="people", records=records, connector=connector)
    assert (result.created, [item["external_id"] for item in result.changed]) == (1, ["p000901"])
    items = [connector.to_bastion("people", raw) for raw in records]
    merged = merge(organization=organization, source="sandbox_directory", integration=synced, entity_type="people", items=items)
    assert merged.identities == 1
    assert not Person.objects.filter(organization=organization, email__in=[EMAIL, "renamed@acme.example"]).exists()
    assert Person.objects.filter(organization=organization, email="someone.else@acme.example").exists()


def test_the_check_is_one_query_per_batch(synced, organization, admin_api, monkeypatch):
    connector = shared_connector(synced, purpose="sync")
    batch = [{"id": f"b{index:06d}", "email": f"bulk{index}@acme.example", "name": f"Bulk {index}"} for index in range(3000)]

    def suppression_queries(records) -> int:
        with CaptureQueriesContext(connection) as captured:
            records_upsert(integration=synced, entity_type="people", records=records, connector=connector)
        return sum("sync_suppressedidentity" in query["sql"] for query in captured.captured_queries)

    assert suppression_queries(batch) == 1  # nothing suppressed in the organization: one look, no hashing
    erase(admin_api, organization)
    assert suppression_queries([*batch, {"id": SOURCE_ID, "email": EMAIL, "name": NAME}]) == 1  # the organization's digests, read once
    # Past the load-everything limit, the batch's digests are looked up in one statement instead (plus the key ids in use).
    monkeypatch.setattr("people.services.suppression.LOAD_ALL_LIMIT", 1)
    assert suppression_queries([*batch, {"id": "p000901", "email": EMAIL.upper(), "name": NAME}]) == 3
    assert not SyncRecord.objects.filter(integration=synced, external_id__in=[SOURCE_ID, "p000901"]).exists()
    assert SyncRecord.objects.filter(integration=synced, external_id__startswith="b").count() == 3000
