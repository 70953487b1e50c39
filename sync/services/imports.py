"""CSV import of people as stakeholders (a DataSyncJob of type import) and CSV export with a formula-injection guard."""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Organization
from common.bulk import collector_relaxed, deferred_checks_beside, raw_cursor, stage_rows
from common.errors import ApplicationError
from people.models import Person
from people.services import people_merge, people_unsuppressed
from sync.csv_import import (
    BASTION_FIELDS,
    CsvDialect,
    CsvFormatError,
    detect,
    guard_cell,
    iter_rows,
    mapping_problems,
    suggest_mapping,
)
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob, JobStatus, JobTrigger, JobType, SyncJobLog
from sync.services.import_batches import BatchesAhead, CheckedBatch, checked_batches
from sync.services.import_reports import import_warnings, import_warnings_log, manager_links_report
from sync.services.jobs import ERROR_LOG_CAP, job_log
from sync.services.records import PEOPLE_ANALYZED_COLUMNS, page_commit_asynchronous, tables_analyze_on_growth
from sync.services.suppression import job_suppressed_recorder
from sync.services.uploads import UploadCleanup, _upload_dir, _upload_release, csv_uploads_purge, csv_uploads_sweep  # noqa: F401 - callers import these here

logger = logging.getLogger(__name__)
BATCH_SIZE = 10_000  # rows per transaction when settings do not say (BASTION_CSV_IMPORT_BATCH_SIZE): one COPY + a few set-based statements
PREVIEW_ROWS = 10
CSV_SOURCE = "csv"
SUPPRESSED = "suppressed: erased data subject"
EARLIER_IN_MEMORY_MAX = 250_000  # external ids a run keeps to find duplicates across its own batches without a query


def csv_upload_path(*, organization: Organization, upload_id: str) -> Path:
    """Where an organization's upload lives; a foreign or unknown id is a 404, never another tenant's file."""
    try:
        name = str(uuid.UUID(str(upload_id)))
    except ValueError:
        raise ApplicationError("No such upload.", code="unknown_upload", status_code=404)
    path = _upload_dir(organization) / f"{name}.csv"
    if not path.exists():
        raise ApplicationError("No such upload (uploads are removed after import).", code="unknown_upload", status_code=404)
    return path


def csv_upload_store(*, organization: Organization, uploaded: IO[bytes] | Any) -> str:
    """Copy an upload to disk in chunks (never whole in memory) so a worker can stream it; returns the upload id."""
    limit = int(getattr(settings, "BASTION_MAX_UPLOAD_BYTES", 512 * 1024 * 1024))
    upload_id = str(uuid.uuid4())
    directory = _upload_dir(organization)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{upload_id}.csv"
    written = 0
    chunks = uploaded.chunks() if hasattr(uploaded, "chunks") else iter(lambda: uploaded.read(1024 * 1024), b"")
    with path.open("wb") as out:
        for chunk in chunks:
            written += len(chunk)
            if written > limit:
                out.close()
                path.unlink(missing_ok=True)
                raise ApplicationError(f"The file is larger than {limit // (1024 * 1024)} MiB.", code="file_too_large", status_code=413)
            out.write(chunk)
    if written == 0:
        path.unlink(missing_ok=True)
        raise ApplicationError("The file is empty.", code="empty_file", fields={"file": ["The file is empty."]})
    return upload_id


def _read_header(path: Path) -> tuple[CsvDialect, list[str], list[tuple[int, list[str]]]]:
    with path.open("rb") as stream:
        try:
            dialect = detect(stream)
            rows: list[tuple[int, list[str]]] = []
            for line, row in iter_rows(stream, dialect):
                if not any(cell.strip() for cell in row):
                    continue
                rows.append((line, row))
                if len(rows) > PREVIEW_ROWS:
                    break
        except CsvFormatError as error:
            raise ApplicationError(str(error), code="invalid_csv", fields={"file": [str(error)]})
    if not rows:
        raise ApplicationError("The file has no header row.", code="invalid_csv", fields={"file": ["The file has no header row."]})
    headers = [h.strip() for h in rows[0][1]]
    return dialect, headers, rows[1:]


def csv_preview(*, organization: Organization, upload_id: str) -> dict[str, Any]:
    """Detected encoding and delimiter, headers, the first rows and a suggested column mapping."""
    dialect, headers, rows = _read_header(csv_upload_path(organization=organization, upload_id=upload_id))
    suggested = suggest_mapping(headers)
    return {
        "upload_id": upload_id,
        "encoding": dialect.encoding,
        "delimiter": dialect.delimiter,
        "dialect": dialect.label,
        "headers": headers,
        "rows": [{"line": line, "values": row} for line, row in rows[:PREVIEW_ROWS]],
        "suggested_mapping": suggested,
        "fields": BASTION_FIELDS,
        "problems": mapping_problems(suggested, headers),
    }


def _batch_size() -> int:
    return int(settings.BASTION_CSV_IMPORT_BATCH_SIZE or BATCH_SIZE)


def csv_import_start(*, organization: Organization, upload_id: str, mapping: dict[str, str], actor: Any = None, filename: str = "") -> DataSyncJob:
    """Check the mapping against the file's header (nothing is written if it fails), then queue the import job."""
    path = csv_upload_path(organization=organization, upload_id=upload_id)
    dialect, headers, _ = _read_header(path)
    mapping = {k: v for k, v in (mapping or {}).items() if v}
    problems = mapping_problems(mapping, headers)
    if problems:
        raise ApplicationError(next(iter(problems.values()))[0], code="invalid_mapping", fields=problems)
    with transaction.atomic():
        job = DataSyncJob.objects.create(
            organization=organization,
            job_type=JobType.IMPORT,
            status=JobStatus.PENDING,
            trigger=JobTrigger.UPLOAD,
            actor=actor if getattr(actor, "is_authenticated", False) else None,
            phase="queued",
            heartbeat_at=timezone.now(),
            # The batch size is fixed with the job: a resumed run keeps the batch boundaries of the run it continues.
            metadata={
                "upload_id": upload_id,
                "mapping": mapping,
                "encoding": dialect.encoding,
                "delimiter": dialect.delimiter,
                "filename": filename[:200],
                "batch_size": _batch_size(),
            },
        )
        job_log(job, "import.queued", f"CSV import queued ({dialect.label}); columns: {', '.join(f'{k}←{v}' for k, v in mapping.items())}.")
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: Any) -> None:
    from sync.tasks import csv_import_task

    csv_import_task.delay(str(job_id))


def _committed_rows(position: Any) -> int:
    """Rows after the header that committed batches consumed (job.next_page holds {"rows", "line"} of the last batch)."""
    return int(position.get("rows", 0)) if isinstance(position, dict) else 0


def _resume_note(job: DataSyncJob) -> str:
    rows = _committed_rows(job.next_page)
    return f"after line {job.next_page['line']} ({rows} rows done)" if rows else "from the first row (no batch was committed)"


def csv_import_run(*, job_id: Any) -> DataSyncJob | None:
    """Stream the file in batches from the job's committed position: validate rows, report every bad row with its line, skip duplicates, merge people.

    A run that died is resumed from that position (sync_jobs_reap); a copy that reaches a batch another copy committed stops.
    """
    job = DataSyncJob.objects.select_related("organization").filter(pk=job_id, job_type=JobType.IMPORT).first()
    if job is None:
        return None
    if job.status not in ACTIVE_JOB_STATUSES:
        _upload_release(job)  # cancelled before it started
        return job
    if job.status == JobStatus.PENDING:
        now = timezone.now()
        DataSyncJob.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(status=JobStatus.RUNNING, started_at=now, phase="importing", heartbeat_at=now)
    path = _stored_upload(job)
    if path is None:
        _fail(job, _upload_gone(job))
        return job
    dialect = CsvDialect(encoding=job.metadata["encoding"], delimiter=job.metadata["delimiter"])
    mapping: dict[str, str] = job.metadata["mapping"]
    size = int(job.metadata.get("batch_size") or _batch_size())
    try:
        with collector_relaxed(), path.open("rb") as stream, closing(iter_rows(stream, dialect)) as rows:
            _, header = _first_row(rows)
            headers = [h.strip() for h in header]
            index = {field_name: headers.index(column) for field_name, column in mapping.items() if column in headers}
            done = _skip_committed(rows, job.next_page)
            # A run from the first row knows every id its earlier batches committed; a resumed run asks the database.
            earlier: dict[str, int] | None = {} if done == 0 else None
            batches = BatchesAhead(checked_batches(rows, size, index, len(headers), str(job.pk)))
            while (taken := batches.take()) is not None:
                batch, checked = taken
                if not _import_batch(job, batch, checked, start=done, earlier=earlier, meanwhile=batches.read_next):
                    _upload_release(job)  # kept while the job is active (another copy runs it), deleted once cancelled
                    return job
                done += len(batch)
    except CsvFormatError as error:
        _fail(job, str(error))
        return job
    if _complete(job, rows=done):
        _upload_release(job)
    return job


def _stored_upload(job: DataSyncJob) -> Path | None:
    try:
        return csv_upload_path(organization=job.organization, upload_id=job.metadata.get("upload_id", ""))
    except ApplicationError:
        return None


def _upload_gone(job: DataSyncJob) -> str:
    rows = _committed_rows(job.next_page)
    where = f"resume after line {job.next_page['line']}" if rows else "run"
    return f"The uploaded file is no longer stored, so the import cannot {where}. People imported so far are kept; upload the file again to import the rest."


def _first_row(rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    for line, row in rows:
        if any(cell.strip() for cell in row):
            return line, row
    raise CsvFormatError("The file has no header row.")


def _skip_committed(rows: Iterator[tuple[int, list[str]]], position: Any) -> int:
    """Read past the rows committed batches already consumed (parsing only, nothing merged or reported again); returns their count."""
    target = _committed_rows(position)
    if not target:
        return 0
    line = None
    for count, (row_line, _) in enumerate(rows, start=1):
        if count == target:
            line = row_line
            break
    if line != position.get("line"):
        # Another file under the same upload id would resume at the wrong row: refuse rather than import it from the middle.
        raise CsvFormatError(
            f"The stored upload no longer matches this import (row {target} should start on line {position.get('line')}); upload the file again."
        )
    return target


def _import_batch(
    job: DataSyncJob,
    batch: list[tuple[int, list[str]]],
    checked: CheckedBatch,
    *,
    start: int,
    earlier: dict[str, int] | None = None,
    meanwhile: Callable[[], None] = lambda: None,
) -> bool:
    """Merge one validated batch, committed with the position after it; False (nothing written) when the job ended or moved past `start`.

    `earlier` (external id → line) holds what this run's committed batches stored; it grows here after each commit. `meanwhile`
    (reading the next batch) runs while PostgreSQL checks this batch's foreign keys."""
    people, bad, warnings, rejected_emails = checked.people, checked.bad, checked.warnings, checked.rejected_emails
    with transaction.atomic():
        # Under the job row lock, like sync_job_step's page check: a redelivered or resumed copy that reaches a batch another
        # copy already committed (or a cancelled job) writes nothing.
        locked = DataSyncJob.objects.select_for_update().filter(pk=job.pk).values("status", "next_page", "records_processed", "error_log", "metadata").first()
        if locked is None or locked["status"] not in ACTIVE_JOB_STATUSES or _committed_rows(locked["next_page"]) != start:
            stale = locked is not None and locked["status"] in ACTIVE_JOB_STATUSES
        else:
            stale = None
            job.metadata = locked["metadata"]  # the suppression count adds to what is committed, not to this copy's snapshot
            created = _merge_batch(
                job,
                people,
                bad,
                done=locked["records_processed"] or 0,
                error_log=locked["error_log"] or [],
                rejected_emails=rejected_emails,
                earlier=earlier,
            )
            if warnings:
                import_warnings_log(job, warnings)
            DataSyncJob.objects.filter(pk=job.pk).update(
                records_processed=F("records_processed") + len(people) + len(bad),
                created_count=F("created_count") + created,
                updated_count=F("updated_count") + len(people) - created,
                error_count=F("error_count") + len(bad),
                pages=F("pages") + 1,
                next_page={"rows": start + len(batch), "line": batch[-1][0]},
                phase="importing",
                heartbeat_at=timezone.now(),
            )
            # The people and the position commit together, so a database crash loses the batch whole and the resumed job reads it again.
            page_commit_asynchronous()
            deferred_checks_beside(meanwhile)
    if stale is None and earlier is not None:
        earlier.update((external_id, person["_line"]) for external_id, person in people.items())
        if len(earlier) > EARLIER_IN_MEMORY_MAX:
            earlier.clear()  # past this the database answers, as for a resumed run (memory stays bounded)
    if stale:
        job_log(
            job,
            "import.batch_discarded",
            f"Lines {batch[0][0]}–{batch[-1][0]} were already imported by another run of this import; this copy stops.",
            level="warning",
            data={"first_line": batch[0][0], "last_line": batch[-1][0]},
        )
    return stale is None


def _merge_batch(
    job: DataSyncJob,
    people: dict[str, dict[str, Any]],
    bad: list[tuple[int, str]],
    *,
    done: int,
    error_log: list[Any],
    rejected_emails: dict[int, str],
    earlier: dict[str, int] | None = None,
) -> int:
    """Inside the batch transaction: drop cross-batch duplicates and suppressed rows from `people`, merge the rest, log `bad`; returns people created."""
    # Duplicates across batches (and across a resume: the identities carry the job and line and commit with the position).
    if earlier:
        duplicates = [(external_id, earlier[external_id]) for external_id in people if external_id in earlier]
    else:
        duplicates = _earlier_lines(job, list(people)) if earlier is None or done else []
    for external_id, earlier_line in duplicates:
        line = people.pop(external_id)["_line"]
        bad.append((line, f"duplicate of line {earlier_line} ({external_id}); not imported twice"))
    # Erased data subjects: reported by line (not as errors), never by name.
    erased = people_unsuppressed(
        organization_id=job.organization_id,
        source=CSV_SOURCE,
        integration=None,
        entity_type="people",
        items=people.values(),
        on_suppressed=job_suppressed_recorder(job, job.organization_id),
    )
    suppressed = sorted(people.pop(person["external_id"])["_line"] for person in erased.suppressed)
    SyncJobLog.objects.bulk_create(
        [
            SyncJobLog(job=job, event="csv.row_suppressed", message=f"Line {line}: {SUPPRESSED}", data={"line": line, "reason": SUPPRESSED})
            for line in suppressed
        ]
    )
    result = people_merge(organization=job.organization, source=CSV_SOURCE, integration=None, entity_type="people", items=people.values())
    if bad:
        bad.sort()
        SyncJobLog.objects.bulk_create(
            [
                SyncJobLog(
                    job=job,
                    level="error",
                    event="csv.row_rejected",
                    message=f"Line {line}: {reason}",
                    data={"line": line, "reason": reason, **({"email_digest": rejected_emails[line]} if rejected_emails.get(line) else {})},
                )
                for line, reason in bad
            ]
        )
        room = ERROR_LOG_CAP - len(error_log)
        if room > 0:
            DataSyncJob.objects.filter(pk=job.pk).update(error_log=[*error_log, *({"line": line, "reason": reason} for line, reason in bad[:room])])
    tables_analyze_on_growth(before=done, after=done + len(people), tables=PEOPLE_ANALYZED_COLUMNS)
    return result.created


def _earlier_lines(job: DataSyncJob, external_ids: list[str]) -> list[tuple[str, Any]]:
    """(external id, line) of ids this same import stored from an earlier batch."""
    if not external_ids:
        return []
    with connection.wrap_database_errors, raw_cursor() as cursor:
        stage_rows(cursor, "_sync_stage_values", "value text", ((e,) for e in external_ids))
        cursor.execute(
            "SELECT i.external_id, i.attributes->>'_line' FROM _sync_stage_values v CROSS JOIN LATERAL (SELECT i.external_id, i.attributes "
            "FROM sync_personidentity i WHERE i.organization_id = %(org)s AND i.source = %(source)s AND i.integration_id IS NULL "
            "AND i.external_id = v.value LIMIT 1) i WHERE i.attributes->>'_import_job' = %(job)s",  # LIMIT 1 (a unique key): an index probe
            {"org": job.organization_id, "source": CSV_SOURCE, "job": str(job.pk)},
        )
        return cursor.fetchall()


def _link_csv_managers(*, organization: Organization, job: DataSyncJob) -> int:
    """Managers listed by email who appeared later in the file are linked at the end.

    No ANALYZE here: each batch refreshed the statistics as the load crossed 2k/10k/50k/… rows (tables_analyze_on_growth),
    so the planner never sees this import's tables as empty; a last ANALYZE cost 2 % of a 100,000-row import."""
    with connection.cursor() as cursor:
        # One statement instead of one UPDATE per person: this import's people whose manager's email is now a known person.
        cursor.execute(
            "UPDATE sync_person p SET manager_id = m.id FROM sync_personidentity i JOIN sync_person m "
            "ON m.organization_id = i.organization_id AND m.email = i.attributes->>'manager_email' "
            "WHERE i.person_id = p.id AND i.organization_id = %(org)s AND i.source = %(source)s AND i.integration_id IS NULL "
            "AND i.attributes->>'_import_job' = %(job)s AND p.manager_id IS NULL AND m.id <> p.id "
            "AND COALESCE(i.attributes->>'manager_email', '') <> ''",
            {"org": organization.pk, "source": CSV_SOURCE, "job": str(job.pk)},
        )
        return cursor.rowcount


def _complete(job: DataSyncJob, *, rows: int) -> bool:
    """Link managers and close the job, once: False when the job already ended or its committed position is not the file's end."""
    with transaction.atomic():
        locked = DataSyncJob.objects.select_for_update().filter(pk=job.pk).values_list("status", "next_page").first()
        if locked is None or locked[0] not in ACTIVE_JOB_STATUSES or _committed_rows(locked[1]) != rows:
            return False
        _link_csv_managers(organization=job.organization, job=job)
        manager_links_report(job)
        error_count = DataSyncJob.objects.filter(pk=job.pk).values_list("error_count", flat=True).first() or 0
        status = JobStatus.PARTIAL if error_count else JobStatus.SUCCEEDED
        DataSyncJob.objects.filter(pk=job.pk).update(status=status, phase="done", completed_at=timezone.now(), last_error="", heartbeat_at=timezone.now())
        job.refresh_from_db()
        job_log(
            job,
            "import.finished",
            f"Imported {job.records_processed - job.error_count} people ({job.created_count} new, {job.updated_count} merged into existing); "
            f"{job.error_count} rows rejected (see the log for each line and reason)"
            + (f"; {import_warnings(job)} warnings (each names its line)" if import_warnings(job) else "")
            + (f"; {job.metadata['suppressed']} rows suppressed (erased data subjects)." if job.metadata.get("suppressed") else "."),
            level="warning" if job.error_count or import_warnings(job) else "info",
        )
    return True


def _fail(job: DataSyncJob, message: str, *, event: str = "import.failed", error_class: str = "") -> None:
    with transaction.atomic():
        failed = DataSyncJob.objects.filter(pk=job.pk, status__in=ACTIVE_JOB_STATUSES).update(
            status=JobStatus.FAILED, phase="failed", completed_at=timezone.now(), last_error=message, error_class=error_class
        )
        job.refresh_from_db()
        if failed:
            job_log(job, event, message, level="error")
    if failed:
        _upload_release(job)


def csv_imports_reap(*, now: Any, cutoff: Any) -> list[str]:
    """Resume imports with no progress since `cutoff` (their worker died) from the position committed with their last batch."""
    resumed = []
    stale = (
        DataSyncJob.objects.filter(status__in=ACTIVE_JOB_STATUSES, job_type=JobType.IMPORT)
        .annotate(alive_at=Coalesce(F("heartbeat_at"), F("created_at")))
        .filter(alive_at__lt=cutoff)
        .select_related("organization")
    )
    for job in stale:
        # Claim: move the heartbeat so a concurrent reaper run does not resume it twice.
        claimed = DataSyncJob.objects.filter(pk=job.pk, heartbeat_at=job.heartbeat_at, status__in=ACTIVE_JOB_STATUSES).update(heartbeat_at=now)
        if not claimed:
            continue
        if job.status == JobStatus.PENDING:
            since = f"Queued at {job.created_at:%H:%M:%S} and never started (its task was lost)"
        else:
            since = f"No progress since {job.heartbeat_at or job.created_at:%H:%M:%S}: the worker died"
        if job.pages and not _committed_rows(job.next_page):
            # Started before batches committed their position: re-reading from the top would report every stored row as a duplicate.
            reason = "this import has no committed position to resume from. People imported so far are kept; import the file again to finish."
            _fail(job, f"{since}, and {reason}", event="import.abandoned", error_class="system")
            continue
        if _stored_upload(job) is None:
            _fail(job, f"{since}. {_upload_gone(job)}", event="import.abandoned", error_class="system")
            continue
        job_log(
            job,
            "import.resumed",
            f"{since}; resuming {_resume_note(job)}.",
            level="warning",
            data={"position": job.next_page},
        )
        transaction.on_commit(lambda job_id=job.pk: _enqueue(job_id))
        resumed.append(str(job.pk))
    return resumed


EXPORT_COLUMNS = ["email", "name", "given_name", "family_name", "title", "department", "phone", "manager_email", "groups", "sources"]


def people_export_rows(*, organization: Organization) -> Iterator[str]:
    """CSV lines of the organization's people (streamed), every cell guarded against formula injection."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return value

    writer.writerow(EXPORT_COLUMNS)
    yield flush()
    queryset = Person.objects.filter(organization=organization).select_related("manager").prefetch_related("identities").order_by("display_name", "pk")
    for person in queryset.iterator(chunk_size=1000):
        sources = sorted({i.source for i in person.identities.all()})
        writer.writerow(
            [
                guard_cell(v)
                for v in (
                    person.email,
                    person.display_name,
                    person.given_name,
                    person.family_name,
                    person.title,
                    person.department,
                    person.phone,
                    person.manager.email if person.manager else "",
                    "; ".join(person.groups or []),
                    "; ".join(sources),
                )
            ]
        )
        yield flush()
