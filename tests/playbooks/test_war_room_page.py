"""The war room page reads in words: progress, results named, durations in words, attention items with their action,
Retry and Resume as POST forms; its live part is served on its own for the page's script."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from common.templatetags.bastion_format import duration, status_word, words
from playbooks.models import PlaybookRun, RunStatus, StepRun, StepStatus
from playbooks.services import playbook_activate

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _visible_text(html: str) -> str:
    body = html.split('<div id="war-room-live"', 1)[1].split('aria-live="polite">', 1)[1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


@pytest.fixture
def run(crisis_playbook, owner, on_commit) -> PlaybookRun:
    activated, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    activated.refresh_from_db()
    assert activated.status == RunStatus.SUCCEEDED
    return activated


@pytest.fixture
def client_for(users_by_role):
    def make(role: str) -> Client:
        client = Client()
        client.force_login(users_by_role[role])
        return client

    return make


@pytest.mark.parametrize(
    ("milliseconds", "expected"),
    [(None, ""), (37, "under 0.1 s"), (1860, "1.9 s"), (12_400, "12 s"), (248_000, "4 min 8 s"), (240_000, "4 min"), (3_900_000, "1 h 5 min")],
)
def test_durations_read_in_words(milliseconds, expected):
    assert duration(milliseconds) == expected


def test_statuses_and_keys_read_in_words():
    assert status_word("succeeded") == "Done" and status_word("auth_failed") == "Needs attention" and words("calendar_event") == "Calendar event"


def test_the_war_room_reads_in_words(run, crisis_playbook, client_for):
    html = client_for(Role.VIEWER).get(f"/playbooks/{crisis_playbook.pk}/war-room/?run={run.pk}").content.decode()
    text = _visible_text(html)
    assert re.search(r"\d+ of \d+ actions done", text)
    assert not re.search(r"\b\d+\s?ms\b", text), "durations are in words, never milliseconds"
    assert not UUID.search(text)
    assert not re.search(r"\b[a-z]+(?:_[a-z0-9]+)+\b", text), re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", text)[:5]
    assert 'class="progress big"' in html and 'id="retry-failed"' not in html  # a viewer gets no buttons


def test_a_failed_step_needs_attention_with_its_action(run, crisis_playbook, client_for):
    step = StepRun.objects.filter(run=run, step_key="book_war_room").first()
    StepRun.objects.filter(pk=step.pk).update(status=StepStatus.FAILED, last_error="Calendar quota exceeded.", error_class="transient")
    PlaybookRun.objects.filter(pk=run.pk).update(status=RunStatus.PARTIAL)
    html = client_for(Role.EDITOR).get(f"/playbooks/{crisis_playbook.pk}/war-room/?run={run.pk}").content.decode()
    attention = html.split('id="attention"', 1)[1].split("</ul>", 1)[0]
    assert "Calendar quota exceeded." in attention and "Fix the cause in the tool, then retry the failed steps." in attention
    assert f'action="/playbook-runs/{run.pk}/retry-failed/"' in attention and "csrfmiddlewaretoken" in attention
    assert 'id="retry-failed"' in html and "Retry failed steps" in html
    assert 'class="step step-failed"' in html


def test_stalled_steps_offer_resume_and_resume_resends_them(run, crisis_playbook, client_for, on_commit):
    step = StepRun.objects.filter(run=run, step_key="book_war_room").first()
    StepRun.objects.filter(pk=step.pk).update(status=StepStatus.QUEUED, updated_at=timezone.now() - timedelta(minutes=10))
    PlaybookRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, finished_at=None)
    editor = client_for(Role.EDITOR)
    html = editor.get(f"/playbooks/{crisis_playbook.pk}/war-room/?run={run.pk}").content.decode()
    assert "1 action stalled" in html and 'id="resume-run"' in html and f'action="/playbook-runs/{run.pk}/resume/"' in html
    assert client_for(Role.VIEWER).post(f"/playbook-runs/{run.pk}/resume/").status_code == 403
    response = on_commit(editor.post, f"/playbook-runs/{run.pk}/resume/")
    assert response.status_code == 302 and response["Location"] == f"/playbooks/{crisis_playbook.pk}/war-room/?run={run.pk}"
    assert "Resumed 1 stalled action" in editor.get(response["Location"]).content.decode()
    assert StepRun.objects.get(pk=step.pk).status == StepStatus.SUCCEEDED  # sent to a worker again, and done


def test_the_live_part_is_served_alone(run, crisis_playbook, client_for, outsider):
    response = client_for(Role.VIEWER).get(f"/playbooks/{crisis_playbook.pk}/war-room/live/?run={run.pk}")
    assert response.status_code == 200 and response["X-Run-Live"] == "0" and response["Cache-Control"] == "no-store"
    assert "<html" not in response.content.decode() and 'id="overall-progress"' in response.content.decode()
    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.get(f"/playbooks/{crisis_playbook.pk}/war-room/live/?run={run.pk}").status_code == 404


def test_issue_keys_read_in_order_whatever_order_the_parallel_calls_finished():
    from playbooks.war_room import _step_results

    keys = ["OPS-15", "OPS-9", "OPS-10", "OPS-2"]
    step = {"items": [{"status": "succeeded", "link_text": k, "external_url": f"https://x.example/{k}", "summary": "", "title": ""} for k in keys]}
    summary, links = _step_results(step, None)
    assert summary == "4 done" and [link["text"] for link in links] == ["OPS-2", "OPS-9", "OPS-10", "OPS-15"]


def test_the_chunks_of_a_bulk_step_read_as_one_line_with_their_sum():
    from playbooks.war_room import _timeline

    events = [{"at": "t", "kind": "step_succeeded", "step_key": "notify", "message": f"Notify the team: {n} of {n} sent together"} for n in (10, 7)]
    assert [g["message"] for g in _timeline(events, {})] == ["Notify the team: 17 of 17 sent"]
    mixed = [{**events[0]}, {**events[1], "message": "Notify the team: retried"}]
    assert [g["message"] for g in _timeline(mixed, {})] == ["Notify the team: 2 done"]
