"""Erased data subjects kept out of the people directory and every intake path: keyed hashes of their emails and source ids.

A digest is HMAC-SHA256 of "<kind>:<organization id>:<normalized value>" under a key derived (HKDF) from one key of
BASTION_ENCRYPTION_KEYS; the row names that key id. The organization in the input means one tenant's digest says nothing
about another's. Without the keyring nobody can test a guessed address against the table, and Bastion never stores the value.
A batch is checked once (set-based); the records store's intake (sync.services.suppression) builds on the same checks.
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
from people.models import SuppressedIdentity, SuppressionKind

logger = logging.getLogger(__name__)

T = TypeVar("T")
KEY_INFO = b"bastion:suppression:v1"
# Erasures are rare: an organization's digests are read whole (64 bytes each) rather than sending a batch's 20,000 to the
# database; past this many rows, the batch's digests are looked up instead.
LOAD_ALL_LIMIT = 20_000
# Called with how many items a batch lost to suppressions (a sync job counts and logs them); the default only logs.
OnSuppressed = Callable[[int], None]


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


def person_subject(*, source: str, integration: Any, entity_type: str) -> Callable[[Mapping[str, Any]], Subject]:
    """How to name the subject of a person-shaped item (people merge, CSV rows)."""
    scope = integration.pk if integration is not None else source

    def subject(item: Mapping[str, Any]) -> Subject:
        return normalize_email(item.get("email")), source_key(scope, entity_type, item.get("external_id"))

    return subject


@dataclass
class Suppressions:
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


def suppressions_loaded(organization_id: Any) -> Suppressions | None:
    """The organization's suppressions in one query, or None when it has none (the common case: no hashing at all)."""
    key_ids, known = _suppressions_of(organization_id)
    if not key_ids:
        return None
    keyring = get_keyring()
    missing = sorted(k for k in key_ids if k not in keyring.keys)
    if missing:
        # Fail open but loudly: a missing key must not stop every sync; the operator restores it (see docs/security.md).
        logger.error("sync.suppression.key_missing", extra={"organization": str(organization_id), "key_ids": missing})
    return Suppressions(organization_id, [_derived_key(keyring.keys[k]) for k in key_ids if k in keyring.keys], known)


def suppressions_partition(
    items: list[T], digests_of: list[list[str]], found: set[str], *, organization_id: Any, on_suppressed: OnSuppressed | None = None
) -> Partition[T]:
    """Split items by their digests (one list per item) against the found ones; report how many were suppressed."""
    if not found:
        return Partition(items)
    partition: Partition[T] = Partition([])
    for item, digests in zip(items, digests_of, strict=True):
        (partition.suppressed if any(d in found for d in digests) else partition.kept).append(item)
    if partition.suppressed:
        if on_suppressed is not None:
            on_suppressed(len(partition.suppressed))
        else:
            logger.info("sync.suppressed", extra={"organization": str(organization_id), "job": None, "count": len(partition.suppressed)})
    return partition


def suppression_filter(
    *, organization_id: Any, items: Iterable[T], subject_of: Callable[[T], Subject], on_suppressed: OnSuppressed | None = None
) -> Partition[T]:
    """Split a batch into kept and suppressed items, set-based: one query per batch (up to LOAD_ALL_LIMIT suppressions in the organization).

    Subjects and digests are only computed when the organization has suppressions. `on_suppressed` gets how many were
    skipped, never who (a sync job adds it to its metadata and log).
    """
    items = list(items)
    if not items:
        return Partition(items)
    suppressions = suppressions_loaded(organization_id)
    if suppressions is None:
        return Partition(items)
    digests_of = suppressions.subject_digests(items, subject_of)
    found = suppressions.found(set().union(*digests_of))
    return suppressions_partition(items, digests_of, found, organization_id=organization_id, on_suppressed=on_suppressed)


def people_unsuppressed(
    *, organization_id: Any, source: str, integration: Any, entity_type: str, items: Iterable[Mapping[str, Any]], on_suppressed: OnSuppressed | None = None
) -> Partition[Mapping[str, Any]]:
    """The people merge's (and CSV import's) intake: person-shaped items split into kept and suppressed."""
    subject_of = person_subject(source=source, integration=integration, entity_type=entity_type)
    return suppression_filter(organization_id=organization_id, items=items, subject_of=subject_of, on_suppressed=on_suppressed)


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
