"""Status flowing back: webhook events (through the handler the sync engine calls) and the polling backstop."""

from __future__ import annotations

import requests

from playbooks.models import Task
from playbooks.selectors import playbook_run_view
from playbooks.services import playbook_activate, playbook_tasks_poll, webhook_events_apply


def _activate(crisis_playbook, owner, on_commit):
    run, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    return run


def test_handler_is_registered_for_the_sync_engine(settings):
    assert "playbooks.services.webhook_events_apply" in settings.BASTION_EVENT_HANDLERS


def test_status_events_update_tasks_and_stale_ones_are_ignored(crisis_playbook, owner, on_commit, actions_integration):
    run = _activate(crisis_playbook, owner, on_commit)
    issue = Task.objects.filter(run=run, kind="jira_issue").order_by("created_at").first()
    event = {
        "delivery_id": "d1",
        "event_type": "object.status_changed",
        "entity": "issue",
        "external_id": issue.external_id,
        "action": "status",
        "record": {"status": "done"},
        "occurred_at": "2030-01-01T10:00:00+00:00",
        "challenge_response": None,
    }
    assert webhook_events_apply(str(actions_integration.pk), [event]) == 1
    issue.refresh_from_db()
    assert issue.status == "done" and issue.is_done
    older = {**event, "delivery_id": "d0", "record": {"status": "open"}, "occurred_at": "2029-12-31T10:00:00+00:00"}
    assert webhook_events_apply(str(actions_integration.pk), [older]) == 0
    issue.refresh_from_db()
    assert issue.status == "done"
    # Unknown objects and unknown integrations change nothing.
    assert webhook_events_apply(str(actions_integration.pk), [{**event, "external_id": "nope"}]) == 0
    assert webhook_events_apply("not-a-uuid", [event]) == 0
    assert any("is now done (webhook)" in e["message"] for e in playbook_run_view(run=run)["timeline"])


def test_declined_invitations_need_attention(crisis_playbook, owner, on_commit, actions_integration):
    run = _activate(crisis_playbook, owner, on_commit)
    meeting = Task.objects.get(run=run, kind="meeting")
    event = {
        "delivery_id": "d2",
        "event_type": "event.updated",
        "entity": "event",
        "external_id": meeting.external_id,
        "action": "status",
        "record": {
            "status": "confirmed",
            "attendees": [{"email": "ava.chen@acme.example", "response": "accepted"}, {"email": "liam.novak@acme.example", "response": "declined"}],
        },
        "occurred_at": None,
    }
    assert webhook_events_apply(str(actions_integration.pk), [event]) == 1
    attention = [a for a in playbook_run_view(run=run)["attention"] if a["kind"] != "step_skipped"]
    assert attention == [
        {"kind": "invitation_declined", "step_key": "", "message": "War room: DB outage: declined by liam.novak@acme.example", "error_class": ""}
    ]


def test_polling_backstop_reads_vendor_state(crisis_playbook, owner, on_commit, sandbox):
    from sandbox.vendors.sandbox_actions import DEMO_TOKEN

    run = _activate(crisis_playbook, owner, on_commit)
    issue = Task.objects.filter(run=run, kind="jira_issue").order_by("created_at").first()
    requests.patch(
        f"{sandbox}/sandbox_actions/api/objects/{issue.external_id}",
        json={"status": "in_progress"},
        headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
        timeout=5,
    ).raise_for_status()
    assert playbook_tasks_poll() == 1
    issue.refresh_from_db()
    assert issue.status == "in_progress" and not issue.is_done
    assert playbook_tasks_poll() == 0  # nothing changed since
