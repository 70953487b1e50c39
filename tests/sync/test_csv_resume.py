"""CSV imports that die mid-file resume from the position committed with their last batch: nothing lost, doubled or reported twice.

The crash is made deterministic with a row lock: a connection of the test holds a person that batch 6 merges into, so batches 1-5
commit and batch 6 cannot. In-process the import then fails on a lock timeout (a real database error, the transaction rolls
back); under a real worker the worker is SIGKILLed while it waits.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from people.models import Person, PersonIdentity
from sync import services
from sync.models import DataSyncJob, JobStatus
from sync.services.imports import csv_upload_path
from tests.conftest import wait_for

BATCH = 4
EXISTING = "existing@acme.example"  # a person already known; row 22 (batch 6) merges into them
MAPPING = {"email": "email", "name": "name", "title": "title", "manager_email": "manager"}
WORKER_APPLICATION = "bastion-csv-worker"


def people_csv() -> tuple[bytes, dict[int, int]]:
    """40 data rows (10 batches of 4) with bad rows and duplicates on both sides of batch 6; returns the file and each row's line."""
    rows = [f"p{i:02d}@acme.example,Person {i},Engineer," for i in range(1, 41)]
    rows[1] = 'p02@acme.example,Person 2,"Staff\nEngineer",'  # spans two lines: lines and rows part ways from here
    rows[2] = "not-an-email,Bad Email,Engineer,"
    rows[3] = "P01@acme.example,Person 1 again,Engineer,"  # duplicate of row 1, same batch
    rows[5] = ""  # a blank line: not a record
    rows[7] = "p02@acme.example,Person 2 again,Engineer,"  # duplicate of row 2, earlier batch
    rows[21] = f"{EXISTING},Existing Person,Director,"
    rows[22] = "p23@acme..example,Empty Label,Engineer,"  # an empty domain label
    rows[24] = "p05@acme.example,Person 5 again,Engineer,"  # after the crash, duplicate of row 5 (before it)
    rows[38] = "p39@acme.example,,Engineer,"
    rows[39] = "p40@acme.example,Person 40,Engineer,p21@acme.example"
    lines, line = {}, 2
    for number, row in enumerate(rows, start=1):
        lines[number] = line
        line += row.count("\n") + 1
    return ("email,name,title,manager\n" + "\n".join(rows) + "\n").encode(), lines


CONTENT, LINE = people_csv()
REJECTED_BEFORE_CRASH = {
    LINE[3]: "email 'not-an-email' is not an email address",
    LINE[4]: f"duplicate of line {LINE[1]} (p01@acme.example); not imported twice",
    LINE[8]: f"duplicate of line {LINE[2]} (p02@acme.example); not imported twice",
}
REJECTED = {
    **REJECTED_BEFORE_CRASH,
    LINE[23]: "email 'p23@acme..example' has an invalid domain (an empty or malformed label)",
    LINE[25]: f"duplicate of line {LINE[5]} (p05@acme.example); not imported twice",
    LINE[39]: "name is empty",
}
NOT_IMPORTED = {3, 4, 6, 8, 22, 23, 25, 39}  # rows rejected, blank, or (22) an existing person's
IMPORTED = {f"p{i:02d}@acme.example" for i in range(1, 41) if i not in NOT_IMPORTED}
CREATED_BEFORE_CRASH = {f"p{i:02d}@acme.example" for i in (1, 2, 5, 7, *range(9, 21))}


def dsn(application_name: str = "bastion-csv-test") -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}?application_name={application_name}"


@pytest.fixture
def existing_person(transactional_db, organization) -> Person:
    return Person.objects.create(organization=organization, email=EXISTING, display_name="Existing Person")


@pytest.fixture
def person_lock(existing_person) -> Iterator[Any]:
    """Another connection holds the existing person FOR UPDATE until `release()`; batch 6 cannot merge into them meanwhile."""
    holder = psycopg.connect(dsn())
    holder.execute("SELECT id FROM sync_person WHERE id = %s FOR UPDATE", [existing_person.pk])

    class Lock:
        @staticmethod
        def release() -> None:
            holder.rollback()

    yield Lock
    holder.close()


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


def job_state(job_id: Any) -> DataSyncJob:
    return DataSyncJob.objects.get(pk=job_id)


def start_import(organization) -> DataSyncJob:
    upload_id = services.csv_upload_store(organization=organization, uploaded=io.BytesIO(CONTENT))
    return services.csv_import_start(organization=organization, upload_id=upload_id, mapping=MAPPING)


def rejected_lines(job: DataSyncJob) -> list[tuple[int, str]]:
    return sorted((line.data["line"], line.data["reason"]) for line in job.log_lines.filter(event="csv.row_rejected"))


def assert_died_after_batch_5(job: DataSyncJob, organization) -> None:
    assert job.status == JobStatus.RUNNING and job.pages == 5
    assert job.next_page == {"rows": 20, "line": LINE[20]}
    assert (job.records_processed, job.created_count, job.updated_count, job.error_count) == (19, 16, 0, 3)
    assert set(Person.objects.filter(organization=organization).values_list("email", flat=True)) == CREATED_BEFORE_CRASH | {EXISTING}
    assert rejected_lines(job) == sorted(REJECTED_BEFORE_CRASH.items())


def assert_imported_exactly_once(job: DataSyncJob, organization) -> None:
    assert job.status == JobStatus.PARTIAL and job.phase == "done", (job.status, job.last_error)
    assert (job.pages, job.records_processed, job.created_count, job.updated_count, job.error_count) == (10, 39, 32, 1, 6)
    assert job.next_page == {"rows": 40, "line": LINE[40]}
    people = list(Person.objects.filter(organization=organization).values_list("email", flat=True))
    assert sorted(people) == sorted(IMPORTED | {EXISTING})
    identities = list(PersonIdentity.objects.filter(organization=organization, source="csv").values_list("external_id", flat=True))
    assert sorted(identities) == sorted(IMPORTED | {EXISTING})
    assert rejected_lines(job) == sorted(REJECTED.items()), "every bad row reported once, the duplicate across the crash with both lines"
    assert job.error_log == [{"line": line, "reason": reason} for line, reason in sorted(REJECTED.items())]
    existing = Person.objects.get(organization=organization, email=EXISTING)
    assert existing.title == "Director" and existing.identities.get().attributes["_line"] == LINE[22]
    assert Person.objects.get(email="p40@acme.example").manager.email == "p21@acme.example"
    assert Person.objects.get(email="p02@acme.example").title == "Staff\nEngineer"
    assert job.log_lines.filter(event="import.resumed").count() == 1 and job.log_lines.filter(event="import.finished").count() == 1


def test_import_that_died_mid_file_resumes_from_its_committed_batch(settings, organization, person_lock, api, reap):
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = BATCH
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    try:
        # The task runs inline at commit and dies in batch 6 on the held row, as a worker would on a lost database connection.
        with pytest.raises(OperationalError):
            start_import(organization)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    job = DataSyncJob.objects.get(organization=organization, job_type="import")
    assert_died_after_batch_5(job, organization)
    progress = api.get(f"/api/sync-jobs/{job.pk}/").json()
    assert (progress["status"], progress["records_processed"], progress["error_count"]) == ("running", 19, 3)

    assert reap() == [], "a job with a recent heartbeat is left alone"
    person_lock.release()
    assert reap(now=timezone.now() + timedelta(minutes=10)) == [str(job.pk)]

    job.refresh_from_db()
    assert_imported_exactly_once(job, organization)
    resumed = job.log_lines.get(event="import.resumed")
    assert f"resuming after line {LINE[20]} (20 rows done)" in resumed.message and resumed.level == "warning"
    assert reap(now=timezone.now() + timedelta(minutes=20)) == [], "a finished import is not resumed again"


def test_a_duplicate_run_of_the_same_batch_commits_nothing(settings, organization, person_lock):
    """Two deliveries of the import at once: the one that reaches a batch the other committed discards it and stops."""
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = BATCH
    started: dict[str, DataSyncJob] = {}
    errors: list[BaseException] = []

    def in_thread(work) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except Exception as error:  # noqa: BLE001 (surfaced by the assertion below)
                errors.append(error)
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    first = in_thread(lambda: started.setdefault("job", start_import(organization)))
    wait_for(lambda: lock_waiters() == 1, timeout=30, message="the first run to wait on the held person in batch 6")
    job = DataSyncJob.objects.get(organization=organization, job_type="import")
    assert job.pages == 5
    second = in_thread(lambda: services.csv_import_run(job_id=job.pk))  # a redelivered task while the first still runs
    wait_for(lambda: lock_waiters() == 2, timeout=30, message="the second run to wait on the job row for batch 6")
    person_lock.release()
    first.join(timeout=60)
    second.join(timeout=60)

    assert not errors and not first.is_alive() and not second.is_alive()
    job.refresh_from_db()
    assert job.status == JobStatus.PARTIAL and (job.pages, job.records_processed, job.created_count, job.updated_count, job.error_count) == (10, 39, 32, 1, 6)
    assert rejected_lines(job) == sorted(REJECTED.items())
    assert Person.objects.filter(organization=organization).count() == len(IMPORTED) + 1
    discarded = job.log_lines.get(event="import.batch_discarded")
    assert discarded.level == "warning" and "already imported by another run" in discarded.message
    assert job.log_lines.filter(event="import.finished").count() == 1


def test_resume_with_the_upload_gone_fails_and_says_so(settings, organization, person_lock, reap):
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = BATCH
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    try:
        with pytest.raises(OperationalError):
            start_import(organization)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    job = DataSyncJob.objects.get(organization=organization, job_type="import")
    person_lock.release()
    csv_upload_path(organization=organization, upload_id=job.metadata["upload_id"]).unlink()

    assert reap(now=timezone.now() + timedelta(minutes=10)) == []

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error_class == "system" and job.pages == 5
    assert job.last_error.endswith(
        f"the worker died. The uploaded file is no longer stored, so the import cannot resume after line {LINE[20]}. "
        "People imported so far are kept; upload the file again to import the rest."
    )
    assert job.log_lines.filter(event="import.abandoned", level="error").count() == 1 and not job.log_lines.filter(event="import.resumed").exists()
    assert Person.objects.filter(organization=organization).count() == len(CREATED_BEFORE_CRASH) + 1


@pytest.mark.django_db
def test_a_queued_import_whose_task_was_lost_is_started_by_the_reaper(settings, organization, reap, django_capture_on_commit_callbacks):
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = BATCH
    with django_capture_on_commit_callbacks(execute=False):
        job = start_import(organization)  # the queued message is never delivered
    Person.objects.create(organization=organization, email=EXISTING, display_name="Existing Person")

    assert reap(now=timezone.now() + timedelta(minutes=10)) == [str(job.pk)]

    job.refresh_from_db()
    assert (job.status, job.pages, job.created_count, job.updated_count, job.error_count) == (JobStatus.PARTIAL, 10, 32, 1, 6)
    assert rejected_lines(job) == sorted(REJECTED.items())
    assert "never started" in job.log_lines.get(event="import.resumed").message


@pytest.mark.worker
def test_worker_sigkilled_mid_import_resumes_on_a_fresh_worker(settings, celery_worker_process, organization, person_lock, reap):
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = BATCH  # recorded with the job, so the worker process uses it too
    worker_env = {"MEDIA_ROOT": settings.MEDIA_ROOT, "DATABASE_URL": dsn(WORKER_APPLICATION)}
    worker = celery_worker_process(concurrency=1, extra_env=worker_env)
    job = start_import(organization)

    wait_for(lambda: job_state(job.pk).pages >= 5, timeout=60, message="five batches committed")
    wait_for(lambda: lock_waiters() >= 1, timeout=30, message="the worker to wait inside batch 6")
    from tests.sync.test_worker import kill_worker_tree

    kill_worker_tree(worker)
    with connection.cursor() as cursor:
        # A SIGKILLed client's backend only notices when it next reads from its socket (here: after the held lock goes); end it
        # now, as TCP keepalive would, so its open transaction is rolled back before anything else happens.
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [WORKER_APPLICATION],
        )
    wait_for(lambda: lock_waiters() == 0, timeout=30, message="the dead worker's backend to go")
    assert_died_after_batch_5(job_state(job.pk), organization)
    person_lock.release()

    celery_worker_process(concurrency=1, extra_env=worker_env)
    assert reap(now=timezone.now() + timedelta(minutes=10)) == [str(job.pk)]
    wait_for(lambda: job_state(job.pk).status not in (JobStatus.PENDING, JobStatus.RUNNING), timeout=90, message="the resumed import to finish")

    assert_imported_exactly_once(job_state(job.pk), organization)
    assert not job_state(job.pk).log_lines.filter(event="import.batch_discarded").exists()


@pytest.mark.django_db
def test_a_changed_upload_is_not_resumed_from_the_middle(settings, organization, reap, django_capture_on_commit_callbacks):
    """The committed position names the row and its line; a file whose row 20 starts elsewhere is refused, nothing imported from it."""
    settings.BASTION_CSV_IMPORT_BATCH_SIZE = BATCH
    with django_capture_on_commit_callbacks(execute=False):
        job = start_import(organization)
    csv_upload_path(organization=organization, upload_id=job.metadata["upload_id"]).write_bytes(
        b"email,name\n" + b"".join(f"q{i}@acme.example,Q {i}\n".encode() for i in range(40))
    )
    DataSyncJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, pages=5, next_page={"rows": 20, "line": LINE[20]})

    assert reap(now=timezone.now() + timedelta(minutes=10)) == [str(job.pk)]

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.pages == 5 and job.created_count == 0
    assert job.last_error == f"The stored upload no longer matches this import (row 20 should start on line {LINE[20]}); upload the file again."
    assert not Person.objects.filter(organization=organization).exists()
