"""The records store: batched, idempotent upserts skipped by content hash, explicit and full-scan deletions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.bulk import ORJSON_OPTIONS, json_text, raw_cursor, stage_rows
from common.url_safety import link_fields_sanitized
from integrations.connectors.base import BaseConnector
from integrations.models import Integration
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob, SyncRecord, SyncScanSeen
from sync.services.suppression import records_unsuppressed

UPSERT_UPDATE_FIELDS = ["raw", "data", "content_hash", "source_updated_at", "last_seen_at", "last_seen_job", "is_deleted", "deleted_at", "updated_at"]


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


Incoming = dict[str, tuple[Mapping[str, Any], str, datetime | None]]


def _incoming(connector: BaseConnector, entity_type: str, records: Iterable[Mapping[str, Any]]) -> Incoming:
    """external id → (raw, content hash, source updated-at); a later copy of the same id in one batch wins."""
    incoming: Incoming = {}
    for raw in records:
        external_id = connector.external_id(entity_type, raw)
        incoming[external_id] = (raw, content_hash(raw), parse_source_time(connector.updated_at(entity_type, raw)))
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
    for external_id, (_raw, digest, source_time) in incoming.items():
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


def _upsert_copy(
    *,
    integration: Integration,
    entity_type: str,
    incoming: Incoming,
    connector: BaseConnector,
    job: DataSyncJob | None = None,
    scan_log: bool = False,
) -> UpsertResult:
    """PostgreSQL: COPY the batch's keys into staging, lock and compare in one join, then one INSERT … ON CONFLICT for what changed."""
    now = timezone.now()
    result = UpsertResult()
    job_id = job.pk if job is not None else None
    scope = {"integration": integration.pk, "entity": entity_type, "now": now, "job": job_id, "org": integration.organization_id}
    with transaction.atomic(savepoint=False), connection.wrap_database_errors, raw_cursor() as cursor:
        # Fast path first: records whose stored hash equals the incoming one (the whole of an unchanged re-sync), found by one
        # unique-index probe per staged key and answered with their ids only. A full scan lists them for deletion detection
        # (an append, no row rewritten); any other sync stamps them seen.
        stage_rows(cursor, "_sync_stage_hashes", "external_id text, content_hash text", ((ext, incoming[ext][1]) for ext in sorted(incoming)))
        same = (
            "EXISTS (SELECT 1 FROM sync_syncrecord r WHERE r.integration_id = %(integration)s AND r.entity_type = %(entity)s "
            "AND r.external_id = s.external_id AND r.content_hash = s.content_hash AND NOT r.is_deleted)"
        )
        if scan_log:
            cursor.execute(
                f"INSERT INTO sync_syncscanseen (job_id, external_id) SELECT %(job)s, s.external_id FROM _sync_stage_hashes s WHERE {same} RETURNING external_id",
                scope,
            )
        else:
            cursor.execute(
                "UPDATE sync_syncrecord r SET last_seen_at = %(now)s, last_seen_job_id = %(job)s FROM _sync_stage_hashes s "
                "WHERE r.integration_id = %(integration)s AND r.entity_type = %(entity)s "
                "AND r.external_id = s.external_id AND r.content_hash = s.content_hash AND NOT r.is_deleted RETURNING r.external_id",
                scope,
            )
        unchanged = {row[0] for row in cursor.fetchall()}
        result.unchanged = len(unchanged)
        if len(unchanged) == len(incoming):
            return result
        incoming = {ext: value for ext, value in incoming.items() if ext not in unchanged}
        stage_rows(cursor, "_sync_stage_keys", "external_id text", ((ext,) for ext in sorted(incoming)))
        # Lock existing rows of this batch (in key order): a webhook and a page touching the same record serialize here.
        # LATERAL makes the plan one unique-index probe per staged key, whatever the statistics say about a source loaded a moment ago.
        cursor.execute(
            "SELECT r.external_id, r.content_hash, r.source_updated_at, r.is_deleted, r.id FROM _sync_stage_keys s CROSS JOIN LATERAL "
            "(SELECT * FROM sync_syncrecord r WHERE r.integration_id = %(integration)s AND r.entity_type = %(entity)s "
            "AND r.external_id = s.external_id FOR UPDATE) r",
            scope,
        )
        rows = cursor.fetchall()
        existing = {row[0]: row[1:4] for row in rows}
        already_unchanged = result.unchanged
        to_write = _classify(result, incoming, existing)
        if result.unchanged > already_unchanged or result.stale:
            # Unchanged (same hash, live) or stale (older than stored): only stamped seen, by primary key, in one statement.
            writing = set(to_write)
            stage_rows(cursor, "_sync_stage_uuids", "value uuid", ((row[4],) for row in rows if row[0] not in writing))
            cursor.execute(
                "UPDATE sync_syncrecord r SET last_seen_at = %(now)s, last_seen_job_id = %(job)s FROM _sync_stage_uuids v WHERE r.id = v.value", scope
            )
        write_rows = []
        for external_id in to_write:
            raw, digest, source_time = incoming[external_id]
            # Vendor links are stored and may be rendered as hrefs: http(s) only (common.url_safety).
            data = link_fields_sanitized(connector.to_bastion(entity_type, raw))
            result.changed.append(data)
            write_rows.append((external_id, json_text(dict(raw)), json_text(data), digest, source_time))
        # New and changed records alike go through ON CONFLICT: a webhook may insert the same new record between the lock and here.
        if write_rows:
            stage_rows(cursor, "_sync_stage_records", "external_id text, raw jsonb, data jsonb, content_hash text, source_updated_at timestamptz", write_rows)
            cursor.execute(
                "INSERT INTO sync_syncrecord (id, created_at, updated_at, organization_id, integration_id, entity_type, external_id, raw, data, "
                "content_hash, source_updated_at, first_seen_at, last_seen_at, last_seen_job_id, is_deleted, deleted_at) "
                "SELECT gen_random_uuid(), %(now)s, %(now)s, %(org)s, %(integration)s, %(entity)s, s.external_id, s.raw, s.data, "
                "s.content_hash, s.source_updated_at, %(now)s, %(now)s, %(job)s, false, NULL FROM _sync_stage_records s "
                "ON CONFLICT (integration_id, entity_type, external_id) DO UPDATE SET raw = EXCLUDED.raw, data = EXCLUDED.data, "
                "content_hash = EXCLUDED.content_hash, source_updated_at = EXCLUDED.source_updated_at, last_seen_at = EXCLUDED.last_seen_at, "
                "last_seen_job_id = EXCLUDED.last_seen_job_id, is_deleted = false, deleted_at = NULL, updated_at = EXCLUDED.updated_at "
                "WHERE sync_syncrecord.content_hash IS DISTINCT FROM EXCLUDED.content_hash OR sync_syncrecord.is_deleted",
                scope,
            )
    return result


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
