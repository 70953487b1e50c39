"""The one place custom connectors call the declarative compiler (integrations/connectors/declarative): hooks never allowed."""

from __future__ import annotations

import dataclasses
from typing import Any

from common.errors import ApplicationError
from integrations.connectors.base import BaseConnector


def _declarative() -> Any:
    try:
        from integrations.connectors import declarative
    except ImportError as exc:  # the compiler ships with this release; its absence is a broken install, not bad input
        raise ApplicationError("The declarative connector compiler is not installed.", code="compiler_missing", status_code=503) from exc
    return declarative


def spec_schema() -> dict[str, Any]:
    """The JSON Schema a spec is validated against."""
    return _declarative().SPEC_SCHEMA


def spec_problems(doc: Any) -> list[tuple[str, str]]:
    """Every problem of a spec as (path, message); a spec naming Python hooks is refused (custom specs never run code)."""
    declarative = _declarative()
    if not isinstance(doc, dict):
        return [("", "A spec is a mapping (YAML keys at the top level).")]
    problems = [(p.path, p.message) for p in declarative.validate_spec(doc, allow_hooks=False)]
    if not problems:
        try:
            declarative.compile_spec(doc, hooks=None, allow_hooks=False)
        except declarative.SpecInvalid as error:
            problems = [(p.path, p.message) for p in error.problems]
    return problems


def spec_compile(doc: dict[str, Any], *, key: str, name: str) -> type[BaseConnector]:
    """The connector class of a valid spec, under the custom connector's key and name (hooks not allowed)."""
    compiled = _declarative().compile_spec(doc, hooks=None, allow_hooks=False)
    manifest = dataclasses.replace(compiled.manifest, key=key, name=name, sandbox_only=False)
    return type(f"Custom{compiled.__name__}", (compiled,), {"manifest": manifest, "__module__": __name__})


def spec_try(
    doc: dict[str, Any], *, base_url: str, config: dict[str, Any], credentials: dict[str, Any], request_name: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One live request of the spec through an HttpClient with the SSRF guard: raw status/headers/body and its records.

    `request_name` is "test_connection", "entity:<key>", "option:<name>" or a name in the spec's `requests`.
    """
    declarative = _declarative()
    connector = declarative.compile_spec(doc, hooks=None, allow_hooks=False)
    return declarative.try_request(connector, config, credentials, request_name, params, base_url=base_url)


def spec_request_names(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The requests the console can send for a spec, as (name, label)."""
    names: list[tuple[str, str]] = []
    for key, entity in (doc.get("entities") or {}).items():
        names.append((f"entity:{key}", f"Read {entity.get('name') or key}" if isinstance(entity, dict) else f"Read {key}"))
    if isinstance(doc.get("test_connection"), dict):
        names.append(("test_connection", "Connection test"))
    names += [(f"option:{key}", f"Options: {key}") for key in doc.get("options") or {}]
    names += [(str(key), f"Request: {key}") for key in doc.get("requests") or {}]
    return names
