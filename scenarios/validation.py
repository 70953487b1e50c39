"""Validate scenario values against a definition: visibility (hidden fields are dropped), types, ranges, cross-field rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from common.regex import UnsupportedPattern, pattern_fullmatch
from common.url_safety import safe_http_url
from common.validators import is_email_address
from scenarios.documents import clean_document
from scenarios.logic import evaluate, referenced_fields, truthy
from scenarios.spec import STAKEHOLDER_ROLES, field_options

MAX_URL_LENGTH = 2048
ROLE_VALUES = {value for value, _ in STAKEHOLDER_ROLES}
NON_FIELD = "non_field_errors"


@dataclass
class ValidationResult:
    values: dict[str, Any]  # cleaned values of visible fields only
    errors: dict[str, list[str]] = field(default_factory=dict)
    hidden: list[str] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not self.errors


def is_empty(value: Any) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return True
    if isinstance(value, dict):
        return all(is_empty(v) for k, v in value.items() if k not in ("currency", "integration_id", "source"))
    return False


def visible_field_keys(field_definitions: list[dict[str, Any]], values: dict[str, Any]) -> list[str]:
    """Keys of the fields whose `visible_if` holds; a condition only sees the values of fields that are themselves visible."""
    by_key = {f["key"]: f for f in field_definitions}
    memo: dict[str, bool] = {}

    def visible(key: str, trail: frozenset[str] = frozenset()) -> bool:
        if key in memo:
            return memo[key]
        condition = by_key[key].get("visible_if")
        if not condition:
            memo[key] = True
            return True
        if key in trail:  # a cycle cannot be saved, but never loop on bad data
            return False
        refs = [r for r in referenced_fields(condition) if r in by_key]
        data = {r: values.get(r) for r in refs if visible(r, trail | {key})}
        memo[key] = truthy(evaluate(condition, data))
        return memo[key]

    return [f["key"] for f in field_definitions if visible(f["key"])]


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return int(number) if number == number.to_integral_value() else float(number)


def _clean(field_def: dict[str, Any], value: Any, errors: list[str]) -> Any:
    """Coerce one value to its type's shape, appending person-readable problems."""
    label = field_def.get("label") or field_def["key"]
    kind = field_def["type"]
    rules = field_def.get("validation") or {}
    if kind in ("text", "long_text"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            errors.append(f"{label} must be text.")
            return None
        text = str(value).strip()
        limit = rules.get("max_length", 300 if kind == "text" else 20000)
        if len(text) > limit:
            errors.append(f"{label} must be at most {limit} characters (it has {len(text)}).")
        elif rules.get("regex") and not _format_matches(str(rules["regex"]), text):
            errors.append(rules.get("regex_message") or f"{label} does not have the expected format.")
        return text
    if kind in ("number", "money"):
        currency = "USD"
        raw = value
        if kind == "money":
            if isinstance(value, dict):
                raw, currency = value.get("amount"), str(value.get("currency") or "USD").upper()
            if not (len(currency) == 3 and currency.isascii() and currency.isalpha() and currency.isupper()):
                errors.append(f"{label}: '{currency}' is not a currency code such as USD or EUR.")
        number = _number(raw)
        if number is None:
            errors.append(f"{label} must be a number." if kind == "number" else f"{label} must be an amount, e.g. 12500000.")
            return None
        if "min" in rules and number < rules["min"]:
            errors.append(f"{label} must be at least {rules['min']:,}.")
        if "max" in rules and number > rules["max"]:
            errors.append(f"{label} must be at most {rules['max']:,}.")
        return {"amount": number, "currency": currency} if kind == "money" else number
    if kind == "date":
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            return _bad(errors, f"{label} must be a date (YYYY-MM-DD).")
    if kind == "datetime":
        try:
            return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00")).isoformat()
        except ValueError:
            return _bad(errors, f"{label} must be a date and time (YYYY-MM-DDTHH:MM).")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "on", "1", "yes"):
            return True
        if str(value).lower() in ("false", "off", "0", "no", ""):
            return False
        return _bad(errors, f"{label} must be yes or no.")
    if kind == "select":
        if isinstance(value, (dict, list)):
            return _bad(errors, f"{label} must be one choice.")
        choice = str(value)
        options = field_options(field_def)
        if options and choice not in {o["value"] for o in options}:
            errors.append(f"'{choice}' is not one of the choices for {label}.")
        return choice
    if kind == "multi_select":
        items = value if isinstance(value, list) else [value]
        choices = [str(v) for v in items if v not in (None, "")]
        allowed = {o["value"] for o in field_options(field_def)}
        for bad in [c for c in choices if allowed and c not in allowed]:
            errors.append(f"'{bad}' is not one of the choices for {label}.")
        return list(dict.fromkeys(choices))
    if kind == "person":
        return _clean_person(label, value, errors)
    if kind == "stakeholder_list":
        return _clean_stakeholders(label, value, errors, rules)
    if kind == "channel":
        items = value if isinstance(value, list) else [value]
        channels = []
        for item in items:
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict) or not str(item.get("name") or "").strip():
                errors.append(f"{label}: each channel needs a name.")
                continue
            name = str(item["name"]).strip().lstrip("#")
            channels.append({"external_id": str(item.get("external_id") or ""), "name": name, "integration_id": str(item.get("integration_id") or "")})
        if field_def.get("multiple"):
            return channels
        if len(channels) > 1:
            errors.append(f"{label} takes one channel.")
        return channels[0] if channels else None
    if kind == "document_link":
        if isinstance(value, str):
            value = {"url": value, "title": ""}
        if not isinstance(value, dict):
            return _bad(errors, f"{label} must be a link.")
        url = str(value.get("url") or "").strip()
        if len(url) > MAX_URL_LENGTH or not safe_http_url(url) or any(char.isspace() for char in url):
            errors.append(f"{label}: '{url[:200]}' is not a web address (https://…).")
        return {"url": url, "title": str(value.get("title") or "").strip()}
    if kind == "document":
        return clean_document(label, value, errors)
    return value


def _format_matches(pattern: str, text: str) -> bool:
    """The definition's format check, on RE2 (linear time); a pattern RE2 refuses never matches (the definition says why)."""
    try:
        return pattern_fullmatch(pattern, text)
    except UnsupportedPattern:
        return False


def _bad(errors: list[str], message: str) -> None:
    errors.append(message)
    return None


def _clean_person(label: str, value: Any, errors: list[str], *, context: str = "") -> dict[str, Any] | None:
    if isinstance(value, str):
        value = {"email": value}
    if not isinstance(value, dict):
        return _bad(errors, f"{label}{context} must be a person (name and email).")
    email = str(value.get("email") or "").strip().lower()
    name = str(value.get("name") or "").strip()
    if email and not is_email_address(email):
        errors.append(f"{label}{context}: '{email[:200]}' is not an email address.")
    if not email and not value.get("person_id"):
        errors.append(f"{label}{context}: choose a person from the directory or give an email address.")
    return {"person_id": str(value["person_id"]) if value.get("person_id") else None, "name": name or email, "email": email}


def _clean_stakeholders(label: str, value: Any, errors: list[str], rules: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        errors.append(f"{label} must be a list of people.")
        return []
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, item in enumerate(value, start=1):
        person = _clean_person(label, item, errors, context=f" (entry {position})")
        if person is None:
            continue
        role = str((item.get("role") if isinstance(item, dict) else "") or "member").strip().lower()
        if role not in ROLE_VALUES:
            errors.append(f"{label} (entry {position}): '{role}' is not a stakeholder role ({', '.join(sorted(ROLE_VALUES))}).")
        identity = person["email"] or person["person_id"]
        if identity in seen:
            continue  # the same person imported twice is one stakeholder
        seen.add(identity)
        department = str(item.get("department") or "") if isinstance(item, dict) else ""
        source = str(item.get("source") or "manual") if isinstance(item, dict) else "manual"
        cleaned.append({**person, "role": role, "department": department, "source": source})
    if "min_items" in rules and cleaned and len(cleaned) < rules["min_items"]:
        errors.append(f"{label} needs at least {rules['min_items']} people.")
    if "max_items" in rules and len(cleaned) > rules["max_items"]:
        errors.append(f"{label} takes at most {rules['max_items']} people.")
    return cleaned


def validate_values(field_definitions: list[dict[str, Any]], validation_rules: list[dict[str, Any]], values: dict[str, Any]) -> ValidationResult:
    """Clean and check values; hidden fields are neither validated nor kept, unknown keys are dropped."""
    values = values if isinstance(values, dict) else {}
    visible = visible_field_keys(field_definitions, values)
    result = ValidationResult(values={}, hidden=[f["key"] for f in field_definitions if f["key"] not in visible])
    for field_def in field_definitions:
        key = field_def["key"]
        if key not in visible:
            continue
        value = values.get(key)
        if is_empty(value):
            if field_def.get("required"):
                result.errors[key] = [f"{field_def.get('label') or key} is required."]
            continue
        problems: list[str] = []
        cleaned = _clean(field_def, value, problems)
        if problems:
            result.errors[key] = problems
        if not is_empty(cleaned):
            result.values[key] = cleaned
    for rule in validation_rules or []:
        fields = [f for f in rule.get("fields") or [] if f in visible]
        if rule.get("fields") and not fields:
            continue  # every field the rule is about is hidden: nothing to say
        if any(f in result.errors for f in fields):
            continue  # fix the field itself first; a rule about a broken value would only add noise
        data = dict(result.values)
        if rule.get("when") and not truthy(evaluate(rule["when"], data)):
            continue
        if not truthy(evaluate(rule["rule"], data)):
            target = fields[0] if fields else NON_FIELD
            result.errors.setdefault(target, []).append(rule["message"])
    return result
