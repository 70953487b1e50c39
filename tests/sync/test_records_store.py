"""The records store's write path on PostgreSQL: new records COPYed in, unchanged ones listed or stamped, changed ones upserted under lock."""

from __future__ import annotations

import orjson
import pytest
from django.db import transaction

from integrations.connectors.sandbox_directory import SandboxDirectoryConnector
from integrations.models import Integration
from sync.models import DataSyncJob, JobType, SyncRecord, SyncScanSeen
from sync.services import records
from sync.services.records import content_hash, records_upsert

pytestmark = pytest.mark.django_db


def person(record_id: str, title: str = "Engineer", **extra) -> dict:
    """A person as the Sandbox Directory sends it (keys deliberately unsorted)."""
    return {"name": f"Person {record_id}", "id": record_id, "email": f"{record_id}@acme.example", "title": title, "groups": ["g1"], **extra}


@pytest.fixture
def directory(organization) -> Integration:
    return Integration.objects.create(organization=organization, connector_key="sandbox_directory", display_name="Directory")


@pytest.fixture
def job(directory) -> DataSyncJob:
    return DataSyncJob.objects.create(organization_id=directory.organization_id, integration=directory, job_type=JobType.SYNC)


def upsert(directory, batch, **kwargs):
    with transaction.atomic():
        return records_upsert(integration=directory, entity_type="people", records=batch, connector=SandboxDirectoryConnector(), **kwargs)


def test_new_records_are_stored_whole_then_unchanged_ones_only_stamped(directory, job):
    first = upsert(directory, [person("u2"), person("u1")])

    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert [data["external_id"] for data in first.changed] == ["u2", "u1"]  # the page's order, for the people merge
    stored = {record.external_id: record for record in SyncRecord.objects.filter(integration=directory)}
    assert set(stored) == {"u1", "u2"}
    assert stored["u1"].raw == person("u1") and stored["u1"].content_hash == content_hash(person("u1"))
    assert stored["u1"].data["title"] == "Engineer" and stored["u1"].data["email"] == "u1@acme.example"
    assert stored["u1"].organization_id == directory.organization_id and stored["u1"].last_seen_job_id is None

    again = upsert(directory, [person("u1"), person("u2")], job=job)

    assert (again.created, again.updated, again.unchanged, again.changed) == (0, 0, 2, [])
    assert set(SyncRecord.objects.filter(integration=directory).values_list("last_seen_job", flat=True)) == {job.pk}
    assert SyncRecord.objects.get(external_id="u1").raw == person("u1")  # not rewritten


def test_a_full_scan_lists_unchanged_records_and_writes_changed_and_new_ones(directory, job):
    upsert(directory, [person("u1"), person("u2")])

    scan = upsert(directory, [person("u1"), person("u2", title="Director"), person("u3")], job=job, full_scan=True)

    assert (scan.created, scan.updated, scan.unchanged) == (1, 1, 1)
    assert sorted(data["external_id"] for data in scan.changed) == ["u2", "u3"]
    assert list(SyncScanSeen.objects.filter(job_id=job.pk).values_list("external_id", flat=True)) == ["u1"]
    assert SyncRecord.objects.get(external_id="u1").last_seen_job_id is None  # listed, not stamped
    assert SyncRecord.objects.get(external_id="u2").data["title"] == "Director"
    assert SyncRecord.objects.filter(integration=directory).count() == 3


@pytest.mark.parametrize("with_job", [False, True], ids=["webhook batch: hash probe and lock", "first page of a job: key-range check"])
def test_a_record_another_writer_inserts_after_the_probe_is_updated_not_duplicated(directory, job, monkeypatch, with_job):
    """A webhook stores u1 between the probe (nothing there) and the COPY: the COPY is undone and the batch goes the locked way."""
    write_row = records._write_row
    raced = []

    def racing_write_row(connector, entity_type, result, external_id, incoming):
        if not raced:
            raced.append(external_id)
            older = person("u1", title="Intern")
            SyncRecord.objects.create(
                organization_id=directory.organization_id,
                integration=directory,
                entity_type="people",
                external_id="u1",
                raw=older,
                data={},
                content_hash=content_hash(older),
                last_seen_at=directory.created_at,
            )
        return write_row(connector, entity_type, result, external_id, incoming)

    monkeypatch.setattr(records, "_write_row", racing_write_row)

    result = upsert(directory, [person("u1"), person("u2")], job=job if with_job else None)

    assert raced == ["u1"]
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    assert sorted(data["external_id"] for data in result.changed) == ["u1", "u2"]
    assert SyncRecord.objects.filter(integration=directory).count() == 2
    assert SyncRecord.objects.get(external_id="u1").raw == person("u1")


def test_the_stored_raw_document_is_the_hashed_canonical_json(directory):
    """One encoding per record serves the hash and the raw column; what vendors send round-trips (unicode, nesting, numbers)."""
    record = person("u1", name='Zoë \\ "Ω"', nested={"b": [1, 2.5, None, True], "a": "\t"}, big=2**70)

    upsert(directory, [record])

    stored = SyncRecord.objects.get(external_id="u1")
    assert stored.raw == record
    assert stored.content_hash == content_hash(record)
    assert orjson.loads(records.canonical_json_bytes(record)) == record


def test_keys_with_quotes_braces_and_backslashes_are_found_again(directory, job):
    """The page's keys travel as an array (the range check) and as COPY text (staging): odd ids must survive both."""
    ids = ['{a,"b"}', "o'brien", "back\\slash", " padded ", "NULL", "tab\there", "Ünïcode"]
    first = upsert(directory, [person(record_id) for record_id in ids])
    assert first.created == len(ids)

    again = upsert(directory, [person(record_id) for record_id in ids], job=job, full_scan=True)

    assert (again.created, again.updated, again.unchanged) == (0, 0, len(ids))
    assert sorted(SyncScanSeen.objects.filter(job_id=job.pk).values_list("external_id", flat=True)) == sorted(ids)
    assert sorted(SyncRecord.objects.filter(integration=directory).values_list("external_id", flat=True)) == sorted(ids)


def test_a_page_of_new_keys_among_stored_ones_takes_the_probe(directory, job):
    """Keys interleaved with stored ones (a vendor paging in no key order): the range holds records, so each key is probed."""
    upsert(directory, [person("m1"), person("m3")])

    page = upsert(directory, [person("m0"), person("m2"), person("m3"), person("m4")], job=job)

    assert (page.created, page.updated, page.unchanged) == (3, 0, 1)
    assert SyncRecord.objects.get(external_id="m3").last_seen_job_id == job.pk
    assert SyncRecord.objects.filter(integration=directory).count() == 5


def test_new_records_get_time_ordered_ids(directory):
    upsert(directory, [person("t1")])
    upsert(directory, [person("t2")])

    assert [record.pk.version for record in SyncRecord.objects.filter(integration=directory)] == [7, 7]
