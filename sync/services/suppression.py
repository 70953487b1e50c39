"""Erased data subjects kept out of every intake path: keyed hashes of their emails and source ids, checked once per batch.

A digest is HMAC-SHA256 of "<kind>:<organization id>:<normalized value>" under a key derived (HKDF) from one key of
BASTION_ENCRYPTION_KEYS; the row names that key id. The organization in the input means one tenant's digest says nothing
about another's. Without the keyring nobody can test a guessed address against the table, and Bastion never stores the value.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.db import connection

from common.crypto import get_keyring
from sync.models import DataSyncJob, SuppressedIdentity, SuppressionKind, SyncJobLog

logger = logging.getLogger(__name__)

T = TypeVar("T")
KEY_INFO = b"bastion:suppression:v1"
SUPPRESSED_MESSAGE = "{count} records suppressed (erased data subjects)."
SQL_IN_CHUNK = 500  # parameters per IN list on the portable (SQLite) path
# Erasures are rare: an organization's digests are read whole (64 bytes each) rather than sending a batch's 20,000 to the
# database; past this many rows, the batch's digests are looked up instead.
LOAD_ALL_LIMIT = 20_000


@lru_cache(maxsize=16)
def _derived_key(key: bytes) -> bytes:
    # A separate key per purpose: the AES key itself never doubles as a MAC key.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO).derive(key)


def normalize_email(value: Any) -> str:
    return str(value or "").strip().lower()


def source_key(scope: Any, entity_type: str, external_id: Any) -> str:
    """`integration_id:entity_type:external_id`; sources without an integration (csv, manual) use their source key as scope."""
    external = str(external_id or "").strip()
    return f"{scope}:{entity_type}:{external}" if external else ""


def _digest(key: bytes, organization_id: Any, kind: str, value: str) -> str:
    return hmac.digest(key, f"{kind}:{organization_id}:{value}".encode(), hashlib.sha256).hex()


def suppression_digest(*, organization_id: Any, kind: str, value: str, key_id: str | None = None) -> tuple[str, str]:
    """(key id, hex digest) of a normalized value under the given keyring key (the primary by default)."""
    keyring = get_keyring()
    key_id = key_id or keyring.primary_key_id
    return key_id, _digest(_derived_key(keyring.keys[key_id]), organization_id, kind, value)


def email_digests(*, organization_id: Any, email: str) -> list[str]:
    """The digests an email may be stored under: one per key of the keyring (rows keep the key they were made with)."""
    value = normalize_email(email)
    if not value:
        return []
    return [suppression_digest(organization_id=organization_id, kind=SuppressionKind.EMAIL, value=value, key_id=key_id)[1] for key_id in get_keyring().keys]


def suppressions_add(*, organization_id: Any, emails: Iterable[str], source_keys: Iterable[str], erasure_reference: str) -> int:
    """Store the digests of an erased person's emails and source ids (in the caller's transaction); returns how many."""
    rows: dict[str, SuppressedIdentity] = {}
    for kind, values in ((SuppressionKind.EMAIL, {normalize_email(e) for e in emails}), (SuppressionKind.SOURCE_ID, set(source_keys))):
        for value in sorted(v for v in values if v):
            key_id, digest = suppression_digest(organization_id=organization_id, kind=kind, value=value)
            rows[digest] = SuppressedIdentity(organization_id=organization_id, kind=kind, key_id=key_id, digest=digest, erasure_reference=erasure_reference)
    if rows:
        # Erased again after being re-added by hand: the row now points at the latest erasure.
        SuppressedIdentity.objects.bulk_create(
            list(rows.values()), update_conflicts=True, unique_fields=["organization", "digest"], update_fields=["erasure_reference", "updated_at"]
        )
    return len(rows)


@dataclass
class Partition(Generic[T]):
    kept: list[T]
    suppressed: list[T] = field(default_factory=list)


Subject = tuple[str, str]  # (normalized email or "", source key or "")


def record_subject(*, connector: Any, integration: Any, entity_type: str) -> Callable[[Mapping[str, Any]], Subject]:
    """How to name the subject of a raw vendor record: its source id, and its email when the entity is a person."""
    try:
        is_person = connector.manifest.entity(entity_type).bastion_type == "person"
    except (AttributeError, KeyError):
        is_person = False

    def subject(raw: Mapping[str, Any]) -> Subject:
        email = normalize_email(connector.to_bastion(entity_type, raw).get("email")) if is_person else ""
        return email, source_key(integration.pk, entity_type, connector.external_id(entity_type, raw))

    return subject


def person_subject(*, source: str, integration: Any, entity_type: str) -> Callable[[Mapping[str, Any]], Subject]:
    """How to name the subject of a person-shaped item (people merge, CSV rows)."""
    scope = integration.pk if integration is not None else source

    def subject(item: Mapping[str, Any]) -> Subject:
        return normalize_email(item.get("email")), source_key(scope, entity_type, item.get("external_id"))

    return subject


def suppression_filter(*, organization_id: Any, items: Iterable[T], subject_of: Callable[[T], Subject], job: DataSyncJob | None = None) -> Partition[T]:
    """Split a batch into kept and suppressed items, set-based: one query per batch (up to LOAD_ALL_LIMIT suppressions in the organization).

    Subjects and digests are only computed when the organization has suppressions. With a `job`, the count is added to
    job.metadata["suppressed"] and one log line says how many were skipped, never who.
    """
    items = list(items)
    if not items:
        return Partition(items)
    key_ids, known = _suppressions_of(organization_id)
    if not key_ids:
        return Partition(items)
    keyring = get_keyring()
    missing = sorted(k for k in key_ids if k not in keyring.keys)
    if missing:
        # Fail open but loudly: a missing key must not stop every sync; the operator restores it (see docs/security.md).
        logger.error("sync.suppression.key_missing", extra={"organization": str(organization_id), "key_ids": missing})
    keys = [_derived_key(keyring.keys[k]) for k in key_ids if k in keyring.keys]
    # The hot loop of a 10,000-row batch: prefixes built once, the same message as _digest.
    email_prefix, source_prefix = f"{SuppressionKind.EMAIL}:{organization_id}:", f"{SuppressionKind.SOURCE_ID}:{organization_id}:"
    mac = hmac.digest
    digests_of: list[list[str]] = []
    wanted: set[str] = set()
    for item in items:
        email, source = subject_of(item)
        messages = [(email_prefix + email).encode()] if email else []
        if source:
            messages.append((source_prefix + source).encode())
        digests = [mac(key, message, "sha256").hex() for message in messages for key in keys]
        digests_of.append(digests)
        wanted.update(digests)
    found = wanted & known if known is not None else _existing_digests(organization_id, wanted)
    if not found:
        return Partition(items)
    partition: Partition[T] = Partition([])
    for item, digests in zip(items, digests_of, strict=True):
        (partition.suppressed if any(d in found for d in digests) else partition.kept).append(item)
    if partition.suppressed:
        _record(job, organization_id, len(partition.suppressed))
    return partition


def records_unsuppressed(
    *, integration: Any, entity_type: str, records: Iterable[Mapping[str, Any]], connector: Any, job: DataSyncJob | None = None
) -> list[Mapping[str, Any]]:
    """The records store's intake: a batch of raw vendor records without those of erased data subjects."""
    subject_of = record_subject(connector=connector, integration=integration, entity_type=entity_type)
    return suppression_filter(organization_id=integration.organization_id, items=records, subject_of=subject_of, job=job).kept


def people_unsuppressed(
    *, organization_id: Any, source: str, integration: Any, entity_type: str, items: Iterable[Mapping[str, Any]], job: DataSyncJob | None = None
) -> Partition[Mapping[str, Any]]:
    """The people merge's (and CSV import's) intake: person-shaped items split into kept and suppressed."""
    subject_of = person_subject(source=source, integration=integration, entity_type=entity_type)
    return suppression_filter(organization_id=organization_id, items=items, subject_of=subject_of, job=job)


def _suppressions_of(organization_id: Any) -> tuple[set[str], set[str] | None]:
    """(key ids in use, every digest) in one query; past LOAD_ALL_LIMIT rows the digests are looked up per batch instead (None)."""
    rows = list(SuppressedIdentity.objects.filter(organization_id=organization_id).order_by().values_list("key_id", "digest")[: LOAD_ALL_LIMIT + 1])
    if len(rows) <= LOAD_ALL_LIMIT:
        return {key_id for key_id, _ in rows}, {digest for _, digest in rows}
    key_ids = SuppressedIdentity.objects.filter(organization_id=organization_id).order_by().values_list("key_id", flat=True).distinct()
    return set(key_ids), None


def _existing_digests(organization_id: Any, digests: set[str]) -> set[str]:
    if not digests:
        return set()
    if connection.vendor == "postgresql":
        # One array parameter instead of thousands of IN placeholders.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT digest FROM {SuppressedIdentity._meta.db_table} WHERE organization_id = %s AND digest = ANY(%s)", [organization_id, list(digests)]
            )
            return {row[0] for row in cursor.fetchall()}
    ordered = sorted(digests)
    found: set[str] = set()
    for start in range(0, len(ordered), SQL_IN_CHUNK):
        chunk = ordered[start : start + SQL_IN_CHUNK]
        found.update(SuppressedIdentity.objects.filter(organization_id=organization_id, digest__in=chunk).values_list("digest", flat=True))
    return found


def _record(job: DataSyncJob | None, organization_id: Any, count: int) -> None:
    logger.info("sync.suppressed", extra={"organization": str(organization_id), "job": str(job.pk) if job else None, "count": count})
    if job is None:
        return
    # The caller may save this same instance later (a sync page does): keep memory and row in step.
    job.metadata = {**(job.metadata or {}), "suppressed": int((job.metadata or {}).get("suppressed", 0)) + count}
    DataSyncJob.objects.filter(pk=job.pk).update(metadata=job.metadata)
    SyncJobLog.objects.create(job=job, level="info", event="records.suppressed", message=SUPPRESSED_MESSAGE.format(count=count), data={"suppressed": count})
