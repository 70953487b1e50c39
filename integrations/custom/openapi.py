"""Read a vendor's OpenAPI document safely and sum it up for the builder: servers, auth schemes, operations and record shapes."""

from __future__ import annotations

import json
from typing import Any

import yaml

from common.errors import ApplicationError

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # the largest published vendor documents we ship against are ~3 MB
MAX_OPERATIONS = 1500
MAX_FIELDS = 80
METHODS = ("get", "post", "put", "patch", "delete")
_REF_DEPTH = 12


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, code="invalid_openapi", fields={"openapi": [message]})


def _load_yaml(text: str) -> Any:
    """safe_load through libyaml, refusing anchors/aliases: an alias bomb expands to gigabytes once serialised."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            raise _refused("YAML anchors and aliases are not accepted in an uploaded document.")
    return yaml.load(text, Loader=loader)  # noqa: S506 - CSafeLoader/SafeLoader: plain data only


def openapi_parse(raw: bytes) -> dict[str, Any]:
    """Parse an uploaded OpenAPI 3 / Swagger 2 document (JSON or YAML), size-capped; ApplicationError when it is not one."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _refused(f"The document is {len(raw) // 1024} KB; the limit is {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB.")
    if not raw.strip():
        raise _refused("The document is empty.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refused("The document is not UTF-8 text.") from exc
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else _load_yaml(text)
    except (ValueError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise _refused(f"The document is neither valid JSON nor valid YAML{line}.") from exc
    except RecursionError as exc:
        raise _refused("The document is nested too deeply.") from exc
    if not isinstance(doc, dict) or not (str(doc.get("openapi", "")).startswith("3") or str(doc.get("swagger", "")) == "2.0"):
        raise _refused("This is not an OpenAPI 3 or Swagger 2.0 document (no 'openapi: 3.x' or 'swagger: \"2.0\"' at the top).")
    if not isinstance(doc.get("paths"), dict) or not doc["paths"]:
        raise _refused("The document lists no paths.")
    return doc


class _Resolver:
    """Local $ref resolution (#/...), bounded in depth so cyclic schemas end."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def get(self, node: Any, depth: int = 0) -> Any:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < _REF_DEPTH:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                return {}
            target: Any = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            node = target if target is not None else {}
            depth += 1
        return node if isinstance(node, dict) else {}

    def properties(self, schema: Any, depth: int = 0) -> dict[str, Any]:
        """A schema's properties, allOf parts merged."""
        schema = self.get(schema)
        found: dict[str, Any] = {}
        if depth < _REF_DEPTH:
            for part in schema.get("allOf") or []:
                found.update(self.properties(part, depth + 1))
        props = schema.get("properties")
        if isinstance(props, dict):
            found.update(props)
        return found

    def kind(self, schema: Any) -> str:
        schema = self.get(schema)
        if schema.get("type") == "array" or "items" in schema:
            return "array"
        if schema.get("properties") or schema.get("allOf"):
            return "object"
        return str(schema.get("type") or "string")


def _servers(doc: dict[str, Any]) -> list[str]:
    if doc.get("swagger"):
        host = doc.get("host")
        if not isinstance(host, str) or not host:
            return []
        scheme = "https" if "https" in (doc.get("schemes") or ["https"]) else "http"
        return [f"{scheme}://{host}{doc.get('basePath') or ''}".rstrip("/")]
    urls = []
    for server in doc.get("servers") or []:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        url = server["url"]
        for name, variable in (server.get("variables") or {}).items():
            if isinstance(variable, dict):
                url = url.replace("{" + str(name) + "}", str(variable.get("default", "")))
        urls.append(url.rstrip("/"))
    return urls[:10]


def _auth_schemes(doc: dict[str, Any]) -> list[dict[str, str]]:
    schemes = (doc.get("components") or {}).get("securitySchemes") or doc.get("securityDefinitions") or {}
    found = []
    for name, scheme in schemes.items() if isinstance(schemes, dict) else []:
        if not isinstance(scheme, dict):
            continue
        kind, http_scheme = str(scheme.get("type", "")), str(scheme.get("scheme", "")).lower()
        if kind == "http" and http_scheme == "bearer":
            found.append({"name": str(name), "kind": "bearer"})
        elif (kind == "http" and http_scheme == "basic") or kind == "basic":
            found.append({"name": str(name), "kind": "basic"})
        elif kind == "apiKey" and scheme.get("in") in ("header", "query"):
            found.append({"name": str(name), "kind": f"api_key_{scheme['in']}", "param": str(scheme.get("name", ""))})
        elif kind == "oauth2":
            found.append({"name": str(name), "kind": "oauth2"})
    return found


def _fields(resolver: _Resolver, schema: Any) -> list[dict[str, str]]:
    return [{"name": str(name), "type": resolver.kind(prop)} for name, prop in list(resolver.properties(schema).items())[:MAX_FIELDS]]


def _records(resolver: _Resolver, schema: Any, *, listing: bool) -> tuple[str, list[dict[str, str]]]:
    """Where the records sit in a response (a JSONPath) and their fields: a bare array, or the (first) array property of a listing."""
    schema = resolver.get(schema)
    if resolver.kind(schema) == "array":
        return "$[*]", _fields(resolver, schema.get("items"))
    props = resolver.properties(schema)
    arrays = [name for name, prop in props.items() if listing and resolver.kind(prop) == "array"]
    for name in sorted(arrays, key=lambda n: n not in ("data", "items", "results", "records", "values")):
        return f"$.{name}[*]", _fields(resolver, resolver.get(props[name]).get("items"))
    if set(props) == {"data"} or "data" in props and resolver.kind(props["data"]) == "object":
        return "$.data", _fields(resolver, props["data"])
    return "$", _fields(resolver, schema)


def _response_schema(resolver: _Resolver, operation: dict[str, Any]) -> Any:
    responses = operation.get("responses") or {}
    for code in ("200", "201", 200, 201, "default"):
        response = resolver.get(responses.get(code))
        if not response:
            continue
        if "schema" in response:  # Swagger 2
            return response["schema"]
        content = response.get("content") or {}
        for media, body in content.items():
            if "json" in str(media) and isinstance(body, dict):
                return body.get("schema")
    return None


def _body_fields(resolver: _Resolver, operation: dict[str, Any], parameters: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """The JSON body's fields, unwrapped from a lone {"data": {...}} envelope (then the envelope is returned too)."""
    schema: Any = None
    body = resolver.get(operation.get("requestBody"))
    for media, content in (body.get("content") or {}).items():
        if "json" in str(media) and isinstance(content, dict):
            schema = content.get("schema")
            break
    for parameter in parameters:
        if parameter.get("in") == "body":
            schema = parameter.get("schema")
    if schema is None:
        return "", []
    props = resolver.properties(schema)
    envelope = ""
    if list(props) == ["data"] and resolver.kind(props["data"]) == "object":
        envelope, schema = "data", props["data"]
    required = _required(resolver, schema)
    return envelope, [{**field, "required": field["name"] in required} for field in _fields(resolver, schema)]


def _required(resolver: _Resolver, schema: Any, depth: int = 0) -> set[str]:
    schema = resolver.get(schema)
    found = {str(name) for name in schema.get("required") or [] if isinstance(name, str)}
    if depth < _REF_DEPTH:
        for part in schema.get("allOf") or []:
            found |= _required(resolver, part, depth + 1)
    return found


def openapi_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The compact view the builder keeps: title, servers, auth schemes and one row per operation."""
    resolver = _Resolver(doc)
    operations = []
    for path, item in doc["paths"].items():
        item = resolver.get(item)
        shared = [resolver.get(p) for p in item.get("parameters") or []]
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            parameters = shared + [resolver.get(p) for p in operation.get("parameters") or []]
            selector, fields = _records(resolver, _response_schema(resolver, operation), listing=method == "get")
            envelope, body_fields = _body_fields(resolver, operation, parameters)
            operations.append(
                {
                    "id": f"{method.upper()} {path}",
                    "method": method.upper(),
                    "path": str(path),
                    "operation_id": str(operation.get("operationId") or ""),
                    "summary": str(operation.get("summary") or "")[:200],
                    "path_params": [str(p.get("name")) for p in parameters if p.get("in") == "path"],
                    "query_params": sorted({str(p.get("name")) for p in parameters if p.get("in") == "query"}),
                    "selector": selector,
                    "fields": fields,
                    "body_envelope": envelope,
                    "body_fields": body_fields,
                }
            )
            if len(operations) >= MAX_OPERATIONS:
                break
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    return {
        "title": str(info.get("title") or "")[:200],
        "version": str(info.get("version") or "")[:50],
        "servers": _servers(doc),
        "auth": _auth_schemes(doc),
        "operations": operations,
    }
