"""Slack invite_users in bulk over real HTTP against the stand-in: one lookup round and one conversations.invite per
channel for a step's per-person items, each item's own result, ids cached per connector, per-user refusals."""

from __future__ import annotations

import pytest

from integrations.connectors.base import ActionResult
from integrations.connectors.slack import SlackConnector
from sandbox.state import STORE
from sandbox.vendors.slack import BOT_USER_ID
from tests.integrations.connectors.test_slack import ALL_SCOPES, api_calls, channels, issue_token, make_connector, set_faults

KNOWN = ["ava.chen@acme.example", "marcus.okafor@acme.example", "priya.raman@acme.example", "liam.novak@acme.example"]
UNKNOWN = "nobody@acme.example"


@pytest.fixture
def slack(sandbox) -> SlackConnector:
    return make_connector(sandbox, issue_token(sandbox, ALL_SCOPES))


def per_person(channel: str, emails: list[str]) -> list[dict]:
    """One payload per stakeholder, as a bulk step's items render them (one address each, cased as typed)."""
    return [{"channel": channel, "emails": [email]} for email in emails]


def keys(prefix: str, count: int) -> list[str]:
    return [f"{prefix}:{index}" for index in range(count)]


def members(sandbox: str, channel: str) -> list[str]:
    return next(c for c in channels(sandbox) if c["id"] == channel)["members"]


def slack_user_id(email: str) -> str:
    """The stand-in's member id for an address, read from its store (a lookup over HTTP would count as the connector's)."""
    with STORE.lock:
        return next(uid for uid, user in STORE.collection("slack", "users").items() if (user.get("profile") or {}).get("email") == email)


def test_five_people_cost_five_lookups_side_by_side_and_one_invite(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "bulk-invite"}, idempotency_key="c").external_id
    emails = [KNOWN[0], KNOWN[1].upper(), UNKNOWN, KNOWN[2], f"  {KNOWN[3]} "]
    results = slack.perform_bulk("invite_users", per_person(channel, emails), idempotency_keys=keys("run-1:invite", 5))

    assert len(api_calls(sandbox, "users.lookupByEmail")) == 5
    assert [c["status"] for c in api_calls(sandbox, "conversations.invite")] == [200]
    assert all(isinstance(r, ActionResult) for r in results), results
    own = [KNOWN[0], KNOWN[1], None, KNOWN[2], KNOWN[3]]
    for result, email in zip(results, own, strict=True):
        assert result.external_id == channel and result.data["channel"] == channel and result.data["refused"] == {}
        if email is None:
            assert result.data["invited"] == [] and result.data["not_found"] == [UNKNOWN]
            assert result.summary == "0 invited, 1 not found"
        else:
            assert result.data["invited"] == [email] and result.data["not_found"] == []  # its own address only
            assert result.summary == "1 invited" and result.created is True
    assert len(members(sandbox, channel)) == 5 and len(set(members(sandbox, channel))) == 5  # the bot + the 4 known people


def test_lookups_are_in_flight_together(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "bulk-latency"}, idempotency_key="c").external_id
    latency = 0.2
    set_faults(sandbox, latency_ms=int(latency * 1000))
    slack.perform_bulk("invite_users", per_person(channel, KNOWN), idempotency_keys=keys("run-0:invite", 4))
    set_faults(sandbox, latency_ms=0)
    # Each lookup sleeps `latency` before Slack answers, so it was in flight during [at - latency, at]: in sequence the
    # answers are at least `latency` apart, and two closer than that prove two lookups in flight at once (an order of
    # events, not a duration the machine's load could stretch).
    ends = sorted(c["at"] for c in api_calls(sandbox, "users.lookupByEmail"))
    assert len(ends) == 4
    assert sum(1 for a, b in zip(ends, ends[1:], strict=False) if b - a < latency / 2) >= 1, ends


def test_second_call_on_the_same_connector_uses_cached_ids(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "bulk-again"}, idempotency_key="c").external_id
    slack.perform_bulk("invite_users", per_person(channel, KNOWN), idempotency_keys=keys("run-2:invite", 4))
    assert len(api_calls(sandbox, "users.lookupByEmail")) == 4

    again = slack.perform_bulk("invite_users", per_person(channel, KNOWN), idempotency_keys=keys("run-2:invite", 4))
    assert len(api_calls(sandbox, "users.lookupByEmail")) == 4  # no new lookup: ids come from the connector's cache
    # One call, answered already_in_channel for everyone: the retry still succeeds, nothing new is created.
    assert [c["status"] for c in api_calls(sandbox, "conversations.invite")] == [200, 200]
    assert [r.data["invited"] for r in again] == [[e] for e in KNOWN]
    assert all(r.created is False and r.summary == "1 invited" for r in again)
    assert len(members(sandbox, channel)) == 5


def test_unknown_address_is_asked_again_next_time(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "bulk-unknown"}, idempotency_key="c").external_id
    slack.perform_bulk("invite_users", per_person(channel, [KNOWN[0], UNKNOWN]), idempotency_keys=keys("run-3:invite", 2))
    second = slack.perform_bulk("invite_users", per_person(channel, [KNOWN[0], UNKNOWN]), idempotency_keys=keys("run-3:invite", 2))
    assert len(api_calls(sandbox, "users.lookupByEmail")) == 3  # the known one once, the unknown one each time (they may join)
    assert second[1].data["not_found"] == [UNKNOWN]


def test_force_invites_the_new_people_beside_the_members(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "bulk-partial"}, idempotency_key="c").external_id
    slack.perform_bulk("invite_users", per_person(channel, KNOWN[:2]), idempotency_keys=keys("run-4:a", 2))
    results = slack.perform_bulk("invite_users", per_person(channel, KNOWN), idempotency_keys=keys("run-4:b", 4))
    assert len(api_calls(sandbox, "conversations.invite")) == 2  # one per bulk call
    assert [r.data["invited"] for r in results] == [[e] for e in KNOWN]
    # Each item says whether its own person was added: the two already there were not, the two new ones were.
    assert [r.created for r in results] == [False, False, True, True]
    assert len(members(sandbox, channel)) == 5  # the bot + 4: the already-present two did not stop the others


def test_two_channels_in_one_bulk_call_are_one_invite_each(slack, sandbox):
    first = slack.perform("create_channel", {"name": "bulk-one"}, idempotency_key="c1").external_id
    second = slack.perform("create_channel", {"name": "bulk-two"}, idempotency_key="c2").external_id
    payloads = [
        {"channel": first, "emails": [KNOWN[0]]},
        {"channel": second, "emails": [KNOWN[1]]},
        {"channel": first, "emails": [KNOWN[2]]},
        {"channel": second, "emails": [KNOWN[3], KNOWN[0]]},
    ]
    results = slack.perform_bulk("invite_users", payloads, idempotency_keys=keys("run-5:invite", 4))
    assert len(api_calls(sandbox, "conversations.invite")) == 2
    assert len(api_calls(sandbox, "users.lookupByEmail")) == 4  # KNOWN[0] is asked once although two channels want them
    assert [(r.external_id, r.data["invited"]) for r in results] == [
        (first, [KNOWN[0]]),
        (second, [KNOWN[1]]),
        (first, [KNOWN[2]]),
        (second, [KNOWN[3], KNOWN[0]]),
    ]
    assert sorted(members(sandbox, first)) == sorted([BOT_USER_ID, slack_user_id(KNOWN[0]), slack_user_id(KNOWN[2])])
    assert sorted(members(sandbox, second)) == sorted([BOT_USER_ID, slack_user_id(KNOWN[1]), slack_user_id(KNOWN[3]), slack_user_id(KNOWN[0])])


def test_a_channel_that_fails_fails_only_its_own_items(slack, sandbox):
    good = slack.perform("create_channel", {"name": "bulk-good"}, idempotency_key="c").external_id
    payloads = [{"channel": good, "emails": [KNOWN[0]]}, {"channel": "C0NOSUCHCHAN", "emails": [KNOWN[1]]}, {"channel": good, "emails": [KNOWN[2]]}]
    results = slack.perform_bulk("invite_users", payloads, idempotency_keys=keys("run-6:invite", 3))
    assert isinstance(results[1], Exception) and not isinstance(results[1], ActionResult)
    assert [results[0].data["invited"], results[2].data["invited"]] == [[KNOWN[0]], [KNOWN[2]]]
    assert len(members(sandbox, good)) == 3


def test_a_refused_member_is_reported_and_looked_up_again(slack, sandbox):
    channel = slack.perform("create_channel", {"name": "bulk-refused"}, idempotency_key="c").external_id
    slack.perform_bulk("invite_users", per_person(channel, KNOWN[:2]), idempotency_keys=keys("run-7:a", 2))
    other = slack.perform("create_channel", {"name": "bulk-refused-2"}, idempotency_key="c2").external_id
    # The second person leaves the workspace after their id was cached: Slack refuses that one id, invites the other.
    gone = slack_user_id(KNOWN[1])
    with STORE.lock:
        del STORE.collection("slack", "users")[gone]
    results = slack.perform_bulk("invite_users", per_person(other, KNOWN[:2]), idempotency_keys=keys("run-7:b", 2))
    assert len(api_calls(sandbox, "users.lookupByEmail")) == 2  # both ids came from the cache
    assert results[0].data["invited"] == [KNOWN[0]] and results[0].data["refused"] == {}
    assert results[1].data["invited"] == [] and results[1].data["refused"] == {KNOWN[1]: "user_not_found"}
    assert results[1].summary == "0 invited, 1 refused (user_not_found)"
    assert gone not in members(sandbox, other) and slack_user_id(KNOWN[0]) in members(sandbox, other)

    # The refusal dropped the cached id: the next call asks Slack again and now learns the address is unknown.
    third = slack.perform_bulk("invite_users", per_person(other, KNOWN[1:2]), idempotency_keys=keys("run-7:c", 1))
    assert len(api_calls(sandbox, "users.lookupByEmail")) == 3
    assert third[0].data["not_found"] == [KNOWN[1]]
