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

import re2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.db import connection

from common.crypto import get_keyring
from sync.models import DataSyncJob, SuppressedIdentity, SuppressionKind, SyncJobLog

logger = logging.getLogger(__name__)

T = TypeVar("T")
KEY_INFO = b"bastion:suppression:v1"
SUPPRESSED_MESSAGE = "{count} records suppressed (erased data subjects)."
# Erasures are rare: an organization's digests are read whole (64 bytes each) rather than sending a batch's 20,000 to the
# database; past this many rows, the batch's digests are looked up instead.
LOAD_ALL_LIMIT = 20_000
MENTION_MARKER = "[erased]"
REDACTED_MESSAGE = "{count} mentions of erased data subjects redacted."
# A narrow local part on purpose: stopping at "=", "/", ":" or "<" finds the address inside URLs, "mailto:" and "Name <a@b>";
# a wider one would swallow the prefix, and the longer candidate would not match the erased address.
# On RE2 (linear time): with Python's backtracking `re` a long run of word characters before an "@" took quadratic time,
# and record text comes from vendors. \pL\pN_ is what `re`'s \w matches in str patterns.
EMAIL_PATTERN = re2.compile(r"[\pL\pN_%+-][\pL\pN_.%+-]*@[\pL\pN_-]+(?:\.[\pL\pN_-]+)+")


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


@dataclass
class _Suppressions:
    """An organization's suppressions as one batch check needs them: the MAC keys in use and, when small, every digest."""

    organization_id: Any
    keys: list[bytes]
    known: set[str] | None

    def subject_digests(self, items: list[T], subject_of: Callable[[T], Subject]) -> list[list[str]]:
        # The hot loop of a 10,000-row batch: prefixes built once, the same message as _digest.
        email_prefix, source_prefix = f"{SuppressionKind.EMAIL}:{self.organization_id}:", f"{SuppressionKind.SOURCE_ID}:{self.organization_id}:"
        mac, keys = hmac.digest, self.keys
        digests_of: list[list[str]] = []
        for item in items:
            email, source = subject_of(item)
            messages = [(email_prefix + email).encode()] if email else []
            if source:
                messages.append((source_prefix + source).encode())
            digests_of.append([mac(key, message, "sha256").hex() for message in messages for key in keys])
        return digests_of

    def email_digests(self, emails: Iterable[str]) -> dict[str, list[str]]:
        """Each distinct normalized email's digests, one per key in use."""
        prefix, mac, keys = f"{SuppressionKind.EMAIL}:{self.organization_id}:", hmac.digest, self.keys
        return {email: [mac(key, (prefix + email).encode(), "sha256").hex() for key in keys] for email in emails}

    def found(self, wanted: set[str]) -> set[str]:
        return wanted & self.known if self.known is not None else _existing_digests(self.organization_id, wanted)


def _suppressions_loaded(organization_id: Any) -> _Suppressions | None:
    """The organization's suppressions in one query, or None when it has none (the common case: no hashing at all)."""
    key_ids, known = _suppressions_of(organization_id)
    if not key_ids:
        return None
    keyring = get_keyring()
    missing = sorted(k for k in key_ids if k not in keyring.keys)
    if missing:
        # Fail open but loudly: a missing key must not stop every sync; the operator restores it (see docs/security.md).
        logger.error("sync.suppression.key_missing", extra={"organization": str(organization_id), "key_ids": missing})
    return _Suppressions(organization_id, [_derived_key(keyring.keys[k]) for k in key_ids if k in keyring.keys], known)


def _partition(items: list[T], digests_of: list[list[str]], found: set[str], job: DataSyncJob | None, organization_id: Any) -> Partition[T]:
    if not found:
        return Partition(items)
    partition: Partition[T] = Partition([])
    for item, digests in zip(items, digests_of, strict=True):
        (partition.suppressed if any(d in found for d in digests) else partition.kept).append(item)
    if partition.suppressed:
        _record(job, organization_id, len(partition.suppressed))
    return partition


def suppression_filter(*, organization_id: Any, items: Iterable[T], subject_of: Callable[[T], Subject], job: DataSyncJob | None = None) -> Partition[T]:
    """Split a batch into kept and suppressed items, set-based: one query per batch (up to LOAD_ALL_LIMIT suppressions in the organization).

    Subjects and digests are only computed when the organization has suppressions. With a `job`, the count is added to
    job.metadata["suppressed"] and one log line says how many were skipped, never who.
    """
    items = list(items)
    if not items:
        return Partition(items)
    suppressions = _suppressions_loaded(organization_id)
    if suppressions is None:
        return Partition(items)
    digests_of = suppressions.subject_digests(items, subject_of)
    found = suppressions.found(set().union(*digests_of))
    return _partition(items, digests_of, found, job, organization_id)


def records_unsuppressed(
    *, integration: Any, entity_type: str, records: Iterable[Mapping[str, Any]], connector: Any, job: DataSyncJob | None = None
) -> list[Mapping[str, Any]]:
    """The records store's intake: a batch of raw vendor records without those of erased data subjects, nor their addresses.

    A kept record that mentions an erased person's email anywhere (a deal's contact, an issue's reporter, inside a longer
    string, any case) has each occurrence replaced by MENTION_MARKER before it is hashed or stored. The subjects and the
    mentions of the batch are checked together: still one query, each distinct address digested once per key.
    """
    records = list(records)
    organization_id = integration.organization_id
    suppressions = _suppressions_loaded(organization_id) if records else None
    if suppressions is None:
        return records
    subject = record_subject(connector=connector, integration=integration, entity_type=entity_type)
    mentioned = [(record, _emails_in(record, set())) for record in records]
    digests_of = suppressions.subject_digests(mentioned, lambda pair: subject(pair[0]))
    mention_digests = suppressions.email_digests(set().union(*(emails for _, emails in mentioned)))
    found = suppressions.found(set().union(*digests_of, *mention_digests.values()))
    kept = _partition(mentioned, digests_of, found, job, organization_id).kept
    erased = {email for email, digests in mention_digests.items() if any(d in found for d in digests)}
    if not erased:
        return [record for record, _ in kept]
    redactions = [0]
    records = [_redacted(record, erased, redactions) if emails & erased else record for record, emails in kept]
    if redactions[0]:
        _record_redactions(job, organization_id, redactions[0])
    return records


def people_unsuppressed(
    *, organization_id: Any, source: str, integration: Any, entity_type: str, items: Iterable[Mapping[str, Any]], job: DataSyncJob | None = None
) -> Partition[Mapping[str, Any]]:
    """The people merge's (and CSV import's) intake: person-shaped items split into kept and suppressed."""
    subject_of = person_subject(source=source, integration=integration, entity_type=entity_type)
    return suppression_filter(organization_id=organization_id, items=items, subject_of=subject_of, job=job)


def _emails_in(value: Any, found: set[str]) -> set[str]:
    """Add every normalized email-like string found in a JSON value (keys included) to `found`."""
    if isinstance(value, str):
        if "@" in value:
            found.update(match.lower() for match in EMAIL_PATTERN.findall(value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _emails_in(key, found)
            _emails_in(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _emails_in(item, found)
    return found


def _redacted(value: Any, erased: set[str], count: list[int]) -> Any:
    """A copy of a JSON value with each occurrence of an erased address replaced by MENTION_MARKER (counted in count[0])."""
    if isinstance(value, str):
        if "@" not in value:
            return value

        def replace(match: Any) -> str:
            if match.group().lower() not in erased:
                return match.group()
            count[0] += 1
            return MENTION_MARKER

        return EMAIL_PATTERN.sub(replace, value)
    if isinstance(value, Mapping):
        return {_redacted(key, erased, count): _redacted(item, erased, count) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item, erased, count) for item in value]
    return value


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
    # One array parameter instead of thousands of IN placeholders.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT digest FROM {SuppressedIdentity._meta.db_table} WHERE organization_id = %s AND digest = ANY(%s)", [organization_id, list(digests)]
        )
        return {row[0] for row in cursor.fetchall()}


def _record(job: DataSyncJob | None, organization_id: Any, count: int) -> None:
    logger.info("sync.suppressed", extra={"organization": str(organization_id), "job": str(job.pk) if job else None, "count": count})
    if job is None:
        return
    # The caller may save this same instance later (a sync page does): keep memory and row in step.
    job.metadata = {**(job.metadata or {}), "suppressed": int((job.metadata or {}).get("suppressed", 0)) + count}
    DataSyncJob.objects.filter(pk=job.pk).update(metadata=job.metadata)
    SyncJobLog.objects.create(job=job, level="info", event="records.suppressed", message=SUPPRESSED_MESSAGE.format(count=count), data={"suppressed": count})


def _record_redactions(job: DataSyncJob | None, organization_id: Any, count: int) -> None:
    logger.info("sync.mentions_redacted", extra={"organization": str(organization_id), "job": str(job.pk) if job else None, "count": count})
    if job is None:
        return
    job.metadata = {**(job.metadata or {}), "mentions_redacted": int((job.metadata or {}).get("mentions_redacted", 0)) + count}
    DataSyncJob.objects.filter(pk=job.pk).update(metadata=job.metadata)
    SyncJobLog.objects.create(
        job=job, level="info", event="records.mentions_redacted", message=REDACTED_MESSAGE.format(count=count), data={"mentions_redacted": count}
    )
