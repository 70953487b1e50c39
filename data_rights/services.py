"""Export and erase everything Bastion holds about a person; enforce retention.

Mentions are found by scanning every text and JSON column of the organization's rows for the person's
email addresses and name, so a table added later is covered without changing this module.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditEvent, Organization
from accounts.services import audit_record
from common.errors import ApplicationError
from common.fields import EncryptedJSONField
from data_rights.models import DataRightsRequest, RetentionPolicy
from people.models import Person, PersonIdentity, SuppressedIdentity, SuppressionKind
from people.services import email_digests, normalize_email, source_key, suppression_digest, suppressions_add
from sync.models import DataSyncJob, SyncRecord
from sync.selectors import records_with_last_seen
from sync.services.imports import csv_uploads_purge, csv_uploads_sweep

SCANNED_APPS = ("accounts", "integrations", "people", "sync", "scenarios", "forms_engine", "playbooks")
# Summary keys and audit target types keep the people tables' first app label (sync): stored summaries and trails stay comparable.
PERSON_LABEL, IDENTITY_LABEL, PERSON_TARGET = "sync.Person", "sync.PersonIdentity", "sync.person"
ERASED = "[erased]"
MIN_NAME_LENGTH = 5  # shorter names would match unrelated text


def subject_reference(*, organization: Organization, person: Person | None = None, email: str = "") -> str:
    """A keyed digest naming the subject (their email's suppression digest, else the person id): never a guessable plain hash."""
    value = normalize_email(email or (person.email if person is not None else ""))
    if value:
        return suppression_digest(organization_id=organization.pk, kind=SuppressionKind.EMAIL, value=value)[1]
    return suppression_digest(organization_id=organization.pk, kind="person", value=str(person.pk if person is not None else ""))[1]


def _organization_lookup(model: type[models.Model], depth: int = 0) -> str | None:
    """The ORM path from `model` to its Organization ("organization", "run__playbook__organization"), if any."""
    if depth > 4:
        return None
    for field in model._meta.concrete_fields:
        if isinstance(field, models.ForeignKey) and field.related_model is Organization:
            return field.name
    for field in model._meta.concrete_fields:
        if isinstance(field, models.ForeignKey) and not field.null and field.related_model._meta.app_label in SCANNED_APPS:
            rest = _organization_lookup(field.related_model, depth + 1)
            if rest:
                return f"{field.name}__{rest}"
    return None


def _text_fields(model: type[models.Model]) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, (models.CharField, models.TextField, models.JSONField))
        and not isinstance(f, EncryptedJSONField)
        and not f.primary_key
        and not f.choices
    ]


def _scanned_models() -> Iterable[type[models.Model]]:
    for model in apps.get_models():
        if model._meta.app_label in SCANNED_APPS and model is not Organization:
            yield model


def _emails(person: Person) -> set[str]:
    """The person's address and every address a source gave for them (lower-cased)."""
    values = {normalize_email(person.email)}
    for identity in person.identities.all():
        values.add(normalize_email((identity.attributes or {}).get("email")))
    return {v for v in values if v}


def _needles(person: Person) -> list[str]:
    values = _emails(person)
    if len(person.display_name) >= MIN_NAME_LENGTH:
        values.add(person.display_name)
    return sorted(v for v in values if v)


def find_mentions(*, organization: Organization, needles: list[str]) -> dict[type[models.Model], models.QuerySet]:
    """Every row of the organization whose text or JSON mentions one of `needles` (case-insensitive)."""
    found: dict[type[models.Model], models.QuerySet] = {}
    if not needles:
        return found
    for model in _scanned_models():
        path = _organization_lookup(model)
        fields = _text_fields(model)
        if not path or not fields:
            continue
        condition = Q()
        for field in fields:
            for needle in needles:
                condition |= Q(**{f"{field.name}__icontains": needle})
        queryset = model._default_manager.filter(**{path: organization}).filter(condition)
        if queryset.exists():
            found[model] = queryset
    return found


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def person_export(*, organization: Organization, person: Person, actor: Any = None) -> dict[str, Any]:
    """Everything Bastion holds about a person: profile, identities, source records, mentions."""
    needles = _needles(person)
    identities = list(person.identities.select_related("integration"))
    records = records_with_last_seen(SyncRecord.objects.filter(organization=organization).filter(_identity_records_condition(identities)))
    export: dict[str, Any] = {
        "person": {
            "id": str(person.pk),
            "email": person.email,
            "display_name": person.display_name,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "title": person.title,
            "department": person.department,
            "phone": person.phone,
            "groups": person.groups,
            "manager": str(person.manager_id) if person.manager_id else None,
            "provenance": person.provenance,
        },
        "identities": [
            {
                "source": i.source,
                "integration": str(i.integration_id) if i.integration_id else None,
                "entity": i.entity_type,
                "external_id": i.external_id,
                "attributes": i.attributes,
            }
            for i in identities
        ],
        "source_records": [
            {
                "integration": str(r.integration_id),
                "entity": r.entity_type,
                "external_id": r.external_id,
                "raw": r.raw,
                "data": r.data,
                "last_seen_at": r.seen_at,
            }
            for r in records
        ],
        "mentions": {},
    }
    for model, queryset in find_mentions(organization=organization, needles=needles).items():
        if model in (Person, PersonIdentity, SyncRecord):
            continue
        fields = _text_fields(model)
        export["mentions"][model._meta.label] = [
            {"id": str(row.pk), **{f.name: getattr(row, f.name) for f in fields if _mentions(getattr(row, f.name), needles)}} for row in queryset
        ]
    DataRightsRequest.objects.create(
        organization=organization,
        kind=DataRightsRequest.Kind.EXPORT,
        subject_reference=subject_reference(organization=organization, person=person),
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        summary={"records": len(export["source_records"]), "mentions": {k: len(v) for k, v in export["mentions"].items()}},
    )
    audit_record(
        action="data_rights.export",
        organization=organization,
        actor=actor,
        target_type=PERSON_TARGET,
        target_id=str(person.pk),
        changes={"subject": subject_reference(organization=organization, person=person)},
    )
    return _jsonable(export)


def _identity_records_condition(identities: list[PersonIdentity]) -> Q:
    condition = Q()
    for identity in identities:
        if identity.integration_id:
            match = Q(integration_id=identity.integration_id, external_id=identity.external_id)
            if identity.entity_type:
                match &= Q(entity_type=identity.entity_type)
            condition |= match
    return condition or Q(pk__in=[])


def _mentions(value: Any, needles: list[str]) -> bool:
    text = json.dumps(value, default=str).lower() if not isinstance(value, str) else value.lower()
    return any(n.lower() in text for n in needles)


def _redact(value: Any, needles: list[str], marker: str = ERASED) -> Any:
    if isinstance(value, str):
        lowered = value.lower()
        for needle in needles:
            index = lowered.find(needle.lower())
            while index != -1:
                value = value[:index] + marker + value[index + len(needle) :]
                lowered = value.lower()
                index = lowered.find(needle.lower(), index + len(marker))
        return value
    if isinstance(value, list):
        return [_redact(v, needles, marker) for v in value]
    if isinstance(value, dict):
        return {_redact(k, needles, marker) if isinstance(k, str) else k: _redact(v, needles, marker) for k, v in value.items()}
    return value


def _unique_field_names(model: type[models.Model]) -> set[str]:
    """Fields that take part in any uniqueness rule of the model (unique=True, unique_together, UniqueConstraint)."""
    names = {f.name for f in model._meta.concrete_fields if f.unique and not f.primary_key}
    for group in model._meta.unique_together:
        names.update(group)
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            names.update(constraint.fields)
    return names


def _row_marker(reference: str, row: models.Model) -> str:
    """An erased value that is unique per subject and row, so redacting two subjects (or two values of one) never collides."""
    digest = hmac.digest(reference.encode(), f"{row._meta.label}:{row.pk}".encode(), hashlib.sha256).hex()[:16]
    return f"[erased:{digest}]"


def _fit(value: Any, field: models.Field, marker: str) -> Any:
    """A redacted text longer than its column keeps just the marker (the column's uniqueness rides on the marker)."""
    max_length = getattr(field, "max_length", None)
    if isinstance(value, str) and max_length and len(value) > max_length:
        return marker[:max_length]
    return value


def _redact_row(model: type[models.Model], row: models.Model, fields: list[models.Field], needles: list[str], reference: str) -> bool:
    """Redact one row in place; a value that takes part in a uniqueness rule gets a per-row marker, so erasure always completes."""
    unique_names = _unique_field_names(model)
    row_marker = _row_marker(reference, row)
    mentioned = [f for f in fields if _mentions(getattr(row, f.name), needles)]
    if not mentioned:
        return False

    def updates(marker_for: Any) -> dict[str, Any]:
        return {f.name: _fit(_redact(getattr(row, f.name), needles, marker_for(f)), f, marker_for(f)) for f in mentioned}

    try:
        with transaction.atomic():
            # .update() on purpose: append-only rows (the audit trail) are redacted, never rewritten otherwise.
            model._default_manager.filter(pk=row.pk).update(**updates(lambda f: row_marker if f.name in unique_names else ERASED))
    except IntegrityError:
        # A uniqueness rule the model does not declare (a partial or expression index): every value gets the per-row marker.
        model._default_manager.filter(pk=row.pk).update(**updates(lambda f: row_marker))
    return True


@transaction.atomic
def person_erase(*, organization: Organization, person: Person, actor: Any = None) -> dict[str, int]:
    """Erase a person from the records store, people directory, scenarios, playbooks, logs and stored CSV uploads, and suppress their return.

    Before anything is deleted, the keyed digests of every email and source id of the person are stored (SuppressedIdentity),
    so no later sync or import brings them back; `suppression_lift` undoes that when they ask to be added again.
    """
    needles = _needles(person)
    reference = subject_reference(organization=organization, person=person)
    request_id = uuid.uuid4()
    identities = list(person.identities.all())
    records = SyncRecord.objects.filter(organization=organization).filter(_identity_records_condition(identities))
    source_keys = {source_key(i.integration_id or i.source, i.entity_type, i.external_id) for i in identities}
    source_keys.update(source_key(*row) for row in records.values_list("integration_id", "entity_type", "external_id"))
    suppressed = suppressions_add(organization_id=organization.pk, emails=_emails(person), source_keys=source_keys, erasure_reference=str(request_id))
    summary: dict[str, int] = {}
    summary["sync.SyncRecord"] = records.delete()[0]
    summary[IDENTITY_LABEL] = PersonIdentity.objects.filter(person=person).delete()[0]
    summary[PERSON_LABEL] = Person.objects.filter(pk=person.pk).delete()[0]
    for model, queryset in find_mentions(organization=organization, needles=needles).items():
        if model is SyncRecord:
            summary["sync.SyncRecord"] += queryset.delete()[0]
            continue
        if model in (Person, PersonIdentity):
            continue
        fields = _text_fields(model)
        changed = sum(1 for row in queryset if _redact_row(model, row, fields, needles, reference))
        summary[model._meta.label] = summary.get(model._meta.label, 0) + changed
    # A stored CSV may list them too; one an active import still reads stays (its suppressed rows are skipped) and goes when it ends.
    uploads = csv_uploads_purge(organization=organization)
    summary["csv_uploads_deleted"] = uploads.deleted
    summary["csv_uploads_held_by_active_imports"] = uploads.held_by_active_import
    DataRightsRequest.objects.create(
        pk=request_id,
        organization=organization,
        kind=DataRightsRequest.Kind.ERASE,
        subject_reference=reference,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        summary={**summary, "suppressed": suppressed},
    )
    audit_record(
        action="data_rights.erase",
        organization=organization,
        actor=actor,
        target_type=PERSON_TARGET,
        target_id=str(person.pk),
        changes={"subject": reference, "counts": summary, "suppressed": suppressed},
    )
    return summary


@transaction.atomic
def suppression_lift(*, organization: Organization, email: str, actor: Any = None) -> int:
    """Let an erased person be imported again (they asked to be re-added): remove every suppression of their erasure(s).

    Found by the email's digest under any key of the keyring; the source ids stored by the same erasure go too, or the
    next sync would still skip them by id. Returns how many suppressions were removed; none found is a 404.
    """
    digests = email_digests(organization_id=organization.pk, email=email)
    matches = SuppressedIdentity.objects.filter(organization=organization, kind=SuppressionKind.EMAIL, digest__in=digests)
    references = {r for r in matches.values_list("erasure_reference", flat=True) if r}
    if not digests or not matches.exists():
        raise ApplicationError("No erased person with this email is suppressed in this organization.", code="not_suppressed", status_code=404)
    lifted = SuppressedIdentity.objects.filter(organization=organization).filter(Q(digest__in=digests) | Q(erasure_reference__in=references)).delete()[0]
    audit_record(
        action="data_rights.suppression_lift",
        organization=organization,
        actor=actor,
        target_type="sync.suppressedidentity",
        changes={"subject": subject_reference(organization=organization, email=email), "erasures": sorted(references), "lifted": lifted},
    )
    return lifted


def retention_policy_for(organization: Organization) -> RetentionPolicy:
    policy, _ = RetentionPolicy.objects.get_or_create(organization=organization)
    return policy


def retention_enforce(*, now: Any = None) -> dict[str, int]:
    """Purge what every organization's retention policy says has expired, and stored CSV uploads no import needs any more."""
    now = now or timezone.now()
    # Before old jobs go: an upload whose import ended is recognised as such (not held to the grace of an unused one).
    totals = {"records": 0, "webhook_deliveries": 0, "jobs": 0, "csv_uploads": csv_uploads_sweep(now=now).deleted}
    delivery_model = _webhook_delivery_model()
    for organization in Organization.objects.all():
        policy = retention_policy_for(organization)
        totals["records"] += SyncRecord.objects.filter(
            organization=organization, is_deleted=True, deleted_at__lt=now - timedelta(days=policy.deleted_records_days)
        ).delete()[0]
        if delivery_model is not None:
            path = _organization_lookup(delivery_model)
            totals["webhook_deliveries"] += delivery_model._default_manager.filter(
                **{path: organization}, created_at__lt=now - timedelta(days=policy.webhook_deliveries_days)
            ).delete()[0]
        totals["jobs"] += DataSyncJob.objects.filter(
            organization=organization, completed_at__isnull=False, completed_at__lt=now - timedelta(days=policy.job_logs_days)
        ).delete()[0]
    if any(totals.values()):
        audit_record(action="data_rights.retention", changes=totals)
    return totals


def _webhook_delivery_model() -> type[models.Model] | None:
    for model in apps.get_app_config("sync").get_models():
        if model.__name__ == "WebhookDelivery":
            return model
    return None


def audit_events_mentioning(*, organization: Organization, needle: str) -> models.QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization=organization, changes__icontains=needle)
