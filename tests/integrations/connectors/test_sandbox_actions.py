"""The sandbox's action target answers as the vendors it stands in for: tracked objects, war-room words, status back."""

from __future__ import annotations

import requests

from integrations.connectors.base import TrackedKind
from integrations.connectors.sandbox_actions import MANIFEST, SandboxActionsConnector
from integrations.http import HttpClient


def connector(sandbox: str) -> SandboxActionsConnector:
    from sandbox.vendors.sandbox_actions import DEMO_TOKEN

    return SandboxActionsConnector(client=HttpClient(f"{sandbox}/sandbox_actions"), credentials={"api_key": DEMO_TOKEN})


def test_stand_ins_take_the_real_actions_rules_and_words():
    assert MANIFEST.sandbox_only
    channel, issue, event = MANIFEST.action("create_channel"), MANIFEST.action("create_issue"), MANIFEST.action("create_event")
    assert (channel.tracks, channel.tracks_label, channel.verb) == (TrackedKind.CHANNEL, "Slack channel", "created")
    assert (issue.tracks, issue.tracks_label, issue.verb) == (TrackedKind.TASK, "Jira issue", "created")
    assert (event.tracks, event.verb) == (TrackedKind.MEETING, "booked")
    assert channel.fields["name"].transform("Crisis: DB outage!") == "crisis-db-outage"
    assert issue.fields["summary"].max_chars == 255 and issue.fields["summary"].single_line
    assert issue.fields["labels"].transform(["sev 1", " ", "db"]) == ["sev-1", "db"]
    assert MANIFEST.action("create_object").fields["title"].max_chars == 255
    assert all(MANIFEST.action(key).fields["owner"].optional for key in ("create_object", "update_object", "create_note"))


def test_a_created_issue_is_tracked_and_read_back_by_its_key(sandbox):
    target = connector(sandbox)
    result = target.perform("create_issue", {"summary": "Restore the primary", "assignee_email": "ava.chen@acme.example"}, idempotency_key="k-1")
    assert result.created and result.link_text == result.tracked.key and result.tracked.key.startswith("OPS-")
    assert (result.tracked.title, result.tracked.owner, result.tracked.status, result.tracked.is_done) == (
        "Restore the primary",
        "ava.chen@acme.example",
        "open",
        False,
    )
    again = target.perform("create_issue", {"summary": "Restore the primary"}, idempotency_key="k-1", known_new=True)
    assert (again.external_id, again.created) == (result.external_id, False)

    requests.patch(f"{sandbox}/sandbox_actions/api/objects/{result.external_id}", json={"status": "done"}, headers=target_headers(), timeout=5)
    states = target.fetch_objects("jira_issue", [result.tracked.key, "999999"])
    assert (states[result.tracked.key].status, states[result.tracked.key].is_done) == ("done", True)
    assert (states["999999"].status, states["999999"].is_done) == ("deleted", True)  # gone from the target


def target_headers() -> dict[str, str]:
    from sandbox.vendors.sandbox_actions import DEMO_TOKEN

    return {"Authorization": f"Bearer {DEMO_TOKEN}"}


def test_channel_meeting_and_invitations_are_worded_as_the_vendors_word_them(sandbox):
    target = connector(sandbox)
    channel = target.perform("create_channel", {"name": "inc-42"}, idempotency_key="c-1")
    assert (channel.tracked.title, channel.link_text) == ("#inc-42", "#inc-42")
    meeting = target.perform(
        "create_event",
        {"summary": "War room", "start": "2026-12-07T14:00:00", "timezone": "Europe/Paris", "attendees": ["ava.chen@acme.example"]},
        idempotency_key="e-1",
    )
    assert meeting.link_text == "Meeting Mon 7 Dec, 14:00, 1 attendees"
    assert meeting.tracked.details["attendees"] == [{"email": "ava.chen@acme.example", "response": "needsAction"}]
    invited = target.perform(
        "invite_users", {"channel": channel.external_id, "emails": ["ava.chen@acme.example", "nobody@nowhere.example"]}, idempotency_key="i-1"
    )
    assert invited.summary == "1 invited, 1 not found"
    assert target.perform("post_message", {"text": "Briefing"}, idempotency_key="m-1").link_text == "Briefing posted"


def test_status_webhook_records_become_tracked_states():
    state = SandboxActionsConnector.tracked_state("issue", {"status": "Resolved", "owner": "ava.chen@acme.example", "key": "OPS-3"}, config={})
    assert (state.status, state.is_done, state.owner, state.key) == ("Resolved", True, "ava.chen@acme.example", "OPS-3")
    archived = SandboxActionsConnector.tracked_state("channel", {"is_archived": True}, config={})
    assert (archived.status, archived.is_done) == ("archived", True)
    declined = SandboxActionsConnector.tracked_state("event", {"attendees": [{"email": "liam.novak@acme.example", "response": "declined"}]}, config={})
    assert declined.details == {"attendees": [{"email": "liam.novak@acme.example", "response": "declined"}]}
    assert SandboxActionsConnector.tracked_state("issue", {"key": "OPS-3"}, config={}) is None
