"""The records store: batched, idempotent upserts skipped by content hash, explicit and full-scan deletions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.bulk import ORJSON_OPTIONS, json_text, raw_cursor, stage_rows, time_ordered_id_text
from common.url_safety import link_fields_sanitized
from integrations.connectors.base import BaseConnector
from integrations.models import Integration
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob, SyncRecord, SyncScanSeen
from sync.services.suppression import records_unsuppressed

# Built once: json.dumps with options builds a new encoder per call, a measurable cost at 100,000 records a run.
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode
# orjson (common.bulk.ORJSON_OPTIONS) writes the same bytes as _canonical for what vendors send (str keys, strings, integers, booleans, null, lists,
# objects, plain floats; datetimes through default=str) about five times faster. Floats in exponent form differ ("1e-7" vs
# "1e-07"): such a record hashed by an older release is rewritten once, nothing is lost. Anything orjson refuses (integers past
# 64 bits, lone surrogates) takes the json module's path, so no record fails on the fast path's account.


def canonical_json_bytes(record: Any) -> bytes:
    """Canonical JSON (sorted keys, no whitespace, UTF-8) of a record."""
    try:
        return orjson.dumps(record, option=ORJSON_OPTIONS | orjson.OPT_SORT_KEYS, default=str)
    except (orjson.JSONEncodeError, TypeError):
        return _canonical(record).encode()


def content_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a raw record (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json_bytes(record)).hexdigest()


def parse_source_time(value: Any) -> datetime | None:
    """The source's updated-at as an aware datetime (ISO strings, epoch seconds or datetimes)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)  # Bastion-shaped data of created/updated records


# A bulk load refreshes planner statistics as its row count crosses each of these (autovacuum may be a minute behind; until it
# runs, a source loaded a moment ago looks empty and a join over it can be planned as nested sequential scans).
ANALYZE_THRESHOLDS = (2_000, 10_000, 50_000, 250_000, 1_250_000, 6_250_000)
# Statistics for the columns the sync's joins and lookups use: the JSON and search-text columns were most of ANALYZE's time.
RECORDS_ANALYZED_COLUMNS = "sync_syncrecord (id, organization_id, integration_id, entity_type, external_id, is_deleted, last_seen_at, last_seen_job_id)"
PEOPLE_ANALYZED_COLUMNS = (
    "sync_person (id, organization_id, email, manager_id)",
    "sync_personidentity (person_id, organization_id, source, integration_id, external_id)",
)


def tables_analyze_on_growth(*, before: int, after: int, tables: Sequence[str]) -> bool:
    """ANALYZE the tables (PostgreSQL) when a run's written-row count crosses a threshold; return whether it ran."""
    if not any(before < threshold <= after for threshold in ANALYZE_THRESHOLDS):
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}")
    return True


def page_commit_asynchronous() -> None:
    """Let this transaction's commit return before its WAL reaches disk (PostgreSQL `synchronous_commit = off`, this transaction only).

    Safe for a page because the records, the people and the cursor that covers them commit together: if the database itself
    crashes within the next few hundred milliseconds the page is lost whole and the resumed job reads it again (upserts are
    idempotent). A worker crash loses nothing that was committed. Worth it: the WAL flush was a tenth of an unchanged re-sync.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


# external id → (raw, canonical JSON text of raw, content hash, source updated-at)
Incoming = dict[str, tuple[Mapping[str, Any], str, str, datetime | None]]


def _incoming(connector: BaseConnector, entity_type: str, records: Iterable[Mapping[str, Any]]) -> Incoming:
    """external id → (raw, its canonical JSON, content hash, source updated-at); a later copy of the same id in one batch wins.

    The canonical JSON is hashed and is also what the raw column receives: jsonb keeps neither key order nor whitespace, so it
    stores the same document a second, unsorted encoding would (one encoding per record instead of two).
    """
    incoming: Incoming = {}
    for raw in records:
        external_id = connector.external_id(entity_type, raw)
        canonical = canonical_json_bytes(raw)
        incoming[external_id] = (raw, canonical.decode(), hashlib.sha256(canonical).hexdigest(), parse_source_time(connector.updated_at(entity_type, raw)))
    return incoming


def records_upsert(
    *,
    integration: Integration,
    entity_type: str,
    records: Iterable[Mapping[str, Any]],
    connector: BaseConnector,
    job: DataSyncJob | None = None,
    full_scan: bool = False,
) -> UpsertResult:
    """Upsert one batch in the caller's transaction; unchanged (same hash) and stale (older source time) records are only stamped seen.

    `full_scan` (a page of a complete scan by `job`): unchanged records are listed in SyncScanSeen instead of stamped.
    """
    records = records_unsuppressed(integration=integration, entity_type=entity_type, records=records, connector=connector, job=job)
    incoming = _incoming(connector, entity_type, records)
    if not incoming:
        return UpsertResult()
    return _upsert_copy(
        integration=integration, entity_type=entity_type, incoming=incoming, connector=connector, job=job, scan_log=full_scan and job is not None
    )


def _classify(result: UpsertResult, incoming: Incoming, existing: Mapping[str, tuple[str, datetime | None, bool]]) -> list[str]:
    """Count unchanged/stale/updated/created against the stored state; return the external ids to write."""
    to_write = []
    for external_id, (_raw, _text, digest, source_time) in incoming.items():
        current = existing.get(external_id)
        if current is not None:
            current_hash, current_time, is_deleted = current
            if not is_deleted and current_hash == digest:
                result.unchanged += 1
                continue
            if current_time and source_time and source_time < current_time:
                # A newer version already arrived (webhook vs poll race): keep it.
                result.stale += 1
                continue
            result.updated += 1
        else:
            result.created += 1
        to_write.append(external_id)
    return to_write


# One probe of the unique index: the first stored key at or after the page's least key, in the index's order (the database's
# collation), compared with the page's greatest key. Nothing in between for every page of a first import from a vendor that pages
# in key order, and then the page needs no staging, no hash probe and no lock. A page whose range holds records takes the usual
# path; a record inserted after this answer fails the COPY on the unique key, which falls back to the locked path.
# ORDER BY … LIMIT 1 keeps it an index probe (as NOT EXISTS over the range it was planned as a sequential scan: 20 ms a page).
_NONE_IN_RANGE = (
    "WITH page AS MATERIALIZED (SELECT min(k) AS least, max(k) AS greatest FROM unnest(%(keys)s::text[]) AS k) "
    "SELECT COALESCE((SELECT r.external_id FROM sync_syncrecord r WHERE r.integration_id = %(integration)s AND r.entity_type = %(entity)s "
    "AND r.external_id >= (SELECT least FROM page) ORDER BY r.external_id LIMIT 1) > (SELECT greatest FROM page), true)"
)
# Records whose stored hash equals the incoming one (the whole of an unchanged re-sync), found by one unique-index probe per staged
# key and answered with their ids only: a full scan lists them for deletion detection (an append, no row rewritten); any other
# sync stamps them seen (the hash is re-checked on the row it updates).
_SAME = (
    "EXISTS (SELECT 1 FROM sync_syncrecord r WHERE r.integration_id = %(integration)s AND r.entity_type = %(entity)s "
    "AND r.external_id = s.external_id AND r.content_hash = s.content_hash AND NOT r.is_deleted)"
)
_MARK_SCAN = f"INSERT INTO sync_syncscanseen (job_id, external_id) SELECT %(job)s, s.external_id FROM _sync_stage_hashes s WHERE {_SAME} RETURNING external_id"
_MARK_STAMP = (
    "UPDATE sync_syncrecord r SET last_seen_at = %(now)s, last_seen_job_id = %(job)s FROM _sync_stage_hashes s "
    "WHERE r.integration_id = %(integration)s AND r.entity_type = %(entity)s "
    "AND r.external_id = s.external_id AND r.content_hash = s.content_hash AND NOT r.is_deleted RETURNING r.external_id"
)
RECORD_COLUMNS = (
    "id, created_at, updated_at, organization_id, integration_id, entity_type, external_id, raw, data, content_hash, source_updated_at, "
    "first_seen_at, last_seen_at, last_seen_job_id, is_deleted, deleted_at"
)


def _range_check_pays(job: DataSyncJob | None) -> bool:
    """Whether to try the key-range check: on a job's first page, and on later pages while the job has only created records
    (a first import); a re-sync's pages, once it has met a known record, and webhook batches (no job) go straight to the hash probe."""
    if job is None:
        return False
    return job.pages == 0 or (job.created_count > 0 and job.updated_count == 0 and job.unchanged_count == 0)


def _write_row(connector: BaseConnector, entity_type: str, result: UpsertResult, external_id: str, incoming: Incoming) -> tuple:
    """(external id, raw, data, hash, source time) of a record to write; its Bastion-shaped data joins result.changed."""
    raw, text, digest, source_time = incoming[external_id]
    # Vendor links are stored and may be rendered as hrefs: http(s) only (common.url_safety).
    data = link_fields_sanitized(connector.to_bastion(entity_type, raw))
    result.changed.append(data)
    return (external_id, text, json_text(data), digest, source_time)


def _insert_new(cursor: Any, rows: list[tuple], scope: Mapping[str, Any]) -> bool:
    """COPY records no probe found straight into the table; False (nothing written) if one exists by now (a webhook won the race)."""
    cursor.execute("SAVEPOINT sync_records_new")
    try:
        with cursor.copy(f"COPY sync_syncrecord ({RECORD_COLUMNS}) FROM STDIN") as copy:
            now, org, integration, entity, job = scope["now"], scope["org"], scope["integration"], scope["entity"], scope["job"]
            for external_id, raw, data, digest, source_time in rows:
                copy.write_row(
                    (time_ordered_id_text(), now, now, org, integration, entity, external_id, raw, data, digest, source_time, now, now, job, False, None)
                )
    except psycopg.errors.UniqueViolation:
        cursor.execute("ROLLBACK TO SAVEPOINT sync_records_new")
        return False
    cursor.execute("RELEASE SAVEPOINT sync_records_new")
    return True


def _upsert_copy(
    *,
    integration: Integration,
    entity_type: str,
    incoming: Incoming,
    connector: BaseConnector,
    job: DataSyncJob | None = None,
    scan_log: bool = False,
) -> UpsertResult:
    """PostgreSQL: a page of new keys is COPYed straight in; otherwise the keys and hashes are staged, unchanged records listed or
    stamped by one statement, the rest locked: keys still unknown are COPYed in, changed records upserted (INSERT … ON CONFLICT)."""
    now = timezone.now()
    result = UpsertResult()
    job_id = job.pk if job is not None else None
    scope = {"integration": integration.pk, "entity": entity_type, "now": now, "job": job_id, "org": integration.organization_id}
    with transaction.atomic(savepoint=False), connection.wrap_database_errors, raw_cursor() as cursor:
        rest, stored_rows = list(incoming), []
        all_new = False
        if _range_check_pays(job):
            cursor.execute(_NONE_IN_RANGE, {**scope, "keys": rest})
            all_new = cursor.fetchone()[0]  # no record between the page's least and greatest key: a first import read in key order
        if not all_new:
            stage_rows(cursor, "_sync_stage_hashes", "external_id text, content_hash text", ((ext, incoming[ext][2]) for ext in sorted(incoming)))
            cursor.execute(_MARK_SCAN if scan_log else _MARK_STAMP, scope)
            unchanged = {row[0] for row in cursor.fetchall()}
            result.unchanged = len(unchanged)
            if len(unchanged) == len(incoming):
                return result
            rest = [ext for ext in incoming if ext not in unchanged]
            stored_rows = _lock(cursor, rest, scope)
        stored = {row[0] for row in stored_rows}
        new = {ext for ext in rest if ext not in stored}
        if new:
            # Keys no record has (a first import: every key): COPYed straight in, in the page's order.
            created = UpsertResult()
            rows = [_write_row(connector, entity_type, created, external_id, incoming) for external_id in rest if external_id in new]
            if _insert_new(cursor, rows, scope):
                result.created, result.changed = len(rows), created.changed
                rest = [ext for ext in rest if ext in stored]
            else:  # a concurrent writer inserted one of them meanwhile: lock the lot and classify it as below
                stored_rows = _lock(cursor, rest, scope)
        if rest:
            _upsert_locked(cursor, connector, entity_type, {ext: incoming[ext] for ext in rest}, stored_rows, result, scope)
    return result


def _lock(cursor: Any, keys: list[str], scope: Mapping[str, Any]) -> list[tuple]:
    """Lock the stored records of these keys (in key order): a webhook and a page touching the same record serialize here.

    LATERAL … FOR UPDATE is one unique-index probe per staged key, whatever the statistics say about a source loaded a moment ago.
    """
    stage_rows(cursor, "_sync_stage_keys", "external_id text", ((ext,) for ext in sorted(keys)))
    cursor.execute(
        "SELECT r.external_id, r.content_hash, r.source_updated_at, r.is_deleted, r.id FROM _sync_stage_keys s CROSS JOIN LATERAL "
        "(SELECT * FROM sync_syncrecord r WHERE r.integration_id = %(integration)s AND r.entity_type = %(entity)s "
        "AND r.external_id = s.external_id FOR UPDATE) r",
        scope,
    )
    return cursor.fetchall()


def _upsert_locked(
    cursor: Any, connector: BaseConnector, entity_type: str, incoming: Incoming, rows: list[tuple], result: UpsertResult, scope: Mapping[str, Any]
) -> None:
    """Classify records against their locked stored rows, stamp what is unchanged or stale, upsert what is new or changed."""
    existing = {row[0]: row[1:4] for row in rows}
    already_unchanged = result.unchanged
    to_write = _classify(result, incoming, existing)
    if result.unchanged > already_unchanged or result.stale:
        # Unchanged (same hash, live) or stale (older than stored): only stamped seen, by primary key, in one statement.
        writing = set(to_write)
        stage_rows(cursor, "_sync_stage_uuids", "value uuid", ((row[4],) for row in rows if row[0] in incoming and row[0] not in writing))
        cursor.execute("UPDATE sync_syncrecord r SET last_seen_at = %(now)s, last_seen_job_id = %(job)s FROM _sync_stage_uuids v WHERE r.id = v.value", scope)
    write_rows = [_write_row(connector, entity_type, result, external_id, incoming) for external_id in to_write]
    # New and changed records alike go through ON CONFLICT: a webhook may insert the same new record between the lock and here.
    if write_rows:
        stage_rows(cursor, "_sync_stage_records", "external_id text, raw jsonb, data jsonb, content_hash text, source_updated_at timestamptz", write_rows)
        cursor.execute(
            f"INSERT INTO sync_syncrecord ({RECORD_COLUMNS}) "
            "SELECT gen_random_uuid(), %(now)s, %(now)s, %(org)s, %(integration)s, %(entity)s, s.external_id, s.raw, s.data, "
            "s.content_hash, s.source_updated_at, %(now)s, %(now)s, %(job)s, false, NULL FROM _sync_stage_records s "
            "ON CONFLICT (integration_id, entity_type, external_id) DO UPDATE SET raw = EXCLUDED.raw, data = EXCLUDED.data, "
            "content_hash = EXCLUDED.content_hash, source_updated_at = EXCLUDED.source_updated_at, last_seen_at = EXCLUDED.last_seen_at, "
            "last_seen_job_id = EXCLUDED.last_seen_job_id, is_deleted = false, deleted_at = NULL, updated_at = EXCLUDED.updated_at "
            "WHERE sync_syncrecord.content_hash IS DISTINCT FROM EXCLUDED.content_hash OR sync_syncrecord.is_deleted",
            scope,
        )


def records_mark_deleted(*, integration: Integration, entity_type: str, external_ids: Iterable[str], occurred_at: datetime | None = None) -> list[str]:
    """Mark records deleted (explicit vendor deletions); a record updated at the source after `occurred_at` is kept."""
    ids = [str(i) for i in external_ids]
    if not ids:
        return []
    queryset = SyncRecord.objects.filter(integration=integration, entity_type=entity_type, external_id__in=ids, is_deleted=False)
    if occurred_at is not None:
        queryset = queryset.filter(Q(source_updated_at__isnull=True) | Q(source_updated_at__lte=occurred_at))
    deleted = list(queryset.values_list("external_id", flat=True))
    if deleted:
        SyncRecord.objects.filter(integration=integration, entity_type=entity_type, external_id__in=deleted).update(
            is_deleted=True, deleted_at=timezone.now(), updated_at=timezone.now()
        )
    return deleted


def records_mark_vanished(*, job: DataSyncJob, entity_type: str) -> list[str]:
    """After a complete, successful full scan: records the run never saw (and nothing touched since it began) are deleted."""
    queryset = (
        SyncRecord.objects.filter(integration_id=job.integration_id, entity_type=entity_type, is_deleted=False, last_seen_at__lt=job.started_at)
        .exclude(last_seen_job=job)
        .exclude(external_id__in=SyncScanSeen.objects.filter(job_id=job.pk).values("external_id"))
    )
    vanished = list(queryset.values_list("external_id", flat=True))
    if vanished:
        now = timezone.now()
        for start in range(0, len(vanished), 5000):
            SyncRecord.objects.filter(integration_id=job.integration_id, entity_type=entity_type, external_id__in=vanished[start : start + 5000]).update(
                is_deleted=True, deleted_at=now, updated_at=now
            )
    return vanished


def scan_seen_discard(*, job_ids: Iterable[Any] | None = None) -> int:
    """Drop the scan lists of the given jobs, or (no ids: the reaper's sweep) of every job that is no longer active.

    The sweep is one statement: a job whose rows it can see was committed before it, so an active one is in its subquery.
    """
    queryset = SyncScanSeen.objects.all()
    if job_ids is not None:
        queryset = queryset.filter(job_id__in=list(job_ids))
    else:
        queryset = queryset.exclude(job_id__in=DataSyncJob.objects.filter(status__in=ACTIVE_JOB_STATUSES).values("pk"))
    return queryset.delete()[0]
