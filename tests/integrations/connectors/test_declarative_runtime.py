"""A compiled spec over real HTTP: every auth kind, each paging style, incremental lookback, the error table, idempotency, the console."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from integrations.connectors.base import Capability, TrackedObject
from integrations.connectors.declarative import compile_spec, try_request
from integrations.errors import ApiBadRequest, ApiNotFound, ApiQuotaExhausted, ApiRateLimited, ApiUnauthorized
from integrations.http import BearerAuth, HttpClient
from tests.integrations.connectors.declarative_vendor import API_KEY, CLIENT_ID, CLIENT_SECRET, ITEMS, TOKEN, vendor

RULES = [
    {"status": 200, "when": "body.error.code == 'token_expired'", "error": "unauthorized", "message": "The session expired."},
    {"status": 429, "when": "body.fault.kind == 'quota'", "error": "quota_exhausted"},
    {"status": 429, "error": "rate_limited", "retry_after_header": "Acme-Retry-In"},
]
SPEC: dict[str, Any] = {
    "spec_version": 1,
    "key": "acme_test",
    "name": "Acme",
    "category": "ticketing",
    "description": "The compiler's test vendor.",
    "credentials": [{"name": "api_key", "label": "API key"}],
    "auth": {"kind": "header", "header": "Authorization", "value": "Key {{ credentials.api_key }}"},
    "errors": {"message": "{{ body.fault.reason }}", "code": "{{ body.fault.kind }}", "rules": RULES},
    "test_connection": {"request": {"path": "me"}, "identity": "{{ body.name }} ({{ body.plan }})", "account_id": "{{ body.id }}"},
    "requests": {"session": {"path": "session"}},
    "entities": {
        "pages": {
            "name": "Pages",
            "read": {"request": {"path": "pages"}, "paging": {"kind": "page_number", "param": "page", "size_param": "limit", "size": 2}},
        },
        "offsets": {
            "name": "Offsets",
            "read": {
                "request": {"path": "offsets"},
                "records": "$.data",
                "paging": {"kind": "offset", "param": "offset", "size_param": "limit", "size_first": True, "size": 2, "has_more": "body.more"},
            },
        },
        "cursors": {
            "name": "Cursors",
            "read": {"request": {"path": "cursors"}, "records": "$.data", "paging": {"kind": "cursor", "param": "after", "next": "{{ body.next }}"}},
        },
        "links": {
            "name": "Links",
            "read": {"request": {"path": "links"}, "records": "$.items", "paging": {"kind": "next_link", "next": "{{ body.next_url }}"}},
        },
        "headers": {"name": "Headers", "read": {"request": {"path": "headers"}, "paging": {"kind": "link_header"}}},
        "changes": {
            "name": "Changes",
            "bastion_type": "task",
            "read": {"request": {"path": "changes", "query": {"since": "{{ cursor }}"}}, "records": "$.changes"},
            "incremental": {"kind": "datetime", "from": "records", "field": "{{ record.updated_at }}", "format": "iso_z", "lookback_seconds": 3600},
            "deletions": {"kind": "tombstone", "when": "record.deleted"},
            "updated_at": "{{ record.updated_at }}",
            "transform": {"external_id": "{{ record.id }}", "title": "{{ record.name | upper }}"},
            "fields": {"discover": "sample", "datetime_suffixes": ["_at"]},
        },
    },
    "actions": {
        "file_ticket": {
            "name": "File a ticket",
            "input": {"title": {"schema": "string", "max_chars": 40, "single_line": True}},
            "checks": [{"fail_if": "not input.title", "message": "A ticket needs a title."}],
            "idempotency": {
                "kind": "search",
                "marker": "{{ key | marker }}",
                "find": [{"request": {"path": "tickets", "query": {"q": "{{ input.title }}"}}, "records": "$.tickets", "match": "record.marker == marker"}],
                "create_once": {"attempts": 3},
            },
            "request": {"method": "POST", "path": "tickets", "json": {"title": "{{ input.title }}", "marker": "{{ marker }}"}},
            "result": {
                "external_id": "{{ record.id }}",
                "url": "{{ record.link }}",
                "link_text": "{{ record.id }}",
                "tracked": {
                    "title": "{{ record.title }}",
                    "status": "{{ record.state }}",
                    "done": "record.state in ['closed', 'withdrawn']",
                    "key": "{{ record.id }}",
                },
            },
            "undo": {
                "description": "Withdraws the ticket.",
                "request": {"method": "POST", "path": "tickets/{{ external_id }}/withdraw", "json": {"reason": "{{ reason }}"}},
            },
            "tracks": "task",
            "tracks_label": "Acme ticket",
            "verb": "filed",
        },
        "file_keyed": {
            "name": "File with the vendor's key",
            "idempotency": {"kind": "vendor", "header": "Acme-Idempotency-Key", "value": "{{ key }}"},
            "request": {"method": "POST", "path": "tickets", "json": {"title": "{{ input.title }}"}},
            "result": {"external_id": "{{ record.id }}", "created": "status == 201"},
        },
    },
    "webhooks": {
        "signature": {"header": "X-Hook-Signature", "signed": "{{ raw_body }}"},
        "events": [{"type": "changed"}],
        "register": {
            "request": {"method": "POST", "path": "webhooks", "json": {"target": "{{ url }}", "resource": "{{ config.project }}"}},
            "id": "{{ body.data.gid }}",
            "secret": "{{ headers['x-hook-secret'] }}",
        },
    },
    "fetch_status": {
        "task": {
            "request": {"path": "tickets/{{ id }}"},
            "tracked": {"title": "{{ record.title }}", "status": "{{ record.state }}", "done": "record.state == 'withdrawn'"},
        }
    },
    "options": {
        "project": {
            "request": {"path": "projects"},
            "records": "$.projects",
            "value": "{{ record.gid }}",
            "label": "{{ record.label }}",
            "search_param": "name_like",
        }
    },
}


@pytest.fixture
def acme():
    with vendor() as (url, state):
        yield url, state


def connect(url: str, doc: dict | None = None, *, credentials: dict | None = None, config: dict | None = None, sleeps: list | None = None, **client_options):
    cls = compile_spec(doc or SPEC)
    client = HttpClient(url, sleep=(sleeps if sleeps is not None else []).append, timeout=(2, 5), **client_options)
    return cls(client=client, config=config or {}, credentials={"api_key": API_KEY} if credentials is None else credentials)


def with_auth(auth: dict, credentials: dict) -> tuple[dict, dict]:
    doc = copy.deepcopy(SPEC)
    doc["auth"] = auth
    return doc, credentials


@pytest.mark.parametrize(
    ("auth", "credentials", "sent"),
    [
        ({"kind": "header", "header": "Authorization", "value": "Key {{ credentials.api_key }}"}, {"api_key": API_KEY}, f"Key {API_KEY}"),
        ({"kind": "query", "param": "api_key", "value": "{{ credentials.api_key }}"}, {"api_key": API_KEY}, ""),
        (
            {"kind": "basic", "username": "{{ credentials.user }}", "password": "{{ credentials.password }}"},
            {"user": "acme", "password": "pw"},
            "Basic YWNtZTpwdw==",
        ),
        ({"kind": "bearer", "token": "{{ credentials.token }}"}, {"token": TOKEN}, f"Bearer {TOKEN}"),
        (
            {
                "kind": "client_credentials",
                "token_url": "{{ config.token_url }}",
                "client_id": "{{ credentials.client_id }}",
                "client_secret": "{{ credentials.secret }}",
            },
            {"client_id": CLIENT_ID, "secret": CLIENT_SECRET},
            "Bearer cc-1",
        ),
    ],
    ids=["header", "query", "basic", "bearer", "client_credentials"],
)
def test_every_auth_kind_reaches_the_vendor(acme, auth, credentials, sent):
    url, state = acme
    doc, creds = with_auth(auth, credentials)
    config = {"token_url": f"{url}/oauth/token"}
    connector = connect(url, doc, credentials=creds, config=config)
    result = connector.test_connection()
    assert (result.ok, result.identity, result.account_id) == (True, "Acme Corp (pro)", "acct-1")
    me = [s for s in state["seen"] if s["path"] == "/me"][-1]
    assert me["auth"] == sent and (("api_key", API_KEY) in me["args"]) == (auth["kind"] == "query")
    wrong = compile_spec(doc)(
        client=HttpClient(url, timeout=(2, 5), max_retries=0), config={"token_url": f"{url}/oauth/token"}, credentials={k: "nope" for k in creds}
    )
    with pytest.raises(ApiUnauthorized):
        wrong.test_connection()


def test_oauth2_is_declared_in_the_manifest_and_bastions_token_is_kept(acme):
    url, state = acme
    doc = copy.deepcopy(SPEC)
    doc["auth"] = {
        "kind": "oauth2",
        "authorize_url": "https://acme.test/oauth/authorize",
        "token_url": "https://acme.test/oauth/token",
        "scopes": [{"scope": "tickets.write", "purpose": "File tickets from playbooks"}],
        "rotates_refresh_token": True,
    }
    cls = compile_spec(doc)
    oauth = cls.manifest.oauth
    assert cls.manifest.auth_methods == ("oauth2",) and oauth.use_pkce and oauth.rotates_refresh_token
    assert oauth.scope_purposes == {"tickets.write": "File tickets from playbooks"}
    connector = cls(client=HttpClient(url, auth=BearerAuth(TOKEN), timeout=(2, 5)), config={}, credentials={"access_token": TOKEN})
    assert connector.test_connection().ok and state["seen"][-1]["auth"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("entity", "positions", "first_args"),
    [
        ("pages", [{"page": 2}, {"page": 3}, None], [("page", "1"), ("limit", "2")]),
        ("offsets", [{"offset": 2}, {"offset": 4}, None], [("limit", "2"), ("offset", "0")]),
        ("cursors", [{"cursor": "2"}, {"cursor": "4"}, None], []),
        ("links", [{"next": "/links?from=2"}, {"next": "/links?from=4"}, None], []),
        ("headers", [{"next": "<url>/headers?from=3"}, None], []),
    ],
)
def test_each_paging_style_reads_every_record_once(acme, entity, positions, first_args):
    url, state = acme
    connector = connect(url)
    records, page, seen = [], None, []
    for _ in range(5):
        result = connector.read(entity, page=page)
        records += result.records
        seen.append(result.next_page)
        page = result.next_page
        if page is None:
            break
    expected = [{**p, "next": p["next"].replace("<url>", url)} if p and "next" in p else p for p in positions]
    assert seen == expected and [r["id"] for r in records] == [i["id"] for i in ITEMS]
    assert [s for s in state["seen"] if s["path"] == f"/{entity}"][0]["args"] == first_args


def test_a_key_in_the_query_goes_with_every_page_of_a_next_link(acme):
    url, state = acme
    doc, credentials = with_auth({"kind": "query", "param": "api_key", "value": "{{ credentials.api_key }}"}, {"api_key": API_KEY})
    connector = connect(url, doc, credentials=credentials)
    first = connector.read("links")
    second = connector.read("links", page=first.next_page)
    assert len(first.records) == len(second.records) == 2
    assert [dict(s["args"]).get("api_key") for s in state["seen"] if s["path"] == "/links"] == [API_KEY, API_KEY]


def test_incremental_cursor_with_lookback_tombstones_and_transform(acme):
    url, state = acme
    connector = connect(url)
    full = connector.read("changes")
    assert full.is_full_scan and full.cursor == "2024-05-05T10:00:00Z" and full.deleted_ids == ["it4"]
    assert [r["id"] for r in full.records] == ["it1", "it2", "it3", "it5"]
    later = connector.read("changes", cursor=full.cursor)
    # The stored cursor minus the hour of lookback is what is asked for; the newest time seen is the next cursor.
    assert state["seen"][-1]["args"] == [("since", "2024-05-05T09:00:00Z")]
    assert not later.is_full_scan and [r["id"] for r in later.records] == ["it5"] and later.cursor == "2024-05-05T10:00:00Z"
    assert connector.to_bastion("changes", full.records[0]) == {"external_id": "it1", "title": "ITEM 1"}
    assert connector.updated_at("changes", full.records[0]) == "2024-05-01T10:00:00Z"
    assert {(f.name, f.type) for f in connector.discover_fields("changes")} >= {("id", "string"), ("updated_at", "datetime")}


def test_the_error_table_maps_statuses_and_an_expired_body_with_http_200(acme):
    url, state = acme
    doc = copy.deepcopy(SPEC)
    doc["auth"] = {"kind": "client_credentials", "token_url": f"{url}/oauth/token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    sleeps: list[float] = []
    connector = connect(url, doc, credentials={}, sleeps=sleeps, max_inline_wait=1)
    # The first token is spent: the vendor says so with HTTP 200; the rule makes it a 401, the client refreshes once.
    answer = connector.send_scoped(SPEC["requests"]["session"], connector.scope())
    assert answer["body"] == {"ok": True, "who": "service"} and state["tokens"] == ["cc-1", "cc-2"]
    with pytest.raises(ApiRateLimited) as limited:
        connector.send({"path": "limited"}, connector.scope())
    assert (limited.value.retry_after, limited.value.message, limited.value.vendor_code) == (7.0, "too fast", "slow_down")
    with pytest.raises(ApiQuotaExhausted) as quota:
        connector.send({"path": "limited", "query": {"kind": "quota"}}, connector.scope())
    assert quota.value.message == "daily quota spent" and sleeps == []
    refused = type(connector).classify_response(HttpClient(url).session.get(f"{url}/me", timeout=5), "/me")
    assert isinstance(refused, ApiUnauthorized) and refused.message == "who are you?" and refused.vendor_code == "auth"
    # An envelope of the vendor's own first, the common envelopes' reading (`generic`) as the fallback.
    doc["errors"]["message"] = "{{ body.fault.reason or generic.message }}"
    token = HttpClient(url).session.post(f"{url}/oauth/token", data={"client_id": "x"}, timeout=5)
    assert compile_spec(doc).classify_response(token, "/oauth/token").message == "invalid_client"


def test_search_by_marker_makes_a_create_happen_once_even_after_a_lost_answer(acme):
    url, state = acme
    connector = connect(url)
    first = connector.perform("file_ticket", {"title": "Printer on fire"}, idempotency_key="run-1:step-2")
    again = connector.perform("file_ticket", {"title": "Printer on fire"}, idempotency_key="run-1:step-2")
    assert first.created and not again.created and again.external_id == first.external_id == "T-1"
    assert first.tracked == TrackedObject(title="Printer on fire", status="open", is_done=False, key="T-1") and first.link_text == "T-1"
    assert first.url == "https://acme.test/t/1"
    state["fail_after_create"] = True
    lost = connector.perform("file_ticket", {"title": "Lift stuck"}, idempotency_key="run-1:step-3")
    assert not lost.created and lost.external_id == "T-2" and len(state["tickets"]) == 2
    with pytest.raises(ApiBadRequest, match="needs a title"):
        connector.perform("file_ticket", {"title": ""}, idempotency_key="run-1:step-4")
    keyed = [connector.perform("file_keyed", {"title": "Keyed"}, idempotency_key="k-9") for _ in range(2)]
    assert [k.created for k in keyed] == [True, False] and keyed[0].external_id == keyed[1].external_id == "T-3"


def test_undo_fetch_status_and_options(acme):
    url, state = acme
    connector = connect(url)
    assert {Capability.UNDO, Capability.FETCH_STATUS, Capability.CONFIG_CHOICES} <= set(connector.manifest.capabilities)
    ticket = connector.perform("file_ticket", {"title": "Undo me"}, idempotency_key="u-1")
    connector.undo("file_ticket", external_id=ticket.external_id, reason="cancelled", idempotency_key="u-1:undo")
    states = connector.fetch_objects("task", [ticket.external_id, "T-404"])
    assert states[ticket.external_id].status == "withdrawn" and states[ticket.external_id].is_done
    assert states["T-404"] == TrackedObject(status="deleted", is_done=True)
    assert connector.config_choices("project") == [("p1", "Apollo"), ("p2", "Gemini"), ("p3", "Mercury")]
    assert connector.choices("project", "gem") == [("p2", "Gemini")]


def test_the_request_console_shows_the_raw_answer_and_the_records(acme):
    url, state = acme
    page = try_request(SPEC, {}, {"api_key": API_KEY}, "entity:offsets", client=HttpClient(url, max_retries=0, classify=lambda r, p: None))
    assert page["status"] == 200 and page["body"]["more"] is True and page["record_count"] == 2 and page["next_page"] == {"offset": 2}
    refused = try_request(SPEC, {}, {"api_key": "nope"}, "test_connection", client=HttpClient(url, max_retries=0, classify=lambda r, p: None))
    assert refused["status"] == 401 and refused["body"] == {"fault": {"kind": "auth", "reason": "who are you?"}}
    assert refused["classified_error"].startswith("who are you?") and "Authorization" not in refused["headers"]
    doc = copy.deepcopy(SPEC)
    doc["auth"] = {"kind": "query", "param": "api_key", "value": "{{ credentials.api_key }}"}
    hidden = try_request(doc, {}, {"api_key": API_KEY}, "session", client=HttpClient(url, max_retries=0, classify=lambda r, p: None))
    assert API_KEY not in hidden["url"] and "api_key=***" in hidden["url"]
    unknown = try_request(SPEC, {}, {}, "nothing", client=HttpClient(url))
    assert "no request named 'nothing'" in unknown["error"]


def test_a_webhook_registration_keeps_the_secret_the_vendor_chose(acme):
    url, state = acme
    connector = connect(url)
    connector.config["project"] = "p1"
    assert Capability.WEBHOOK_REGISTRATION in connector.manifest.capabilities
    registered = connector.register_webhook(url="https://bastion.test/api/webhooks/abc", secret="bastion-made")
    assert registered == {"id": "wh-1", "webhook_secret": "vendor-made-secret"}
    assert state["subscriptions"] == [{"target": "https://bastion.test/api/webhooks/abc", "resource": "p1"}]


def test_a_token_cursor_and_deletions_from_an_events_endpoint(acme):
    url, state = acme
    doc = copy.deepcopy(SPEC)
    doc["entities"]["synced"] = {
        "name": "Synced",
        "read": {"request": {"path": "sync", "query": {"token": "{{ cursor }}"}}, "records": "$.data"},
        "incremental": {"kind": "token", "token": "{{ body.sync }}"},
        "deletions": {
            "kind": "events",
            "request": {"path": "tombstones", "query": {"since": "{{ cursor }}"}},
            "records": "$.deleted",
            "id": "{{ record.gid }}",
        },
    }
    connector = connect(url, doc)
    full = connector.read("synced")
    assert (len(full.records), full.cursor, full.is_full_scan, full.deleted_ids) == (5, "s5", True, [])
    assert [s["path"] for s in state["seen"]] == ["/sync"]  # a full scan asks for no deletions: the engine compares
    state["seen"].clear()
    later = connector.read("synced", cursor="s3")
    assert [r["id"] for r in later.records] == ["it4", "it5"] and later.cursor == "s5" and not later.is_full_scan
    assert later.deleted_ids == ["gone-1"] and [(s["path"], s["args"]) for s in state["seen"]] == [
        ("/sync", [("token", "s3")]),
        ("/tombstones", [("since", "s3")]),
    ]


def test_steps_before_the_request_and_a_real_bulk_endpoint(acme):
    url, state = acme
    doc = copy.deepcopy(SPEC)
    doc["actions"]["file_assigned"] = {
        "name": "File for someone",
        "steps": [{"name": "user", "request": {"path": "users", "query": {"email": "{{ input.owner }}"}}, "records": "$.users"}],
        "checks": [],
        "request": {"method": "POST", "path": "tickets", "json": {"title": "{{ input.title }}", "assignee": "{{ steps.user.records[0].id }}"}},
        "result": {"external_id": "{{ record.id }}", "summary": "for {{ record.assignee or 'nobody' }}"},
        "bulk": {
            "request": {"method": "POST", "path": "tickets/batch", "json": {"inputs": "{{ items }}"}},
            "item": {"title": "{{ input.title }}", "marker": "{{ key | marker }}"},
            "chunk": 2,
            "records": "$.results",
        },
    }
    connector = connect(url, doc)
    assert Capability.BULK_ACTIONS in connector.manifest.capabilities
    assigned = connector.perform("file_assigned", {"title": "Badge", "owner": "ada@acme.test"}, idempotency_key="s-1")
    assert assigned.summary == "for u-7" and state["tickets"][assigned.external_id]["assignee"] == "u-7"
    nobody = connector.perform("file_assigned", {"title": "Desk", "owner": "x@elsewhere.test"}, idempotency_key="s-2")
    assert nobody.summary == "for nobody"
    titles = ["One", "Two", "Three"]
    results = connector.perform_bulk("file_assigned", [{"title": t, "owner": "ada@acme.test"} for t in titles], idempotency_keys=["b1", "b2", "b3"])
    assert [r.external_id for r in results] == ["T-3", "T-4", "T-5"] and [state["tickets"][r.external_id]["title"] for r in results] == titles
    assert [s["path"] for s in state["seen"]].count("/tickets/batch") == 2  # chunks of two


def test_a_connection_test_with_steps_one_of_them_allowed_to_be_refused(acme):
    url, state = acme
    doc = copy.deepcopy(SPEC)
    doc["test_connection"] = {
        "steps": [
            {"name": "owner", "request": {"path": "tickets/T-404"}, "optional": True},
            {"name": "projects", "request": {"path": "projects"}, "records": "$.projects", "when": "not steps.owner.error"},
        ],
        "request": {"path": "me"},
        "identity": "{{ body.name }} ({{ 'account-level key' if steps.owner.error else steps.owner.body.title }})",
        "detail": {"owner_status": "{{ steps.owner.status }}", "projects": "{{ steps.projects.records | length }}"},
        "account_id": "{{ body.id }}",
    }
    result = connect(url, doc).test_connection()
    assert (result.identity, result.detail) == ("Acme Corp (account-level key)", {"owner_status": 404, "projects": 0})
    assert [s["path"] for s in state["seen"]] == ["/tickets/T-404", "/me"]  # the skipped step sent nothing
    doc["test_connection"]["steps"][0]["optional"] = False
    with pytest.raises(ApiNotFound):
        connect(url, doc).test_connection()
