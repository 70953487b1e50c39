"""Filling a scenario field from outside: people from a connected source, a CSV of people, merged into the values with provenance."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Organization
from accounts.services import audit_record
from common.errors import ApplicationError
from common.validators import is_email_address, is_uuid
from scenarios.models import Scenario, ScenarioDataModel
from scenarios.services import _match_keys, value_sources_merge, values_resolve_people
from scenarios.spec import DEPARTMENT_ROLES, PERSON_TYPES, jsonpath_first, source_connectors, source_paths
from scenarios.validation import ROLE_VALUES, validate_values

CSV_MAX_BYTES = 1_000_000
CSV_MAX_ROWS = 5000
IMPORT_LIMIT = 500
TEXT_TYPES = frozenset({"long_text"})
# A vendor's export may open with a preamble (notes or a title above the header): the header is looked for in the first
# rows, never further.
HEADER_SEARCH_ROWS = 10
MAX_LINE_CHARS = 2000  # one imported line of a text field (a question, a battlecard summary)


@dataclass(frozen=True)
class ColumnMapping:
    """How one vendor export names the columns an import reads; declared per import template, so no vendor needs code.

    columns: what Bastion reads (name, given_name, family_name, email, role for people; any names a `line` uses for text)
    → the vendor's header names for it, compared without case or surrounding spaces, the first present wins.
    """

    label: str
    columns: Mapping[str, tuple[str, ...]]
    required: tuple[str, ...] = ()
    skip_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # rows holding one of these are left out (closed Q&A)
    line: str = ""  # text fields: how a row reads as one line, e.g. "{competitor}: {summary}" (required columns only)
    details: tuple[str, ...] = ()  # text fields: columns added in brackets after the line when they hold something
    default_role: str = "member"
    repeated_rows: bool = False  # people: one person on several rows (a shareholder per share class) is imported once, not refused


def _field(data_model: ScenarioDataModel, field_key: str) -> dict[str, Any]:
    for field_def in data_model.field_definitions:
        if field_def.get("key") == field_key:
            return field_def
    raise ApplicationError(
        f"'{data_model.name}' has no field '{field_key}'.", code="unknown_field", status_code=404, fields={"field": [f"Unknown field '{field_key}'."]}
    )


def _now() -> str:
    return timezone.now().isoformat()


def _stakeholder_entry(person: Any, source: str) -> dict[str, Any]:
    role = DEPARTMENT_ROLES.get((person.department or "").strip().lower(), "member")
    return {
        "person_id": str(person.pk),
        "name": person.display_name or person.email,
        "email": person.email,
        "role": role,
        "department": person.department,
        "source": source,
    }


def field_import_from_source(
    *,
    organization: Organization,
    data_model: ScenarioDataModel,
    field_key: str,
    connector: str = "",
    person_ids: list[str] | None = None,
    external_ids: list[str] | None = None,
    query: str = "",
    actor: Any = None,
) -> dict[str, Any]:
    """Read a field's values from the records store (never a vendor): {"value", "items" (provenance), "connector"}.

    Integrations whose allowed_roles exclude the actor's role are left out (a 403 when nothing else feeds the field).
    """
    from integrations.access import sources_access_check
    from people.selectors import people_by_email, person_identities_from_sources
    from sync.models import SyncRecord

    field_def = _field(data_model, field_key)
    source = field_def.get("source") or {}
    connectors = source_connectors(source)
    if not connectors:
        raise ApplicationError(
            f"{field_def['label']} has no data source to import from; type it or import a CSV.", code="no_source", fields={"field": ["No source."]}
        )
    if connector and connector not in connectors:
        raise ApplicationError(f"{field_def['label']} cannot be imported from '{connector}' (its sources: {', '.join(connectors)}).", code="unknown_source")
    wanted = [connector] if connector else connectors
    restricted = sources_access_check(organization=organization, connector_keys=wanted, actor=actor)
    entities = {source.get("connector"): source.get("entity")} | {
        a.get("connector"): a.get("entity") for a in source.get("alternatives") or [] if isinstance(a, dict)
    }
    paths = source_paths(source)  # connector → (label, value, mapping): an alternative may name its own
    entries: list[Any] = []
    items: list[dict[str, Any]] = []
    if field_def["type"] in PERSON_TYPES:
        identities = person_identities_from_sources(organization=organization, connector_keys=wanted, excluded_integration_ids=restricted)
        if person_ids:
            identities = identities.filter(person_id__in=[p for p in person_ids if is_uuid(p)])
        if query:
            identities = identities.filter(person__search_text__icontains=query.strip().lower())
        seen: set[str] = set()
        for identity in identities[:IMPORT_LIMIT]:
            person = identity.person
            if str(person.pk) in seen:
                continue
            seen.add(str(person.pk))
            key = identity.integration.connector_key if identity.integration_id else identity.source
            entries.append(_stakeholder_entry(person, key))
            items.append(
                {
                    "match": (person.email or str(person.pk)).lower(),
                    "source": key,
                    "integration_id": str(identity.integration_id or ""),
                    "entity": identity.entity_type or entities.get(key, ""),
                    "external_id": identity.external_id,
                    "person_id": str(person.pk),
                    "at": _now(),
                }
            )
        # Records not (yet) merged into people: match them to the directory by the mapped email.
        records = (
            SyncRecord.objects.filter(organization=organization, integration__connector_key__in=wanted, is_deleted=False)
            .exclude(integration_id__in=restricted)
            .select_related("integration")
        )
        records = records.filter(Q(*[Q(integration__connector_key=c, entity_type=entities.get(c)) for c in wanted], _connector=Q.OR))
        if external_ids:
            records = records.filter(external_id__in=external_ids)
        elif person_ids:
            records = records.none()
        known = {i["match"] for i in items}
        emails = {}
        for record in records[:IMPORT_LIMIT]:
            label_path, _, mapping = paths[record.integration.connector_key]
            email = str(jsonpath_first(mapping, record.data) or "").strip().lower()
            name = str(jsonpath_first(label_path, record.data) or email)
            if not email or email in known or (query and query.lower() not in f"{name} {email}".lower()):
                continue
            known.add(email)
            emails[email] = (record, name)
        people = people_by_email(organization=organization, emails=emails)
        for email, (record, name) in emails.items():
            person = people.get(email)
            entry = _stakeholder_entry(person, record.integration.connector_key) if person else {
                "person_id": None, "name": name, "email": email, "role": "member", "department": "", "source": record.integration.connector_key,
            }  # fmt: skip
            entries.append(entry)
            items.append(
                {
                    "match": email,
                    "source": record.integration.connector_key,
                    "integration_id": str(record.integration_id),
                    "entity": record.entity_type,
                    "external_id": record.external_id,
                    "person_id": entry["person_id"],
                    "at": _now(),
                }
            )
        if field_def["type"] == "person":
            entries = [{k: e[k] for k in ("person_id", "name", "email")} for e in entries[:1]]
            items = items[:1]
            return {"value": entries[0] if entries else None, "items": items, "connectors": wanted}
        return {"value": entries, "items": items, "connectors": wanted}
    records = SyncRecord.objects.filter(organization=organization, is_deleted=False).exclude(integration_id__in=restricted).select_related("integration")
    records = records.filter(Q(*[Q(integration__connector_key=c, entity_type=entities.get(c)) for c in wanted], _connector=Q.OR))
    if external_ids:
        records = records.filter(external_id__in=external_ids)
    values: list[Any] = []
    for record in records.order_by("external_id")[:IMPORT_LIMIT]:
        label_path, _, mapping = paths[record.integration.connector_key]
        label = jsonpath_first(label_path, record.data)
        if query and query.lower() not in f"{label} {record.external_id}".lower():
            continue
        mapped = jsonpath_first(mapping, record.data)
        if field_def["type"] == "channel":
            value: Any = {"external_id": record.external_id, "name": str(label or mapped or record.external_id), "integration_id": str(record.integration_id)}
            match = record.external_id
        else:
            value = mapped
            match = str(mapped)
        values.append(value)
        items.append(
            {
                "match": match.lower(),
                "source": record.integration.connector_key,
                "integration_id": str(record.integration_id),
                "entity": record.entity_type,
                "external_id": record.external_id,
                "at": _now(),
            }
        )
    is_list = field_def["type"] in ("multi_select",) or (field_def["type"] == "channel" and field_def.get("multiple"))
    if not is_list:
        return {"value": values[0] if values else None, "items": items[:1], "connectors": wanted}
    return {"value": values, "items": items, "connectors": wanted}


def _csv_rows(reader: Any) -> Any:
    """The reader's rows; a line the csv module cannot read (a cell past its 128 kB limit, a NUL byte) is a 400 naming the line."""
    try:
        yield from reader
    except csv.Error as exc:
        message = f"Line {reader.line_num + 1}: the file cannot be read as CSV ({exc})."
        raise ApplicationError(message, code="csv_invalid", fields={"file": [message]}) from exc


def _csv_text(content: bytes | str) -> str:
    """The upload as text: size-capped, UTF-8 (a BOM is dropped); anything else is a 400 saying how to save the file."""
    if isinstance(content, bytes):
        if len(content) > CSV_MAX_BYTES:
            raise ApplicationError(f"The CSV file is larger than {CSV_MAX_BYTES // 1000} kB.", code="csv_too_large", fields={"file": ["File too large."]})
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApplicationError(
                "The CSV file is not UTF-8 text. Save it as 'CSV UTF-8' and try again.", code="csv_encoding", fields={"file": ["Not UTF-8."]}
            )
    return content


def _mapped_header(reader: Any, mapping: ColumnMapping) -> dict[str, int]:
    """Find the header among the first rows (the first holding every required column) → Bastion column → position."""
    required = mapping.required or tuple(mapping.columns)
    for row in _csv_rows(reader):
        if reader.line_num > HEADER_SEARCH_ROWS:
            break
        header = [cell.strip().lower() for cell in row]
        col: dict[str, int] = {}
        for name, aliases in mapping.columns.items():
            position = next((header.index(a.lower()) for a in aliases if a.lower() in header), None)
            if position is not None:
                col[name] = position
        if all(name in col for name in required):
            return col
    expected = "; ".join(" or ".join(repr(a) for a in mapping.columns[name]) for name in required)
    message = f"This is not a {mapping.label} file: no header row with the columns {expected} in its first {HEADER_SEARCH_ROWS} lines."
    raise ApplicationError(message, code="csv_header", fields={"file": [message]})


def _cell(row: list[str], col: Mapping[str, int], name: str) -> str:
    index = col.get(name)
    return row[index].strip() if index is not None and index < len(row) else ""


def _skipped(row: list[str], col: Mapping[str, int], mapping: ColumnMapping | None) -> bool:
    return bool(mapping) and any(_cell(row, col, name).lower() in {v.lower() for v in values} for name, values in mapping.skip_values.items())


def csv_lines_parse(*, content: bytes | str, mapping: ColumnMapping, filename: str = "upload.csv") -> dict[str, Any]:
    """Read a vendor export as lines of text (one per row, shaped by mapping.line): {"lines", "items", "errors", "skipped"}."""
    reader = csv.reader(io.StringIO(_csv_text(content)))
    col = _mapped_header(reader, mapping)
    lines: list[str] = []
    items: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    skipped = 0
    seen: dict[str, int] = {}
    for row in _csv_rows(reader):
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(lines) + len(errors) + skipped >= CSV_MAX_ROWS:
            errors.append({"line": line, "message": f"Line {line}: stopped reading, the file has more than {CSV_MAX_ROWS} rows."})
            break
        if _skipped(row, col, mapping):
            skipped += 1
            continue
        values = {name: " ".join(_cell(row, col, name).split()) for name in mapping.columns}  # one line per row, whatever the cell held
        missing = [name.replace("_", " ") for name in mapping.required if not values.get(name)]
        if missing:
            errors.append({"line": line, "message": f"Line {line}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} empty."})
            continue
        text = mapping.line.format_map(values) if mapping.line else " ".join(v for v in values.values() if v)
        details = [values[name] for name in mapping.details if values.get(name)]
        text += f" ({', '.join(details)})" if details else ""
        if len(text) > MAX_LINE_CHARS:
            errors.append({"line": line, "message": f"Line {line}: the text is {len(text)} characters, at most {MAX_LINE_CHARS} are imported; shorten it."})
            continue
        if text.lower() in seen:
            errors.append({"line": line, "message": f"Line {line}: the same text is already on line {seen[text.lower()]}."})
            continue
        seen[text.lower()] = line
        lines.append(text)
        items.append({"match": text.lower(), "source": "csv", "line": line, "filename": filename[:200], "at": _now()})
    return {"lines": lines, "items": items, "errors": errors, "skipped": skipped}


def csv_people_parse(*, content: bytes | str, filename: str = "upload.csv", mapping: ColumnMapping | None = None) -> dict[str, Any]:
    """Parse a people CSV (name,email,role, or a vendor export through its mapping): {"people", "items", "errors", "skipped"}."""
    reader = csv.reader(io.StringIO(_csv_text(content)))
    if mapping is not None:
        col = _mapped_header(reader, mapping)
    else:
        try:
            header = [h.strip().lower() for h in next(_csv_rows(reader))]
        except StopIteration:
            raise ApplicationError("The CSV file is empty: it needs a header row name,email,role.", code="csv_empty", fields={"file": ["Empty file."]})
        missing = [c for c in ("name", "email") if c not in header]
        if missing:
            raise ApplicationError(
                f"The CSV header must have name,email and optionally role columns; missing: {', '.join(missing)} (found: {', '.join(header) or 'nothing'}).",
                code="csv_header",
                fields={"file": [f"Missing column(s): {', '.join(missing)}."]},
            )
        col = {name: header.index(name) for name in ("name", "email", "role") if name in header}
    people: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    skipped = 0
    default_role = mapping.default_role if mapping else "member"
    for row in _csv_rows(reader):
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(people) + len(errors) + skipped >= CSV_MAX_ROWS:
            errors.append({"line": line, "message": f"Line {line}: stopped reading, the file has more than {CSV_MAX_ROWS} rows."})
            break
        if _skipped(row, col, mapping):
            skipped += 1
            continue
        # An export may split the name (First Name, Last Name): the full name is then put together from its parts.
        name = _cell(row, col, "name") or " ".join(p for p in (_cell(row, col, "given_name"), _cell(row, col, "family_name")) if p)
        email, role = _cell(row, col, "email").lower(), (_cell(row, col, "role").lower() or default_role)
        problems = []
        if not email:
            problems.append("email is missing")
        elif not is_email_address(email):
            problems.append(f"'{email[:200]}' is not an email address")
        if not name:
            problems.append("name is missing")
        if role not in ROLE_VALUES:
            problems.append(f"'{role}' is not a stakeholder role (use one of: {', '.join(sorted(ROLE_VALUES))})")
        if not problems and email in first_line:
            if mapping is not None and mapping.repeated_rows:
                skipped += 1  # the same person again (another share class): imported once
                continue
            problems.append(f"{email} is already on line {first_line[email]}")
        if problems:
            errors.append({"line": line, "message": f"Line {line}: " + "; ".join(problems) + "."})
            continue
        first_line[email] = line
        people.append({"person_id": None, "name": name, "email": email, "role": role, "department": "", "source": "csv"})
        items.append({"match": email, "source": "csv", "line": line, "filename": filename[:200], "at": _now()})
    return {"people": people, "items": items, "errors": errors, "skipped": skipped}


def field_import_csv(
    *,
    organization: Organization,
    data_model: ScenarioDataModel,
    field_key: str,
    content: bytes | str,
    filename: str = "upload.csv",
    mapping: ColumnMapping | None = None,
) -> dict[str, Any]:
    """Import people for a CSV-enabled field (rows matching a directory person are linked), or lines of a text field through a template."""
    field_def = _field(data_model, field_key)
    if field_def["type"] in TEXT_TYPES and mapping is not None and mapping.line:
        # Text fields take only a declared template's rows: a free-form CSV has no agreed way to read as lines.
        parsed = csv_lines_parse(content=content, mapping=mapping, filename=filename)
        value = "\n".join(parsed["lines"]) or None
        return {"value": value, "items": parsed["items"], "errors": parsed["errors"], "skipped": parsed["skipped"], "connectors": ["csv"]}
    if not field_def.get("csv_import") or field_def["type"] not in PERSON_TYPES:
        raise ApplicationError(
            f"{field_def['label']} does not accept a CSV import.", code="csv_not_allowed", fields={"field": ["No CSV import for this field."]}
        )
    parsed = csv_people_parse(content=content, filename=filename, mapping=mapping)
    resolved = values_resolve_people(organization=organization, field_definitions=[field_def], values={field_key: parsed["people"]})[field_key]
    for entry, item in zip(resolved, parsed["items"], strict=True):
        item["person_id"] = entry.get("person_id")
    return {"value": resolved, "items": parsed["items"], "errors": parsed["errors"], "skipped": parsed["skipped"], "connectors": ["csv"]}


def _fit_text_lines(field_def: dict[str, Any], current: Any, imported: dict[str, Any], mode: str) -> str | None:
    """Add imported lines after the field's text (a line it already has, any case, is not repeated) while they fit its limit.

    A line past the limit is refused row by row (imported["items"] and ["errors"] are updated) instead of failing the file.
    """
    limit = int((field_def.get("validation") or {}).get("max_length", 20000))
    text = current.rstrip("\n") if mode != "replace" and isinstance(current, str) else ""
    have = {line.strip().lower() for line in text.splitlines()}
    kept: list[dict[str, Any]] = []
    lines = str(imported["value"] or "").splitlines()
    for line, item in zip(lines, imported["items"], strict=True):
        if line.strip().lower() in have:
            kept.append(item)
            continue
        candidate = f"{text}\n{line}" if text else line
        if len(candidate) > limit:
            number = item.get("line")
            message = f"Line {number}: {field_def.get('label') or field_def['key']} is full ({limit:,} characters); this line was not imported."
            imported["errors"].append({"line": number, "message": message})
            continue
        text = candidate
        have.add(line.strip().lower())
        kept.append(item)
    imported["items"] = kept
    return text or None


def _merge_field_value(field_def: dict[str, Any], current: Any, imported: Any, mode: str) -> Any:
    if mode == "replace" or current in (None, "", [], {}) or not isinstance(imported, list):
        return imported if imported not in (None, []) or mode == "replace" else current
    existing = current if isinstance(current, list) else [current]
    present = set().union(*[_match_keys(field_def, e) for e in existing]) if existing else set()
    return existing + [e for e in imported if not (_match_keys(field_def, e) & present)]


@transaction.atomic
def scenario_populate_field(
    *,
    scenario: Scenario,
    field_key: str,
    connector: str = "",
    person_ids: list[str] | None = None,
    external_ids: list[str] | None = None,
    query: str = "",
    csv_content: bytes | str | None = None,
    filename: str = "upload.csv",
    mapping: ColumnMapping | None = None,
    mode: str = "append",
    actor: Any = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """Import a field's values from its source records (or a CSV, read through a vendor template's mapping) into a saved scenario, keeping where each came from."""
    scenario = Scenario.objects.select_for_update().select_related("data_model").get(pk=scenario.pk)
    data_model = scenario.data_model
    field_def = _field(data_model, field_key)
    if csv_content is not None:
        imported = field_import_csv(
            organization=scenario.organization, data_model=data_model, field_key=field_key, content=csv_content, filename=filename, mapping=mapping
        )
    else:
        imported = field_import_from_source(
            organization=scenario.organization,
            data_model=data_model,
            field_key=field_key,
            connector=connector,
            person_ids=person_ids,
            external_ids=external_ids,
            query=query,
            actor=actor,
        )
    if field_def["type"] in TEXT_TYPES and csv_content is not None:
        merged_value = _fit_text_lines(field_def, scenario.values.get(field_key), imported, mode)
        imported["errors"].sort(key=lambda error: error["line"])
    else:
        merged_value = _merge_field_value(field_def, scenario.values.get(field_key), imported["value"], mode)
    check = validate_values([{**field_def, "required": False, "visible_if": None}], [], {field_key: merged_value})
    if check.errors:
        raise ApplicationError(check.errors[field_key][0], code="invalid", fields=check.errors)
    values = dict(scenario.values)
    if field_key in check.values:
        values[field_key] = check.values[field_key]
    else:
        values.pop(field_key, None)
    claimed_items = imported["items"]
    if field_def["type"] in TEXT_TYPES and claimed_items and values.get(field_key):
        # Provenance attaches to a whole value: a text field's is the merged text, first imported line kept for the reader.
        claimed_items = [{**claimed_items[0], "match": str(values[field_key]).lower()}]
    claimed = {field_key: {"origin": "csv" if csv_content is not None else "import", "items": claimed_items}}
    previous = scenario.value_sources if mode != "replace" else {k: v for k, v in scenario.value_sources.items() if k != field_key}
    sources = value_sources_merge(
        organization=scenario.organization, field_definitions=data_model.field_definitions, values=values, previous=previous, claimed=claimed
    )
    scenario.values = values
    scenario.value_sources = {**{k: v for k, v in scenario.value_sources.items() if k in values}, **sources}
    scenario.save()
    audit_record(
        action="scenario.populate_field",
        organization=scenario.organization,
        actor=actor,
        target=scenario,
        changes={
            "field": field_key,
            "source": ",".join(imported["connectors"]),
            "imported": len(imported["items"]),
            "csv_errors": len(imported.get("errors", [])),
            **({"template": mapping.label} if mapping is not None else {}),
        },
        request=request,
    )
    return {
        "field": field_key,
        "value": values.get(field_key),
        "imported": len(imported["items"]),
        "skipped": imported.get("skipped", 0),
        "errors": imported.get("errors", []),
        "value_sources": scenario.value_sources.get(field_key, {"origin": "manual", "items": []}),
    }
