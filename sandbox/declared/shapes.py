"""Answer shapes and query filters a description declares: typed `$name` templates, dotted paths, structured searches."""

from __future__ import annotations

from typing import Any

from sandbox.declared.records import RecordError


def shape(template: Any, values: dict[str, Any]) -> Any:
    """`template` with every string "$name" replaced by values[name] (any type); a key ending in "?" is left out when its
    value is None or holds a None "$name" (Intercom answers `pages.next` only when there is a next page)."""
    if isinstance(template, str):
        if template.startswith("$") and template[1:] in values:
            return values[template[1:]]
        return template.format(**{k: v for k, v in values.items() if isinstance(v, str | int)}) if "{" in template else template
    if isinstance(template, list):
        return [shape(v, values) for v in template]
    if isinstance(template, dict):
        result = {}
        for key, value in template.items():
            optional = key.endswith("?")
            if optional and _holds_none(value, values):
                continue
            result[key.rstrip("?")] = shape(value, values)
        return result
    return template


def _holds_none(template: Any, values: dict[str, Any]) -> bool:
    if isinstance(template, str):
        return template.startswith("$") and values.get(template[1:]) is None
    if isinstance(template, dict):
        return any(_holds_none(v, values) for v in template.values())
    return template is None


def get_path(record: Any, path: str) -> Any:
    """A dotted path into a record; a list on the way is flattened ("contacts.contacts.id" → every contact's id)."""
    values = [record]
    for part in path.split("."):
        found = []
        for value in values:
            value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, list):
                found.extend(value)
            elif value is not None:
                found.append(value)
        values = found
    return values if len(values) != 1 else values[0]


def set_path(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        record = record.setdefault(part, {})
    record[last] = value


OPERATORS = ("=", "!=", "IN", "NIN", "<", "<=", ">", ">=", "~", "!~", "^", "$")


def _compare(current: Any, operator: str, value: Any) -> bool:
    candidates = current if isinstance(current, list) else [current]
    if operator in ("IN", "NIN"):
        wanted = {str(v).lower() for v in (value if isinstance(value, list) else [value])}
        hit = any(str(c).lower() in wanted for c in candidates)
        return hit if operator == "IN" else not hit
    if operator in ("<", "<=", ">", ">="):
        try:
            number = float(value)
            numbers = [float(c) for c in candidates if c is not None]
        except (TypeError, ValueError):
            raise RecordError(400, f"{value!r} cannot be compared with {operator}") from None
        test = {"<": number.__gt__, "<=": number.__ge__, ">": number.__lt__, ">=": number.__le__}[operator]
        return any(test(n) for n in numbers)
    texts, needle = [str(c).lower() for c in candidates if c is not None], str(value).lower() if value is not None else None
    if operator == "=":
        return needle in texts if needle is not None else not texts
    if operator == "!=":
        return needle not in texts
    if operator == "~":
        return any(needle in t for t in texts)
    if operator == "!~":
        return not any(needle in t for t in texts)
    if operator == "^":
        return any(t.startswith(needle) for t in texts)
    return any(t.endswith(needle) for t in texts)


def search_matches(record: dict[str, Any], query: Any, fields: dict[str, str], depth: int = 0) -> bool:
    """Whether a record passes a structured query: {field, operator, value} or {operator: AND|OR, value: [queries]}."""
    if not isinstance(query, dict) or depth > 3:
        raise RecordError(400, "query: expected {field, operator, value} or {operator: AND|OR, value: [...]}, nested at most 3 deep")
    operator = query.get("operator")
    if operator in ("AND", "OR"):
        members = query.get("value")
        if not isinstance(members, list) or not members:
            raise RecordError(400, f"query: {operator} needs a list of filters")
        results = (search_matches(record, member, fields, depth + 1) for member in members)
        return all(results) if operator == "AND" else any(results)
    field = query.get("field")
    if field not in fields:
        raise RecordError(400, f"{field} is not a searchable field")
    if operator not in OPERATORS:
        raise RecordError(400, f"{operator!r} is not a valid operator")
    return _compare(get_path(record, fields[field]), operator, query.get("value"))


def search_rows(rows: list[dict[str, Any]], body: dict[str, Any], rule: dict[str, Any]) -> tuple[list[dict[str, Any]], Any, Any]:
    """The rows a POSTed search selects, in `order_by` order, and the body's page size and cursor (pagination)."""
    if not isinstance(body, dict) or "query" not in body:
        raise RecordError(400, "query is required")
    fields = dict(rule.get("fields") or {})
    found = [r for r in rows if search_matches(r, body["query"], fields)]
    order = rule.get("order_by")
    if order:
        found.sort(key=lambda r: (get_path(r, order) is None, get_path(r, order) or 0))
    pagination = body.get("pagination") if isinstance(body.get("pagination"), dict) else {}
    return found, pagination.get("per_page"), pagination.get("starting_after")


def toggle_reference(record: dict[str, Any], rule: dict[str, Any], target: dict[str, Any], id_field: str, *, remove: bool) -> list[str]:
    """Add `target` (as rule["item"]) to the list at rule["into"], or remove it; the changed top-level fields ([] if none)."""
    wanted = str(target.get(id_field))
    current = get_path(record, rule["into"])
    current = current if isinstance(current, list) else [current] if isinstance(current, dict) else []
    kept = [i for i in current if not (isinstance(i, dict) and str(i.get(id_field)) == wanted)]
    if remove == (len(kept) == len(current)):
        return []  # already there (attach) or already gone (detach)
    updated = kept if remove else [*current, shape(rule.get("item") or {"id": "$id"}, {k: v for k, v in target.items() if isinstance(v, str)})]
    set_path(record, rule["into"], updated)
    for counter in rule.get("counts") or ():  # e.g. tags.total_count
        set_path(record, counter, len(updated))
    return [rule["into"].split(".")[0]]
