"""The declared engine's generic pieces added for Intercom and Productboard: typed answer shapes, dotted paths,
structured searches, multi-file specs merged by the cut, and topic notifications signed or carrying static headers."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from sandbox.declared.cut import cut, merge
from sandbox.declared.records import RecordError
from sandbox.declared.shapes import get_path, search_matches, shape
from tests.conftest import wait_for
from tests.sandbox.test_declared_sandbox import HookTarget

INTERCOM = {"Authorization": "Bearer sandbox-intercom-token"}


def test_a_shape_keeps_value_types_and_leaves_out_optional_keys_holding_none():
    template = {"type": "list", "data": "$rows", "pages": {"per_page": "$limit", "next?": {"starting_after": "$next"}}, "url": "/x/{limit}"}
    assert shape(template, {"rows": [1, 2], "limit": 2, "next": "c1"}) == {
        "type": "list",
        "data": [1, 2],
        "pages": {"per_page": 2, "next": {"starting_after": "c1"}},
        "url": "/x/2",
    }
    assert shape(template, {"rows": [], "limit": 2, "next": None})["pages"] == {"per_page": 2}


def test_dotted_paths_flatten_lists_on_the_way():
    record = {"contacts": {"contacts": [{"id": "a"}, {"id": "b"}]}, "source": {"subject": "Hi"}}
    assert get_path(record, "contacts.contacts.id") == ["a", "b"]
    assert get_path(record, "source.subject") == "Hi" and get_path(record, "missing.path") == []


def test_structured_search_operators_and_nesting():
    fields = {"updated_at": "updated_at", "email": "email", "tag_ids": "tags.id"}
    record = {"updated_at": 1700000100, "email": "Ada@Acme.example", "tags": [{"id": "7"}]}
    assert search_matches(record, {"field": "updated_at", "operator": ">", "value": 1700000000}, fields)
    assert not search_matches(record, {"field": "updated_at", "operator": "<", "value": "1700000000"}, fields)
    assert search_matches(record, {"field": "email", "operator": "=", "value": "ada@acme.example"}, fields)  # case-insensitive
    both = {"operator": "AND", "value": [{"field": "tag_ids", "operator": "IN", "value": ["7", "8"]}, {"field": "email", "operator": "$", "value": "example"}]}
    assert search_matches(record, both, fields)
    with pytest.raises(RecordError, match="not a searchable field"):
        search_matches(record, {"field": "password", "operator": "=", "value": "x"}, fields)
    with pytest.raises(RecordError, match="not a valid operator"):
        search_matches(record, {"field": "email", "operator": "LIKE", "value": "x"}, fields)
    deep = {"operator": "AND", "value": [{"operator": "OR", "value": [{"operator": "AND", "value": [{"operator": "OR", "value": [{"field": "email"}]}]}]}]}
    with pytest.raises(RecordError, match="at most 3 deep"):
        search_matches(record, deep, fields)


def test_files_of_one_vendor_merge_with_their_components_prefixed():
    def document(description: str, path: str) -> dict:
        schema = {"type": "object", "description": description}
        answer = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}
        return {"openapi": "3.1.1", "paths": {path: {"get": {"responses": {"200": answer}}}}, "components": {"schemas": {"Thing": schema}}}

    merged = merge({"entities": document("an entity", "/entities"), "notes": document("a note", "/notes")})
    assert merged["components"]["schemas"]["entities.Thing"]["description"] == "an entity"
    assert merged["components"]["schemas"]["notes.Thing"]["description"] == "a note"
    answer = merged["paths"]["/notes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/notes.Thing"}
    assert set(cut(merged, {"/notes"})["components"]["schemas"]) == {"notes.Thing"}
    with pytest.raises(SystemExit, match="more than one file"):
        merge({"a": document("x", "/same"), "b": document("y", "/same")})


def test_intercom_searches_page_with_the_cursor_in_the_body(sandbox):
    query = {"query": {"field": "updated_at", "operator": ">", "value": 0}, "pagination": {"per_page": 40}}
    first = requests.post(f"{sandbox}/intercom/conversations/search", json=query, headers=INTERCOM, timeout=10).json()
    assert first["type"] == "conversation.list" and len(first["conversations"]) == 40 and first["total_count"] == 70
    cursor = first["pages"]["next"]["starting_after"]
    second = requests.post(
        f"{sandbox}/intercom/conversations/search", json={**query, "pagination": {"per_page": 40, "starting_after": cursor}}, headers=INTERCOM, timeout=10
    ).json()
    assert len(second["conversations"]) == 30 and "next" not in second["pages"]
    assert {c["id"] for c in first["conversations"]}.isdisjoint(c["id"] for c in second["conversations"])
    refused = requests.post(
        f"{sandbox}/intercom/conversations/search", json={"query": {"field": "secret", "operator": "=", "value": 1}}, headers=INTERCOM, timeout=10
    )
    assert refused.status_code == 400 and refused.json()["errors"][0] == {"code": "parameter_invalid", "message": "secret is not a searchable field"}
    assert requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json() == []


def test_topic_notifications_are_signed_with_the_app_secret_or_forged(sandbox):
    target = HookTarget()
    try:
        requests.post(f"{sandbox}/intercom/_sandbox/subscriptions", json={"url": target.url, "topics": ["conversation.admin.closed"]}, timeout=5)
        requests.patch(f"{sandbox}/intercom/_sandbox/records/conversations/50310003", json={"priority": "priority"}, timeout=5)  # not a wanted topic
        requests.patch(f"{sandbox}/intercom/_sandbox/records/conversations/50310003", json={"state": "closed"}, timeout=5)
        delivery = wait_for(lambda: target.requests, message="a notification")[0]
        body = json.loads(delivery["body"])
        assert (body["type"], body["topic"], body["data"]["item"]["id"], body["data"]["item"]["state"]) == (
            "notification_event",
            "conversation.admin.closed",
            "50310003",
            "closed",
        )
        assert delivery["headers"]["X-Hub-Signature"] == "sha1=" + hmac.new(b"sandbox-intercom-client-secret", delivery["body"], hashlib.sha1).hexdigest()
        assert len(target.requests) == 1
    finally:
        target.server.shutdown()
