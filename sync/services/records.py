"""The records store: batched, idempotent upserts skipped by content hash, explicit and full-scan deletions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from integrations.connectors.base import BaseConnector
from integrations.models import Integration
from sync.models import DataSyncJob, SyncRecord

UPSERT_UPDATE_FIELDS = ["raw", "data", "content_hash", "source_updated_at", "last_seen_at", "last_seen_job", "is_deleted", "deleted_at", "updated_at"]


def content_hash(record: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a raw record (sorted keys, no whitespace)."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


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


def records_upsert(
    *, integration: Integration, entity_type: str, records: Iterable[Mapping[str, Any]], connector: BaseConnector, job: DataSyncJob | None = None
) -> UpsertResult:
    """Upsert one batch in the caller's transaction; unchanged (same hash) and stale (older source time) records are only stamped seen."""
    now = timezone.now()
    incoming: dict[str, tuple[Mapping[str, Any], str, datetime | None]] = {}
    for raw in records:
        external_id = connector.external_id(entity_type, raw)
        incoming[external_id] = (raw, content_hash(raw), parse_source_time(connector.updated_at(entity_type, raw)))
    result = UpsertResult()
    if not incoming:
        return result
    # Lock existing rows of this batch: a webhook and a page touching the same record serialize here.
    existing = {
        row[0]: row[1:]
        for row in SyncRecord.objects.select_for_update()
        .filter(integration=integration, entity_type=entity_type, external_id__in=list(incoming))
        .order_by("external_id")
        .values_list("external_id", "pk", "content_hash", "source_updated_at", "is_deleted")
    }
    seen_ids: list[Any] = []
    to_write: list[SyncRecord] = []
    for external_id, (raw, digest, source_time) in incoming.items():
        current = existing.get(external_id)
        if current is not None:
            pk, current_hash, current_time, is_deleted = current
            if not is_deleted and current_hash == digest:
                result.unchanged += 1
                seen_ids.append(pk)
                continue
            if current_time and source_time and source_time < current_time:
                # A newer version already arrived (webhook vs poll race): keep it.
                result.stale += 1
                seen_ids.append(pk)
                continue
            result.updated += 1
        else:
            result.created += 1
        data = connector.to_bastion(entity_type, raw)
        result.changed.append(data)
        to_write.append(
            SyncRecord(
                organization_id=integration.organization_id,
                integration=integration,
                entity_type=entity_type,
                external_id=external_id,
                raw=dict(raw),
                data=data,
                content_hash=digest,
                source_updated_at=source_time,
                last_seen_at=now,
                last_seen_job=job,
                is_deleted=False,
                deleted_at=None,
            )
        )
    if to_write:
        SyncRecord.objects.bulk_create(
            to_write, update_conflicts=True, unique_fields=["integration", "entity_type", "external_id"], update_fields=UPSERT_UPDATE_FIELDS
        )
    if seen_ids:
        SyncRecord.objects.filter(pk__in=seen_ids).update(last_seen_at=now, last_seen_job=job)
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
    queryset = SyncRecord.objects.filter(integration_id=job.integration_id, entity_type=entity_type, is_deleted=False, last_seen_at__lt=job.started_at).exclude(
        last_seen_job=job
    )
    vanished = list(queryset.values_list("external_id", flat=True))
    if vanished:
        now = timezone.now()
        for start in range(0, len(vanished), 5000):
            SyncRecord.objects.filter(integration_id=job.integration_id, entity_type=entity_type, external_id__in=vanished[start : start + 5000]).update(
                is_deleted=True, deleted_at=now, updated_at=now
            )
    return vanished
