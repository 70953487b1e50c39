"""The declarative format without a vendor: the template language, validate_spec's precise paths, the shipped specs, the schema URL."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.connectors.base import BaseConnector, Capability, Category
from integrations.connectors.declarative import SPEC_SCHEMA, SpecInvalid, compile_spec, load_spec_file, read_spec_file, validate_spec
from integrations.connectors.declarative.template import TemplateError, holds, parse_template, render
from integrations.errors import ApiBadRequest

CONNECTORS = Path(__file__).resolve().parents[3] / "integrations" / "connectors"

MINIMAL = {
    "spec_version": 1,
    "key": "acme",
    "name": "Acme",
    "category": "ticketing",
    "description": "Acme tickets.",
    "base_url": "https://api.acme.test/v1",
    "auth": {"kind": "bearer", "token": "{{ credentials.token }}"},
    "entities": {"tickets": {"name": "Tickets", "read": {"request": {"path": "tickets"}, "records": "$.data"}}},
    "actions": {"close": {"name": "Close", "request": {"method": "POST", "path": "tickets/{{ input.id }}/close"}}},
}


def test_templates_keep_types_drop_none_and_never_reach_python_objects():
    scope = {"input": {"ids": ["a", "b"], "n": 3, "name": "Outage"}, "config": {}, "key": "k1"}
    assert render("{{ input.ids }}", scope) == ["a", "b"]
    assert render("{{ input.n }}", scope) == 3
    assert render("#{{ input.n }} {{ input.name | lower }}", scope) == "#3 outage"
    assert render({"a": "{{ config.missing }}", "b": "{{ input.name }}"}, scope, drop_none=True) == {"b": "Outage"}
    assert render("{{ input.name if input.n > 2 else 'small' }}", scope) == "Outage"
    assert render("{{ input.ids | join(', ') ~ '!' }}", scope) == "a, b!"
    assert render("{{ key | marker(8, '') }}", scope) == hashlib.sha256(b"k1").hexdigest()[:8]
    assert render("{{ '2024-05-01T10:00:00Z' | minus_seconds(300) | iso_z }}", scope) == "2024-05-01T09:55:00Z"
    assert render("{{ 'Mon, 06 May 2024 10:00:00 +0000' | iso }}", scope) == "2024-05-06T10:00:00+00:00"
    # Only mapping keys and list items are reachable: no attributes, no dunder walk to Python internals.
    assert render("{{ input.__class__ }}", scope) is None and render("{{ input.name.upper }}", scope) is None
    assert holds("input.name | matches('^Out[a-z]+$')", scope) and not holds("input.name in ['x']", scope)
    for bad, why in [("{{ input.name | eval }}", "unknown filter"), ("{{ input. }}", "unexpected end"), ("{{ 'a' ", "never closed"), ("{{ }}", "empty")]:
        with pytest.raises(TemplateError, match=why):
            parse_template(bad)
    with pytest.raises(TemplateError, match="numbers only"):
        render("{{ 'x' * 100000000 }}", scope)
    with pytest.raises(TemplateError, match="longer than"):
        render("{{ big ~ big }}", {"big": "x" * 600_000})
    # A filter that fails on the values it meets is the spec's configuration error (a 4xx), never a crash.
    with pytest.raises(ApiBadRequest, match="filter 'plus_seconds' failed"):
        render("{{ now | plus_seconds(input.name) }}", {**scope, "now": "2024-05-01T10:00:00Z"})


def test_a_minimal_spec_compiles_into_a_connector():
    assert validate_spec(MINIMAL) == []
    cls = compile_spec(MINIMAL)
    assert issubclass(cls, BaseConnector) and cls.__name__ == "AcmeConnector"
    assert cls.manifest.capabilities == (Capability.READ, Capability.ACTIONS)
    assert [e.key for e in cls.manifest.entities] == ["tickets"] and cls.manifest.action("close").idempotency == "none"


def test_a_broken_spec_is_refused_with_the_path_of_each_problem():
    doc = copy.deepcopy(MINIMAL)
    doc["category"] = "tickets"
    doc["base_url"] = "ftp://files.acme.test"
    doc["capabilities"] = ["undo"]
    doc["entities"]["tickets"]["read"]["paging"] = {"kind": "cursor", "param": "after"}
    doc["entities"]["tickets"]["read"]["records"] = "$.data[?"
    doc["entities"]["people"] = {"name": "People"}
    doc["actions"]["close"]["request"]["path"] = "tickets/{{ input.id | shout }}/close"
    doc["actions"]["open"] = {"name": "Open", "request": {"use": "opener"}, "result": {"url": "{{ vars.link }}"}}
    doc["actions"]["remove"] = {"name": "Remove", "request": {"method": "DELETE", "path": "file:///etc/passwd"}}
    doc["webhooks"] = {"key_field": "signing_key", "events": [{"type": "x"}]}
    doc["hooks"] = {"read:people": "read_people"}
    with pytest.raises(SpecInvalid) as refused:
        compile_spec(doc, allow_hooks=False)
    found = {(p.path, p.message.split(" (")[0].split(":")[0]) for p in refused.value.problems}
    assert {
        ("category", f"'tickets' is not one of {[c.value for c in Category]}"),
        ("base_url", "'ftp"),
        ("base_url", "only http(s) URLs are allowed, not 'ftp"),
        ("entities[tickets].read.paging.next", "cursor paging needs `next`"),
        ("entities[tickets].read.records", "not a JSONPath"),
        ("actions[close].request.path", "bad template"),
        ("actions[open].request.use", "no request named 'opener' in `requests`"),
        ("actions[open].result.url", "vars.link is not defined"),
        ("actions[remove].request.path", "only http(s) URLs are allowed, not 'file"),
        ("webhooks.key_field", "'signing_key' is not a credential field"),
        ("webhooks.signature", "webhooks need a `signature`"),
        ("capabilities", "declares undo but has no an action with `undo`"),
        ("hooks[read:people]", "Python hooks are not allowed here"),
    } <= found, found
    assert len(refused.value.problems) == 13
    # The same document with hooks allowed still names the missing hooks module instead of failing later.
    doc = copy.deepcopy(MINIMAL)
    doc["entities"]["people"] = {"name": "People"}
    doc["hooks"] = {"read:people": "read_people"}
    with pytest.raises(SpecInvalid) as missing:
        compile_spec(doc)
    assert [(p.path, p.message) for p in missing.value.problems] == [
        ("hooks[read:people]", "the spec names hooks but no hooks module was given (hooks.py next to spec.yaml)")
    ]


def test_a_role_without_its_actions_and_a_spec_that_is_no_mapping_are_refused():
    doc = {**copy.deepcopy(MINIMAL), "roles": ["chat"]}
    assert [(p.path, p.message) for p in validate_spec(doc)] == [("roles", "plays the chat role but has no create_channel, invite_users, post_message action")]
    assert [p.message for p in validate_spec(["not", "a", "spec"])] == ["['not', 'a', 'spec'] is not of type 'object'"]


def test_documents_capabilities_come_from_their_hooks_and_need_them():
    import types

    from integrations.connectors.base import DocumentItem

    item = DocumentItem(id="f1", name="Model", is_folder=False, path="", url="", modified_at="", mime_type="x")
    hooks = types.SimpleNamespace(
        browse=lambda self, folder, query="": [item] if query == "Mod" else [],
        values=lambda self, document, names: {name: [[document]] for name in names},
    )
    doc = {**copy.deepcopy(MINIMAL), "hooks": {"browse_documents": "browse", "read_document_values": "values"}}
    cls = compile_spec(doc, hooks=hooks)
    assert cls.supports(Capability.DOCUMENTS) and cls.supports(Capability.DOCUMENT_VALUES)
    connector = cls(config={}, credentials={"token": "t"})
    assert connector.browse_documents("", query="Mod") == [item] and connector.browse_documents("") == []
    assert connector.read_document_values("doc-1", ["DealValue"]) == {"DealValue": [["doc-1"]]}
    # Declared without the hook that backs it: refused with the path, never a class that raises NotImplementedError later.
    bare = {**copy.deepcopy(MINIMAL), "capabilities": ["documents", "document_values"]}
    assert [(p.path, p.message) for p in validate_spec(bare)] == [
        ("capabilities", "declares documents but has no `browse_documents` hook"),
        ("capabilities", "declares document_values but has no `read_document_values` hook"),
    ]


def test_every_shipped_spec_validates_and_loads_as_the_registered_class():
    from integrations.registry import connector_classes

    specs = sorted(CONNECTORS.glob("*/spec.yaml"))
    assert {p.parent.name for p in specs} >= {"statuspage", "twilio"}
    catalog = connector_classes()
    for path in specs:
        doc = read_spec_file(path)
        assert validate_spec(doc) == [], path
        if doc["key"] in ("statuspage", "twilio") or not (path.parent / "__init__.py").exists():
            assert catalog[doc["key"]] is load_spec_file(path)


def test_the_schema_is_draft_2020_12_and_names_every_section():
    assert SPEC_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"auth", "requests", "entities", "actions", "errors", "webhooks", "options", "hooks", "rate_limit"} <= set(SPEC_SCHEMA["properties"])


@pytest.mark.django_db
def test_the_schema_is_published(client):
    response = client.get("/api/schema/connector-spec.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/schema+json"
    assert response.json() == SPEC_SCHEMA
    assert client.post("/api/schema/connector-spec.json").status_code == 405


def test_now_is_a_datetime_in_scope():
    cls = compile_spec(MINIMAL)
    scope = cls(config={}, credentials={}).scope()
    assert isinstance(scope["now"], datetime) and scope["now"].tzinfo is UTC
