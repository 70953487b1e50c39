"""The vendors' own SDKs against the sandbox: what a real client does must work, and answer as the vendor would.

Slack's official SDK only: PagerDuty's (pagerduty 7.x) refuses a base URL that is not https, so the loopback sandbox cannot be
reached with it; its calls (/schedules, From on writes) are covered over HTTP in test_sandbox_fidelity.py.
"""

from __future__ import annotations

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

SLACK_SCOPES = ["channels:manage", "groups:write", "channels:read", "groups:read", "im:write", "im:read", "users:read", "chat:write"]


def test_slack_sdk_creates_private_channels_after_a_dm_and_lists_members(sandbox):
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "slack", "scopes": SLACK_SCOPES}, timeout=5).json()["token"]
    client = WebClient(token=token, base_url=f"{sandbox}/slack/api/")
    user = client.users_list()["members"][0]["id"]
    client.conversations_open(users=user)  # a DM exists from here on

    channel = client.conversations_create(name="sdk-war-room", is_private=True)["channel"]
    assert channel["id"].startswith("C") and channel["is_private"] is True and channel["is_group"] is False
    client.conversations_invite(channel=channel["id"], users=[user])
    members = [m for page in client.conversations_members(channel=channel["id"], limit=1) for m in page["members"]]  # the SDK pages itself
    assert user in members and len(members) == 2
    client.chat_postMessage(channel=channel["id"], text="Playbook started")
    with pytest.raises(SlackApiError) as taken:
        client.conversations_create(name="sdk-war-room")
    assert taken.value.response["error"] == "name_taken"
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("conversations.frobnicate")
    assert unknown.value.response.status_code == 404 and unknown.value.response["error"] == "unknown_method"
