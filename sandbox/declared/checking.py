"""Every request and answer of a declared vendor checked against its OpenAPI document, with sandbox/spec_check.py's Spec."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft4Validator

from sandbox.declared.description import Description
from sandbox.spec_check import SPECS_DIR, Spec, VendorSpec
from sandbox.state import STORE


def _nullable_all_of(node: Any) -> Any:
    """OpenAPI 3.0 writes a nullable reference as allOf [$ref, {nullable: true}]: JSON Schema needs anyOf [null, allOf]."""
    if isinstance(node, dict):
        members = node.get("allOf")
        if isinstance(members, list) and any(isinstance(m, dict) and m.get("nullable") is True for m in members):
            kept = [{k: v for k, v in m.items() if k != "nullable"} if isinstance(m, dict) else m for m in members]
            node.pop("allOf")
            node["anyOf"] = [{"type": "null"}, {"allOf": kept}]
        for value in node.values():
            _nullable_all_of(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_all_of(value)
    return node


_SPECS: dict[str, Spec] = {}


def spec_for(description: Description) -> Spec:
    """The vendor's parsed spec, once per process (Spec builds its schema registry when made)."""
    if description.vendor in _SPECS:
        return _SPECS[description.vendor]
    document = json.loads((SPECS_DIR / description.spec_file).read_text(encoding="utf-8"))
    prefix = "^" + re.escape(f"/{description.vendor}{description.base_path}")
    style = "swagger2" if "swagger" in document else "openapi3"  # DocuSign's and Slack's descriptions are Swagger 2.0
    definition = VendorSpec(description.spec_file, prefix, style=style, ignore=r"/_sandbox(/|$)")
    for erratum in description.errata:
        _replace_at(document, erratum["pointer"], erratum["value"])
    _SPECS[description.vendor] = Spec(description.vendor, definition, _nullable_all_of(document))
    return _SPECS[description.vendor]


def _replace_at(document: Any, pointer: str, value: Any) -> None:
    """Put `value` at a JSON pointer of the document (the description's errata); a pointer that is not there is an error."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node = document
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    elif parts[-1] in node:
        node[parts[-1]] = value
    else:
        raise KeyError(f"erratum pointer {pointer} is not in the document")


def request_problems(description: Description, spec_path: str, method: str, *, query: Mapping[str, str], headers: Mapping[str, str], body: Any) -> list[str]:
    """What the vendor's spec says is wrong with a request (required parameters, simple query types, the JSON body)."""
    spec = spec_for(description)
    operation, _exists = spec.find(method, spec_path)
    if operation is None:
        return [f"{method} {spec_path} is not an operation in the spec"]
    problems = spec.check_request(operation, query=query, headers=headers, form={}, body=body)
    for parameter in (*operation.path_parameters, *(operation.operation.get("parameters") or ())):
        parameter = spec._resolve(parameter)
        name = parameter.get("name")
        schema = parameter.get("schema") or ({"type": parameter["type"]} if parameter.get("type") else {})  # Swagger 2.0 types it in place
        if parameter.get("in") != "query" or name not in query or schema.get("type") not in ("integer", "boolean"):
            continue
        value: Any = query[name]
        try:
            value = int(value) if schema["type"] == "integer" else {"true": True, "false": False}[value]
        except (KeyError, ValueError):
            problems.append(f"query parameter {name!r}: {query[name]!r} is not a {schema['type']}")
            continue
        problems += [f"query parameter {name!r}: {e.message}" for e in Draft4Validator(schema).iter_errors(value)]
    return list(dict.fromkeys(problems))  # allOf branches repeat the same complaint


def answer_problems(description: Description, spec_path: str, method: str, *, status: int, answer: Any) -> list[str]:
    spec = spec_for(description)
    operation, _exists = spec.find(method, spec_path)
    if operation is None:
        return []
    return list(dict.fromkeys(spec.check_response(operation, status=status, content_type="application/json", body=answer)))


def record_mismatch(vendor: str, method: str, path: str, status: int, problems: list[str]) -> None:
    """Kept where the connector tests read them (/_control/spec-mismatches): any one fails the test that caused it."""
    with STORE.lock:
        STORE.spec_mismatches.append({"vendor": vendor, "method": method, "path": path, "status": status, "problems": problems})
