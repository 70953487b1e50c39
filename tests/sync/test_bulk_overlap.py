"""What bulk loads overlap or relax to go faster, each shown not to cost correctness: the next batch read during the current
batch's foreign-key checks, those checks sent early, the collector's thresholds, time-ordered ids."""

from __future__ import annotations

import gc
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from common.bulk import BULK_GC_THRESHOLDS, collector_relaxed, deferred_checks_beside, time_ordered_id
from people.models import Person, PersonIdentity
from sync.csv_import import MAX_COLUMNS
from sync.models import JobStatus
from sync.services.import_batches import BatchesAhead
from tests.sync.test_csv_import import run

pytestmark = pytest.mark.django_db


def test_a_broken_line_in_the_next_batch_never_undoes_the_batch_being_committed(api, organization, django_capture_on_commit_callbacks, settings):
    # Batch 6 (rows 11-12) holds a row too wide to read: it is read ahead while batch 5 commits, and must fail the job after it.
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = 2
    rows = [f"p{i:02d}@acme.example,Person {i}" for i in range(1, 13)]
    rows[11] = "p12@acme.example," + "," * MAX_COLUMNS
    _, job = run(api, ("email,name\n" + "\n".join(rows) + "\n").encode(), django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "Line 13 has" in job.last_error
    assert job.next_page == {"rows": 10, "line": 11}  # batches 1-5 committed with their position
    assert Person.objects.filter(organization=organization).count() == 10


def test_batches_ahead_hands_out_each_batch_once_and_raises_a_read_error_in_its_turn():
    def batches():
        yield "first"
        yield "second"
        raise ValueError("line 9 is broken")

    ahead = BatchesAhead(batches())
    assert ahead.take() == "first"
    ahead.read_next()
    ahead.read_next()  # asked twice while the first commits: read once
    assert ahead.take() == "second"
    ahead.read_next()  # the error is kept, not raised here (the caller is inside a transaction)
    with pytest.raises(ValueError, match="line 9"):
        ahead.take()


def test_deferred_checks_run_beside_the_work_and_a_broken_reference_still_fails_the_transaction(organization):
    ran = []
    with pytest.raises(IntegrityError), transaction.atomic():
        person = Person.objects.create(organization=organization, email="ava@acme.example")
        PersonIdentity.objects.create(organization=organization, person=person, source="csv", external_id="ava")
        with connection.cursor() as cursor:  # the identity now points at a person that does not exist (checked at commit)
            cursor.execute("UPDATE sync_personidentity SET person_id = %s WHERE external_id = 'ava'", [uuid.uuid4()])
        deferred_checks_beside(lambda: ran.append("read the next batch"))
    assert ran == ["read the next batch"]
    assert not Person.objects.exists() and not PersonIdentity.objects.exists()
    with transaction.atomic():  # a sound transaction passes, and later statements run as usual
        person = Person.objects.create(organization=organization, email="ben@acme.example")
        deferred_checks_beside(lambda: ran.append("again"))
        PersonIdentity.objects.create(organization=organization, person=person, source="csv", external_id="ben")
    assert PersonIdentity.objects.get().person == person and ran[-1] == "again"


def test_the_collector_thresholds_are_restored_after_a_bulk_load_even_one_that_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector_relaxed():
        assert gc.get_threshold() == BULK_GC_THRESHOLDS
        raise RuntimeError("the load failed")
    assert gc.get_threshold() == before


def test_bulk_ids_are_time_ordered_uuids():
    first, second = time_ordered_id(), time_ordered_id()
    assert isinstance(first, uuid.UUID) and first.version == 7 and first < second


def test_overlapping_bulk_loads_on_threads_leave_the_thresholds_as_the_first_found_them():
    before = gc.get_threshold()
    first, second = collector_relaxed(), collector_relaxed()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first load ends while the second still runs: still relaxed
    assert gc.get_threshold() == BULK_GC_THRESHOLDS
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
