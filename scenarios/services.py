"""Writes for scenario data models (versioned definitions) and scenarios (values with provenance)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Organization
from accounts.services import audit_record
from common.errors import ApplicationError
from common.validators import is_uuid
from scenarios.models import Scenario, ScenarioDataModel
from scenarios.selectors import data_model_latest
from scenarios.spec import PERSON_TYPES, data_source_mappings, definition_diff, definition_problems
from scenarios.validation import ValidationResult, validate_values

# ---------------------------------------------------------------- definitions


def data_model_check(*, scenario_type: str, field_definitions: Any, validation_rules: Any) -> None:
    """Refuse a broken definition with one message per problem, each naming the field and attribute."""
    problems = definition_problems(field_definitions, validation_rules, scenario_type=scenario_type)
    if problems:
        messages = [str(p) for p in problems]
        raise ApplicationError(
            "The definition cannot be saved: " + "; ".join(messages[:3]) + (f" (and {len(messages) - 3} more)" if len(messages) > 3 else ""),
            code="definition_invalid",
            fields={"field_definitions": messages},
        )


@transaction.atomic
def data_model_create(
    *,
    scenario_type: str,
    name: str,
    field_definitions: list[dict[str, Any]],
    validation_rules: list[dict[str, Any]] | None = None,
    description: str = "",
    publish: bool = True,
    change_note: str = "",
    actor: Any = None,
    request: HttpRequest | None = None,
) -> ScenarioDataModel:
    """Create the next version of a scenario type (version 1 for a new type)."""
    validation_rules = validation_rules or []
    data_model_check(scenario_type=scenario_type, field_definitions=field_definitions, validation_rules=validation_rules)
    # Lock the type's rows so two editors cannot both create "version n+1".
    list(ScenarioDataModel.objects.select_for_update().filter(scenario_type=scenario_type).values_list("pk", flat=True))
    version = (ScenarioDataModel.objects.filter(scenario_type=scenario_type).aggregate(v=Max("version"))["v"] or 0) + 1
    data_model = ScenarioDataModel.objects.create(
        scenario_type=scenario_type,
        version=version,
        name=name,
        description=description,
        field_definitions=field_definitions,
        data_source_mappings=data_source_mappings(field_definitions),
        validation_rules=validation_rules,
        is_published=publish,
        published_at=timezone.now() if publish else None,
        change_note=change_note,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        action="scenario_data_model.create",
        actor=actor,
        target=data_model,
        changes={
            "scenario_type": [None, scenario_type],
            "version": [None, version],
            "is_published": [None, publish],
            "fields": [None, [f["key"] for f in field_definitions]],
        },
        request=request,
    )
    return data_model


@transaction.atomic
def data_model_revise(
    *,
    data_model: ScenarioDataModel,
    field_definitions: list[dict[str, Any]],
    validation_rules: list[dict[str, Any]] | None = None,
    name: str | None = None,
    description: str | None = None,
    publish: bool = True,
    change_note: str = "",
    actor: Any = None,
    request: HttpRequest | None = None,
) -> ScenarioDataModel:
    """Edit a definition. A published version is frozen, so editing it creates a new version; a draft is edited in place."""
    validation_rules = validation_rules or []
    if data_model.is_published:
        return data_model_create(
            scenario_type=data_model.scenario_type,
            name=data_model.name if name is None else name,
            description=data_model.description if description is None else description,
            field_definitions=field_definitions,
            validation_rules=validation_rules,
            publish=publish,
            change_note=change_note,
            actor=actor,
            request=request,
        )
    data_model_check(scenario_type=data_model.scenario_type, field_definitions=field_definitions, validation_rules=validation_rules)
    before = {"fields": [f.get("key") for f in data_model.field_definitions], "is_published": data_model.is_published}
    data_model.field_definitions = field_definitions
    data_model.validation_rules = validation_rules
    data_model.data_source_mappings = data_source_mappings(field_definitions)
    data_model.name = data_model.name if name is None else name
    data_model.description = data_model.description if description is None else description
    data_model.change_note = change_note or data_model.change_note
    if publish:
        data_model.is_published, data_model.published_at = True, timezone.now()
    data_model.save()
    audit_record(
        action="scenario_data_model.update",
        actor=actor,
        target=data_model,
        changes={"fields": [before["fields"], [f["key"] for f in field_definitions]], "is_published": [before["is_published"], data_model.is_published]},
        request=request,
    )
    return data_model


# ---------------------------------------------------------------- values and provenance


def _people_by(organization: Organization, *, ids: set[str], emails: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    from people.selectors import people_by_ids_or_emails

    by_id: dict[str, Any] = {}
    by_email: dict[str, Any] = {}
    valid_ids = set()
    for raw in ids:
        try:
            import uuid

            valid_ids.add(uuid.UUID(str(raw)))
        except ValueError:
            continue
    if not valid_ids and not emails:
        return by_id, by_email
    for person in people_by_ids_or_emails(organization=organization, ids=valid_ids, emails=emails):
        by_id[str(person.pk)] = person
        if person.email:
            by_email[person.email] = person
    return by_id, by_email


def _resolve_person(entry: Any, by_id: dict[str, Any], by_email: dict[str, Any]) -> Any:
    if isinstance(entry, str):
        entry = {"email": entry}
    if not isinstance(entry, dict):
        return entry
    email = str(entry.get("email") or "").strip().lower()
    person = by_id.get(str(entry.get("person_id") or "")) or (by_email.get(email) if email else None)
    resolved = dict(entry)
    resolved["email"] = email
    if person is None:
        resolved["person_id"] = None  # never keep an id that is not a person of this organization
        return resolved
    resolved.update(person_id=str(person.pk), email=person.email or email, name=str(entry.get("name") or "").strip() or person.display_name or person.email)
    resolved.setdefault("department", person.department)
    if not resolved.get("department"):
        resolved["department"] = person.department
    return resolved


def values_resolve_people(*, organization: Organization, field_definitions: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """Match person and stakeholder entries to the organization's directory (by person id, then email)."""
    ids: set[str] = set()
    emails: set[str] = set()
    for field_def in field_definitions:
        if field_def.get("type") not in PERSON_TYPES:
            continue
        value = values.get(field_def["key"])
        for entry in value if isinstance(value, list) else [value]:
            if isinstance(entry, dict):
                if entry.get("person_id"):
                    ids.add(str(entry["person_id"]))
                if entry.get("email"):
                    emails.add(str(entry["email"]).strip().lower())
            elif isinstance(entry, str) and entry:
                emails.add(entry.strip().lower())
    by_id, by_email = _people_by(organization, ids=ids, emails=emails)
    resolved = dict(values)
    for field_def in field_definitions:
        key = field_def["key"]
        if field_def.get("type") not in PERSON_TYPES or key not in values:
            continue
        value = values[key]
        resolved[key] = [_resolve_person(e, by_id, by_email) for e in value] if isinstance(value, list) else _resolve_person(value, by_id, by_email)
    return resolved


def _match_keys(field_def: dict[str, Any], value: Any) -> set[str]:
    """Identities of the items of a value, used to attach provenance to items that are still present."""
    items = value if isinstance(value, list) else [value]
    keys: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            for attr in ("email", "person_id", "external_id", "name", "url", "amount"):
                if item.get(attr):
                    keys.add(str(item[attr]).lower())
        elif item not in (None, ""):
            keys.add(str(item).lower())
    return keys


def _verified_items(organization: Organization, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep provenance items that point at records of this organization (a client cannot invent an origin)."""
    from people.selectors import person_identity_exists
    from sync.models import SyncRecord

    verified = []
    for item in items:
        if not isinstance(item, dict):
            continue
        source = item.get("source")
        if source in ("csv", "manual", "default"):
            verified.append({k: item[k] for k in ("match", "source", "line", "filename", "at") if k in item})
        elif source == "prefill":
            if Scenario.objects.filter(organization=organization, pk=item.get("scenario_id")).exists() if is_uuid(item.get("scenario_id")) else False:
                verified.append({k: item[k] for k in ("match", "source", "scenario_id", "at", "origin") if k in item})
        elif item.get("integration_id") and item.get("external_id") and is_uuid(item["integration_id"]):
            filters = {"organization": organization, "integration_id": item["integration_id"], "external_id": str(item["external_id"])}
            if SyncRecord.objects.filter(**filters).exists() or person_identity_exists(**filters):
                verified.append({k: item[k] for k in ("match", "source", "integration_id", "entity", "external_id", "person_id", "at") if k in item})
    return verified


def value_sources_merge(
    *, organization: Organization, field_definitions: list[dict[str, Any]], values: dict[str, Any], previous: dict[str, Any], claimed: dict[str, Any] | None
) -> dict[str, Any]:
    """Provenance for every saved field: claimed (verified) items plus previous ones, only for items still present."""
    merged: dict[str, Any] = {}
    claimed = claimed if isinstance(claimed, dict) else {}
    for field_def in field_definitions:
        key = field_def["key"]
        if key not in values:
            continue
        present = _match_keys(field_def, values[key])
        items: dict[str, dict[str, Any]] = {}
        for item in (previous.get(key) or {}).get("items", []):
            if str(item.get("match", "")).lower() in present:
                items[str(item["match"]).lower()] = item
        claim = claimed.get(key) or {}
        for item in _verified_items(organization, claim.get("items", []) if isinstance(claim, dict) else []):
            if str(item.get("match", "")).lower() in present:
                items[str(item["match"]).lower()] = item
        origin = (claim.get("origin") if isinstance(claim, dict) else None) or (previous.get(key) or {}).get("origin") or "manual"
        if origin not in ("manual", "import", "csv", "prefill", "default", "mixed"):
            origin = "manual"
        if items:
            sources = {i.get("source") for i in items.values()}
            origin = "mixed" if len(sources) > 1 else ("csv" if sources == {"csv"} else ("prefill" if sources == {"prefill"} else "import"))
            if len(items) < len(present) and origin != "mixed":
                origin = "mixed"
        merged[key] = {"origin": origin, "items": list(items.values())}
    return merged


def scenario_validate(*, data_model: ScenarioDataModel, organization: Organization, values: dict[str, Any]) -> ValidationResult:
    """Resolve people against the directory and validate; nothing is saved."""
    if not isinstance(values, dict):
        raise ApplicationError("values must be an object of field key → value.", code="invalid", fields={"values": ["Must be an object."]})
    resolved = values_resolve_people(organization=organization, field_definitions=data_model.field_definitions, values=values)
    return validate_values(data_model.field_definitions, data_model.validation_rules, resolved)


def _raise_invalid(result: ValidationResult) -> None:
    count = sum(len(v) for v in result.errors.values())
    first = next(iter(result.errors.values()))[0]
    raise ApplicationError(f"{first}" + (f" ({count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""), code="invalid", fields=result.errors)


def _audit_values(values: dict[str, Any]) -> dict[str, Any]:
    """Field keys with item counts: enough to see what changed without copying people's details into the audit log."""
    return {k: (len(v) if isinstance(v, list) else "set") for k, v in values.items()}


@transaction.atomic
def scenario_create(
    *,
    organization: Organization,
    scenario_type: str,
    values: dict[str, Any],
    value_sources: dict[str, Any] | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Scenario:
    """Create a scenario on the latest published version of its type; invalid values are refused."""
    data_model = data_model_latest(scenario_type=scenario_type)
    result = scenario_validate(data_model=data_model, organization=organization, values=values)
    if not result.is_valid:
        _raise_invalid(result)
    scenario = Scenario.objects.create(
        organization=organization,
        data_model=data_model,
        scenario_type=scenario_type,
        title=str(result.values.get("title") or data_model.name)[:300],
        values=result.values,
        value_sources=value_sources_merge(
            organization=organization, field_definitions=data_model.field_definitions, values=result.values, previous={}, claimed=value_sources
        ),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        action="scenario.create",
        organization=organization,
        actor=actor,
        target=scenario,
        changes={"scenario_type": [None, scenario_type], "version": [None, data_model.version], "values": [None, _audit_values(result.values)]},
        request=request,
    )
    return scenario


@transaction.atomic
def scenario_update(
    *,
    scenario: Scenario,
    values: dict[str, Any],
    value_sources: dict[str, Any] | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Scenario:
    """Replace a scenario's values (validated against the version it was created with)."""
    scenario = Scenario.objects.select_for_update().get(pk=scenario.pk)
    data_model = scenario.data_model
    result = scenario_validate(data_model=data_model, organization=scenario.organization, values=values)
    if not result.is_valid:
        _raise_invalid(result)
    before = _audit_values(scenario.values)
    scenario.values = result.values
    scenario.value_sources = value_sources_merge(
        organization=scenario.organization,
        field_definitions=data_model.field_definitions,
        values=result.values,
        previous=scenario.value_sources,
        claimed=value_sources,
    )
    scenario.title = str(result.values.get("title") or scenario.title)[:300]
    scenario.save()
    changed = sorted(k for k in set(before) | set(result.values) if before.get(k) != _audit_values(result.values).get(k) or k not in before)
    audit_record(
        action="scenario.update",
        organization=scenario.organization,
        actor=actor,
        target=scenario,
        changes={"values": [before, _audit_values(result.values)], "fields": changed},
        request=request,
    )
    return scenario


@transaction.atomic
def scenario_delete(*, scenario: Scenario, actor: Any = None, request: HttpRequest | None = None) -> None:
    audit_record(
        action="scenario.delete", organization=scenario.organization, actor=actor, target=scenario, changes={"title": [scenario.title, None]}, request=request
    )
    scenario.delete()


def scenario_upgrade_preview(*, scenario: Scenario) -> dict[str, Any]:
    """What upgrading to the latest published version would change (fields added/removed/changed, values dropped)."""
    latest = data_model_latest(scenario_type=scenario.scenario_type)
    diff = definition_diff(scenario.data_model, latest)
    removed = {f["key"] for f in diff["fields_removed"]}
    diff["values_dropped"] = sorted(k for k in scenario.values if k in removed)
    diff["is_current"] = latest.pk == scenario.data_model_id
    result = validate_values(latest.field_definitions, latest.validation_rules, scenario.values)
    diff["problems_after_upgrade"] = result.errors
    return diff


@transaction.atomic
def scenario_upgrade(*, scenario: Scenario, actor: Any = None, request: HttpRequest | None = None) -> tuple[Scenario, dict[str, Any]]:
    """Move a scenario to the latest published version explicitly; values of removed or now-hidden fields are dropped."""
    scenario = Scenario.objects.select_for_update().get(pk=scenario.pk)
    diff = scenario_upgrade_preview(scenario=scenario)
    if diff["is_current"]:
        return scenario, diff
    latest = data_model_latest(scenario_type=scenario.scenario_type)
    result = validate_values(latest.field_definitions, latest.validation_rules, scenario.values)
    old_version = scenario.data_model.version
    scenario.data_model = latest
    # Keep every value the new version still accepts; fields with problems keep nothing so the person fills them again.
    scenario.values = {k: v for k, v in result.values.items() if k not in result.errors}
    scenario.value_sources = {k: v for k, v in scenario.value_sources.items() if k in scenario.values}
    scenario.save()
    audit_record(
        action="scenario.upgrade",
        organization=scenario.organization,
        actor=actor,
        target=scenario,
        changes={"version": [old_version, latest.version], "values_dropped": diff["values_dropped"]},
        request=request,
    )
    return scenario, diff
