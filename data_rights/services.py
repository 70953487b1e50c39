"""Export and erase everything Bastion holds about a person; enforce retention.

Mentions are found by scanning every text and JSON column of the organization's rows for the person's
email addresses and name, so a table added later is covered without changing this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditEvent, Organization
from accounts.services import audit_record
from common.fields import EncryptedJSONField
from data_rights.models import DataRightsRequest, RetentionPolicy
from sync.models import DataSyncJob, Person, PersonIdentity, SyncRecord

SCANNED_APPS = ("accounts", "integrations", "sync", "scenarios", "forms_engine", "playbooks")
ERASED = "[erased]"
MIN_NAME_LENGTH = 5  # shorter names would match unrelated text


def subject_reference(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


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


def _needles(person: Person) -> list[str]:
    values = {person.email.lower()} if person.email else set()
    for identity in person.identities.all():
        email = str((identity.attributes or {}).get("email") or "").lower()
        if email:
            values.add(email)
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
    records = SyncRecord.objects.filter(organization=organization).filter(_identity_records_condition(identities))
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
                "last_seen_at": r.last_seen_at,
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
        subject_reference=subject_reference(person.email or str(person.pk)),
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        summary={"records": len(export["source_records"]), "mentions": {k: len(v) for k, v in export["mentions"].items()}},
    )
    audit_record(
        action="data_rights.export",
        organization=organization,
        actor=actor,
        target_type="sync.person",
        target_id=str(person.pk),
        changes={"subject": subject_reference(person.email or str(person.pk))},
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


def _redact(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        lowered = value.lower()
        for needle in needles:
            index = lowered.find(needle.lower())
            while index != -1:
                value = value[:index] + ERASED + value[index + len(needle) :]
                lowered = value.lower()
                index = lowered.find(needle.lower(), index + len(ERASED))
        return value
    if isinstance(value, list):
        return [_redact(v, needles) for v in value]
    if isinstance(value, dict):
        return {_redact(k, needles) if isinstance(k, str) else k: _redact(v, needles) for k, v in value.items()}
    return value


@transaction.atomic
def person_erase(*, organization: Organization, person: Person, actor: Any = None) -> dict[str, int]:
    """Erase a person from the records store, people directory, scenarios, playbooks and logs."""
    needles = _needles(person)
    reference = subject_reference(person.email or str(person.pk))
    identities = list(person.identities.all())
    summary: dict[str, int] = {}
    summary["sync.SyncRecord"] = SyncRecord.objects.filter(organization=organization).filter(_identity_records_condition(identities)).delete()[0]
    summary["sync.PersonIdentity"] = PersonIdentity.objects.filter(person=person).delete()[0]
    summary["sync.Person"] = Person.objects.filter(pk=person.pk).delete()[0]
    for model, queryset in find_mentions(organization=organization, needles=needles).items():
        if model is SyncRecord:
            summary["sync.SyncRecord"] += queryset.delete()[0]
            continue
        if model in (Person, PersonIdentity):
            continue
        fields = _text_fields(model)
        changed = 0
        for row in queryset:
            updates = {f.name: _redact(getattr(row, f.name), needles) for f in fields if _mentions(getattr(row, f.name), needles)}
            if updates:
                # .update() on purpose: append-only rows (the audit trail) are redacted, never rewritten otherwise.
                model._default_manager.filter(pk=row.pk).update(**updates)
                changed += 1
        summary[model._meta.label] = summary.get(model._meta.label, 0) + changed
    DataRightsRequest.objects.create(
        organization=organization,
        kind=DataRightsRequest.Kind.ERASE,
        subject_reference=reference,
        requested_by=actor if getattr(actor, "is_authenticated", False) else None,
        summary=summary,
    )
    audit_record(
        action="data_rights.erase",
        organization=organization,
        actor=actor,
        target_type="sync.person",
        target_id=str(person.pk),
        changes={"subject": reference, "counts": summary},
    )
    return summary


def retention_policy_for(organization: Organization) -> RetentionPolicy:
    policy, _ = RetentionPolicy.objects.get_or_create(organization=organization)
    return policy


def retention_enforce(*, now: Any = None) -> dict[str, int]:
    """Purge what every organization's retention policy says has expired."""
    now = now or timezone.now()
    totals = {"records": 0, "webhook_deliveries": 0, "jobs": 0}
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
