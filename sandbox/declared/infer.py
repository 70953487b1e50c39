"""A first state description inferred from an OpenAPI document alone: collections, routes, ids, envelopes, paging, errors.

What a document cannot say (seed records, vendor rules such as a required filter) is left for a person to add:
python -m sandbox.declared.infer <vendor> <cut spec in sandbox/specs> [base path] > sandbox/declared/<vendor>.yaml
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from sandbox.spec_check import SPECS_DIR

ID_FIELDS = ("gid", "id", "uuid", "sid", "key")
CURSOR_PARAMS = ("cursor", "starting_after", "page_token", "pageToken", "next")
NEXT_FIELDS = ("next_page", "next_cursor", "nextPageToken", "next")
METHODS = ("get", "post", "put", "patch", "delete")


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


class _Schemas:
    """Follows $refs and allOf in one document to the properties a schema has."""

    def __init__(self, document: Mapping[str, Any]):
        self.document = document

    def resolve(self, node: Any, depth: int = 0) -> dict[str, Any]:
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and depth < 20:
            target: Any = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            node, depth = target, depth + 1
        return dict(node) if isinstance(node, Mapping) else {}

    def properties(self, node: Any, depth: int = 0) -> dict[str, Any]:
        schema = self.resolve(node)
        found = {k: self.resolve(v) for k, v in (schema.get("properties") or {}).items()}
        for member in schema.get("allOf") or ():
            if depth < 10:
                found.update(self.properties(member, depth + 1))
        return found

    def json_schema(self, holder: Mapping[str, Any] | None) -> dict[str, Any]:
        content = self.resolve(holder or {}).get("content") or {}
        media = next((m for m in content if m.startswith("application/json")), None)
        return (content.get(media) or {}).get("schema") or {} if media else {}


def infer(vendor: str, document: Mapping[str, Any], *, spec_file: str, base_path: str = "") -> dict[str, Any]:
    """The description the document implies; every choice is one a person can read and change in the YAML."""
    schemas = _Schemas(document)
    routes: list[dict[str, Any]] = []
    collections: dict[str, dict[str, Any]] = {}
    envelope: str = ""
    paging: dict[str, Any] = {"style": "none"}
    fields_param = ""
    errors: dict[str, Any] = {}
    for template, item in (document.get("paths") or {}).items():
        segments = [s for s in template.split("/") if s]
        if not segments:
            continue
        is_item = segments[-1].startswith("{")
        literal = segments[-2] if is_item and len(segments) > 1 else segments[-1]
        if literal.startswith("{") or not re.fullmatch(r"[a-z_]+", literal):
            continue  # actions such as /tasks/{gid}/addProject are the vendor's, not a collection's
        name = literal
        parents = [s[1:-1] for s in segments[: -2 if is_item else -1] if s.startswith("{")]
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, Mapping):
                continue
            op = (
                {"get": "read", "put": "update", "patch": "update", "delete": "delete"}.get(method, "")
                if is_item
                else {"get": "list", "post": "create"}.get(method, "")
            )
            if not op:
                continue
            collection = collections.setdefault(name, {"resource_type": singular(name)})
            route: dict[str, Any] = {"method": method.upper(), "path": template, "op": op, "collection": name}
            answer = schemas.properties(schemas.json_schema((operation.get("responses") or {}).get("201") or (operation.get("responses") or {}).get("200")))
            wrapped = "data" in answer and len(set(answer) - {"data", "next_page", "errors"}) == 0
            envelope = envelope or ("data" if wrapped else "")
            record = answer.get("data", {}) if wrapped else {"properties": answer}
            if op == "list":
                params = [schemas.resolve(p) for p in (*item.get("parameters", ()), *(operation.get("parameters") or ()))]
                names = {p.get("name") for p in params if p.get("in") == "query"}
                if {"offset", "limit"} <= names and paging["style"] == "none":
                    paging = {"style": "offset_token", "limit_param": "limit", "offset_param": "offset", "default_limit": 20, "max_limit": 100}
                elif names & set(CURSOR_PARAMS) and paging["style"] == "none":
                    paging = {"style": "cursor", "cursor_param": sorted(names & set(CURSOR_PARAMS))[0], "limit_param": "limit"}
                if paging["style"] != "none":
                    paging.setdefault("next_field", next((f for f in NEXT_FIELDS if f in answer), "next"))
                fields_param = fields_param or next((n for n in sorted(names) if n.endswith("fields")), "")
                record = schemas.resolve(record).get("items") or {}
                compact = list(schemas.properties(record))
                if compact:
                    collection["compact"] = compact if len(compact) <= 8 else [f for f in compact if f in (*ID_FIELDS, "name")]
                if parents:
                    route["bind"] = {parents[-1]: {"field": "", "op": "ref", "parent": True}}
            properties = schemas.properties(record)
            collection.setdefault("id_field", next((f for f in ID_FIELDS if f in properties), ""))
            collection.setdefault("_fields", {}).update({k: v for k, v in properties.items() if k not in collection["_fields"]})
            if op == "create":
                body = schemas.properties(schemas.json_schema(operation.get("requestBody")))
                collection.setdefault("_fields", {}).update(schemas.properties(body["data"]) if set(body) == {"data"} else body)
            errors = errors or _error_template(schemas, operation)
            routes.append(route)
    _refs(collections)
    for route in routes:
        for param, rule in (route.get("bind") or {}).items():
            parent = param.removesuffix("_gid").removesuffix("_id")
            record_fields = set(collections[route["collection"]].get("_fields") or {})
            rule.pop("parent")
            rule.update(field=f"{parent}s", op="has_ref") if f"{parent}s" in record_fields else rule.update(field=parent)
    id_field = next((c.pop("id_field") for c in collections.values() if c.get("id_field")), "id")
    for collection in collections.values():
        collection.pop("id_field", None)
        collection.pop("_fields", None)
    return {
        "vendor": vendor,
        "spec": {"file": spec_file, "base_path": base_path} if base_path else {"file": spec_file},
        "auth": {"style": "bearer", "tokens": [{"token": f"sandbox-{vendor}-token", "user": "1"}]},
        "envelope": {"request": envelope, "answer": envelope} if envelope else {},
        "errors": errors or {"template": {"error": {"status": "{status}", "message": "{message}"}}},
        "ids": {"format": "digits", "field": id_field, "start": 1000000},
        "paging": paging,
        "fields": {"param": fields_param} if fields_param else {},
        "collections": collections,
        "routes": routes,
    }


def _refs(collections: dict[str, dict[str, Any]]) -> None:
    """A create body field named like another collection (workspace, projects[]) is a reference to it."""
    for collection in collections.values():
        refs: dict[str, Any] = {}
        for field_name, schema in (collection.get("_fields") or {}).items():
            if field_name in collections and schema.get("type") == "array":
                refs[field_name] = [field_name]
            elif f"{field_name}s" in collections and schema.get("type") in ("string", None):
                refs[field_name] = f"{field_name}s"
        if refs:
            collection["refs"] = refs


def _error_template(schemas: _Schemas, operation: Mapping[str, Any]) -> dict[str, Any]:
    for status, response in (operation.get("responses") or {}).items():
        if not str(status).startswith("4"):
            continue
        properties = schemas.properties(schemas.json_schema(response))
        if "errors" in properties:
            return {"template": {"errors": [{"message": "{message}"}]}}
        if "error" in properties:
            return {"template": {"error": {"message": "{message}"}}}
        if "message" in properties:
            return {"template": {"message": "{message}"}}
    return {}


def main(vendor: str, spec_file: str, base_path: str = "") -> None:
    document = json.loads((SPECS_DIR / spec_file).read_text(encoding="utf-8"))
    yaml.safe_dump(infer(vendor, document, spec_file=spec_file, base_path=base_path), sys.stdout, sort_keys=False, width=140)


if __name__ == "__main__":
    main(*sys.argv[1:])
