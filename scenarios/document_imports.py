"""Filling scenario fields from a workbook in a connected tool: "Table.Column", named ranges and "Sheet!B2" cells, with provenance."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.services import audit_record
from common.errors import ApplicationError
from common.validators import is_uuid
from scenarios.documents import IMPORTABLE_TYPES, mapping_source_problem
from scenarios.models import Scenario
from scenarios.services import _match_keys, value_sources_merge
from scenarios.validation import validate_values

MAX_MAPPINGS = 50


def _problem_error(problems: dict[str, list[str]]) -> ApplicationError:
    messages = [m for found in problems.values() for m in found]
    summary = "; ".join(messages[:3]) + (f" (and {len(messages) - 3} more)" if len(messages) > 3 else "")
    return ApplicationError(f"The workbook import was not applied: {summary}", code="invalid_mapping", fields=problems)


def _document_reference(data_model_fields: list[dict[str, Any]], values: dict[str, Any], document: Any) -> tuple[str, str]:
    """The connector's reference and a name for provenance: a picked document ({id, name, …}) or its bare id."""
    if isinstance(document, dict):
        reference, name = str(document.get("id") or "").strip(), str(document.get("name") or "").strip()
    else:
        reference, name = str(document or "").strip(), ""
    if not reference or len(reference) > 1000:
        raise ApplicationError("document is required: the workbook chosen in the file picker.", fields={"document": ["Choose a workbook."]})
    if not name:  # the scenario's own document field usually holds the workbook's name
        for field_def in data_model_fields:
            chosen = values.get(field_def["key"])
            if field_def.get("type") == "document" and isinstance(chosen, dict) and chosen.get("id") == reference:
                name = str(chosen.get("name") or "")
    return reference, name or reference


def _names_to_read(source: str) -> list[str]:
    """'DealTerms.Value' may be a table's column or a defined name with a dot: ask for both."""
    if "!" not in source and "." in source:
        return [source.split(".", 1)[0], source]
    return [source]


def _extract(source: str, found: dict[str, Any]) -> tuple[Any, str | None]:
    """(raw value, problem): a table (row dicts), a column (values) or a range (rows)."""
    if "!" not in source and "." in source:
        table_name, column = source.split(".", 1)
        table = found.get(table_name)
        if isinstance(table, list) and (not table or isinstance(table[0], dict)):
            headers = list(table[0]) if table else []
            match = next((h for h in headers if h.casefold() == column.casefold()), None)
            if match is None:
                return None, f"table '{table_name}' has no column '{column}' (columns: {', '.join(headers) or 'none'})"
            return [row.get(match) for row in table], None
        if source in found:
            return found[source], None
        return None, f"the workbook has no table '{table_name}' nor a named range '{source}'"
    if source not in found:
        what = "sheet or cell" if "!" in source else "table or named range"
        return None, f"the workbook has no {what} '{source}'"
    return found[source], None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and abs(value) < 10000:  # years and small counts read best without separators
        return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def _coerce(field_def: dict[str, Any], raw: Any, source: str, current: Any) -> tuple[Any, str | None]:
    """The raw workbook value in the field's shape, or why it cannot be."""
    kind, label = field_def["type"], field_def.get("label") or field_def["key"]
    is_table = isinstance(raw, list) and bool(raw) and isinstance(raw[0], dict)
    if kind == "long_text":
        if is_table:
            lines = ["; ".join(f"{k}: {_text(v)}" for k, v in row.items() if v not in (None, "")) for row in raw]
        else:
            rows = raw if isinstance(raw, list) else [raw]
            lines = [", ".join(_text(c) for c in (row if isinstance(row, list) else [row]) if c not in (None, "")) for row in rows]
        return "\n".join(line for line in lines if line), None
    if is_table:
        return None, f"{source} is a whole table; {label} takes one value: name a column (e.g. {source}.Value)"
    cells = [c for row in (raw if isinstance(raw, list) else [raw]) for c in (row if isinstance(row, list) else [row]) if c not in (None, "")]
    if kind == "multi_select":
        return [_text(c) if not isinstance(c, str) else c for c in cells], None
    if len(cells) != 1:
        return None, f"{source} holds {len(cells)} values; {label} takes one (map a single cell or a one-row column)"
    value = cells[0]
    if kind == "money":
        currency = current.get("currency") if isinstance(current, dict) else None
        return {"amount": value, "currency": currency or "USD"}, None
    if kind in ("text", "select"):
        return value if isinstance(value, str) else str(value), None
    if kind in ("date", "datetime") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return None, f"{source} holds the number {value}, not a date: format the cell as a date in Excel"
    if isinstance(value, (date, datetime)):
        return value.isoformat(), None
    return value, None


@transaction.atomic
def scenario_document_import(
    *,
    scenario: Scenario,
    integration_id: Any,
    document: Any,
    mapping: Any,
    actor: Any = None,
    membership: Any = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """Read the mapped tables, ranges and cells of one workbook into the scenario's fields; any problem refuses the whole import."""
    from integrations.documents import integration_document_values
    from integrations.selectors import integration_get

    scenario = Scenario.objects.select_for_update().select_related("data_model").get(pk=scenario.pk)
    fields = {f["key"]: f for f in scenario.data_model.field_definitions}
    if not isinstance(mapping, dict) or not mapping:
        raise ApplicationError(
            "mapping is required: field key → 'Table.Column', a named range or 'Sheet!B2'.", fields={"mapping": ["Give at least one field."]}
        )
    if len(mapping) > MAX_MAPPINGS:
        raise ApplicationError(f"mapping has {len(mapping)} fields; at most {MAX_MAPPINGS} per import.", fields={"mapping": ["Too many fields."]})
    problems: dict[str, list[str]] = {}
    for key, source in mapping.items():
        field_def = fields.get(key)
        if field_def is None:
            problems[f"mapping.{key}"] = [f"'{key}' is not a field of {scenario.data_model.name}."]
        elif field_def.get("type") not in IMPORTABLE_TYPES:
            problems[f"mapping.{key}"] = [f"{field_def.get('label') or key} is a {field_def.get('type')} field: it cannot be filled from a workbook."]
        elif problem := mapping_source_problem(source):
            problems[f"mapping.{key}"] = [f"{field_def.get('label') or key}: {problem}."]
    integration = integration_get(organization=scenario.organization, integration_id=integration_id) if is_uuid(integration_id) else None
    if integration is None:
        raise ApplicationError(
            "integration: no such integration in your organization.", code="not_found", status_code=404, fields={"integration": ["Not found."]}
        )
    reference, document_name = _document_reference(scenario.data_model.field_definitions, scenario.values, document)
    if problems:
        raise _problem_error(problems)
    sources = {key: str(source).strip() for key, source in mapping.items()}
    names = list(dict.fromkeys(name for source in sources.values() for name in _names_to_read(source)))
    found = integration_document_values(integration=integration, membership=membership, document=reference, names=names)
    imported: dict[str, Any] = {}
    for key, source in sources.items():
        field_def = fields[key]
        raw, problem = _extract(source, found)
        if problem is None:
            candidate, problem = _coerce(field_def, raw, source, scenario.values.get(key))
        if problem is None:
            check = validate_values([{**field_def, "required": False, "visible_if": None}], [], {key: candidate})
            if check.errors:
                problem = f"{source}: " + " ".join(check.errors[key])
            elif key in check.values:
                imported[key] = check.values[key]
            else:
                problem = f"{source} is empty"
        if problem:
            problems[f"mapping.{key}"] = [
                f"{field_def.get('label') or key}: {problem}." if not problem.endswith(".") else f"{field_def.get('label') or key}: {problem}"
            ]
    if problems:
        raise _problem_error(problems)
    now = timezone.now().isoformat()
    provenance = {
        key: {
            "origin": "import",
            "items": [
                {"match": match, "source": integration.connector_key, "integration_id": str(integration.pk), "document_id": reference,
                 "document": document_name[:300], "range": sources[key], "at": now}
                for match in sorted(_match_keys(fields[key], value))
            ],
        }
        for key, value in imported.items()
    }  # fmt: skip
    values = {**scenario.values, **imported}
    previous = {k: v for k, v in scenario.value_sources.items() if k not in imported} | provenance
    merged = value_sources_merge(
        organization=scenario.organization, field_definitions=scenario.data_model.field_definitions, values=values, previous=previous, claimed={}
    )
    scenario.values = values
    scenario.value_sources = {**{k: v for k, v in scenario.value_sources.items() if k in values}, **merged}
    scenario.save()
    audit_record(
        action="scenario.document_import",
        organization=scenario.organization,
        actor=actor,
        target=scenario,
        changes={"integration": str(integration.pk), "document": document_name[:200], "fields": sorted(imported)},
        request=request,
    )
    return {
        "document": {"id": reference, "name": document_name, "integration_id": str(integration.pk)},
        "values": imported,
        "value_sources": {key: scenario.value_sources.get(key, {"origin": "import", "items": []}) for key in imported},
    }
