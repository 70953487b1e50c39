"""The HTML side of the dynamic form: read a plain POST into values, and prepare each field for the template."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.http import QueryDict

from scenarios.spec import PERSON_TYPES

SOURCES_INPUT = "__value_sources"


def _lines(text: str) -> list[list[str]]:
    rows = []
    for row in csv.reader(io.StringIO(text or "")):
        cells = [c.strip() for c in row]
        if any(cells):
            rows.append(cells)
    return rows


def values_from_post(fields: list[dict[str, Any]], data: QueryDict | dict[str, Any]) -> dict[str, Any]:
    """Turn the plain form's inputs into the same JSON values the API takes (so page and API share one validation)."""
    get = data.get
    getlist = data.getlist if hasattr(data, "getlist") else (lambda k: data.get(k) if isinstance(data.get(k), list) else [data.get(k)] if data.get(k) else [])
    values: dict[str, Any] = {}
    for field in fields:
        key, kind = field["key"], field["type"]
        if kind == "money":
            amount = (get(f"{key}__amount") or "").strip()
            if amount:
                values[key] = {"amount": amount, "currency": (get(f"{key}__currency") or "USD").strip().upper() or "USD"}
        elif kind == "document_link":
            url = (get(f"{key}__url") or "").strip()
            if url:
                values[key] = {"url": url, "title": (get(f"{key}__title") or "").strip()}
        elif kind == "document":
            picked = {part: (get(f"{key}__{part}") or "").strip() for part in ("integration_id", "id", "name", "path", "url")}
            if picked["id"]:
                values[key] = picked
        elif kind == "multi_select":
            chosen = [v for v in getlist(key) if v]
            if chosen:
                values[key] = chosen
        elif kind == "boolean":
            if get(f"{key}__present") or key in data:
                values[key] = get(key) in ("on", "true", "1", "yes")
        elif kind == "person":
            email = (get(key) or "").strip()
            if email:
                values[key] = {"email": email, "person_id": get(f"{key}__person_id") or None}
        elif kind == "stakeholder_list":
            entries = []
            for cells in _lines(get(key) or ""):
                name, email, role = (cells + ["", "", ""])[:3]
                if "@" in name and not email:
                    name, email = "", name
                entries.append({"name": name, "email": email, "role": role or "member"})
            if entries:
                values[key] = entries
        elif kind == "channel":
            channels = []
            for cells in _lines(get(key) or ""):
                name, external_id, integration_id = (cells + ["", "", ""])[:3]
                channels.append({"name": name, "external_id": external_id, "integration_id": integration_id})
            if channels:
                values[key] = channels if field.get("multiple") else channels[0]
        else:
            raw = get(key)
            if raw not in (None, ""):
                values[key] = raw.strip() if isinstance(raw, str) else raw
    return values


def claimed_sources_from_post(data: QueryDict | dict[str, Any]) -> dict[str, Any]:
    raw = data.get(SOURCES_INPUT) or ""
    try:
        claimed = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return claimed if isinstance(claimed, dict) else {}


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


def prefill_claims(schema: dict[str, Any]) -> dict[str, Any]:
    """Provenance for values pre-filled from the last scenario, so saving keeps where they came from."""
    claims: dict[str, Any] = {}
    for field in schema["fields"]:
        origin = field.get("value_origin") or {}
        if origin.get("kind") == "last_scenario" and field.get("value") not in (None, "", []):
            items = field["value"] if isinstance(field["value"], list) else [field["value"]]
            matches = [str(i.get("email") or i.get("external_id") or i.get("name") or "") if isinstance(i, dict) else str(i) for i in items]
            claims[field["key"]] = {
                "origin": "prefill",
                "items": [{"match": m.lower(), "source": "prefill", "scenario_id": origin["scenario_id"]} for m in matches if m],
            }
        elif origin.get("kind") == "saved" and origin.get("items"):
            claims[field["key"]] = {"origin": origin.get("origin", "manual"), "items": origin["items"]}
    return claims


def widgets(schema: dict[str, Any], values: dict[str, Any], errors: dict[str, list[str]], visible: list[str] | None) -> list[dict[str, Any]]:
    """Per-field template context: the value in the inputs' own format, errors, and whether the field starts hidden."""
    out = []
    for field in schema["fields"]:
        key, kind = field["key"], field["type"]
        value = values.get(key)
        widget: dict[str, Any] = {**field, "errors": errors.get(key, []), "text": "", "amount": "", "currency": "USD", "url": "", "title": ""}
        widget["is_hidden"] = visible is not None and key not in visible
        if kind == "money" and isinstance(value, dict):
            widget["amount"], widget["currency"] = value.get("amount", ""), value.get("currency") or "USD"
        elif kind == "document_link" and isinstance(value, dict):
            widget["url"], widget["title"] = value.get("url", ""), value.get("title", "")
        elif kind == "document":
            widget["document"] = value if isinstance(value, dict) else {}
        elif kind == "stakeholder_list" and isinstance(value, list):
            widget["text"] = "\n".join(
                _csv_line([str(v.get("name") or ""), str(v.get("email") or ""), str(v.get("role") or "member")]) for v in value if isinstance(v, dict)
            )
            widget["entries"] = [v for v in value if isinstance(v, dict)]
        elif kind == "channel":
            items = value if isinstance(value, list) else ([value] if value else [])
            widget["text"] = "\n".join(
                _csv_line([str(v.get("name") or ""), str(v.get("external_id") or ""), str(v.get("integration_id") or "")]) for v in items if isinstance(v, dict)
            )
        elif kind == "person" and isinstance(value, dict):
            widget["text"] = value.get("email") or ""
            widget["person_id"] = value.get("person_id") or ""
            widget["person_name"] = value.get("name") or ""
        elif kind == "multi_select":
            chosen = {str(v) for v in (value or [])} if isinstance(value, list) else set()
            widget["selected"] = chosen
            known = {o["value"] for o in field["options"]}
            widget["extra_options"] = [{"value": v, "label": v} for v in sorted(chosen - known)]
        elif kind == "boolean":
            widget["checked"] = value is True or value in ("on", "true")
        elif kind == "datetime" and isinstance(value, str):
            widget["text"] = value[:16]
        else:
            widget["text"] = "" if value is None else str(value)
        widget["is_person"] = kind in PERSON_TYPES
        out.append(widget)
    return out


def sections(widget_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for widget in widget_list:
        grouped.setdefault(widget["section"], []).append(widget)
    return [{"name": name, "fields": items, "all_conditional": all(w.get("visible_if") for w in items)} for name, items in grouped.items()]
