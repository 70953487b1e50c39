"""Form schema generation: fields with sources (connected or not), options, pre-fill with origins, conditions, rules and JSON Schema."""

from __future__ import annotations

from typing import Any

from accounts.models import Organization
from integrations.registry import UnknownConnector, get_connector_class
from scenarios.models import Scenario, ScenarioDataModel
from scenarios.selectors import scenario_last_of_type
from scenarios.spec import FIELD_TYPES, PERSON_TYPES, STAKEHOLDER_ROLES, field_options, source_connectors, source_paths

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"person_id": {"type": ["string", "null"]}, "name": {"type": "string"}, "email": {"type": "string", "format": "email"}},
    "required": ["email"],
}
STAKEHOLDER_SCHEMA = {
    "type": "object",
    "properties": {
        **PERSON_SCHEMA["properties"],
        "role": {"enum": [v for v, _ in STAKEHOLDER_ROLES]},
        "department": {"type": "string"},
        "source": {"type": "string"},
    },
    "required": ["email", "role"],
}
CHANNEL_SCHEMA = {
    "type": "object",
    "properties": {"external_id": {"type": "string"}, "name": {"type": "string", "minLength": 1}, "integration_id": {"type": "string"}},
    "required": ["name"],
}
DOCUMENT_SCHEMA = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in ("integration_id", "id", "name", "path", "url")},
    "required": ["integration_id", "id"],
}


def connector_name(key: str) -> str:
    """The connector's own name (its manifest), or the key in words when it is not installed."""
    try:
        return get_connector_class(key).manifest.name
    except UnknownConnector:
        return key.replace("_", " ").title()


def field_json_schema(field_def: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one field's value shape (docs/contracts.md "Scenario values")."""
    kind = field_def["type"]
    rules = field_def.get("validation") or {}
    schema: dict[str, Any]
    if kind in ("text", "long_text"):
        schema = {"type": "string", "maxLength": rules.get("max_length", 300 if kind == "text" else 20000)}
        if rules.get("regex"):
            schema["pattern"] = rules["regex"]
    elif kind == "number":
        schema = {"type": "number"}
    elif kind == "money":
        schema = {
            "type": "object",
            "properties": {"amount": {"type": "number"}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}},
            "required": ["amount", "currency"],
        }
    elif kind == "date":
        schema = {"type": "string", "format": "date"}
    elif kind == "datetime":
        schema = {"type": "string", "format": "date-time"}
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "select":
        options = field_options(field_def)
        schema = {"type": "string", "enum": [o["value"] for o in options]} if options else {"type": "string"}
    elif kind == "multi_select":
        options = field_options(field_def)
        schema = {"type": "array", "items": {"type": "string", "enum": [o["value"] for o in options]} if options else {"type": "string"}, "uniqueItems": True}
    elif kind == "person":
        schema = dict(PERSON_SCHEMA)
    elif kind == "stakeholder_list":
        schema = {"type": "array", "items": STAKEHOLDER_SCHEMA}
        if "min_items" in rules:
            schema["minItems"] = rules["min_items"]
    elif kind == "channel":
        schema = {"type": "array", "items": CHANNEL_SCHEMA} if field_def.get("multiple") else dict(CHANNEL_SCHEMA)
    elif kind == "document":
        schema = dict(DOCUMENT_SCHEMA)
    else:  # document_link
        schema = {"type": "object", "properties": {"url": {"type": "string", "format": "uri"}, "title": {"type": "string"}}, "required": ["url"]}
    target = schema["properties"]["amount"] if kind == "money" else schema
    if kind in ("number", "money"):
        if "min" in rules:
            target["minimum"] = rules["min"]
        if "max" in rules:
            target["maximum"] = rules["max"]
    schema["title"] = field_def.get("label", field_def["key"])
    if field_def.get("help_text"):
        schema["description"] = field_def["help_text"]
    if "default" in field_def:
        schema["default"] = field_def["default"]
    return schema


def _simple_condition(condition: Any) -> dict[str, Any] | None:
    """Translate `{"==": [{"var": k}, c]}` / `{"in": [{"var": k}, [..]]}` to a JSON Schema `if`; others stay JSON Logic only."""
    if not isinstance(condition, dict) or len(condition) != 1:
        return None
    operator, args = next(iter(condition.items()))
    if operator in ("==", "===") and isinstance(args, list) and len(args) == 2 and isinstance(args[0], dict) and set(args[0]) == {"var"}:
        name = args[0]["var"]
        if isinstance(name, str) and "." not in name and isinstance(args[1], (str, int, float, bool)):
            return {"properties": {name: {"const": args[1]}}, "required": [name]}
    if operator == "in" and isinstance(args, list) and len(args) == 2 and isinstance(args[0], dict) and set(args[0]) == {"var"} and isinstance(args[1], list):
        name = args[0]["var"]
        if isinstance(name, str) and "." not in name:
            return {"properties": {name: {"enum": args[1]}}, "required": [name]}
    return None


def definition_json_schema(data_model: ScenarioDataModel) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for a scenario's values; conditional requirements become if/then where expressible."""
    properties = {f["key"]: field_json_schema(f) for f in data_model.field_definitions}
    required = [f["key"] for f in data_model.field_definitions if f.get("required") and not f.get("visible_if")]
    conditionals: list[dict[str, Any]] = []
    for field_def in data_model.field_definitions:
        if field_def.get("visible_if") and field_def.get("required"):
            condition = _simple_condition(field_def["visible_if"])
            if condition:
                conditionals.append({"if": condition, "then": {"required": [field_def["key"]]}})
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:bastion:scenario:{data_model.scenario_type}:v{data_model.version}",
        "title": data_model.name or data_model.scenario_type,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if conditionals:
        schema["allOf"] = conditionals
    return schema


def _condition_hint(condition: Any, by_key: dict[str, dict[str, Any]]) -> str:
    simple = _simple_condition(condition)
    if not simple:
        return "Shown when its condition holds."
    name = next(iter(simple["properties"]))
    target = by_key.get(name, {})
    spec = simple["properties"][name]
    labels = {o["value"]: o["label"] for o in field_options(target)}
    wanted = [spec["const"]] if "const" in spec else spec["enum"]
    return f"Shown when {target.get('label', name)} is " + " or ".join(labels.get(str(w), str(w)) for w in wanted) + "."


def _source_schema(field_def: dict[str, Any], connected: dict[str, list[str]], scenario_type: str) -> dict[str, Any] | None:
    source = field_def.get("source")
    if not source:
        return None
    entries = [source] + [a for a in source.get("alternatives") or [] if isinstance(a, dict)]
    paths = source_paths(source)
    connectors = []
    for entry in entries:
        key = entry.get("connector", "")
        label_path, value_path, _ = paths.get(key, ("$.name", "$.external_id", "$"))
        name = (source.get("label") if entry is source else "") or connector_name(key)
        connectors.append(
            {
                "connector": key,
                "name": name,
                "entity": entry.get("entity", ""),
                "connected": bool(connected.get(key)),
                "integration_ids": connected.get(key, []),
                "import_label": f"Import from {name}",
                "options_label": label_path,
                "options_value": value_path,
            }
        )
    base = f"/api/scenarios/{scenario_type}/fields/{field_def['key']}"
    return {
        "connector": source.get("connector"),
        "entity": source.get("entity"),
        "mapping": source.get("mapping"),
        "options_label": source.get("options_label"),
        "options_value": source.get("options_value") or source.get("mapping"),
        "name": connectors[0]["name"],
        "connected": any(c["connected"] for c in connectors),
        "connectors": connectors,
        "refresh_url": f"{base}/refresh",
        "import_url": f"{base}/import",
    }


def form_schema(*, data_model: ScenarioDataModel, organization: Organization, scenario: Scenario | None = None) -> dict[str, Any]:
    """Everything a frontend needs to render, pre-fill, show/hide and validate a scenario form."""
    all_keys = sorted({k for f in data_model.field_definitions for k in source_connectors(f.get("source"))})
    from forms_engine.selectors import connected_integrations

    connected = connected_integrations(organization=organization, connector_keys=all_keys)
    by_key = {f["key"]: f for f in data_model.field_definitions}
    values, origins = _prefill(data_model=data_model, organization=organization, scenario=scenario)
    fields = []
    for field_def in data_model.field_definitions:
        key = field_def["key"]
        options = field_options(field_def) if field_def["type"] in ("select", "multi_select", "stakeholder_list") else []
        if field_def["type"] == "stakeholder_list" and not options:
            options = [{"value": v, "label": label} for v, label in STAKEHOLDER_ROLES]
        source = _source_schema(field_def, connected, data_model.scenario_type)
        has_lookup = bool(source) or field_def["type"] in PERSON_TYPES
        fields.append(
            {
                "key": key,
                "label": field_def.get("label", key),
                "type": field_def["type"],
                "type_label": FIELD_TYPES[field_def["type"]],
                "required": bool(field_def.get("required")),
                "help_text": field_def.get("help_text", ""),
                "section": field_def.get("section") or "Details",
                "placeholder": field_def.get("placeholder", ""),
                "multiple": bool(field_def.get("multiple")) or field_def["type"] in ("multi_select", "stakeholder_list"),
                "default": field_def.get("default"),
                "options": options,
                "options_url": f"/api/scenarios/{data_model.scenario_type}/fields/{key}/options" if has_lookup else None,
                "source": source,
                "csv_import": bool(field_def.get("csv_import")),
                "csv_import_url": f"/api/scenarios/{data_model.scenario_type}/fields/{key}/import" if field_def.get("csv_import") else None,
                "visible_if": field_def.get("visible_if") or None,
                "condition_hint": _condition_hint(field_def["visible_if"], by_key) if field_def.get("visible_if") else "",
                "validation": field_def.get("validation") or {},
                "imports": field_def.get("imports") or {},
                "value": values.get(key),
                "value_origin": origins.get(key),
                "json_schema": field_json_schema(field_def),
            }
        )
    return {
        "scenario_type": data_model.scenario_type,
        "name": data_model.name,
        "description": data_model.description,
        "version": data_model.version,
        "data_model_id": str(data_model.pk),
        "scenario_id": str(scenario.pk) if scenario else None,
        "fields": fields,
        "sections": list(dict.fromkeys(f["section"] for f in fields)),
        "rules": [
            {"key": r["key"], "message": r["message"], "rule": r["rule"], "when": r.get("when"), "fields": r.get("fields", [])}
            for r in data_model.validation_rules or []
        ],
        "values": values,
        "value_origins": origins,
        "json_schema": definition_json_schema(data_model),
        "validate_url": f"/api/scenarios/{scenario.pk}/validate" if scenario else f"/api/scenarios/{data_model.scenario_type}/validate",
    }


def _prefill(*, data_model: ScenarioDataModel, organization: Organization, scenario: Scenario | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Values to show and where each came from: the scenario itself, else the organization's last scenario of the type, else defaults."""
    values: dict[str, Any] = {}
    origins: dict[str, Any] = {}
    if scenario is not None:
        for key, value in scenario.values.items():
            values[key] = value
            sources = scenario.value_sources.get(key) or {}
            origins[key] = {"kind": "saved", "origin": sources.get("origin", "manual"), "items": sources.get("items", [])}
        return values, origins
    last = scenario_last_of_type(organization=organization, scenario_type=data_model.scenario_type)
    for field_def in data_model.field_definitions:
        key = field_def["key"]
        if last is not None and field_def.get("prefill") == "last_scenario" and last.values.get(key) not in (None, "", []):
            values[key] = last.values[key]
            origins[key] = {
                "kind": "last_scenario",
                "scenario_id": str(last.pk),
                "title": last.title,
                "created_at": last.created_at.isoformat(),
                "label": f"From your last {data_model.name} scenario, “{last.title}”",
            }
        elif "default" in field_def and field_def["default"] not in (None, ""):
            values[key] = field_def["default"]
            origins[key] = {"kind": "default", "label": "Default value"}
    return values, origins
