"""Polling backstop over real HTTP: Jira, Slack, Google Calendar and PagerDuty objects a run created change in the
sandbox without any webhook, and one poll brings the war room (page and API) up to date."""

from __future__ import annotations

import pytest
import requests

from integrations.models import IntegrationStatus
from playbooks.models import RunStatus, Task
from playbooks.selectors import playbook_run_view
from playbooks.services import playbook_activate, playbook_tasks_poll, webhook_events_apply

PD_HEADERS = {"Authorization": "Token token=sandbox-pagerduty-token", "Accept": "application/vnd.pagerduty+json;version=2"}


@pytest.fixture(autouse=True)
def _poll_every_time(settings):
    settings.BASTION_PLAYBOOK_POLL_MIN_INTERVAL_SECONDS = 0


def _activate(playbook, owner, on_commit):
    run, _ = on_commit(playbook_activate, playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    return run


def _requests(sandbox: str, vendor: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": vendor}, timeout=5).json()


def _jira_transition(sandbox: str, key: str, status: str) -> None:
    answer = requests.post(f"{sandbox}/jira/_sandbox/transition", json={"issue_key": key, "status": status}, timeout=5)
    answer.raise_for_status()
    assert answer.json()["webhooks"] == 0  # nothing is registered: the change reaches Bastion only by polling


def test_poll_reads_every_vendor_without_webhooks(vendor_playbook, owner, on_commit, sandbox, api_for, client):
    run = _activate(vendor_playbook, owner, on_commit)
    tasks = {t.kind: t for t in Task.objects.filter(run=run)}
    assert set(tasks) == {"channel", "jira_issue", "meeting", "incident"}
    issues = list(Task.objects.filter(run=run, kind="jira_issue").order_by("external_key"))
    assert len(issues) == 17 and all(i.external_key.startswith("OPS-") for i in issues)
    # The first read replaces the placeholder status issues, channel and meeting were created with ("open") by the
    # vendor's own; the incident already had PagerDuty's ("triggered").
    assert playbook_tasks_poll() == 19
    assert set(Task.objects.filter(run=run, kind="jira_issue").values_list("status", flat=True)) == {"To Do"}

    # People act in their tools; no webhook tells Bastion.
    _jira_transition(sandbox, issues[0].external_key, "In Progress")
    _jira_transition(sandbox, issues[1].external_key, "Done")
    channel, meeting, incident = tasks["channel"], tasks["meeting"], tasks["incident"]
    requests.post(f"{sandbox}/slack/_sandbox/archive_channel", json={"channel": channel.external_id}, timeout=5).raise_for_status()
    requests.post(
        f"{sandbox}/google_calendar/_sandbox/events/{meeting.external_id}/respond", json={"email": "liam.novak@acme.example", "response": "declined"}, timeout=5
    ).raise_for_status()
    requests.put(
        f"{sandbox}/pagerduty/incidents/{incident.external_id}",
        json={"incident": {"type": "incident_reference", "status": "acknowledged"}},
        headers={**PD_HEADERS, "From": "amara.nwosu@acme.example"},
        timeout=5,
    ).raise_for_status()

    jira_before = len(_requests(sandbox, "jira"))
    assert playbook_tasks_poll() == 5

    # Jira: one JQL search for all 17 issues, not 17 GETs.
    jira_calls = _requests(sandbox, "jira")[jira_before:]
    assert [(c["method"], c["path"]) for c in jira_calls] == [("POST", "/jira/rest/api/3/search/jql")]
    for task in issues:
        task.refresh_from_db()
    assert (issues[0].status, issues[0].is_done, issues[0].status_source) == ("In Progress", False, "poll")
    assert (issues[1].status, issues[1].is_done, issues[1].details["status_category"]) == ("Done", True, "done")
    assert {i.status for i in issues[2:]} == {"To Do"}
    channel.refresh_from_db()
    meeting.refresh_from_db()
    incident.refresh_from_db()
    assert (channel.status, channel.is_done, channel.status_source) == ("archived", True, "poll")
    assert {"email": "liam.novak@acme.example", "response": "declined"} in meeting.details["attendees"]
    assert (meeting.status, meeting.is_done) == ("confirmed", False)
    assert (incident.status, incident.is_done) == ("acknowledged", False)

    # The war room says where each status came from: the API, the timeline and the page.
    body = api_for(owner).get(f"/api/playbook-runs/{run.pk}/").json()
    polled = {t["external_key"] or t["external_id"]: t for t in body["tasks"]}
    assert polled[issues[0].external_key]["status_source"] == "poll" and polled[issues[0].external_key]["last_polled_at"]
    assert polled[issues[2].external_key]["status_source"] == "poll"  # read, unchanged: still the status it was created with
    messages = [e["message"] for e in body["timeline"]]
    assert any(m.endswith("is now In Progress (poll)") for m in messages)
    assert any("is now archived (poll)" in m for m in messages)
    assert any(a["kind"] == "invitation_declined" for a in body["attention"])
    client.force_login(owner)
    page = client.get(f"/playbooks/{vendor_playbook.pk}/war-room/?run={run.pk}").content.decode()
    assert page.count("via polling") == 20

    # Done objects are not read again; open ones are, and an unchanged vendor changes nothing.
    slack_before, jira_before = len(_requests(sandbox, "slack")), len(_requests(sandbox, "jira"))
    assert playbook_tasks_poll() == 0
    assert not [c for c in _requests(sandbox, "slack")[slack_before:] if c["path"].endswith("conversations.info")]
    jql = _requests(sandbox, "jira")[jira_before:]
    assert len(jql) == 1


def test_webhook_newer_than_the_read_wins_and_is_labelled(vendor_playbook, owner, on_commit, sandbox, vendor_integrations):
    run = _activate(vendor_playbook, owner, on_commit)
    issue = Task.objects.filter(run=run, kind="jira_issue").order_by("external_key").first()
    # A webhook says Done at a time later than anything the vendor's `updated` can show.
    event = {
        "delivery_id": "w1",
        "event_type": "jira:issue_updated",
        "entity": "issues",
        "external_id": issue.external_id,
        "action": "status",
        "record": {"status": "Done", "status_category": "done", "key": issue.external_key},
        "occurred_at": "2099-01-01T00:00:00+00:00",
        "challenge_response": None,
    }
    assert webhook_events_apply(str(vendor_integrations["jira"].pk), [event]) == 1
    issue.refresh_from_db()
    assert (issue.status, issue.status_source, issue.is_done) == ("Done", "webhook", True)
    # Done tasks are not polled; mark it open so the poll reads the issue (still To Do in Jira, updated before 2099).
    Task.objects.filter(pk=issue.pk).update(is_done=False)
    playbook_tasks_poll()
    issue.refresh_from_db()
    assert (issue.status, issue.status_source) == ("Done", "webhook")  # the older vendor read did not overwrite it
    view = playbook_run_view(run=run)
    assert any(m["message"].endswith("is now Done (webhook)") for m in view["timeline"])


def test_deleted_jira_issue_does_not_break_the_batch(vendor_playbook, owner, on_commit, sandbox):
    run = _activate(vendor_playbook, owner, on_commit)
    issues = list(Task.objects.filter(run=run, kind="jira_issue").order_by("external_key"))
    # An issue key Jira no longer knows: real Jira fails the whole `key in (...)` query with a 400.
    Task.objects.filter(pk=issues[0].pk).update(external_key="OPS-9999", external_id="99999")
    _jira_transition(sandbox, issues[1].external_key, "In Progress")
    assert playbook_tasks_poll() == 19  # 15 read as To Do, one deleted, one In Progress, the channel and the meeting
    gone = Task.objects.get(pk=issues[0].pk)
    assert (gone.status, gone.is_done) == ("deleted", True)
    issues[1].refresh_from_db()
    assert issues[1].status == "In Progress"


def test_throttled_integration_is_left_for_the_next_round(vendor_playbook, owner, on_commit, sandbox, vendor_integrations):
    run = _activate(vendor_playbook, owner, on_commit)
    requests.put(f"{sandbox}/_control/faults/jira", json={"rate_limit_next": 5, "retry_after": 30}, timeout=5).raise_for_status()
    try:
        before = len(_requests(sandbox, "jira"))
        playbook_tasks_poll()
        # One refused call, no retries in a loop (Retry-After 30 s is longer than the client waits inline).
        assert len(_requests(sandbox, "jira")) - before == 1
    finally:
        requests.put(f"{sandbox}/_control/faults/jira", json={"rate_limit_next": 0}, timeout=5).raise_for_status()
    issues = Task.objects.filter(run=run, kind="jira_issue")
    assert not issues.filter(last_polled_at__isnull=False).exists()  # not marked read: the next round asks again
    assert playbook_tasks_poll() == 17  # the issues' first read
    assert not issues.filter(last_polled_at__isnull=True).exists()
    vendor_integrations["jira"].refresh_from_db()
    assert vendor_integrations["jira"].status == IntegrationStatus.CONNECTED
