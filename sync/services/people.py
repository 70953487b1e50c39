"""People across sources: one Person per human per organization, with every source's id and the provenance of each value."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization
from integrations.models import Integration
from sync.models import DEFAULT_SOURCE_PRIORITY, PeopleSettings, Person, PersonIdentity

# Person field ← key in the Bastion person shape (contracts.md).
FIELD_SOURCES = {
    "email": "email",
    "display_name": "name",
    "given_name": "given_name",
    "family_name": "family_name",
    "title": "title",
    "department": "department",
    "phone": "phone",
}
PERSON_UPDATE_FIELDS = [*FIELD_SOURCES, "groups", "is_active", "manager", "provenance", "search_text", "updated_at"]


@dataclass
class MergeResult:
    created: int = 0
    updated: int = 0
    identities: int = 0


def people_priority(*, organization: Organization) -> list[str]:
    settings_row = PeopleSettings.objects.filter(organization=organization).first()
    return settings_row.priority() if settings_row else list(DEFAULT_SOURCE_PRIORITY)


def people_settings_update(*, organization: Organization, source_priority: list[str]) -> PeopleSettings:
    """Set the organization's source priority, then recompute every person under it."""
    cleaned = [str(s).strip() for s in source_priority if str(s).strip()]
    settings_row, _ = PeopleSettings.objects.update_or_create(organization=organization, defaults={"source_priority": cleaned})
    ids = list(Person.objects.filter(organization=organization).values_list("pk", flat=True))
    for start in range(0, len(ids), 2000):
        with transaction.atomic():
            people_recompute(organization=organization, person_ids=ids[start : start + 2000])
    return settings_row


def _display_name(data: Mapping[str, Any]) -> str:
    name = str(data.get("name") or "").strip()
    if name:
        return name
    return " ".join(p for p in (str(data.get("given_name") or "").strip(), str(data.get("family_name") or "").strip()) if p)


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """Normalize one Bastion person shape (lower-cased email, derived name) for storage as identity attributes."""
    attributes = {key: data.get(key) for key in data if not key.startswith("_")}
    attributes["email"] = str(data.get("email") or "").strip().lower()
    attributes["name"] = _display_name(data)
    for key in data:
        if key.startswith("_"):
            attributes[key] = data[key]
    return attributes


def people_merge(
    *,
    organization: Organization,
    source: str,
    integration: Integration | None,
    entity_type: str,
    items: Iterable[Mapping[str, Any]],
) -> MergeResult:
    """Merge a batch of person-shaped records from one source: match by stored identity, then by email (case-insensitive)."""
    batch: dict[str, dict[str, Any]] = {}
    for item in items:
        external_id = str(item.get("external_id") or "").strip()
        if external_id:
            batch[external_id] = _clean(item)
    if not batch:
        return MergeResult()
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _merge(organization=organization, source=source, integration=integration, entity_type=entity_type, batch=batch)
        except IntegrityError:
            # A concurrent merge created the same person (unique email): retry, now matching it.
            if attempt == 2:
                raise
    return MergeResult()


def _identity_filter(organization: Organization, source: str, integration: Integration | None) -> Any:
    queryset = PersonIdentity.objects.filter(organization=organization, source=source)
    return queryset.filter(integration=integration) if integration is not None else queryset.filter(integration__isnull=True)


def _merge(*, organization: Organization, source: str, integration: Integration | None, entity_type: str, batch: dict[str, dict[str, Any]]) -> MergeResult:
    result = MergeResult()
    identities = {i.external_id: i for i in _identity_filter(organization, source, integration).filter(external_id__in=list(batch))}
    wanted_emails = {a["email"] for ext, a in batch.items() if ext not in identities and a["email"]}
    by_email: dict[str, Any] = dict(Person.objects.filter(organization=organization, email__in=wanted_emails).values_list("email", "pk"))
    new_people: dict[Any, Person] = {}
    person_of: dict[str, Any] = {}
    for external_id, attributes in batch.items():
        identity = identities.get(external_id)
        if identity is not None:
            person_of[external_id] = identity.person_id
            continue
        email = attributes["email"]
        if email and email in by_email:
            person_of[external_id] = by_email[email]
            continue
        person = Person(organization=organization, email=email)
        new_people[person.pk] = person
        if email:
            by_email[email] = person.pk
        person_of[external_id] = person.pk
    now = timezone.now()
    identity_rows = [
        PersonIdentity(
            organization=organization,
            person_id=person_of[ext],
            integration=integration,
            source=source,
            entity_type=entity_type,
            external_id=ext,
            attributes=attributes,
            created_at=now,
            updated_at=now,
        )
        for ext, attributes in batch.items()
    ]
    # Compute new people in memory from this batch, so they are inserted complete (no second write).
    priority = people_priority(organization=organization)
    batch_refs: dict[tuple, Any] = {(source, integration.pk if integration else None, ext): person_of[ext] for ext in batch}
    # Managers named by email who arrive in this same batch resolve without a second pass.
    batch_refs.update({("email", email): person_id for email, person_id in by_email.items()})
    new_identity_rows = [row for row in identity_rows if row.person_id in new_people]
    by_person: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in new_identity_rows:
        by_person[row.person_id].append(_identity_view(row))
    manager_ids = _resolve_managers(organization, [v for views in by_person.values() for v in views], batch_refs)
    for person_id, views in by_person.items():
        _apply(new_people[person_id], views, priority, manager_ids, now)
    if new_people:
        Person.objects.bulk_create(list(new_people.values()))
        result.created = len(new_people)
    if integration is not None:
        PersonIdentity.objects.bulk_create(
            identity_rows,
            update_conflicts=True,
            unique_fields=["organization", "source", "integration", "external_id"],
            update_fields=["person", "entity_type", "attributes", "updated_at"],
        )
    else:
        fresh = [row for row in identity_rows if row.external_id not in identities]
        stale = []
        for row in identity_rows:
            current = identities.get(row.external_id)
            if current is not None:
                current.attributes, current.entity_type, current.updated_at = row.attributes, row.entity_type, now
                stale.append(current)
        PersonIdentity.objects.bulk_create(fresh)
        if stale:
            PersonIdentity.objects.bulk_update(stale, ["attributes", "entity_type", "updated_at"])
    result.identities = len(identity_rows)
    existing_ids = {pid for pid in person_of.values() if pid not in new_people}
    if existing_ids:
        result.updated = people_recompute(organization=organization, person_ids=existing_ids, priority=priority, batch_refs=batch_refs)
    return result


def _identity_view(row: PersonIdentity | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(row, PersonIdentity):
        return {
            "source": row.source,
            "integration_id": row.integration_id,
            "external_id": row.external_id,
            "attributes": row.attributes,
            "updated_at": row.updated_at,
        }
    return dict(row)


def _rank(priority: list[str], view: Mapping[str, Any]) -> tuple[int, float]:
    source = view["source"]
    index = priority.index(source) if source in priority else len(priority)
    updated = view.get("updated_at")
    return (index, -(updated.timestamp() if updated else 0.0))


def _manager_ref(view: Mapping[str, Any]) -> tuple | None:
    attributes = view["attributes"]
    if attributes.get("manager_external_id"):
        return ("ext", view["source"], view["integration_id"], str(attributes["manager_external_id"]))
    if attributes.get("manager_email"):
        return ("email", str(attributes["manager_email"]).strip().lower())
    return None


def _resolve_managers(organization: Organization, views: list[dict[str, Any]], batch_refs: dict[tuple, Any] | None = None) -> dict[tuple, Any]:
    """Map manager references (same-source external id, or email) to person ids in a few queries."""
    refs = {ref for ref in (_manager_ref(v) for v in views) if ref}
    resolved: dict[tuple, Any] = {}
    by_source: dict[tuple, set[str]] = defaultdict(set)
    emails: set[str] = set()
    for ref in refs:
        if ref[0] == "ext":
            key = (ref[1], ref[2], ref[3])
            if batch_refs and key in batch_refs:
                resolved[ref] = batch_refs[key]
            else:
                by_source[(ref[1], ref[2])].add(ref[3])
        elif batch_refs and ref in batch_refs:
            resolved[ref] = batch_refs[ref]
        else:
            emails.add(ref[1])
    for (source, integration_id), external_ids in by_source.items():
        queryset = PersonIdentity.objects.filter(organization=organization, source=source, external_id__in=external_ids)
        queryset = queryset.filter(integration_id=integration_id) if integration_id else queryset.filter(integration__isnull=True)
        for external_id, person_id in queryset.values_list("external_id", "person_id"):
            resolved[("ext", source, integration_id, external_id)] = person_id
    if emails:
        for email, person_id in Person.objects.filter(organization=organization, email__in=emails).values_list("email", "pk"):
            resolved[("email", email)] = person_id
    return resolved


def _apply(person: Person, views: list[dict[str, Any]], priority: list[str], manager_ids: dict[tuple, Any], now: Any) -> bool:
    """Set a person's fields from its identities by source priority; return True when anything changed."""
    ordered = sorted(views, key=lambda v: _rank(priority, v))
    live = [v for v in ordered if not v["attributes"].get("deleted")]
    before = {name: getattr(person, name) for name in [*FIELD_SOURCES, "groups", "is_active", "manager_id", "provenance"]}
    if not live:
        person.is_active = False
    else:
        provenance = dict(person.provenance or {})
        for field_name, key in FIELD_SOURCES.items():
            for view in live:
                value = str(view["attributes"].get(key) or "").strip()
                if value:
                    if field_name == "email" and value != person.email and person.email and not _email_free(person, value):
                        break
                    old = provenance.get(field_name) or {}
                    same = old.get("value") == value and old.get("source") == view["source"]
                    setattr(person, field_name, value[: Person._meta.get_field(field_name).max_length])
                    provenance[field_name] = {
                        "value": value,
                        "source": view["source"],
                        "integration_id": str(view["integration_id"]) if view["integration_id"] else None,
                        "external_id": view["external_id"],
                        "at": old.get("at") if same and old.get("at") else now.isoformat(),
                    }
                    break
        groups: set[str] = set()
        for view in live:
            groups.update(str(g) for g in view["attributes"].get("groups") or [])
        person.groups = sorted(groups)
        person.is_active = any(bool(v["attributes"].get("is_active", True)) for v in live)
        for view in live:
            ref = _manager_ref(view)
            if ref and manager_ids.get(ref) and manager_ids[ref] != person.pk:
                person.manager_id = manager_ids[ref]
                provenance["manager"] = {"value": str(manager_ids[ref]), "source": view["source"], "external_id": view["external_id"]}
                break
        person.provenance = provenance
    person.search_text = " ".join(
        p for p in (person.display_name, person.email, person.title, person.department, person.given_name, person.family_name) if p
    ).lower()
    after = {name: getattr(person, name) for name in before}
    return after != before


def _email_free(person: Person, email: str) -> bool:
    return not Person.objects.filter(organization_id=person.organization_id, email=email).exclude(pk=person.pk).exists()


def people_recompute(*, organization: Organization, person_ids: Iterable[Any], priority: list[str] | None = None, batch_refs: dict | None = None) -> int:
    """Recompute people from all their identities (after a merge, a deletion or a priority change); return how many changed."""
    ids = list(person_ids)
    if not ids:
        return 0
    priority = priority or people_priority(organization=organization)
    views: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in PersonIdentity.objects.filter(person_id__in=ids).values("person_id", "source", "integration_id", "external_id", "attributes", "updated_at"):
        views[row.pop("person_id")].append(row)
    manager_ids = _resolve_managers(organization, [v for vs in views.values() for v in vs], batch_refs)
    changed = []
    now = timezone.now()
    for person in Person.objects.filter(pk__in=ids):
        if _apply(person, views.get(person.pk, []), priority, manager_ids, now):
            person.updated_at = now
            changed.append(person)
    if changed:
        Person.objects.bulk_update(changed, PERSON_UPDATE_FIELDS, batch_size=500)
    return len(changed)


def people_mark_source_deleted(*, organization: Organization, source: str, integration: Integration | None, external_ids: Iterable[str]) -> int:
    """A source deleted these people: keep the identity (history), mark it deleted, recompute who is still active."""
    ids = list(external_ids)
    if not ids:
        return 0
    touched: set[Any] = set()
    rows = list(_identity_filter(organization, source, integration).filter(external_id__in=ids))
    for row in rows:
        row.attributes = {**row.attributes, "deleted": True, "is_active": False}
        touched.add(row.person_id)
    PersonIdentity.objects.bulk_update(rows, ["attributes"], batch_size=500)
    return people_recompute(organization=organization, person_ids=touched)


def people_link_managers(*, organization: Organization, source: str, integration: Integration | None) -> int:
    """Fill manager links that could not resolve when the report was imported before the manager (end of a run)."""
    queryset = _identity_filter(organization, source, integration).filter(person__manager__isnull=True).exclude(attributes__manager_external_id="")
    rows = list(queryset.exclude(attributes__manager_external_id=None).values("person_id", "attributes__manager_external_id"))
    linked = 0
    for start in range(0, len(rows), 2000):
        chunk = rows[start : start + 2000]
        wanted = {str(r["attributes__manager_external_id"]) for r in chunk}
        managers = dict(_identity_filter(organization, source, integration).filter(external_id__in=wanted).values_list("external_id", "person_id"))
        for row in chunk:
            manager_id = managers.get(str(row["attributes__manager_external_id"]))
            if manager_id and manager_id != row["person_id"]:
                linked += Person.objects.filter(pk=row["person_id"], manager__isnull=True).update(manager_id=manager_id)
    return linked
