"""People across sources: one Person per human per organization, with every source's id and the provenance of each value."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Organization
from common.bulk import json_text, raw_cursor, stage_rows, time_ordered_id_text
from integrations.models import Integration
from people.models import PeopleSettings, Person, PersonIdentity, default_source_priority
from people.provenance import ORIGINS_KEY, provenance_packed, provenance_unpacked
from people.services.suppression import people_unsuppressed

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
# A person's computed state as a plain dict (the COPY path never builds model instances); compared fields decide "changed".
STATE_FIELDS = [*FIELD_SOURCES, "groups", "is_active", "manager_id", "provenance", "search_text"]
COMPARED_FIELDS = [*FIELD_SOURCES, "groups", "is_active", "manager_id", "provenance"]
MAX_LENGTHS = {name: Person._meta.get_field(name).max_length for name in FIELD_SOURCES}
PERSON_COLUMNS = "email, display_name, given_name, family_name, title, department, phone, manager_id, groups, provenance, is_active, search_text"


@dataclass
class MergeResult:
    created: int = 0
    updated: int = 0
    identities: int = 0


def people_overlong_fields(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Values a person field cannot hold whole (the person shows the start; the record and provenance keep all of it)."""
    found = []
    for item in items:
        for field_name, key in FIELD_SOURCES.items():
            value = str(item.get(key) or "")
            if len(value) > MAX_LENGTHS[field_name]:
                found.append({"external_id": str(item.get("external_id") or ""), "field": field_name, "length": len(value), "limit": MAX_LENGTHS[field_name]})
    return found


def people_priority(*, organization: Organization) -> list[str]:
    settings_row = PeopleSettings.objects.filter(organization=organization).first()
    return settings_row.priority() if settings_row else default_source_priority()


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
    name = str(data.get("name") or "")
    if name.strip():
        return name  # kept exactly: a quoted CSV cell's whitespace is content
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
    items = people_unsuppressed(organization_id=organization.pk, source=source, integration=integration, entity_type=entity_type, items=items).kept
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
                return _merge_copy(organization=organization, source=source, integration=integration, entity_type=entity_type, batch=batch)
        except IntegrityError:
            # A concurrent merge created the same person (unique email): retry, now matching it.
            if attempt == 2:
                raise
    return MergeResult()


def _identity_filter(organization: Organization, source: str, integration: Integration | None) -> Any:
    queryset = PersonIdentity.objects.filter(organization=organization, source=source)
    return queryset.filter(integration=integration) if integration is not None else queryset.filter(integration__isnull=True)


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


def _partition_manager_refs(views: list[dict[str, Any]], batch_refs: dict[tuple, Any] | None) -> tuple[dict[tuple, Any], dict[tuple, set[str]], set[str]]:
    """Split the views' manager references into (resolved from this batch, external ids per source, emails to look up)."""
    resolved: dict[tuple, Any] = {}
    by_source: dict[tuple, set[str]] = defaultdict(set)
    emails: set[str] = set()
    for ref in {ref for ref in (_manager_ref(v) for v in views) if ref}:
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
    return resolved, by_source, emails


def _new_state(pk: Any, email: str) -> dict[str, Any]:
    """A new person as Person(organization=..., email=...) would start (model defaults)."""
    state: dict[str, Any] = dict.fromkeys(FIELD_SOURCES, "")
    state.update(pk=pk, email=email, groups=[], is_active=True, manager_id=None, provenance={}, search_text="")
    return state


def _apply_state(state: dict[str, Any], views: list[dict[str, Any]], priority: list[str], manager_ids: dict[tuple, Any], now_iso: str, email_free: Any) -> bool:
    """The merge rule on a plain dict: each field from the highest-priority live identity that has it, with provenance."""
    ordered = sorted(views, key=lambda v: _rank(priority, v)) if len(views) > 1 else views
    live = [v for v in ordered if not v["attributes"].get("deleted")]
    before = {name: state[name] for name in COMPARED_FIELDS}
    if not live:
        state["is_active"] = False
    else:
        provenance = dict(state["provenance"] or {})
        integration_ids = [str(v["integration_id"]) if v["integration_id"] else None for v in live]
        for field_name, key in FIELD_SOURCES.items():
            for position, view in enumerate(live):
                value = str(view["attributes"].get(key) or "")
                if value.strip():  # present when not blank; stored as the source gave it (sources strip their own padding)
                    if field_name == "email" and value != state["email"] and state["email"] and not email_free(value):
                        break
                    old = provenance.get(field_name) or {}
                    same = old.get("value") == value and old.get("source") == view["source"]
                    state[field_name] = value[: MAX_LENGTHS[field_name]]
                    provenance[field_name] = {
                        "value": value,
                        "source": view["source"],
                        "integration_id": integration_ids[position],
                        "external_id": view["external_id"],
                        "at": old.get("at") if same and old.get("at") else now_iso,
                    }
                    break
        groups: set[str] = set()
        for view in live:
            groups.update(str(g) for g in view["attributes"].get("groups") or [])
        state["groups"] = sorted(groups)
        state["is_active"] = any(bool(v["attributes"].get("is_active", True)) for v in live)
        for view in live:
            ref = _manager_ref(view)
            if ref and manager_ids.get(ref) and manager_ids[ref] != state["pk"]:
                state["manager_id"] = manager_ids[ref]
                provenance["manager"] = {"value": str(manager_ids[ref]), "source": view["source"], "external_id": view["external_id"]}
                break
        state["provenance"] = provenance
    state["search_text"] = " ".join(
        p for p in (state["display_name"], state["email"], state["title"], state["department"], state["given_name"], state["family_name"]) if p
    ).lower()
    return any(state[name] != before[name] for name in COMPARED_FIELDS)


def _new_state_from_one(pk: Any, view: dict[str, Any], manager_ids: dict[tuple, Any], now_iso: str) -> dict[str, Any]:
    """_new_state + _apply_state for a new person known from one live identity (nearly every row of a large import), with the
    provenance built packed: the same result without the general rule's ranking, comparisons and per-field origin dicts."""
    attributes = view["attributes"]
    state: dict[str, Any] = dict.fromkeys(FIELD_SOURCES, "")
    provenance: dict[str, Any] = {}
    for field_name, key in FIELD_SOURCES.items():
        value = attributes.get(key)
        value = str(value) if value else ""
        if value.strip():
            state[field_name] = value[: MAX_LENGTHS[field_name]] if len(value) > MAX_LENGTHS[field_name] else value
            provenance[field_name] = [0, value]
    if not state["email"]:
        state["email"] = attributes["email"]
    if provenance:
        integration_id = view["integration_id"]
        provenance[ORIGINS_KEY] = [[view["source"], str(integration_id) if integration_id else None, view["external_id"], now_iso]]
    manager_id = None
    ref = _manager_ref(view)
    if ref and manager_ids.get(ref) and manager_ids[ref] != pk:
        manager_id = manager_ids[ref]
        provenance["manager"] = {"value": str(manager_id), "source": view["source"], "external_id": view["external_id"]}
    groups = attributes.get("groups")
    state.update(
        pk=pk,
        groups=sorted({str(g) for g in groups}) if groups else [],
        is_active=bool(attributes.get("is_active", True)),
        manager_id=manager_id,
        provenance=provenance,
        search_text=" ".join(
            p for p in (state["display_name"], state["email"], state["title"], state["department"], state["given_name"], state["family_name"]) if p
        ).lower(),
    )
    return state


def people_recompute(*, organization: Organization, person_ids: Iterable[Any], priority: list[str] | None = None, batch_refs: dict | None = None) -> int:
    """Recompute people from all their identities (after a merge, a deletion or a priority change); return how many changed."""
    ids = list(person_ids)
    if not ids:
        return 0
    priority = priority or people_priority(organization=organization)
    with transaction.atomic(savepoint=False), connection.wrap_database_errors, raw_cursor() as cursor:
        return _recompute_copy(cursor, organization.pk, ids, priority, batch_refs)


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


BULK_ANALYZE_ROWS = 5000


def people_tables_analyze(*, changed_rows: int) -> None:
    """Refresh planner statistics after a bulk load (PostgreSQL), before the joins that link managers across the whole source.

    Autovacuum analyzes on its own schedule; until it does, a source that was just loaded looks empty to the planner and a
    table-to-table join can be planned as a nested loop over two "one-row" sequential scans (minutes instead of milliseconds).
    """
    if changed_rows >= BULK_ANALYZE_ROWS:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE sync_person, sync_personidentity")


def people_link_managers(*, organization: Organization, source: str, integration: Integration | None, changed_rows: int = 0) -> int:
    """Fill manager links that could not resolve when the report was imported before the manager (end of a run)."""
    integration_id = integration.pk if integration is not None else None
    people_tables_analyze(changed_rows=changed_rows)
    with connection.cursor() as cursor:
        # One statement: each unlinked person whose identity names a manager (same source) that is now known.
        cursor.execute(
            "UPDATE sync_person p SET manager_id = m.person_id FROM sync_personidentity i JOIN sync_personidentity m "
            f"ON m.organization_id = i.organization_id AND m.source = i.source AND {_identity_scope(integration_id, 'm')} "
            "AND m.external_id = i.attributes->>'manager_external_id' "
            f"WHERE i.person_id = p.id AND i.organization_id = %(org)s AND i.source = %(source)s AND {_identity_scope(integration_id)} "
            "AND p.manager_id IS NULL AND m.person_id <> p.id AND COALESCE(i.attributes->>'manager_external_id', '') <> ''",
            {"org": organization.pk, "source": source, "integration": integration_id},
        )
        return cursor.rowcount


# The PostgreSQL write path: COPY into TEMP staging tables, joins instead of IN lists, one statement per step ----------------


def _person_row(state: dict[str, Any]) -> tuple:
    return (
        state["email"],
        state["display_name"],
        state["given_name"],
        state["family_name"],
        state["title"],
        state["department"],
        state["phone"],
        state["manager_id"],
        json_text(state["groups"]),
        json_text(provenance_packed(state["provenance"])),
        state["is_active"],
        state["search_text"],
    )


def _loads(value: Any) -> Any:
    """Django registers jsonb to load as text on its connections (JSONField decodes it): decode here, raw cursors get the string."""
    return json.loads(value) if isinstance(value, str) else value


def _email_free_in(organization_id: Any, pk: Any, email: str) -> bool:
    return not Person.objects.filter(organization_id=organization_id, email=email).exclude(pk=pk).exists()


def _lookup(cursor: Any, values: Iterable[Any], sql: str, params: Mapping[str, Any], column: str = "value text") -> list[tuple]:
    """Rows of `sql` joined to the staged values (table _sync_stage_values, column `value`): an IN list without per-value quoting."""
    stage_rows(cursor, "_sync_stage_values" if column == "value text" else "_sync_stage_uuids", column, ((v,) for v in values))
    cursor.execute(sql, params)
    return cursor.fetchall()


def _identity_scope(integration_id: Any, alias: str = "i") -> str:
    return f"{alias}.integration_id = %(integration)s" if integration_id else f"{alias}.integration_id IS NULL"


def _merge_copy(*, organization: Organization, source: str, integration: Integration | None, entity_type: str, batch: dict[str, dict[str, Any]]) -> MergeResult:
    """The merge rules with set-based SQL: one join matches the batch, COPY inserts new people, one upsert stores identities."""
    result = MergeResult()
    integration_id = integration.pk if integration is not None else None
    now = timezone.now()
    now_iso = now.isoformat()
    scope = {"org": organization.pk, "source": source, "integration": integration_id, "entity": entity_type, "now": now}
    with connection.wrap_database_errors, raw_cursor() as cursor:
        stage_rows(cursor, "_sync_stage_people", "external_id text, email text", ((ext, a["email"]) for ext, a in batch.items()))
        cursor.execute(
            # LATERAL: one index probe per staged row, whatever the statistics say about a source loaded a moment ago. LIMIT 1 (the
            # keys are unique) keeps the planner from flattening a LATERAL into a join, which it planned as a sequential scan.
            "SELECT s.external_id, i.person_id, p.id FROM _sync_stage_people s "
            "LEFT JOIN LATERAL (SELECT i.person_id FROM sync_personidentity i WHERE i.organization_id = %(org)s AND i.source = %(source)s "
            f"AND {_identity_scope(integration_id)} AND i.external_id = s.external_id LIMIT 1) i ON true "
            "LEFT JOIN LATERAL (SELECT p.id FROM sync_person p WHERE s.email <> '' AND p.organization_id = %(org)s AND p.email = s.email AND p.email <> '' LIMIT 1) p ON true",
            scope,
        )
        identities: dict[str, Any] = {}
        by_email: dict[str, Any] = {}
        for external_id, identity_person, email_person in cursor.fetchall():
            if identity_person is not None:
                identities[external_id] = identity_person
            elif email_person is not None:
                by_email[batch[external_id]["email"]] = email_person
        new_people: dict[Any, dict[str, Any]] = {}
        person_of: dict[str, Any] = {}
        for external_id, attributes in batch.items():
            if external_id in identities:
                person_of[external_id] = identities[external_id]
                continue
            email = attributes["email"]
            if email and email in by_email:
                person_of[external_id] = by_email[email]
                continue
            pk = time_ordered_id_text()
            new_people[pk] = _new_state(pk, email)
            if email:
                by_email[email] = pk
            person_of[external_id] = pk
        priority = people_priority(organization=organization)
        batch_refs: dict[tuple, Any] = {(source, integration_id, ext): person_of[ext] for ext in batch}
        batch_refs.update({("email", email): person_id for email, person_id in by_email.items()})
        by_person: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for external_id, attributes in batch.items():
            if person_of[external_id] in new_people:
                view = {"source": source, "integration_id": integration_id, "external_id": external_id, "attributes": attributes, "updated_at": now}
                by_person[person_of[external_id]].append(view)
        manager_ids = _resolve_managers_copy(cursor, organization.pk, [v for views in by_person.values() for v in views], batch_refs)
        if new_people:
            for pk, views in by_person.items():
                if len(views) == 1 and not views[0]["attributes"].get("deleted"):
                    new_people[pk] = _new_state_from_one(pk, views[0], manager_ids, now_iso)
                else:
                    _apply_state(new_people[pk], views, priority, manager_ids, now_iso, lambda email, pk=pk: _email_free_in(organization.pk, pk, email))
            # Straight into the table: a concurrent merge that created the same email raises IntegrityError, and people_merge retries.
            with cursor.copy(f"COPY sync_person (id, created_at, updated_at, organization_id, {PERSON_COLUMNS}) FROM STDIN") as copy:
                for pk, state in new_people.items():
                    copy.write_row((pk, now, now, organization.pk, *_person_row(state)))
            result.created = len(new_people)
        # Identities this source never had go straight into the table; known ones are updated by one staged upsert.
        fresh = [ext for ext in batch if ext not in identities]
        if fresh:
            with cursor.copy(
                "COPY sync_personidentity (id, created_at, updated_at, organization_id, person_id, integration_id, source, entity_type, external_id, "
                "attributes) FROM STDIN"
            ) as copy:
                for ext in fresh:
                    copy.write_row(
                        (time_ordered_id_text(), now, now, organization.pk, person_of[ext], integration_id, source, entity_type, ext, json_text(batch[ext]))
                    )
        if identities:
            stage_rows(
                cursor,
                "_sync_stage_identities",
                "person_id uuid, external_id text, attributes jsonb",
                ((person_of[ext], ext, json_text(batch[ext])) for ext in identities),
            )
            if integration_id:
                conflict = (
                    "(organization_id, source, integration_id, external_id) WHERE integration_id IS NOT NULL DO UPDATE SET person_id = EXCLUDED.person_id, "
                )
            else:
                conflict = "(organization_id, source, external_id) WHERE integration_id IS NULL DO UPDATE SET "
            cursor.execute(
                "INSERT INTO sync_personidentity (id, created_at, updated_at, organization_id, person_id, integration_id, source, entity_type, "
                "external_id, attributes) SELECT gen_random_uuid(), %(now)s, %(now)s, %(org)s, s.person_id, %(integration)s, %(source)s, %(entity)s, "
                f"s.external_id, s.attributes FROM _sync_stage_identities s ON CONFLICT {conflict}"
                "entity_type = EXCLUDED.entity_type, attributes = EXCLUDED.attributes, updated_at = EXCLUDED.updated_at",
                scope,
            )
        result.identities = len(batch)
        existing_ids = {pid for pid in person_of.values() if pid not in new_people}
        if existing_ids:
            result.updated = _recompute_copy(cursor, organization.pk, list(existing_ids), priority, batch_refs)
    return result


def _resolve_managers_copy(cursor: Any, organization_id: Any, views: list[dict[str, Any]], batch_refs: dict[tuple, Any] | None = None) -> dict[tuple, Any]:
    """Resolve manager references with staged lookups (one join per source, one for emails)."""
    resolved, by_source, emails = _partition_manager_refs(views, batch_refs)
    for (source, integration_id), external_ids in by_source.items():
        rows = _lookup(
            cursor,
            external_ids,
            "SELECT i.external_id, i.person_id FROM _sync_stage_values v CROSS JOIN LATERAL (SELECT i.external_id, i.person_id "
            "FROM sync_personidentity i WHERE i.organization_id = %(org)s "
            f"AND i.source = %(source)s AND {_identity_scope(integration_id)} AND i.external_id = v.value LIMIT 1) i",  # LIMIT 1: an index probe
            {"org": organization_id, "source": source, "integration": integration_id},
        )
        for external_id, person_id in rows:
            resolved[("ext", source, integration_id, external_id)] = person_id
    if emails:
        rows = _lookup(
            cursor,
            emails,
            "SELECT p.email, p.id FROM _sync_stage_values v CROSS JOIN LATERAL "
            "(SELECT p.email, p.id FROM sync_person p WHERE p.organization_id = %(org)s AND p.email = v.value AND p.email <> '' LIMIT 1) p",
            {"org": organization_id},
        )
        for email, person_id in rows:
            resolved[("email", email)] = person_id
    return resolved


def _recompute_copy(cursor: Any, organization_id: Any, ids: list[Any], priority: list[str], batch_refs: dict | None = None) -> int:
    """Recompute people with staged reads and one UPDATE … FROM staging for the people that changed."""
    views: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    rows = _lookup(
        cursor,
        ids,
        "SELECT i.person_id, i.source, i.integration_id, i.external_id, i.attributes, i.updated_at FROM _sync_stage_uuids v "
        "JOIN sync_personidentity i ON i.person_id = v.value",
        {},
        column="value uuid",
    )
    for person_id, source, integration_id, external_id, attributes, updated_at in rows:
        views[person_id].append(
            {"source": source, "integration_id": integration_id, "external_id": external_id, "attributes": _loads(attributes), "updated_at": updated_at}
        )
    manager_ids = _resolve_managers_copy(cursor, organization_id, [v for vs in views.values() for v in vs], batch_refs)
    people = _lookup(cursor, ids, f"SELECT p.id, {PERSON_COLUMNS} FROM _sync_stage_uuids v JOIN sync_person p ON p.id = v.value", {}, column="value uuid")
    now = timezone.now()
    now_iso = now.isoformat()
    changed = []
    names = ["pk", *(c.strip() for c in PERSON_COLUMNS.split(","))]
    for row in people:
        state = dict(zip(names, row, strict=True))
        state["groups"], state["provenance"] = _loads(state["groups"]), provenance_unpacked(_loads(state["provenance"]))
        pk = state["pk"]
        if _apply_state(state, views.get(pk, []), priority, manager_ids, now_iso, lambda email, pk=pk: _email_free_in(organization_id, pk, email)):
            changed.append((pk, *_person_row(state)))
    if changed:
        stage_rows(
            cursor,
            "_sync_stage_person_updates",
            "id uuid, email text, display_name text, given_name text, family_name text, title text, department text, phone text, manager_id uuid, "
            "groups jsonb, provenance jsonb, is_active boolean, search_text text",
            changed,
        )
        assignments = ", ".join(f"{c.strip()} = s.{c.strip()}" for c in PERSON_COLUMNS.split(","))
        cursor.execute(f"UPDATE sync_person p SET {assignments}, updated_at = %(now)s FROM _sync_stage_person_updates s WHERE p.id = s.id", {"now": now})
    return len(changed)
