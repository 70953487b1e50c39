"""The polling backstop stops reading a meeting once it ended (plus a grace for late responses) and stops reading the
objects of runs older than the horizon; counted in the vendor calls the sandbox records, over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from playbooks.models import PlaybookRun, RunStatus, Task
from playbooks.services import playbook_activate, playbook_create, playbook_tasks_poll
from tests.playbooks.conftest import CRISIS_CONNECTORS, vendor_requests

VENDORS = ("jira", "slack", "google_calendar", "pagerduty")


@pytest.fixture(autouse=True)
def _poll_every_time(settings):
    settings.BASTION_PLAYBOOK_POLL_MIN_INTERVAL_SECONDS = 0
    settings.BASTION_PLAYBOOK_POLL_MEETING_GRACE_SECONDS = 3600
    settings.BASTION_PLAYBOOK_POLL_HORIZON_DAYS = 30


def _run(organization, make_scenario, crisis_template, owner, on_commit, bindings, *, meeting_at) -> PlaybookRun:
    scenario = make_scenario(war_room_meeting_at=meeting_at.isoformat(timespec="seconds"))
    playbook = playbook_create(organization=organization, scenario=scenario, template=crisis_template, integration_bindings=bindings, actor=owner)
    run, _ = on_commit(playbook_activate, playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    return run


@pytest.fixture
def vendor_run(organization, make_scenario, crisis_template, vendor_integrations, actions_integration, owner, on_commit):
    """Activate the crisis template in the real connectors' sandboxes with the war-room meeting at `meeting_at`."""
    bindings = {key: str(integration.pk) for key, integration in vendor_integrations.items()}
    bindings["email"] = str(actions_integration.pk)
    return lambda meeting_at: _run(organization, make_scenario, crisis_template, owner, on_commit, bindings, meeting_at=meeting_at)


def _counts(sandbox: str) -> dict[str, int]:
    return {vendor: len(vendor_requests(sandbox, vendor)) for vendor in VENDORS}


def _calls_since(sandbox: str, before: dict[str, int]) -> dict[str, list[tuple[str, str]]]:
    return {vendor: [(c["method"], c["path"]) for c in vendor_requests(sandbox, vendor)[before[vendor] :]] for vendor in VENDORS}


def _meeting_reads(calls: list[tuple[str, str]], meeting: Task) -> int:
    return sum(1 for method, path in calls if method == "GET" and path.endswith(f"/events/{meeting.external_id}"))


def test_meeting_over_for_longer_than_the_grace_is_not_read(vendor_run, sandbox):
    # Booked 60 minutes from three hours ago: it ended two hours ago, past the one-hour grace.
    run = vendor_run(timezone.now() - timedelta(hours=3))
    meeting = Task.objects.get(run=run, kind="meeting")
    assert meeting.step_run.result["data"]["end"]["dateTime"]  # the vendor's event carries the end the poll goes by

    before = _counts(sandbox)
    assert playbook_tasks_poll() == 18  # 17 issues and the channel; the ended meeting is not read
    calls = _calls_since(sandbox, before)
    assert calls["google_calendar"] == []
    assert calls["jira"] == [("POST", "/jira/rest/api/3/search/jql")]
    assert sum(1 for _, path in calls["slack"] if path.endswith("conversations.info")) == 1
    assert len([c for c in calls["pagerduty"] if c[0] == "GET"]) == 1
    meeting.refresh_from_db()
    assert (meeting.last_polled_at, meeting.status_source, meeting.is_done) == (None, "created", False)
    assert Task.objects.filter(run=run, last_polled_at__isnull=True).count() == 1

    # Later rounds skip it again, every time.
    before = _counts(sandbox)
    playbook_tasks_poll()
    assert _calls_since(sandbox, before)["google_calendar"] == []


def test_meeting_within_the_grace_is_read_for_late_responses_then_dropped(vendor_run, sandbox, settings):
    # Ended 30 minutes ago: inside the one-hour grace, an attendee still answers and the poll reads it.
    run = vendor_run(timezone.now() - timedelta(minutes=90))
    meeting = Task.objects.get(run=run, kind="meeting")
    requests.post(
        f"{sandbox}/google_calendar/_sandbox/events/{meeting.external_id}/respond", json={"email": "liam.novak@acme.example", "response": "declined"}, timeout=5
    ).raise_for_status()

    before = _counts(sandbox)
    playbook_tasks_poll()
    assert _meeting_reads(_calls_since(sandbox, before)["google_calendar"], meeting) == 1
    meeting.refresh_from_db()
    assert {"email": "liam.novak@acme.example", "response": "declined"} in meeting.details["attendees"]
    assert meeting.last_polled_at is not None

    # With a grace shorter than the 30 minutes since it ended, the same meeting is past it: no further reads.
    settings.BASTION_PLAYBOOK_POLL_MEETING_GRACE_SECONDS = 600
    before = _counts(sandbox)
    playbook_tasks_poll()
    calls = _calls_since(sandbox, before)
    assert calls["google_calendar"] == []
    assert calls["jira"] == [("POST", "/jira/rest/api/3/search/jql")]  # the rest of the run is still read


def test_meeting_still_ahead_is_read(vendor_run, sandbox):
    run = vendor_run(timezone.now() + timedelta(hours=2))
    meeting = Task.objects.get(run=run, kind="meeting")
    before = _counts(sandbox)
    assert playbook_tasks_poll() == 19
    assert _meeting_reads(_calls_since(sandbox, before)["google_calendar"], meeting) == 1


def test_ended_meeting_end_taken_from_the_rendered_payload(organization, make_scenario, crisis_template, actions_integration, owner, on_commit, sandbox):
    """The generic action target's answer has no Google end: the end the step rendered (with its time zone) is used."""
    bindings = {key: str(actions_integration.pk) for key in CRISIS_CONNECTORS}
    run = _run(organization, make_scenario, crisis_template, owner, on_commit, bindings, meeting_at=timezone.now() - timedelta(hours=3))
    meeting = Task.objects.get(run=run, kind="meeting")
    assert not isinstance(meeting.step_run.result["data"].get("end"), dict)
    others = list(Task.objects.filter(run=run, is_done=False).exclude(pk=meeting.pk))
    assert others

    before = len(vendor_requests(sandbox))
    playbook_tasks_poll()
    reads = [c["path"] for c in vendor_requests(sandbox)[before:] if c["method"] == "GET"]
    assert f"/sandbox_actions/api/objects/{meeting.external_id}" not in reads
    assert sorted(reads) == sorted(f"/sandbox_actions/api/objects/{t.external_id}" for t in others)
    meeting.refresh_from_db()
    assert meeting.last_polled_at is None


def test_objects_of_a_run_older_than_the_horizon_are_not_read(vendor_run, sandbox, settings):
    run = vendor_run(timezone.now() + timedelta(hours=2))
    PlaybookRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(days=31))

    before = _counts(sandbox)
    assert playbook_tasks_poll() == 0
    assert _calls_since(sandbox, before) == {vendor: [] for vendor in VENDORS}
    assert not Task.objects.filter(run=run, last_polled_at__isnull=False).exists()

    # The horizon is a setting: widened past the run's age, every open object of the run is read again.
    settings.BASTION_PLAYBOOK_POLL_HORIZON_DAYS = 60
    assert playbook_tasks_poll() == 19
    assert not Task.objects.filter(run=run, is_done=False, last_polled_at__isnull=True).exists()


def test_ended_meetings_do_not_crowd_out_objects_still_due(vendor_run, sandbox):
    """Skipped meetings sort first (never polled); a small batch still fills with objects that are due."""
    ended = vendor_run(timezone.now() - timedelta(hours=3))
    meeting = Task.objects.get(run=ended, kind="meeting")
    # Make the ended meeting the oldest candidate so it is the first row the selection reads.
    Task.objects.filter(pk=meeting.pk).update(created_at=timezone.now() - timedelta(days=1))
    before = _counts(sandbox)
    playbook_tasks_poll(limit=1)
    calls = _calls_since(sandbox, before)
    assert calls["google_calendar"] == []
    assert Task.objects.filter(run=ended, last_polled_at__isnull=False).count() == 1
