"""The sandbox checks itself against the vendors' published specs: every request a stand-in accepts and every answer it gives.

Specs are cut from ../shared/vendor/specs to the operations the stand-ins serve (scripts/cut_vendor_specs.py) and kept in
sandbox/specs/ so the check runs wherever the tests run. A mismatch is recorded (never changes the answer); the connector
tests fail on any (tests/integrations/connectors/conftest.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS_DIR = Path(__file__).parent / "specs"


@dataclass(frozen=True)
class VendorSpec:
    """Where a vendor's cut spec lives and how a sandbox path maps onto its paths."""

    file: str
    prefix: str  # regex stripped from the sandbox path (the vendor's mount point and any gateway part)
    style: str = "openapi3"  # openapi3 | swagger2 | discovery
    ignore: str = r"/(_sandbox|_control|oauth)(/|$)|/(authorize|token|tokeninfo)$|/browse/|/archives/|/avatar/|accessible-resources"
    ignored_params: tuple[str, ...] = ()
    checks_answers: bool = True
    any_method: bool = False  # the vendor serves every operation on GET and POST alike (Slack's Web API)
    latest: tuple[str, str] = ("", "")  # an alias path prefix and the versioned prefix it stands for
    rewrites: tuple[tuple[str, str], ...] = ()  # (regex, replacement) applied in order: the vendor's aliases for a spec path
    also: tuple[str, ...] = ()  # more discovery documents served under the same prefix (Sheets and Drive), merged by path


VENDORS: dict[str, VendorSpec] = {
    # /rest/webhooks/1.0 is Jira's separate webhooks REST API (admin webhooks), not part of the platform v3 spec.
    "jira": VendorSpec(
        "jira.json", r"^/jira(?:/ex/jira/[^/]+)?", ignore=VendorSpec.ignore + r"|/rest/webhooks/1\.0/", latest=("/rest/api/latest/", "/rest/api/3/")
    ),
    "pagerduty": VendorSpec("pagerduty.json", r"^/pagerduty"),
    "twilio": VendorSpec("twilio.json", r"^/twilio"),
    "statuspage": VendorSpec("statuspage.json", r"^/statuspage/v1"),
    "okta": VendorSpec("okta.json", r"^/okta"),
    # Slack's spec marks `token` required on every method: Bastion sends it as a bearer header, which Slack accepts. The spec
    # is frozen since 2020 (INDEX.md): its answer schemas lack fields Slack has added since (response_metadata), so only
    # requests are checked against it.
    "slack": VendorSpec("slack.json", r"^/slack/api", style="swagger2", ignored_params=("token",), checks_answers=False, any_method=True),
    "google_calendar": VendorSpec("google_calendar.json", r"^/google_calendar", style="discovery"),
    # Sheets (servicePath "", paths v4/…) and Drive (servicePath drive/v3/) under one stand-in: their paths never overlap.
    "google_sheets": VendorSpec("google_sheets.json", r"^/google_sheets", style="discovery", also=("google_drive.json",)),
    # Graph's module descriptions (2024) name actions with the `microsoft.graph.` prefix and have no /me paths; the service
    # takes /me for /users/{signed-in user} and the unprefixed action names the current description uses. Entra sign-in,
    # the copy monitor and $batch (handled by the SDK core, in no description) are not Graph paths.
    "microsoft365": VendorSpec(
        "microsoft365.json",
        r"^/microsoft365/v1\.0",
        # /organization: the Identity.DirectoryManagement module is not in the saved descriptions.
        ignore=VendorSpec.ignore + r"|^/microsoft365/(?!v1\.0/)|/\$batch$|^/microsoft365/v1\.0/organization$",
        rewrites=(
            (r"^/me(?=/|$)", "/users/me"),
            (r"^/users/([^/]+)/drive/(root|items)(?=/|$)", r"/drives/\1-drive/\2"),  # a user's OneDrive is one of the drives
            (r"/search\(q=", "/microsoft.graph.search(q="),
            (r"/places/graph\.room$", "/places/microsoft.graph.room"),
            (r"/(copy|invite|createLink|cancel|getSchedule|findMeetingTimes|reauthorize|archive|unarchive|createOrGet)$", r"/microsoft.graph.\1"),
            (r"/delta(?:\(\))?$", "/microsoft.graph.delta()"),
            (r"/(range|usedRange)$", r"/\1()"),
        ),
    ),
}


@dataclass(frozen=True)
class Operation:
    template: str
    method: str
    pointer: str  # JSON pointer of the operation in the spec
    operation: Mapping[str, Any]
    path_parameters: tuple[Mapping[str, Any], ...]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


# Known defects of a published spec, each with the vendor's own evidence: (vendor, JSON pointer, replacement, why).
ERRATA: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    (
        "pagerduty",
        "#/components/schemas/IncidentBody/properties/details",
        {"type": ["object", "string"], "description": "Additional incident details."},
        "the spec's own createIncident request example sends body.details as a string",
    ),
)


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema (type may be null), and type names lower-cased ('Object'), in place."""
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            node["type"] = node["type"].lower()
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for value in node.values():
            _nullable(value)
    elif isinstance(node, list):
        for value in node:
            _nullable(value)
    return node


class Spec:
    """One vendor's cut spec: operation lookup by method and path, parameter and schema checks."""

    def __init__(self, vendor: str, definition: VendorSpec, document: dict[str, Any]):
        self.vendor = vendor
        self.definition = definition
        self.document = _nullable(document)
        for errata_vendor, pointer, replacement, _why in ERRATA:
            if errata_vendor == vendor:
                parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("#/").split("/")]
                node = self.document
                for part in parts[:-1]:
                    node = node[part]
                node[parts[-1]] = replacement
        self.uri = f"urn:bastion:spec:{vendor}"
        self.registry = Registry().with_resource(self.uri, Resource(contents=self.document, specification=DRAFT4))
        self.operations = self._operations()

    def _operations(self) -> list[tuple[re.Pattern[str], Operation]]:
        found: list[tuple[re.Pattern[str], Operation]] = []
        for template, item in (self.document.get("paths") or {}).items():
            shared = tuple(item.get("parameters") or ())
            for method, operation in item.items():
                if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                    continue
                pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
                pointer = f"#/paths/{_escape(template)}/{method}"
                found.append((pattern, Operation(template, method.upper(), pointer, operation, shared)))
        # Literal segments first: /project/search before /project/{projectIdOrKey}.
        found.sort(key=lambda pair: (pair[1].template.count("{"), -len(pair[1].template)))
        return found

    def spec_path(self, path: str) -> str | None:
        """The path in the spec's terms, or None for the stand-in's own routes (controls, OAuth, pages)."""
        if re.search(self.definition.ignore, path):
            return None
        stripped = re.sub(self.definition.prefix, "", path, count=1)
        alias, versioned = self.definition.latest
        if alias and stripped.startswith(alias):
            stripped = versioned + stripped[len(alias) :]
        for pattern, replacement in self.definition.rewrites:
            stripped = re.sub(pattern, replacement, stripped)
        return stripped or "/"

    def find(self, method: str, spec_path: str) -> tuple[Operation | None, bool]:
        """(operation, whether the path exists for some method)."""
        path_exists = False
        for pattern, operation in self.operations:
            if pattern.match(spec_path):
                path_exists = True
                if operation.method == method or (self.definition.any_method and method in ("GET", "POST")):
                    return operation, True
        return None, path_exists

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._follow(node, "")[0]

    def _follow(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow $refs from `node` (found at `pointer`): the target and its own pointer, so schemas inside it resolve."""
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            pointer = node["$ref"]
            node = self.registry.resolver(base_uri=self.uri).lookup(pointer).contents
        return node, pointer

    def _validate(self, pointer: str, instance: Any) -> list[str]:
        validator = Draft4Validator({"$ref": f"{self.uri}{pointer}"}, registry=self.registry)
        problems = []
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))[:5]:
            where = "/".join(str(p) for p in error.absolute_path) or "(body)"
            problems.append(f"{where}: {error.message[:300]}")
        return problems

    # ---- requests
    def check_request(self, operation: Operation, *, query: Mapping[str, Any], headers: Mapping[str, str], form: Mapping[str, Any], body: Any) -> list[str]:
        problems: list[str] = []
        parameters = [self._resolve(p) for p in (*operation.path_parameters, *(operation.operation.get("parameters") or ()))]
        for parameter in parameters:
            name, where = parameter.get("name", ""), parameter.get("in")
            if not parameter.get("required") or name in self.definition.ignored_params:
                continue
            if where == "query" and name not in query and not (self.definition.style == "swagger2" and name in form):
                problems.append(f"required query parameter {name!r} is missing")
            elif where == "header" and name.lower() not in {k.lower() for k in headers}:
                if name.lower() == "content-type" and body is None and not form:
                    continue  # a request without a body has no content type to declare
                problems.append(f"required header {name!r} is missing")
            elif where == "formData" and name not in form and name not in query and not (isinstance(body, Mapping) and name in body):
                problems.append(f"required form field {name!r} is missing")
            elif where == "body" and body is None:
                problems.append("a JSON body is required")
        if self.definition.style == "openapi3":
            problems += self._check_openapi3_body(operation, form=form, body=body)
        elif self.definition.style == "swagger2":
            for index, parameter in enumerate(operation.operation.get("parameters") or ()):
                if self._resolve(parameter).get("in") == "body" and body is not None:
                    problems += self._validate(f"{operation.pointer}/parameters/{index}/schema", body)
        return problems

    def _check_openapi3_body(self, operation: Operation, *, form: Mapping[str, Any], body: Any) -> list[str]:
        request_body, pointer = self._follow(operation.operation.get("requestBody") or {}, f"{operation.pointer}/requestBody")
        content = request_body.get("content") or {}
        if not content:
            return []
        if body is None and not form:
            return ["a request body is required"] if request_body.get("required") else []
        if body is not None and "application/json" in content:
            return self._validate(f"{pointer}/content/application~1json/schema", body)
        if form and "application/x-www-form-urlencoded" in content:
            schema = self._resolve(content["application/x-www-form-urlencoded"].get("schema") or {})
            missing = [name for name in schema.get("required") or () if name not in form]
            unknown = [name for name in form if schema.get("properties") and name not in schema["properties"]]
            return [f"required form field {n!r} is missing" for n in missing] + [f"form field {n!r} is not in the spec" for n in unknown]
        return []

    # ---- answers
    def check_response(self, operation: Operation, *, status: int, content_type: str, body: Any) -> list[str]:
        if not self.definition.checks_answers:
            return []
        responses = operation.operation.get("responses") or {}
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX" if f"{str(status)[0]}XX" in responses else "default"
        if key not in responses:
            if status >= 400 or not any(str(code).startswith("2") for code in responses):
                return []  # the published specs document few of their error answers: those are checked where documented
            return [f"HTTP {status} is not an answer the spec documents (it lists {', '.join(sorted(map(str, responses)))})"]
        if body is None or not content_type.startswith("application/json"):
            return []
        response, pointer = self._follow(responses[key], f"{operation.pointer}/responses/{key}")
        if self.definition.style == "swagger2":
            return self._validate(f"{pointer}/schema", body) if "schema" in response else []
        content = response.get("content") or {}
        media = next((m for m in content if m.startswith("application/json")), None)
        if media is None or "schema" not in content[media]:
            return []
        return self._validate(f"{pointer}/content/{_escape(media)}/schema", body)


@cache
def spec_for(vendor: str) -> Spec | None:
    definition = VENDORS.get(vendor)
    if definition is None or not (SPECS_DIR / definition.file).exists():
        return None
    document = json.loads((SPECS_DIR / definition.file).read_text(encoding="utf-8"))
    if definition.style == "discovery":
        document = discovery_as_openapi(document)
        for extra in definition.also:
            more = discovery_as_openapi(json.loads((SPECS_DIR / extra).read_text(encoding="utf-8")))
            document["paths"].update(more["paths"])
            document["components"]["schemas"].update(more["components"]["schemas"])
        definition = VendorSpec(definition.file, definition.prefix, style="openapi3", ignore=definition.ignore)
    return Spec(vendor, definition, document)


def discovery_as_openapi(document: Mapping[str, Any]) -> dict[str, Any]:
    """A Google discovery document as the OpenAPI subset checked here: paths, methods, parameters, body and answer schemas."""
    base = "/" + str(document.get("servicePath") or "").strip("/")
    paths: dict[str, dict[str, Any]] = {}

    def ref(schema: Mapping[str, Any]) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{schema['$ref']}"} if "$ref" in schema else dict(schema)

    def walk(resources: Mapping[str, Any]) -> None:
        for resource in resources.values():
            for method in (resource.get("methods") or {}).values():
                template = f"{base.rstrip('/')}/{method['path']}".replace("{+", "{")  # Sheets' servicePath is empty
                operation: dict[str, Any] = {
                    "parameters": [
                        {"name": name, "in": "path" if p.get("location") == "path" else "query", "required": bool(p.get("required"))}
                        for name, p in (method.get("parameters") or {}).items()
                    ],
                    "responses": {"200": {"content": {"application/json": {"schema": ref(method["response"])}}}} if method.get("response") else {"204": {}},
                }
                if method.get("request"):
                    operation["requestBody"] = {"content": {"application/json": {"schema": ref(method["request"])}}}
                paths.setdefault(template, {})[method["httpMethod"].lower()] = operation
            walk(resource.get("resources") or {})

    walk(document.get("resources") or {})
    schemas = {name: _discovery_schema(schema) for name, schema in (document.get("schemas") or {}).items()}
    return {"paths": paths, "components": {"schemas": schemas}}


def _discovery_schema(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _discovery_schema(v) for k, v in node.items() if k not in ("id", "annotations", "description")}
        if "$ref" in converted:
            return {"$ref": f"#/components/schemas/{converted['$ref']}"}
        if converted.get("type") == "any":
            converted.pop("type")
        if converted.get("format") in ("int64", "uint64") and converted.get("type") == "string":
            converted.pop("format")
        return converted
    if isinstance(node, list):
        return [_discovery_schema(v) for v in node]
    return node


def check_exchange(
    vendor: str,
    *,
    method: str,
    path: str,
    query: Mapping[str, Any],
    headers: Mapping[str, str],
    form: Mapping[str, Any],
    body: Any,
    status: int,
    content_type: str,
    answer: Any,
) -> list[str]:
    """Problems with one request the stand-in answered and with its answer, in the spec's terms ([] when both conform)."""
    spec = spec_for(vendor)
    if spec is None:
        return []
    spec_path = spec.spec_path(path)
    if spec_path is None:
        return []
    operation, path_exists = spec.find(method, spec_path)
    if operation is None:
        if 200 <= status < 300:
            what = f"{method} is not an operation on {spec_path}" if path_exists else f"{spec_path} is not a path in the spec"
            return [f"request: {what}, yet the stand-in answered {status}"]
        return []
    problems: list[str] = []
    if 200 <= status < 300:
        problems += [f"request: {p}" for p in spec.check_request(operation, query=query, headers=headers, form=form, body=body)]
    problems += [f"answer {status}: {p}" for p in spec.check_response(operation, status=status, content_type=content_type, body=answer)]
    return problems
