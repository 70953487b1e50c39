"""The scenario definition language: field types, definition checks (refused with what and where), diffs between versions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jsonpath_ng import parse as jsonpath_parse
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError

from common.regex import UnsupportedPattern, compile_pattern
from scenarios.documents import imports_problems
from scenarios.logic import LogicError, check_expression, referenced_fields

FIELD_TYPES: dict[str, str] = {
    "text": "Text",
    "long_text": "Long text",
    "number": "Number",
    "money": "Money",
    "date": "Date",
    "datetime": "Date and time",
    "select": "Select",
    "multi_select": "Multi-select",
    "boolean": "Yes / no",
    "person": "Person",
    "stakeholder_list": "Stakeholder list",
    "channel": "Channel",
    "document_link": "Document link",
    "document": "Document (from a connected tool)",
}
PERSON_TYPES = frozenset({"person", "stakeholder_list"})
LIST_TYPES = frozenset({"multi_select", "stakeholder_list"})
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
FIELD_ATTRIBUTES = frozenset(
    {
        "key", "label", "type", "required", "help_text", "section", "default", "placeholder", "options", "multiple",
        "source", "csv_import", "prefill", "visible_if", "validation", "imports",
    }
)  # fmt: skip
SOURCE_ATTRIBUTES = frozenset({"connector", "entity", "mapping", "options_label", "options_value", "alternatives", "label"})
VALIDATION_ATTRIBUTES = frozenset({"min", "max", "regex", "regex_message", "min_items", "max_items", "max_length"})
RULE_ATTRIBUTES = frozenset({"key", "message", "rule", "fields", "when"})

# Playbooks rely on these keys (docs/contracts.md "Scenario values"): a new version may not drop them.
CONTRACT_KEYS: dict[str, tuple[str, ...]] = {
    "crisis_management": (
        "title", "crisis_type", "severity", "incident_commander", "stakeholders", "communication_channels",
        "war_room_meeting_at", "jira_project_key", "summary", "ciso", "breach_scope",
    ),
    "product_launch": ("title", "launch_date", "stakeholders", "jira_project_key", "summary"),
    "mergers_acquisitions": ("title", "deal", "deal_value", "board_sponsor", "stakeholders", "jira_project_key", "summary"),
}  # fmt: skip
STAKEHOLDER_ROLES: list[tuple[str, str]] = [
    ("executive", "Executive"),
    ("legal", "Legal"),
    ("security", "Security"),
    ("communications", "Communications"),
    ("engineering", "Engineering"),
    ("operations", "Operations"),
    ("finance", "Finance"),
    ("hr", "People / HR"),
    ("support", "Customer support"),
    ("member", "Member"),
]
DEPARTMENT_ROLES = {
    "executive": "executive",
    "legal": "legal",
    "security": "security",
    "communications": "communications",
    "engineering": "engineering",
    "it": "operations",
    "operations": "operations",
    "finance": "finance",
    "people": "hr",
    "hr": "hr",
    "support": "support",
}


@dataclass(frozen=True)
class DefinitionProblem:
    """One reason a definition is refused: where (field key + attribute) and what."""

    field: str  # field key, or "rules.<key>" for cross-field rules, or "" for the definition as a whole
    attribute: str
    message: str

    def __str__(self) -> str:
        where = f"Field '{self.field}'" if self.field and not self.field.startswith("rules.") else (f"Rule '{self.field[6:]}'" if self.field else "Definition")
        return f"{where}, {self.attribute}: {self.message}" if self.attribute else f"{where}: {self.message}"


def jsonpath_problem(path: Any) -> str | None:
    """Return why `path` is not a usable JSONPath, or None."""
    if not isinstance(path, str) or not path.strip():
        return "must be a JSONPath string such as '$.email'"
    if not path.startswith("$"):
        return f"'{path}' is not valid JSONPath: it must start with '$'"
    try:
        jsonpath_parse(path)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:  # noqa: BLE001 - jsonpath-ng raises bare Exception for some syntax errors
        return f"'{path}' is not valid JSONPath ({str(exc).splitlines()[0][:120]})"
    return None


def jsonpath_first(path: str, record: Any) -> Any:
    """The first value `path` selects in `record`, or None."""
    matches = jsonpath_parse(path).find(record)
    return matches[0].value if matches else None


def field_options(field: dict[str, Any]) -> list[dict[str, str]]:
    """Static options normalised to [{"value","label"}]."""
    options = []
    for option in field.get("options") or []:
        if isinstance(option, dict):
            options.append({"value": str(option.get("value", "")), "label": str(option.get("label", option.get("value", "")))})
        else:
            options.append({"value": str(option), "label": str(option)})
    return options


def source_connectors(source: dict[str, Any] | None) -> list[str]:
    """The primary connector and its alternatives, in order."""
    if not source:
        return []
    keys = [source.get("connector", "")] + [a.get("connector", "") if isinstance(a, dict) else str(a) for a in source.get("alternatives") or []]
    return [k for k in keys if k]


def source_paths(source: dict[str, Any] | None) -> dict[str, tuple[str, str, str]]:
    """Per connector of a source (the primary and each alternative): its (label, value, mapping) JSONPaths.

    An alternative may name its own paths (Asana tasks have a title where Jira issues have a summary); it inherits the rest.
    """
    if not source:
        return {}
    label = source.get("options_label") or "$.name"
    mapping = source.get("mapping") or "$"
    value = source.get("options_value") or source.get("mapping") or "$.external_id"
    paths = {str(source.get("connector") or ""): (label, value, mapping)}
    for alternative in source.get("alternatives") or []:
        if isinstance(alternative, dict) and alternative.get("connector"):
            alt_mapping = alternative.get("mapping") or mapping
            alt_value = alternative.get("options_value") or alternative.get("mapping") or value
            paths.setdefault(str(alternative["connector"]), (alternative.get("options_label") or label, alt_value, alt_mapping))
    return paths


def _installed_connectors() -> dict[str, Any]:
    from integrations.registry import connector_classes

    return connector_classes()


def _check_source(key: str, source: Any, field_type: str, installed: dict[str, Any]) -> list[DefinitionProblem]:
    problems: list[DefinitionProblem] = []
    if not isinstance(source, dict):
        return [DefinitionProblem(key, "source", "must be an object with connector, entity and mapping")]
    for unknown in sorted(set(source) - SOURCE_ATTRIBUTES):
        problems.append(DefinitionProblem(key, f"source.{unknown}", "is not a source attribute"))
    entries = [("source", source)] + [(f"source.alternatives[{i}]", alt) for i, alt in enumerate(source.get("alternatives") or [])]
    for where, entry in entries:
        if not isinstance(entry, dict):
            problems.append(DefinitionProblem(key, where, "must be an object with connector and entity"))
            continue
        connector = entry.get("connector")
        if not connector:
            problems.append(DefinitionProblem(key, f"{where}.connector", "is required (the key of an installed connector)"))
            continue
        if connector not in installed:  # every shipped connector is installed with Bastion; partners' come by entry point
            known = ", ".join(sorted(installed))
            problems.append(DefinitionProblem(key, f"{where}.connector", f"'{connector}' is not a known connector (known: {known})"))
            continue
        entity = entry.get("entity")
        if not entity:
            problems.append(DefinitionProblem(key, f"{where}.entity", f"is required (an entity of '{connector}')"))
        elif connector in installed:
            entities = [e.key for e in installed[connector].manifest.entities]
            if entities and entity not in entities:
                problems.append(DefinitionProblem(key, f"{where}.entity", f"'{connector}' has no entity '{entity}' (it has: {', '.join(entities)})"))
    for where, entry in entries:
        if not isinstance(entry, dict):
            continue
        for unknown in sorted(set(entry) - SOURCE_ATTRIBUTES) if entry is not source else ():
            problems.append(DefinitionProblem(key, f"{where}.{unknown}", "is not a source attribute"))
        for attr in ("mapping", "options_label", "options_value"):
            if attr in entry:
                problem = jsonpath_problem(entry[attr])
                if problem:
                    problems.append(DefinitionProblem(key, f"{where}.{attr}", problem))
    if "mapping" not in source:
        problems.append(DefinitionProblem(key, "source.mapping", "is required: a JSONPath from the source record to the value, e.g. '$.email'"))
    return problems


def _check_validation(key: str, field_type: str, validation: Any) -> list[DefinitionProblem]:
    if not isinstance(validation, dict):
        return [DefinitionProblem(key, "validation", "must be an object (min, max, regex, min_items, …)")]
    problems = [DefinitionProblem(key, f"validation.{attr}", "is not a validation setting") for attr in sorted(set(validation) - VALIDATION_ATTRIBUTES)]
    for attr in ("min", "max", "min_items", "max_items", "max_length"):
        if attr in validation and (isinstance(validation[attr], bool) or not isinstance(validation[attr], (int, float))):
            problems.append(DefinitionProblem(key, f"validation.{attr}", "must be a number"))
    if isinstance(validation.get("min"), (int, float)) and isinstance(validation.get("max"), (int, float)) and validation["min"] > validation["max"]:
        problems.append(DefinitionProblem(key, "validation.min", f"min {validation['min']} is greater than max {validation['max']}"))
    if "regex" in validation:
        try:
            compile_pattern(str(validation["regex"]))  # RE2: runs in linear time on any value, so a viewer cannot stall a worker
        except UnsupportedPattern as exc:
            problems.append(DefinitionProblem(key, "validation.regex", f"'{str(validation['regex'])[:200]}' {exc}"))
    return problems


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle (as a path a → b → a) in a dependency graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if state.get(nxt) is None and nxt in graph:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def definition_problems(
    field_definitions: Any, validation_rules: Any, *, scenario_type: str = "", installed: dict[str, Any] | None = None
) -> list[DefinitionProblem]:
    """Check a definition; an empty list means it can be saved."""
    installed = _installed_connectors() if installed is None else installed
    problems: list[DefinitionProblem] = []
    if not isinstance(field_definitions, list) or not field_definitions:
        return [DefinitionProblem("", "field_definitions", "must be a non-empty list of fields")]
    keys: list[str] = []
    for index, field in enumerate(field_definitions):
        if not isinstance(field, dict):
            problems.append(DefinitionProblem(f"#{index + 1}", "", "must be an object"))
            continue
        key = field.get("key")
        if not isinstance(key, str) or not KEY_RE.match(key):
            problems.append(DefinitionProblem(str(key or f"#{index + 1}"), "key", "must start with a lower-case letter and use only a-z, 0-9 and _"))
            continue
        if key in keys:
            problems.append(DefinitionProblem(key, "key", "is used by more than one field"))
        keys.append(key)
    key_set = set(keys)
    conditions: dict[str, set[str]] = {}
    for field in field_definitions:
        if not isinstance(field, dict) or not isinstance(field.get("key"), str) or not KEY_RE.match(field["key"]):
            continue
        key, field_type = field["key"], field.get("type")
        for unknown in sorted(set(field) - FIELD_ATTRIBUTES):
            problems.append(DefinitionProblem(key, unknown, "is not a field attribute"))
        if field_type not in FIELD_TYPES:
            problems.append(DefinitionProblem(key, "type", f"'{field_type}' is not a field type (one of: {', '.join(FIELD_TYPES)})"))
            continue
        if not str(field.get("label") or "").strip():
            problems.append(DefinitionProblem(key, "label", "is required"))
        if field_type in ("select", "multi_select") and not field.get("options") and not field.get("source"):
            problems.append(DefinitionProblem(key, "options", "a select needs options or a source to take them from"))
        if field.get("options") is not None and not isinstance(field.get("options"), list):
            problems.append(DefinitionProblem(key, "options", "must be a list of {value, label}"))
        if field.get("source"):
            problems.extend(_check_source(key, field["source"], field_type, installed))
        if field.get("validation"):
            problems.extend(_check_validation(key, field_type, field["validation"]))
        if field.get("prefill") not in (None, "", "last_scenario", "default"):
            problems.append(DefinitionProblem(key, "prefill", "must be 'last_scenario' or 'default'"))
        if "imports" in field:  # a document field filling other fields from its workbook
            types = {f["key"]: f.get("type") for f in field_definitions if isinstance(f, dict) and isinstance(f.get("key"), str)}
            problems.extend(DefinitionProblem(key, attr, message) for attr, message in imports_problems(key, field["imports"], field_type, types))
        if field.get("csv_import") and field_type not in PERSON_TYPES:
            problems.append(DefinitionProblem(key, "csv_import", "CSV import is for person and stakeholder list fields"))
        if "visible_if" in field and field["visible_if"] not in (None, {}):
            condition = field["visible_if"]
            try:
                check_expression(condition)
            except LogicError as exc:
                problems.append(DefinitionProblem(key, "visible_if", f"is not valid JSON Logic: {exc}"))
                continue
            names = referenced_fields(condition)
            for missing in sorted(names - key_set):
                problems.append(DefinitionProblem(key, "visible_if", f"names field '{missing}', which does not exist"))
            conditions[key] = names & key_set
    cycle = _find_cycle(conditions)
    if cycle:
        problems.append(DefinitionProblem(cycle[0], "visible_if", f"conditions form a cycle: {' → '.join(cycle)}"))
    if validation_rules not in (None, ""):
        if not isinstance(validation_rules, list):
            problems.append(DefinitionProblem("", "validation_rules", "must be a list of rules"))
        else:
            rule_keys: set[str] = set()
            for index, rule in enumerate(validation_rules):
                problems.extend(_check_rule(index, rule, key_set, rule_keys))
    if scenario_type in CONTRACT_KEYS:
        for required_key in CONTRACT_KEYS[scenario_type]:
            if required_key not in key_set:
                problems.append(DefinitionProblem(required_key, "key", f"is missing: playbooks for '{scenario_type}' rely on field '{required_key}'"))
    return problems


def _check_rule(index: int, rule: Any, field_keys: set[str], seen: set[str]) -> list[DefinitionProblem]:
    if not isinstance(rule, dict):
        return [DefinitionProblem(f"rules.#{index + 1}", "", "must be an object with key, message, rule and fields")]
    name = f"rules.{rule.get('key') or '#' + str(index + 1)}"
    problems = [DefinitionProblem(name, unknown, "is not a rule attribute") for unknown in sorted(set(rule) - RULE_ATTRIBUTES)]
    if not rule.get("key"):
        problems.append(DefinitionProblem(name, "key", "is required"))
    elif rule["key"] in seen:
        problems.append(DefinitionProblem(name, "key", "is used by more than one rule"))
    seen.add(str(rule.get("key")))
    if not str(rule.get("message") or "").strip():
        problems.append(DefinitionProblem(name, "message", "is required: say what a person must fix"))
    for attr in ("rule", "when"):
        if attr not in rule or (attr == "when" and rule[attr] in (None, {})):
            if attr == "rule":
                problems.append(DefinitionProblem(name, "rule", "is required (JSON Logic that is true when the values are acceptable)"))
            continue
        try:
            check_expression(rule[attr])
        except LogicError as exc:
            problems.append(DefinitionProblem(name, attr, f"is not valid JSON Logic: {exc}"))
            continue
        for missing in sorted(referenced_fields(rule[attr]) - field_keys):
            problems.append(DefinitionProblem(name, attr, f"names field '{missing}', which does not exist"))
    fields = rule.get("fields") or []
    if not isinstance(fields, list):
        problems.append(DefinitionProblem(name, "fields", "must be a list of field keys"))
    else:
        for missing in sorted({str(f) for f in fields} - field_keys):
            problems.append(DefinitionProblem(name, "fields", f"names field '{missing}', which does not exist"))
    return problems


def data_source_mappings(field_definitions: list[dict[str, Any]]) -> dict[str, Any]:
    """The seed's dataSources view of a definition: field key → its source."""
    return {f["key"]: f["source"] for f in field_definitions if isinstance(f, dict) and f.get("source") and f.get("key")}


DIFF_ATTRIBUTES = (
    "label",
    "type",
    "required",
    "help_text",
    "section",
    "default",
    "options",
    "multiple",
    "source",
    "csv_import",
    "prefill",
    "visible_if",
    "validation",
)


def definition_diff(old: Any, new: Any) -> dict[str, Any]:
    """Fields and rules added, removed and changed between two data model versions."""
    old_fields = {f["key"]: f for f in old.field_definitions if isinstance(f, dict) and "key" in f}
    new_fields = {f["key"]: f for f in new.field_definitions if isinstance(f, dict) and "key" in f}
    changed = []
    for key in [k for k in new_fields if k in old_fields]:
        changes = {
            attr: {"from": old_fields[key].get(attr), "to": new_fields[key].get(attr)}
            for attr in DIFF_ATTRIBUTES
            if old_fields[key].get(attr) != new_fields[key].get(attr)
        }
        if changes:
            changed.append({"key": key, "label": new_fields[key].get("label", key), "changes": changes})
    old_rules = {r.get("key"): r for r in old.validation_rules or [] if isinstance(r, dict)}
    new_rules = {r.get("key"): r for r in new.validation_rules or [] if isinstance(r, dict)}
    return {
        "from_version": old.version,
        "to_version": new.version,
        "fields_added": [{"key": k, "label": new_fields[k].get("label", k), "type": new_fields[k].get("type")} for k in new_fields if k not in old_fields],
        "fields_removed": [{"key": k, "label": old_fields[k].get("label", k), "type": old_fields[k].get("type")} for k in old_fields if k not in new_fields],
        "fields_changed": changed,
        "rules_added": [k for k in new_rules if k not in old_rules],
        "rules_removed": [k for k in old_rules if k not in new_rules],
        "rules_changed": [k for k in new_rules if k in old_rules and new_rules[k] != old_rules[k]],
    }
