"""validate_spec: the JSON Schema, then what a schema cannot say (references, templates, URLs, hooks, capabilities)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import re2
from jsonpath_ng import parse as jsonpath_parse
from jsonschema import Draft202012Validator

from integrations.connectors.base import ROLE_ACTIONS
from integrations.connectors.declarative.problems import SpecProblem, spec_path
from integrations.connectors.declarative.template import TemplateError, parse_expression, parse_template

SCHEMA_FILE = Path(__file__).with_name("connector-spec.schema.json")
SPEC_SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
_VALIDATOR = Draft202012Validator(SPEC_SCHEMA)

# The names a template may read (docs/connectors.md, "Declarative connectors": what each is where).
TEMPLATE_NAMES = frozenset(
    {
        "config", "credentials", "vars", "const", "input", "payload", "record", "records", "body", "headers", "status",
        "page", "cursor", "started", "key", "marker", "now", "request", "url", "form", "raw_body", "timestamp",
        "received_at", "value", "item", "result", "entity", "action", "id", "ids", "kind", "search", "reason",
        "external_id", "known_new", "event", "response", "name", "object_key", "secret", "steps", "items", "generic",
        "base_url",
    }
)  # fmt: skip
# Keys whose string values are predicates: expressions even without braces.
PREDICATE_KEYS = frozenset({"when", "match", "done", "ok", "fail_if", "has_more", "stop", "if", "created", "custom", "skip", "unchanged"})
# Keys whose values are plain text, never templates.
TEXT_KEYS = frozenset({"name", "label", "description", "help", "kept_on_undo", "tracks_label", "verb", "docs_url", "logo", "schema", "purpose", "scope"})
JSONPATH_KEYS = frozenset({"records", "select", "many"})
# Capabilities a spec section (or a hook) must back.
NEEDS = {
    "undo": "an action with `undo` (or an `undo` hook)",
    "fetch_status": "a `fetch_status` section (or a `fetch_objects` hook)",
    "webhook_registration": "`webhooks.register` (or a `register_webhook` hook)",
    "config_choices": "an `options` section (or a `config_choices` hook)",
    "documents": "`browse_documents` hook",
    "document_values": "`read_document_values` hook",
}
UNSUPPORTED_CAPABILITIES = ("disabled_rules", "decisions")


@lru_cache(maxsize=1024)
def _jsonpath(text: str) -> Any:
    return jsonpath_parse(text)


def _walk(value: Any, parts: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    yield parts, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*parts, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*parts, index))


def _references(node: Any, found: list[tuple[str, str]]) -> None:
    """(namespace, name) for every `vars.x` / `const.x`, and ("matches", pattern) for literal patterns."""
    if not isinstance(node, tuple) or not node:
        return
    if node[0] == "get" and node[1] == ("var", "vars") and node[2][0] == "lit":
        found.append(("vars", str(node[2][1])))
    if node[0] == "get" and node[1] == ("var", "const") and node[2][0] == "lit":
        found.append(("const", str(node[2][1])))
    if node[0] == "filter" and node[2] == "matches" and node[3] and node[3][0][0] == "lit":
        found.append(("matches", str(node[3][0][1])))
    for child in node[1:]:
        if isinstance(child, tuple):
            if child and isinstance(child[0], tuple):
                for item in child:
                    _references(item, found)
            else:
                _references(child, found)


def _check_templates(doc: Mapping[str, Any], problems: list[SpecProblem]) -> None:
    variables = set((doc.get("variables") or {}) if isinstance(doc.get("variables"), Mapping) else ())
    constants = set((doc.get("constants") or {}) if isinstance(doc.get("constants"), Mapping) else ())
    for parts, value in _walk(doc):
        if not isinstance(value, str) or not parts or parts[0] in ("hooks", "spec_version", "key", "category", "capabilities", "roles"):
            continue
        last = next((p for p in reversed(parts) if isinstance(p, str)), "")
        if last in TEXT_KEYS and "{{" not in value:
            continue
        where = spec_path(parts)
        if last in JSONPATH_KEYS and isinstance(parts[-1], str):
            try:
                _jsonpath(value)
            except Exception as exc:  # noqa: BLE001 - jsonpath-ng raises several types for a bad path
                problems.append(SpecProblem(where, f"not a JSONPath: {exc}"))
            continue
        is_predicate = last in PREDICATE_KEYS and isinstance(parts[-1], str)
        if not is_predicate and "{{" not in value:
            continue
        try:
            template = parse_expression(value) if is_predicate else parse_template(value)
        except (TemplateError, RecursionError) as exc:
            problems.append(SpecProblem(where, f"bad template: {exc}"))
            continue
        unknown = sorted(template.names() - TEMPLATE_NAMES)
        if unknown:
            problems.append(
                SpecProblem(where, f"unknown name{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (known: {', '.join(sorted(TEMPLATE_NAMES))})")
            )
        found: list[tuple[str, str]] = []
        for part in template.parts:
            _references(part, found)
        action_vars = set()
        if len(parts) > 2 and parts[0] == "actions" and isinstance(doc.get("actions"), Mapping):
            action = doc["actions"].get(parts[1])
            action_vars = set((action or {}).get("vars") or {}) if isinstance(action, Mapping) else set()
        for namespace, name in found:
            if namespace == "vars" and name not in variables | action_vars:
                problems.append(SpecProblem(where, f"vars.{name} is not defined (in `variables` or the action's `vars`)"))
            elif namespace == "const" and name not in constants:
                problems.append(SpecProblem(where, f"const.{name} is not defined in `constants`"))
            elif namespace == "matches":
                try:
                    re2.compile(name)
                except re2.error as exc:
                    problems.append(SpecProblem(where, f"bad pattern for matches: {exc}"))


def _unsafe_url(value: str) -> str:
    """Why a literal URL is refused ("" when it is fine): http(s) only, no credentials in it."""
    head = value.split("{{", 1)[0]
    scheme, separator, rest = head.partition("://")
    if not separator:
        return f"only http(s) URLs are allowed, not '{head.split(':')[0]}:'" if ":" in head.split("/")[0] else ""
    if scheme.lower() not in ("http", "https"):
        return f"only http(s) URLs are allowed, not '{scheme}:'"
    if "{{" in value and "/" not in rest and "?" not in rest:
        return ""  # the host comes from a template (config): the SSRF guard vets it at call time
    parts = urlsplit(value)
    if parts.username or parts.password:
        return "a URL may not carry credentials"
    if not parts.hostname:
        return "the URL has no host"
    return ""


def _check_urls(doc: Mapping[str, Any], problems: list[SpecProblem]) -> None:
    for parts, value in _walk(doc):
        if not isinstance(value, str) or not parts:
            continue
        if parts[-1] in ("base_url", "authorize_url", "token_url", "path"):
            reason = _unsafe_url(value)
            if reason:
                problems.append(SpecProblem(spec_path(parts), reason))


def _requests_in(doc: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
    for parts, value in _walk(doc):
        if parts and parts[-1] == "request" and isinstance(value, Mapping):
            yield parts, value
        elif len(parts) == 2 and parts[0] == "requests" and isinstance(value, Mapping):
            yield parts, value


def _check_requests(doc: Mapping[str, Any], problems: list[SpecProblem]) -> None:
    named = doc.get("requests") if isinstance(doc.get("requests"), Mapping) else {}
    for parts, request in _requests_in(doc):
        use = request.get("use")
        if use is not None and use not in named:
            problems.append(SpecProblem(spec_path((*parts, "use")), f"no request named '{use}' in `requests`"))
        elif use is None and "path" not in request:
            problems.append(SpecProblem(spec_path(parts), "a request needs a `path` (or `use` of a named request)"))
        seen, current = set(), request
        while isinstance(current, Mapping) and current.get("use") in named:
            if current["use"] in seen:
                problems.append(SpecProblem(spec_path((*parts, "use")), f"requests use each other in a cycle ({', '.join(sorted(seen))})"))
                break
            seen.add(current["use"])
            current = named[current["use"]]
        if "json" in request and "form" in request:
            problems.append(SpecProblem(spec_path(parts), "a request sends `json` or `form`, not both"))


def _hook_names(doc: Mapping[str, Any]) -> set[str]:
    hooks = doc.get("hooks")
    return {str(point).split(":")[0] for point in hooks} if isinstance(hooks, Mapping) else set()


def _has_hook(doc: Mapping[str, Any], point: str, key: str = "") -> bool:
    hooks = doc.get("hooks") if isinstance(doc.get("hooks"), Mapping) else {}
    return point in hooks or (bool(key) and f"{point}:{key}" in hooks)


def _check_sections(doc: Mapping[str, Any], problems: list[SpecProblem], allow_hooks: bool) -> None:
    hooks = doc.get("hooks") if isinstance(doc.get("hooks"), Mapping) else {}
    if hooks and not allow_hooks:
        for point in hooks:
            problems.append(SpecProblem(spec_path(("hooks", str(point))), "Python hooks are not allowed here (custom connectors are specs only)"))
    entities = doc.get("entities") if isinstance(doc.get("entities"), Mapping) else {}
    for key, entity in entities.items():
        if not isinstance(entity, Mapping):
            continue
        if "read" not in entity and not _has_hook(doc, "read", key):
            problems.append(SpecProblem(spec_path(("entities", key, "read")), "an entity needs `read` (or a `read` hook)"))
        paging = (entity.get("read") or {}).get("paging") if isinstance(entity.get("read"), Mapping) else None
        if isinstance(paging, Mapping):
            kind = paging.get("kind")
            if kind in ("cursor", "next_link") and not paging.get("next"):
                problems.append(
                    SpecProblem(
                        spec_path(("entities", key, "read", "paging", "next")),
                        f"{kind} paging needs `next` (where the next {'cursor' if kind == 'cursor' else 'link'} is)",
                    )
                )
            if kind in ("page_number", "offset") and "size" not in paging and "has_more" not in paging:
                problems.append(
                    SpecProblem(spec_path(("entities", key, "read", "paging")), f"{kind} paging needs `size` (a short page ends the run) or `has_more`")
                )
            if kind in ("page_number", "offset", "cursor") and not paging.get("param"):
                problems.append(SpecProblem(spec_path(("entities", key, "read", "paging", "param")), f"{kind} paging needs the `param` it sends"))
        incremental = entity.get("incremental")
        if isinstance(incremental, Mapping):
            if incremental.get("kind") == "token" and not incremental.get("token"):
                problems.append(SpecProblem(spec_path(("entities", key, "incremental", "token")), "a token cursor needs `token` (where the next token is)"))
            if incremental.get("kind") == "datetime" and incremental.get("from") == "records" and not incremental.get("field"):
                problems.append(SpecProblem(spec_path(("entities", key, "incremental", "field")), "a cursor from records needs `field` (each record's time)"))
    actions = doc.get("actions") if isinstance(doc.get("actions"), Mapping) else {}
    for key, action in actions.items():
        if not isinstance(action, Mapping):
            continue
        if "request" not in action and not _has_hook(doc, "perform", key):
            problems.append(SpecProblem(spec_path(("actions", key, "request")), "an action needs `request` (or a `perform` hook)"))
        idempotency = action.get("idempotency")
        if isinstance(idempotency, Mapping):
            if idempotency.get("kind") == "search" and not idempotency.get("find") and not _has_hook(doc, "perform", key):
                problems.append(SpecProblem(spec_path(("actions", key, "idempotency", "find")), "search idempotency needs `find` (how to look for the marker)"))
    declared = set(doc.get("capabilities") or []) if isinstance(doc.get("capabilities"), list) else set()
    backed = {
        "undo": any(isinstance(a, Mapping) and "undo" in a for a in actions.values()) or _has_hook(doc, "undo"),
        "fetch_status": bool(doc.get("fetch_status")) or "fetch_objects" in _hook_names(doc),
        "webhook_registration": "register_webhook" in _hook_names(doc) or bool(isinstance(doc.get("webhooks"), Mapping) and doc["webhooks"].get("register")),
        "config_choices": bool(doc.get("options")) or "config_choices" in _hook_names(doc),
        "documents": "browse_documents" in _hook_names(doc),
        "document_values": "read_document_values" in _hook_names(doc),
    }
    for capability, needs in NEEDS.items():
        if capability in declared and not backed[capability]:
            problems.append(SpecProblem("capabilities", f"declares {capability} but has no {needs}"))
    for capability in UNSUPPORTED_CAPABILITIES:
        if capability in declared:
            problems.append(SpecProblem("capabilities", f"{capability} cannot be declared by a spec (write a Python connector)"))
    for role in doc.get("roles") or [] if isinstance(doc.get("roles"), list) else []:
        missing = [a for a in ROLE_ACTIONS.get(role, ()) if a not in actions]  # type: ignore[call-overload]
        if missing:
            problems.append(SpecProblem("roles", f"plays the {role} role but has no {', '.join(missing)} action"))
    webhooks = doc.get("webhooks")
    if isinstance(webhooks, Mapping):
        names = {f.get("name") for f in doc.get("credentials") or [] if isinstance(f, Mapping)}
        if webhooks.get("key_field") and webhooks["key_field"] not in names:
            problems.append(SpecProblem("webhooks.key_field", f"'{webhooks['key_field']}' is not a credential field"))
        if "signature" not in webhooks and not _has_hook(doc, "verify_webhook"):
            problems.append(SpecProblem("webhooks.signature", "webhooks need a `signature` (or a `verify_webhook` hook): unsigned deliveries are refused"))
        if "events" not in webhooks and not _has_hook(doc, "parse_webhook"):
            problems.append(SpecProblem("webhooks.events", "webhooks need `events` (or a `parse_webhook` hook)"))
    auth = doc.get("auth")
    if isinstance(auth, Mapping):
        required = {
            "header": ("header", "value"),
            "query": ("param", "value"),
            "basic": ("username", "password"),
            "bearer": ("token",),
            "oauth2": ("authorize_url", "token_url"),
            "client_credentials": ("token_url", "client_id", "client_secret"),
        }.get(str(auth.get("kind")), ())
        for name in required:
            if name not in auth:
                problems.append(SpecProblem(f"auth.{name}", f"{auth.get('kind')} auth needs `{name}`"))


def validate_spec(doc: Any, *, allow_hooks: bool = True) -> list[SpecProblem]:
    """Every problem of the spec with its path; [] when it compiles."""
    problems: list[SpecProblem] = []
    for error in sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        problems.append(SpecProblem(spec_path(error.absolute_path), error.message))
    if not isinstance(doc, Mapping):
        return problems
    _check_templates(doc, problems)
    _check_urls(doc, problems)
    _check_requests(doc, problems)
    _check_sections(doc, problems, allow_hooks)
    unique: dict[tuple[str, str], SpecProblem] = {}
    for problem in problems:
        unique.setdefault((problem.path, problem.message), problem)
    return list(unique.values())
