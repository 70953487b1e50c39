"""CSV import of people as stakeholders (a DataSyncJob of type import) and CSV export with a formula-injection guard."""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Organization
from common.errors import ApplicationError
from sync.csv_import import BASTION_FIELDS, CsvDialect, CsvFormatError, detect, guard_cell, iter_rows, mapping_problems, row_to_person, suggest_mapping
from sync.models import DataSyncJob, JobStatus, JobTrigger, JobType, Person, PersonIdentity, SyncJobLog
from sync.services.jobs import ERROR_LOG_CAP, job_log
from sync.services.people import people_merge, people_tables_analyze
from sync.services.records import bulk_sql_available, raw_cursor, stage_rows, tables_analyze_on_growth
from sync.services.suppression import people_unsuppressed

logger = logging.getLogger(__name__)
BATCH_SIZE = 10_000  # rows per transaction: one COPY + a few set-based statements each on PostgreSQL
PREVIEW_ROWS = 10
CSV_SOURCE = "csv"
SUPPRESSED = "suppressed: erased data subject"


def _upload_dir(organization: Organization) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / str(organization.pk)


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
            metadata={"upload_id": upload_id, "mapping": mapping, "encoding": dialect.encoding, "delimiter": dialect.delimiter, "filename": filename[:200]},
        )
        job_log(job, "import.queued", f"CSV import queued ({dialect.label}); columns: {', '.join(f'{k}←{v}' for k, v in mapping.items())}.")
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: Any) -> None:
    from sync.tasks import csv_import_task

    csv_import_task.delay(str(job_id))


def csv_import_run(*, job_id: Any) -> DataSyncJob | None:
    """Stream the file in batches: validate rows, report every bad row with its line, skip duplicates, merge people."""
    job = DataSyncJob.objects.select_related("organization").filter(pk=job_id, job_type=JobType.IMPORT).first()
    if job is None or job.status != JobStatus.PENDING:
        return job
    DataSyncJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=timezone.now(), phase="importing", heartbeat_at=timezone.now())
    organization = job.organization
    try:
        path = csv_upload_path(organization=organization, upload_id=job.metadata["upload_id"])
    except ApplicationError as error:
        _finish(job, JobStatus.FAILED, error.message)
        return job
    dialect = CsvDialect(encoding=job.metadata["encoding"], delimiter=job.metadata["delimiter"])
    mapping: dict[str, str] = job.metadata["mapping"]
    try:
        with path.open("rb") as stream:
            rows = iter_rows(stream, dialect)
            header_line, header = _first_row(rows)
            headers = [h.strip() for h in header]
            index = {field_name: headers.index(column) for field_name, column in mapping.items() if column in headers}
            batch: list[tuple[int, list[str]]] = []
            for line, row in rows:
                batch.append((line, row))
                if len(batch) >= BATCH_SIZE:
                    _import_batch(job, batch, index, len(headers))
                    batch = []
            if batch:
                _import_batch(job, batch, index, len(headers))
    except CsvFormatError as error:
        _finish(job, JobStatus.FAILED, str(error))
        return job
    _link_csv_managers(organization=organization, job=job)
    job.refresh_from_db()
    status = JobStatus.PARTIAL if job.error_count else JobStatus.SUCCEEDED
    _finish(job, status, "")
    path.unlink(missing_ok=True)
    return job


def _first_row(rows: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    for line, row in rows:
        if any(cell.strip() for cell in row):
            return line, row
    raise CsvFormatError("The file has no header row.")


def _import_batch(job: DataSyncJob, batch: list[tuple[int, list[str]]], index: dict[str, int], width: int) -> None:
    bad: list[tuple[int, str]] = []
    people: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for line, row in batch:
        if not any(cell.strip() for cell in row):
            continue  # a blank line is not a record
        if len(row) != width:
            bad.append((line, f"has {len(row)} fields, the header has {width}"))
            continue
        person, reason = row_to_person(row, index)
        if person is None:
            bad.append((line, reason))
            continue
        key = person["external_id"]
        if key in first_line:
            bad.append((line, f"duplicate of line {first_line[key]} ({key}); not imported twice"))
            continue
        first_line[key] = line
        person["_import_job"], person["_line"] = str(job.pk), line
        people[key] = person
    with transaction.atomic():
        # Duplicates across batches: this import already stored the same id from an earlier line.
        for external_id, earlier_line in _earlier_lines(job, list(people)):
            line = people.pop(external_id)["_line"]
            bad.append((line, f"duplicate of line {earlier_line} ({external_id}); not imported twice"))
        # Erased data subjects: reported by line (not as errors), never by name.
        erased = people_unsuppressed(
            organization_id=job.organization_id, source=CSV_SOURCE, integration=None, entity_type="people", items=people.values(), job=job
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
                    SyncJobLog(job=job, level="error", event="csv.row_rejected", message=f"Line {line}: {reason}", data={"line": line, "reason": reason})
                    for line, reason in bad
                ]
            )
            current = DataSyncJob.objects.filter(pk=job.pk).values_list("error_log", flat=True).first() or []
            room = ERROR_LOG_CAP - len(current)
            if room > 0:
                DataSyncJob.objects.filter(pk=job.pk).update(error_log=[*current, *({"line": line, "reason": reason} for line, reason in bad[:room])])
        done = DataSyncJob.objects.filter(pk=job.pk).values_list("records_processed", flat=True).first() or 0
        tables_analyze_on_growth(before=done, after=done + len(people), tables=["sync_person", "sync_personidentity"])
        DataSyncJob.objects.filter(pk=job.pk).update(
            records_processed=F("records_processed") + len(people) + len(bad),
            created_count=F("created_count") + result.created,
            updated_count=F("updated_count") + len(people) - result.created,
            error_count=F("error_count") + len(bad),
            pages=F("pages") + 1,
            heartbeat_at=timezone.now(),
        )


def _earlier_lines(job: DataSyncJob, external_ids: list[str]) -> list[tuple[str, Any]]:
    """(external id, line) of ids this same import stored from an earlier batch."""
    if not external_ids:
        return []
    if bulk_sql_available():
        with connection.wrap_database_errors, raw_cursor() as cursor:
            stage_rows(cursor, "_sync_stage_values", "value text", ((e,) for e in external_ids))
            cursor.execute(
                "SELECT i.external_id, i.attributes->>'_line' FROM _sync_stage_values v CROSS JOIN LATERAL (SELECT i.external_id, i.attributes "
                "FROM sync_personidentity i WHERE i.organization_id = %(org)s AND i.source = %(source)s AND i.integration_id IS NULL "
                "AND i.external_id = v.value) i WHERE i.attributes->>'_import_job' = %(job)s",
                {"org": job.organization_id, "source": CSV_SOURCE, "job": str(job.pk)},
            )
            return cursor.fetchall()
    earlier = PersonIdentity.objects.filter(
        organization_id=job.organization_id, source=CSV_SOURCE, integration__isnull=True, external_id__in=external_ids
    ).filter(attributes___import_job=str(job.pk))
    return [(external_id, attributes.get("_line")) for external_id, attributes in earlier.values_list("external_id", "attributes")]


def _link_csv_managers(*, organization: Organization, job: DataSyncJob) -> int:
    """Managers listed by email who appeared later in the file are linked at the end."""
    if bulk_sql_available():
        people_tables_analyze(changed_rows=DataSyncJob.objects.filter(pk=job.pk).values_list("records_processed", flat=True).first() or 0)
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
    rows = (
        PersonIdentity.objects.filter(organization=organization, source=CSV_SOURCE, integration__isnull=True, person__manager__isnull=True)
        .filter(attributes___import_job=str(job.pk))
        .exclude(Q(attributes__manager_email="") | Q(attributes__manager_email=None))
        .values_list("person_id", "attributes__manager_email")
    )
    linked = 0
    pending = list(rows)
    for start in range(0, len(pending), BATCH_SIZE):
        chunk = pending[start : start + BATCH_SIZE]
        managers = dict(Person.objects.filter(organization=organization, email__in={e for _, e in chunk}).values_list("email", "pk"))
        for person_id, email in chunk:
            if managers.get(email) and managers[email] != person_id:
                linked += Person.objects.filter(pk=person_id, manager__isnull=True).update(manager_id=managers[email])
    return linked


def _finish(job: DataSyncJob, status: str, message: str) -> None:
    DataSyncJob.objects.filter(pk=job.pk).update(
        status=status, phase="done" if status != JobStatus.FAILED else "failed", completed_at=timezone.now(), last_error=message
    )
    job.refresh_from_db()
    if status == JobStatus.FAILED:
        job_log(job, "import.failed", message, level="error")
    else:
        job_log(
            job,
            "import.finished",
            f"Imported {job.records_processed - job.error_count} people ({job.created_count} new, {job.updated_count} merged into existing); "
            f"{job.error_count} rows rejected (see the log for each line and reason)"
            + (f"; {job.metadata['suppressed']} rows suppressed (erased data subjects)." if job.metadata.get("suppressed") else "."),
            level="warning" if job.error_count else "info",
        )


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
