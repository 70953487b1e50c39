"""The records store's intake filter: raw vendor records of erased data subjects dropped, their addresses redacted elsewhere.

The digests, the suppressions table and the batch check live with the people directory (people.services.suppression);
this module adds what a sync needs on top: vendor records as subjects, mention redaction, and the job's count and log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import re2

from people.services.suppression import OnSuppressed, Subject, normalize_email, source_key, suppressions_loaded, suppressions_partition
from sync.models import DataSyncJob, SyncJobLog

logger = logging.getLogger(__name__)

SUPPRESSED_MESSAGE = "{count} records suppressed (erased data subjects)."
MENTION_MARKER = "[erased]"
REDACTED_MESSAGE = "{count} mentions of erased data subjects redacted."
# A narrow local part on purpose: stopping at "=", "/", ":" or "<" finds the address inside URLs, "mailto:" and "Name <a@b>";
# a wider one would swallow the prefix, and the longer candidate would not match the erased address.
# On RE2 (linear time): with Python's backtracking `re` a long run of word characters before an "@" took quadratic time,
# and record text comes from vendors. \pL\pN_ is what `re`'s \w matches in str patterns.
EMAIL_PATTERN = re2.compile(r"[\pL\pN_%+-][\pL\pN_.%+-]*@[\pL\pN_-]+(?:\.[\pL\pN_-]+)+")


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


def job_suppressed_recorder(job: DataSyncJob | None, organization_id: Any) -> OnSuppressed:
    """How a sync or import reports suppressed items: a log line, and with a job its metadata count and a job log line."""
    return lambda count: _record(job, organization_id, count)


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
    suppressions = suppressions_loaded(organization_id) if records else None
    if suppressions is None:
        return records
    subject = record_subject(connector=connector, integration=integration, entity_type=entity_type)
    mentioned = [(record, _emails_in(record, set())) for record in records]
    digests_of = suppressions.subject_digests(mentioned, lambda pair: subject(pair[0]))
    mention_digests = suppressions.email_digests(set().union(*(emails for _, emails in mentioned)))
    found = suppressions.found(set().union(*digests_of, *mention_digests.values()))
    kept = suppressions_partition(
        mentioned, digests_of, found, organization_id=organization_id, on_suppressed=job_suppressed_recorder(job, organization_id)
    ).kept
    erased = {email for email, digests in mention_digests.items() if any(d in found for d in digests)}
    if not erased:
        return [record for record, _ in kept]
    redactions = [0]
    records = [_redacted(record, erased, redactions) if emails & erased else record for record, emails in kept]
    if redactions[0]:
        _record_redactions(job, organization_id, redactions[0])
    return records


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
