"""The shared Graph client over real HTTP: throttling (429 + Retry-After), @odata.nextLink paging on the Graph host only,
JSON $batch (20 per call, per-item errors), a missing permission's 403 naming it, a refused token."""

from __future__ import annotations

import pytest
import requests

from integrations.connectors.microsoft365.client import BATCH_LIMIT, classify_graph_response, permission_hint
from integrations.connectors.microsoft365.manifest import OPTIONAL_SCOPE_PURPOSES, SCOPE_PURPOSES
from integrations.errors import ApiBadRequest, ApiForbidden, ApiNotFound, ApiRateLimited, ApiUnauthorized
from tests.integrations.connectors.microsoft365.test_connection import app_connector, delegated_connector, sign_in, team_id


def faults(sandbox: str, **knobs) -> None:
    requests.put(f"{sandbox}/_control/faults/microsoft365", json=knobs, timeout=5).raise_for_status()


def app_permissions(sandbox: str, permissions: list[str]) -> None:
    requests.put(f"{sandbox}/microsoft365/_control/knobs", json={"app_permissions": permissions}, timeout=5).raise_for_status()


def test_throttled_call_waits_for_retry_after_then_succeeds(sandbox):
    sleeps: list[float] = []
    connector = app_connector(sandbox, sleeps=sleeps)
    connector.test_connection()  # the app token first: the knob below must hit a Graph call, not the token endpoint
    faults(sandbox, rate_limit_next=2, retry_after=3)
    users = connector.graph("GET", "users", params={"$top": 5})["value"]
    assert len(users) == 5
    assert len(sleeps) == 2 and all(3 <= wait < 3.5 for wait in sleeps)  # Graph's Retry-After, plus jitter


def test_throttling_longer_than_the_inline_wait_is_raised_with_retry_after(sandbox):
    connector = app_connector(sandbox)
    connector.test_connection()
    faults(sandbox, rate_limit_next=1, retry_after=120)
    with pytest.raises(ApiRateLimited) as raised:
        connector.graph("GET", "users")
    assert raised.value.retry_after == 120 and raised.value.status == 429 and raised.value.vendor_code == "TooManyRequests"


def test_paging_follows_next_links_to_the_end(sandbox):
    connector = app_connector(sandbox)
    everyone = connector.graph("GET", "users", params={"$top": 999})["value"]
    pages = list(connector.iter_pages("users", {"$top": 4, "$select": "id,mail"}))
    assert len(pages) == -(-len(everyone) // 4) > 1
    assert [u["id"] for page in pages for u in page] == [u["id"] for u in everyone]
    assert len(list(connector.iter_pages("users", {"$top": 4}, max_pages=2))) == 2


def test_a_next_link_to_another_host_is_refused(sandbox):
    connector = app_connector(sandbox)
    with pytest.raises(ApiBadRequest, match="another host"):
        connector.next_link("https://graph.evil.example/v1.0/users?$skiptoken=abc")
    with pytest.raises(ApiBadRequest, match="another host"):
        connector.next_link(connector.client.base_url.replace("http://", "https://") + "v1.0/users")  # another scheme too
    same = connector.client.url_for("v1.0/users?$skiptoken=abc")
    assert connector.next_link(same) == same


def test_batch_splits_into_twenties_keeps_order_and_classifies_each_item(sandbox):
    connector = app_connector(sandbox)
    users = connector.graph("GET", "users", params={"$top": 999, "$select": "id,mail"})["value"][:24]
    calls = [{"method": "GET", "url": f"users/{u['id']}?$select=id,mail"} for u in users] + [{"method": "GET", "url": "users/no-such-user"}]
    results = connector.batch(calls)
    assert len(calls) > BATCH_LIMIT and len(results) == len(calls)
    assert [r.body["id"] for r in results[:-1]] == [u["id"] for u in users]
    assert all(r.error is None and r.status == 200 for r in results[:-1])
    assert isinstance(results[-1].error, ApiNotFound) and results[-1].status == 404


def test_find_users_looks_addresses_up_in_one_batch(sandbox):
    connector = app_connector(sandbox)
    found = connector.find_users(["Emma.Rossi@acme.example", "nobody@acme.example", "emma.rossi@acme.example"])
    assert list(found) == ["emma.rossi@acme.example", "nobody@acme.example"]
    assert found["emma.rossi@acme.example"]["mail"] == "emma.rossi@acme.example" and found["nobody@acme.example"] is None


def test_a_missing_permission_is_named_with_who_must_grant_it(sandbox):
    app_permissions(sandbox, ["User.Read.All", "Team.ReadBasic.All", "Channel.ReadBasic.All"])  # no Channel.Create granted
    connector = app_connector(sandbox)
    connector.config["team_id"] = team_id(connector)
    with pytest.raises(ApiForbidden) as raised:
        connector.perform("create_channel", {"name": "inc-403", "is_private": False}, idempotency_key="k-403", known_new=True)
    message = raised.value.message
    assert "Channel.Create (delegated, administrator consent) or Channel.Create (application)" in message
    assert "administrator must grant it" in message and raised.value.status == 403


def test_posting_with_application_permissions_says_it_needs_a_delegate(sandbox):
    connector = app_connector(sandbox)
    connector.config["team_id"] = team_id(connector)
    with pytest.raises(ApiForbidden, match="signed-in delegate"):
        connector.perform("post_message", {"channel": "19:any@thread.tacv2", "text": "*Briefing*"}, idempotency_key="k-app-post")
    hint = permission_hint("POST", "/v1.0/teams/t/channels/c/messages")
    assert "ChannelMessage.Send (delegated: reconnect and accept it)" in hint and "application permissions can only import messages" in hint
    assert "the signed-in user can accept it" in hint


def test_a_refused_token_asks_to_reconnect(sandbox):
    connector = delegated_connector(sandbox)
    connector.test_connection()
    faults(sandbox, revoked=True)
    with pytest.raises(ApiUnauthorized, match="Reconnect Microsoft 365"):
        connector.graph("GET", "me")


def test_503_with_retry_after_is_throttling_and_without_it_a_host_error():
    throttled = requests.Response()
    throttled.status_code, throttled._content = 503, b'{"error": {"code": "serviceNotAvailable", "message": "busy"}}'
    throttled.headers.update({"Content-Type": "application/json", "Retry-After": "7"})
    error = classify_graph_response(throttled, "/v1.0/users")
    assert isinstance(error, ApiRateLimited) and error.retry_after == 7 and error.vendor_code == "serviceNotAvailable"
    del throttled.headers["Retry-After"]
    assert not isinstance(classify_graph_response(throttled, "/v1.0/users"), ApiRateLimited)


def test_items_throttled_inside_a_batch_are_resent_after_their_retry_after(sandbox):
    sleeps: list[float] = []
    connector = app_connector(sandbox, sleeps=sleeps)
    users = connector.graph("GET", "users", params={"$top": 3, "$select": "id"})["value"]
    faults(sandbox, rate_limit_next=1, retry_after=2)  # Graph throttles each request of a batch on its own
    results = connector.batch([{"method": "GET", "url": f"users/{u['id']}?$select=id"} for u in users])
    assert [r.body["id"] for r in results] == [u["id"] for u in users] and all(r.error is None for r in results)
    assert sleeps == [2.0]


def test_a_create_whose_answer_is_lost_is_found_by_its_marker_not_made_twice(sandbox):
    from tests.integrations.connectors.microsoft365.test_calendar import event_payload, tomorrow_at
    from tests.integrations.connectors.microsoft365.test_teams import messages

    scopes = (*SCOPE_PURPOSES, *OPTIONAL_SCOPE_PURPOSES)
    connector = delegated_connector(sandbox, sign_in(sandbox, scopes))
    connector.config["team_id"] = team_id(connector)

    def lose_next_answer() -> None:  # the object is made, the answer is a 504: resending blind would make a second one
        requests.put(f"{sandbox}/microsoft365/_control/knobs", json={"fail_after_create": {"count": 1, "status": 504}}, timeout=5).raise_for_status()

    lose_next_answer()
    channel = connector.perform("create_channel", {"name": "inc-lost", "is_private": False}, idempotency_key="lost:1", known_new=True)
    assert [c["id"] for c in connector._channels() if c["displayName"] == "inc-lost"] == [channel.external_id]
    lose_next_answer()
    posted = connector.perform("post_message", {"channel": channel.external_id, "text": "*Briefing*"}, idempotency_key="lost:2", known_new=True)
    assert [m["id"] for m in messages(connector, channel.external_id)] == [posted.external_id]
    lose_next_answer()
    booked = connector.perform("create_event", event_payload(tomorrow_at(16)), idempotency_key="lost:3", known_new=True)
    events = connector.graph("GET", f"{connector.user_path()}/events", params={"$top": 100})["value"]
    assert [e["id"] for e in events if e["subject"] == "War room: data breach"] == [booked.external_id]
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "microsoft365"}, timeout=5).json()
    assert sum(1 for r in log if r["status"] == 504 and r["method"] == "POST") == 3  # each create's answer was lost once
