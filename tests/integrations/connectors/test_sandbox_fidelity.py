"""The sandbox as a real client sees it: calls the vendors' SDKs make, answered as the vendors answer them."""

from __future__ import annotations

import requests

SLACK_SCOPES = ["channels:manage", "groups:write", "channels:read", "groups:read", "im:write", "im:read", "users:read"]


def slack_call(sandbox: str, token: str, method: str, **params) -> dict:
    return requests.post(f"{sandbox}/slack/api/{method}", headers={"Authorization": f"Bearer {token}"}, data=params, timeout=10).json()


def test_slack_channels_after_a_dm_exists_private_channels_and_members(sandbox):
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "slack", "scopes": SLACK_SCOPES}, timeout=5).json()["token"]
    user = slack_call(sandbox, token, "users.list")["members"][0]["id"]
    assert slack_call(sandbox, token, "conversations.open", users=user)["ok"] is True  # a DM: a record without a name

    created = slack_call(sandbox, token, "conversations.create", name="incident-war-room", is_private="true")
    assert created["ok"] is True, created
    channel = created["channel"]
    assert channel["id"].startswith("C") and channel["is_private"] is True and channel["is_group"] is False and channel["is_channel"] is False
    assert slack_call(sandbox, token, "conversations.create", name="incident-war-room") == {"ok": False, "error": "name_taken"}

    slack_call(sandbox, token, "conversations.invite", channel=channel["id"], users=user)
    members = slack_call(sandbox, token, "conversations.members", channel=channel["id"], limit=1)
    assert members["ok"] is True and len(members["members"]) == 1 and members["response_metadata"]["next_cursor"]
    rest = slack_call(sandbox, token, "conversations.members", channel=channel["id"], cursor=members["response_metadata"]["next_cursor"])
    assert sorted(members["members"] + rest["members"]) == sorted({user, created["channel"]["creator"]})
    assert slack_call(sandbox, token, "conversations.members", channel="C000NOPE")["error"] == "channel_not_found"
