"""The "document" field type (a file chosen in a connected tool's picker) and the workbook mappings a field may declare ("imports")."""

from __future__ import annotations

import re
from typing import Any

from common.url_safety import safe_http_url
from common.validators import is_uuid

MAX_REFERENCE = 1000
# "Sheet!B2", "'Deal model'!A1:C4"
SHEET_ADDRESS = re.compile(r"^(?:'(?:[^']|'')+'|[^'!]+)!\$?[A-Za-z]{1,3}\$?\d{1,7}(?::\$?[A-Za-z]{1,3}\$?\d{1,7})?$")
# An Excel table or defined name: a letter, underscore or backslash first, then letters, digits, _ and .
EXCEL_NAME = re.compile(r"^[A-Za-z_\\][A-Za-z0-9_.\\]{0,254}$")
IMPORTABLE_TYPES = frozenset({"text", "long_text", "number", "money", "date", "datetime", "select", "multi_select", "boolean"})


def clean_document(label: str, value: Any, errors: list[str]) -> dict[str, str] | None:
    """{integration_id, id, name, path, url}: the integration and the tool's own reference are required, the link is http(s) only."""
    if not isinstance(value, dict):
        errors.append(f"{label} must be a document chosen in the file picker.")
        return None
    integration_id = str(value.get("integration_id") or "").strip()
    reference = str(value.get("id") or "").strip()
    name = str(value.get("name") or "").strip()
    if not is_uuid(integration_id):
        errors.append(f"{label}: choose the document in a connected tool (integration_id is missing or not an id).")
    if not reference or len(reference) > MAX_REFERENCE:
        errors.append(f"{label}: the document reference (id) is missing or too long.")
    url = str(value.get("url") or "").strip()
    if url and not safe_http_url(url):
        errors.append(f"{label}: '{url[:200]}' is not a web address (https://…).")
    return {"integration_id": integration_id, "id": reference, "name": name[:300] or reference[:300], "path": str(value.get("path") or "")[:500], "url": url}


def mapping_source_problem(source: Any) -> str | None:
    """Why `source` is not "Table.Column", "NamedRange" or "Sheet!A1" (None when it is one of them)."""
    if not isinstance(source, str) or not source.strip():
        return "must be 'Table.Column', a named range or a sheet address such as 'Model!B2'"
    text = source.strip()
    if "!" in text:
        return None if SHEET_ADDRESS.match(text) else f"'{text[:100]}' is not a sheet address such as Model!B2 or 'Deal model'!A1:C4"
    if EXCEL_NAME.match(text):
        return None
    return f"'{text[:100]}' is not a table column (Table.Column), a named range or a sheet address"


def imports_problems(key: str, imports: Any, field_type: Any, field_types: dict[str, Any]) -> list[tuple[str, str]]:
    """A document field's "imports" ({field key: workbook source}) checked against the definition: (attribute, message) pairs."""
    if field_type != "document":
        return [("imports", "only a document field can fill other fields from its workbook")]
    if not isinstance(imports, dict) or not imports:
        return [("imports", "must be an object of field key → 'Table.Column', a named range or 'Sheet!A1'")]
    problems = []
    for target, source in imports.items():
        if target not in field_types:
            problems.append((f"imports.{target}", f"names field '{target}', which does not exist"))
        elif field_types[target] not in IMPORTABLE_TYPES:
            problems.append((f"imports.{target}", f"a {field_types[target]} field cannot be filled from a workbook"))
        problem = mapping_source_problem(source)
        if problem:
            problems.append((f"imports.{target}", problem))
    return problems
