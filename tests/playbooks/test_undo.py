"""Cancel and undo over real HTTP: what a run created is archived, cancelled (attendees told) or closed in the vendor
stand-ins as tracked steps, exactly once, with per-item results; e-mails are listed as not undoable."""

from __future__ import annotations

import requests

from accounts.models import AuditEvent, Role
from integrations.connectors.base import ActionResult
from playbooks.models import RunStatus, StepRun, StepStatus, Task
from playbooks.selectors import playbook_run_view
from playbooks.services import (
    _advance_when_step_done,
    _step_succeeded,
    playbook_activate,
    playbook_preview,
    playbook_run_cancel,
    step_run_undo_execute,
)
from tests.playbooks.conftest import JIRA_ADMIN, created, sandbox_token

PD_HEADERS = {"Authorization": "Token token=sandbox-pagerduty-token", "Accept": "application/vnd.pagerduty+json;version=2"}


def _activate(playbook, owner, on_commit):
    run, _ = on_commit(playbook_activate, playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    return run


def _cancellations(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "google_calendar", "kind": "cancellation"}, timeout=5).json()


def _jira_issues(sandbox: str) -> dict[str, dict]:
    return {i["key"]: i for i in requests.get(f"{sandbox}/jira/_sandbox/issues", timeout=5).json()}


def _jira_comments(sandbox: str, key: str) -> list[str]:
    token = sandbox_token(sandbox, "jira", subject=JIRA_ADMIN)
    body = requests.get(f"{sandbox}/jira/rest/api/3/issue/{key}/comment", auth=(JIRA_ADMIN, token), timeout=5).json()
    return [p["text"] for c in body["comments"] for block in c["body"]["content"] for p in block.get("content", []) if p.get("type") == "text"]


def _slack_channel(sandbox: str, channel_id: str) -> dict:
    return next(c for c in requests.get(f"{sandbox}/slack/_sandbox/channels", timeout=5).json() if c["id"] == channel_id)


def _writes(sandbox: str, vendor: str) -> list[tuple[str, str]]:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": vendor}, timeout=5).json()
    return [(r["method"], r["path"]) for r in log if r["method"] in ("POST", "PUT", "DELETE", "PATCH") and "/_sandbox/" not in r["path"]]


def test_cancel_and_undo_over_the_api(vendor_playbook, owner, on_commit, sandbox, api_for, django_capture_on_commit_callbacks):
    run = _activate(vendor_playbook, owner, on_commit)
    tasks = {t.kind: t for t in Task.objects.filter(run=run)}
    emails_before = len(created(sandbox, "email"))
    api = api_for(owner)

    # The run's state lists what undo would do before anyone asks: the confirmation the war room shows.
    plan = api.get(f"/api/playbook-runs/{run.pk}/").json()["undo"]
    assert plan["can_undo"] and plan["undoable_count"] == 20 and plan["requested_at"] is None
    undoable = {g["step_key"]: len(g["objects"]) for g in plan["groups"] if g["is_undoable"]}
    assert undoable == {"create_channel": 1, "create_tasks": 17, "book_war_room": 1, "page_on_call": 1}
    kept = {g["step_key"]: g["description"] for g in plan["groups"] if not g["is_undoable"]}
    assert kept["notify_stakeholders"] == "E-mails cannot be unsent."
    assert set(kept) == {"invite_stakeholders", "post_briefing", "notify_stakeholders"}

    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(f"/api/playbook-runs/{run.pk}/cancel/", {"undo": True}, format="json")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["undo_queued"] == 20 and body["run"]["status"] == "cancelled"

    # In the vendors: the channel told why and archived, the meeting cancelled with every attendee notified,
    # every issue closed (never deleted) with a comment, the incident resolved with a note.
    channel = _slack_channel(sandbox, tasks["channel"].external_id)
    assert channel["is_archived"] is True
    assert any("was cancelled by" in m["text"] for m in channel["messages"])
    cancellation = _cancellations(sandbox)
    assert [c["id"] for c in cancellation] == [tasks["meeting"].external_id]
    assert cancellation[0]["summary"].endswith("cancelled; 20 cancellation notices sent")
    issues = _jira_issues(sandbox)
    ours = [t.external_key for t in Task.objects.filter(run=run, kind="jira_issue")]
    assert len(ours) == 17 and all(issues[key]["fields"]["status"]["name"] == "Done" for key in ours)
    assert any("was cancelled by" in text for text in _jira_comments(sandbox, ours[0]))
    incident = requests.get(f"{sandbox}/pagerduty/incidents/{tasks['incident'].external_id}", headers=PD_HEADERS, timeout=5).json()["incident"]
    assert incident["status"] == "resolved"
    notes = requests.get(f"{sandbox}/pagerduty/incidents/{tasks['incident'].external_id}/notes", headers=PD_HEADERS, timeout=5).json()["notes"]
    assert len(notes) == 1 and "was cancelled by" in notes[0]["content"]
    assert len(created(sandbox, "email")) == emails_before  # nothing "unsent"

    # In Bastion: each item's result, the tasks' new status from undo, the timeline, the audit trail.
    view = api.get(f"/api/playbook-runs/{run.pk}/").json()
    assert view["undo"]["counts"] == {"succeeded": 20, "not_undoable": 41}  # 20 invitations, the briefing, 20 e-mails
    assert not view["undo"]["can_undo"] and view["undo"]["requested_by"] == owner.get_username()
    statuses = {t["kind"]: (t["status"], t["status_source"], t["is_done"]) for t in view["tasks"]}
    assert statuses == {
        "channel": ("archived", "undo", True),
        "jira_issue": ("Done", "undo", True),
        "meeting": ("cancelled", "undo", True),
        "incident": ("resolved", "undo", True),
    }
    assert all(s["key"] and not s["key"].startswith("undo-") for s in view["steps"])  # undo steps are shown under undo
    assert any(e["message"] == "Undo finished: 20 of 20 object(s) undone." for e in view["timeline"])
    audit = AuditEvent.objects.get(action="playbook_run.undo", target_id=str(run.pk))
    assert audit.changes["queued"] == 20 and audit.changes["left_in_place"] == 41

    # Exactly once: asking again has nothing to do and writes nothing anywhere.
    writes = {vendor: len(_writes(sandbox, vendor)) for vendor in ("slack", "jira", "google_calendar", "pagerduty")}
    again = api.post(f"/api/playbook-runs/{run.pk}/cancel/", {"undo": True}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "nothing_to_undo"
    assert StepRun.objects.filter(run=run, undo_of__isnull=False).count() == 20
    assert {vendor: len(_writes(sandbox, vendor)) for vendor in writes} == writes
    # Idempotent if a worker runs every undo step again (a redelivered message): Jira and PagerDuty get no write at all;
    # Slack and Google only answer "already archived" / "410 Gone", and no second note, comment or cancellation appears.
    messages = len(_slack_channel(sandbox, tasks["channel"].external_id)["messages"])
    for step in StepRun.objects.filter(run=run, undo_of__isnull=False):
        StepRun.objects.filter(pk=step.pk).update(status=StepStatus.QUEUED)
        step_run_undo_execute(step_run_id=step.pk)
    assert len(_writes(sandbox, "jira")) == writes["jira"] and len(_writes(sandbox, "pagerduty")) == writes["pagerduty"]
    assert len(_slack_channel(sandbox, tasks["channel"].external_id)["messages"]) == messages
    assert len(_cancellations(sandbox)) == 1 and len(_jira_comments(sandbox, ours[0])) == 1
    assert not StepRun.objects.filter(run=run, undo_of__isnull=False).exclude(status=StepStatus.SUCCEEDED).exists()
    assert StepRun.objects.filter(run=run, undo_of__isnull=False, reused_existing=True).count() == 20


def test_a_failed_undo_item_shows_the_vendor_error_and_retries_alone(vendor_playbook, owner, on_commit, sandbox, api_for, django_capture_on_commit_callbacks):
    run = _activate(vendor_playbook, owner, on_commit)
    # The first Jira call of the undo is refused for good (HTTP 400): only that issue's undo fails.
    requests.put(f"{sandbox}/_control/faults/jira", json={"error_next": 1, "error_status": 400}, timeout=5).raise_for_status()
    outcome = on_commit(playbook_run_cancel, run=run, undo=True, actor=owner)
    assert len(outcome.undo_queued) == 20
    failed = list(StepRun.objects.filter(run=run, undo_of__isnull=False, status=StepStatus.FAILED))
    assert len(failed) == 1 and failed[0].connector_key == "jira" and failed[0].attempts == 1
    assert "injected failure" in failed[0].last_error and failed[0].error_class == "configuration"
    key = failed[0].payload["key"]
    assert _jira_issues(sandbox)[key]["fields"]["status"]["name"] == "To Do"

    view = api_for(owner).get(f"/api/playbook-runs/{run.pk}/").json()
    item = next(i for i in view["undo"]["items"] if i["status"] == "failed")
    assert item["object"] == key and "injected failure" in item["last_error"]
    assert any(a["kind"] == "undo_failed" and key in a["message"] for a in view["attention"])
    assert view["undo"]["can_undo"] and view["undo"]["undoable_count"] == 1
    assert any(e["message"].startswith("Undo finished: 19 of 20 object(s) undone; could not undo") for e in view["timeline"])

    # Retry: only the failed item goes again.
    jira_writes = len(_writes(sandbox, "jira"))
    with django_capture_on_commit_callbacks(execute=True):
        answer = api_for(owner).post(f"/api/playbook-runs/{run.pk}/cancel/", {"undo": True}, format="json")
    assert answer.status_code == 202 and answer.json()["undo_queued"] == 1
    assert _jira_issues(sandbox)[key]["fields"]["status"]["name"] == "Done"
    assert len(_writes(sandbox, "jira")) - jira_writes == 2  # its comment and its transition, nothing else
    assert not StepRun.objects.filter(run=run, undo_of__isnull=False).exclude(status=StepStatus.SUCCEEDED).exists()


def test_objects_the_run_only_reused_are_left_alone(vendor_playbook, owner, on_commit, sandbox):
    # Someone already has a channel with the name the playbook wants: the run reuses it, so undo must not archive it.
    name = next(p for p in playbook_preview(playbook=vendor_playbook) if p.key == "create_channel").sample_payload["name"]
    token = sandbox_token(sandbox, "slack", scopes=["channels:manage", "channels:read"])
    existing = requests.post(f"{sandbox}/slack/api/conversations.create", json={"name": name}, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    channel_id = existing.json()["channel"]["id"]
    run = _activate(vendor_playbook, owner, on_commit)
    outcome = on_commit(playbook_run_cancel, run=run, undo=True, actor=owner)
    reused = next(item for item in outcome.undo if item.step_run.step_key == "create_channel")
    assert not reused.is_undoable and "existed before this run" in reused.description
    assert len(outcome.undo_queued) == 19
    assert _slack_channel(sandbox, channel_id)["is_archived"] is False


def test_an_action_finishing_after_cancel_and_undo_is_undone_too(vendor_playbook, owner, on_commit, sandbox):
    run = _activate(vendor_playbook, owner, on_commit)
    # Put the run back the way it looks while the meeting booking is still mid-call.
    booking = StepRun.objects.get(run=run, step_key="book_war_room")
    event_id, event_url = booking.external_id, booking.external_url
    Task.objects.filter(step_run=booking).delete()
    StepRun.objects.filter(pk=booking.pk).update(status=StepStatus.RUNNING, external_id="", finished_at=None)
    type(run).objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, finished_at=None)
    run.refresh_from_db()

    outcome = on_commit(playbook_run_cancel, run=run, undo=True, actor=owner)
    assert [s.step_key for s in outcome.in_flight] == ["book_war_room"] and len(outcome.undo_queued) == 19
    assert _cancellations(sandbox) == []

    # The worker's call returns after the cancel: its result is recorded, and the advance that follows undoes it.
    booking.refresh_from_db()
    booking.run.refresh_from_db()

    def finish() -> None:
        _step_succeeded(booking, ActionResult(external_id=event_id, url=event_url, data={}, created=True))
        _advance_when_step_done(run.pk, booking.step_key)

    on_commit(finish)
    assert [c["id"] for c in _cancellations(sandbox)] == [event_id]
    assert Task.objects.get(step_run=booking).status == "cancelled"
    assert any("finished after the cancel" in e["message"] for e in playbook_run_view(run=run)["timeline"])


def test_war_room_button_confirms_what_will_be_undone(vendor_playbook, owner, users_by_role, on_commit, sandbox, client, django_capture_on_commit_callbacks):
    run = _activate(vendor_playbook, owner, on_commit)
    client.force_login(users_by_role[Role.VIEWER])
    page = client.get(f"/playbooks/{vendor_playbook.pk}/war-room/?run={run.pk}").content.decode()
    assert 'id="confirm-undo"' not in page
    assert client.post(f"/playbook-runs/{run.pk}/cancel/", {"undo": "1"}).status_code == 403
    client.force_login(users_by_role[Role.EDITOR])
    page = client.get(f"/playbooks/{vendor_playbook.pk}/war-room/?run={run.pk}").content.decode()
    assert "Cancel and undo…" in page and "Undo 20 objects" in page
    assert "Create the crisis tasks in Jira</strong> (17:" in page and "E-mails cannot be unsent." in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/playbook-runs/{run.pk}/cancel/", {"undo": "1"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Undoing 20 object(s) in your tools" in page
    assert 'id="undo-card"' in page and page.count('<span class="badge badge-succeeded">Done</span>') >= 20
    assert 'id="confirm-undo"' not in page  # nothing left to undo
