"""Microsoft 365 round trips over real HTTP against the stand-in: a bulk Teams invitation is one directory $batch and one
membership $batch, Outlook asks people and rooms in one getSchedule round, and the stand-in runs an independent $batch's
requests side by side as Graph does."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from integrations.connectors.base import ActionResult
from integrations.connectors.microsoft365 import Microsoft365Connector
from integrations.connectors.microsoft365.manifest import OPTIONAL_SCOPE_PURPOSES, SCOPE_PURPOSES
from sandbox.vendors._people import people
from tests.integrations.connectors.microsoft365.test_calendar import event_payload, tomorrow_at
from tests.integrations.connectors.microsoft365.test_connection import delegated_connector, sign_in, team_id

GHOST = "ghost@nowhere.example"
PEOPLE = [p["email"] for p in people()]  # the directory's 20 people; the response team already holds a few of them
BATCH = "/microsoft365/v1.0/$batch"


@pytest.fixture
def token(sandbox) -> dict[str, Any]:
    return sign_in(sandbox, (*SCOPE_PURPOSES, *OPTIONAL_SCOPE_PURPOSES))


@pytest.fixture
def teams(sandbox, token) -> Microsoft365Connector:
    connector = delegated_connector(sandbox, token)
    connector.config["team_id"] = team_id(connector)
    return connector


def graph_log(sandbox: str) -> list[dict[str, Any]]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": "microsoft365"}, timeout=5).json()


def batches(entries: list[dict[str, Any]]) -> list[list[tuple[str, str]]]:
    """The log as $batch calls, each with the requests logged before it (a batch's inner requests finish before it answers)."""
    calls, inner = [], []
    for entry in entries:
        if entry["method"] == "POST" and entry["path"] == BATCH:
            calls.append(inner)
            inner = []
        else:
            inner.append((entry["method"], entry["path"]))
    assert inner == [], f"requests outside any $batch: {inner}"
    return calls


def per_person(channel: str, emails: list[str]) -> list[dict[str, Any]]:
    return [{"channel": channel, "emails": [email]} for email in emails]


def keys(prefix: str, count: int) -> list[str]:
    return [f"{prefix}:{index}" for index in range(count)]


def team_member_emails(connector: Microsoft365Connector) -> set[str]:
    return {m["email"] for m in connector.graph("GET", connector._team("/members"))["value"]}


# ---- Teams: invite_users in bulk -----------------------------------------------------------------------------------


def test_teams_bulk_invite_is_one_directory_batch_and_one_membership_batch(teams, sandbox):
    channel = teams.perform("create_channel", {"name": "inc-bulk", "is_private": False}, idempotency_key="run-1:create").external_id
    before = len(graph_log(sandbox))
    emails = ["emma.rossi@acme.example", "Noah.Fischer@acme.example", GHOST, "omar.haddad@acme.example", "ava.chen@acme.example"]
    results = teams.perform_bulk("invite_users", per_person(channel, emails), idempotency_keys=keys("run-1:invite", 5))

    members = f"/microsoft365/v1.0/teams/{teams.team_id}/members"
    # No GET of the channel (this connector created it); by mail for all five, by principal name for the unknown one only.
    assert batches(graph_log(sandbox)[before:]) == [[("GET", "/microsoft365/v1.0/users")] * 5, [("GET", "/microsoft365/v1.0/users")], [("POST", members)] * 4]
    assert all(isinstance(r, ActionResult) and r.external_id == channel for r in results), results
    assert [r.data["invited"] for r in results] == [
        ["emma.rossi@acme.example"],
        ["noah.fischer@acme.example"],
        [],
        ["omar.haddad@acme.example"],
        ["ava.chen@acme.example"],
    ]
    assert [r.data["not_found"] for r in results] == [[], [], [GHOST], [], []]
    assert [r.summary for r in results] == ["1 invited", "1 invited", "0 invited, 1 not found", "1 invited", "1 invited"]
    assert {"emma.rossi@acme.example", "noah.fischer@acme.example", "omar.haddad@acme.example", "ava.chen@acme.example"} <= team_member_emails(teams)
    assert GHOST not in team_member_emails(teams)


def test_twenty_people_are_one_batch_each_way(teams, sandbox):
    channel = teams.perform("create_channel", {"name": "inc-twenty", "is_private": False}, idempotency_key="run-2:create").external_id
    already = team_member_emails(teams)
    before = len(graph_log(sandbox))
    results = teams.perform_bulk("invite_users", per_person(channel, PEOPLE), idempotency_keys=keys("run-2:invite", 20))

    members = f"/microsoft365/v1.0/teams/{teams.team_id}/members"
    calls = batches(graph_log(sandbox)[before:])
    assert calls == [[("GET", "/microsoft365/v1.0/users")] * 20, [("POST", members)] * 20]  # the standing members answer as such
    assert [r.data["invited"] for r in results] == [[email] for email in PEOPLE]
    assert all(r.data["not_found"] == [] and r.summary == "1 invited" for r in results)
    assert team_member_emails(teams) >= set(PEOPLE) and already < set(PEOPLE)


def test_second_bulk_invite_finds_people_in_the_connector_cache(teams, sandbox):
    channel = teams.perform("create_channel", {"name": "inc-cached", "is_private": False}, idempotency_key="run-3:create").external_id
    emails = ["emma.rossi@acme.example", GHOST, "omar.haddad@acme.example"]
    teams.perform_bulk("invite_users", per_person(channel, emails), idempotency_keys=keys("run-3:a", 3))
    before = len(graph_log(sandbox))
    again = teams.perform_bulk("invite_users", per_person(channel, emails), idempotency_keys=keys("run-3:b", 3))

    members = f"/microsoft365/v1.0/teams/{teams.team_id}/members"
    # Only the unknown address is asked again (mail, then principal name); the two found ones come from the cache.
    users = ("GET", "/microsoft365/v1.0/users")
    assert batches(graph_log(sandbox)[before:]) == [[users], [users], [("POST", members)] * 2]
    assert [r.data["invited"] for r in again] == [["emma.rossi@acme.example"], [], ["omar.haddad@acme.example"]]
    assert again[1].data["not_found"] == [GHOST]


def test_a_channel_this_connector_did_not_create_is_read_once(teams, sandbox, token):
    channel = teams.perform("create_channel", {"name": "inc-other", "is_private": False}, idempotency_key="run-4:create").external_id
    other = delegated_connector(sandbox, token, team_id=teams.team_id)  # another worker: it never saw the channel
    before = len(graph_log(sandbox))
    results = other.perform_bulk(
        "invite_users", per_person(channel, ["emma.rossi@acme.example", "yuki.tanaka@acme.example"]), idempotency_keys=keys("run-4", 2)
    )
    reads = [e for e in graph_log(sandbox)[before:] if e["method"] == "GET" and "/channels/" in e["path"]]
    assert len(reads) == 1 and [r.data["invited"] for r in results] == [["emma.rossi@acme.example"], ["yuki.tanaka@acme.example"]]


# ---- Outlook: people and rooms in one getSchedule round --------------------------------------------------------------


def schedule_calls(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["method"] == "POST" and e["path"].endswith("/calendar/getSchedule")]


def test_everyone_free_is_one_get_schedule_for_people_and_rooms_and_rooms_are_listed_once(sandbox):
    calendar = delegated_connector(sandbox)
    before = len(graph_log(sandbox))
    booked = calendar.perform("create_event", event_payload(tomorrow_at(14)), idempotency_key="run-5:book")
    first = graph_log(sandbox)[before:]
    assert booked.created and booked.summary == "" and booked.data["location"] == "Crisis Center"  # the room came from the same answer
    # 3 attendees + 3 rooms: one getSchedule, asked before the event is written.
    assert len(schedule_calls(first)) == 1
    paths = [(e["method"], e["path"].rsplit("/", 1)[-1]) for e in first]
    assert paths.index(("POST", "getSchedule")) < paths.index(("POST", "events"))
    assert sum(1 for e in first if e["path"].endswith("/places/microsoft.graph.room")) == 1

    before = len(graph_log(sandbox))
    second = calendar.perform("create_event", event_payload(tomorrow_at(16)), idempotency_key="run-6:book")
    later = graph_log(sandbox)[before:]
    assert second.created and second.data["location"] == "Crisis Center"
    assert len(schedule_calls(later)) == 1
    assert not any(e["path"].endswith("/places/microsoft.graph.room") for e in later)  # the room list is kept for 5 minutes


def test_more_than_twenty_addresses_are_asked_in_chunks_of_twenty(sandbox):
    calendar = delegated_connector(sandbox)
    crowd = [f"guest{i}@partner.example" for i in range(18)]  # 18 people + 3 rooms = 21 addresses
    before = len(graph_log(sandbox))
    booked = calendar.perform("create_event", event_payload(tomorrow_at(14), attendees=crowd), idempotency_key="run-7:book")
    assert booked.created and booked.data["location"] == "Boardroom"  # 19 people: the one room that seats them, free at 14:00
    assert len(schedule_calls(graph_log(sandbox)[before:])) == 2


# ---- the stand-in: an independent $batch runs in parallel --------------------------------------------------------------


def test_independent_batch_requests_are_answered_side_by_side(sandbox):
    connector = delegated_connector(sandbox)
    latency = 0.2
    requests.put(f"{sandbox}/_control/faults/microsoft365", json={"latency_ms": int(latency * 1000)}, timeout=5).raise_for_status()
    before = len(graph_log(sandbox))
    wanted = PEOPLE[:10]
    results = connector.batch([{"id": f"p{i}", "method": "GET", "url": f"users/{email}?$select=id,mail"} for i, email in enumerate(wanted)])
    requests.put(f"{sandbox}/_control/faults/microsoft365", json={"latency_ms": 0}, timeout=5).raise_for_status()

    assert [(r.id, r.status, r.error) for r in results] == [(f"p{i}", 200, None) for i in range(10)]
    assert [r.body["mail"] for r in results] == wanted

    inner = [e for e in graph_log(sandbox)[before:] if e["method"] == "GET"]
    assert len(inner) == 10
    # Each inner request sleeps `latency` before it answers, so it was in flight during [at - latency, at]. In sequence
    # every answer comes at least `latency` after the previous one; two answers closer than that prove two requests were
    # in flight at once. This reads an order of events, not a duration: a slow machine cannot make it pass or fail falsely
    # unless it stalls every thread for `latency` between each pair of answers.
    ends = sorted(e["at"] for e in inner)
    overlapping = sum(1 for a, b in zip(ends, ends[1:], strict=False) if b - a < latency / 2)
    assert overlapping >= 1, ends
