"""Activation over real HTTP against the sandbox: graph order, parallel dispatch, bulk, idempotency, partial runs, retry, cancel."""

from __future__ import annotations

import pytest

from playbooks.models import PlaybookRun, RunStatus, StepRun, StepStatus, Task, TimelineEvent
from playbooks.services import playbook_activate, playbook_run_cancel, playbook_run_retry_failed
from tests.playbooks.conftest import created, set_faults, set_rules, vendor_requests

EXPECTED = {"channel": 1, "message": 1, "issue": 17, "event": 1, "email": 20}


def kinds(sandbox: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in created(sandbox):
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    return counts


def test_activation_creates_everything_once_in_dependency_order(crisis_playbook, owner, sandbox, on_commit):
    run, is_new = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    run.refresh_from_db()
    assert is_new and run.status == RunStatus.SUCCEEDED, run.error_summary
    assert kinds(sandbox) == EXPECTED

    steps = {s.step_key: s for s in run.step_runs.filter(item_index=0)}
    channel, invite = steps["create_channel"], steps["invite_stakeholders"]
    # The invitation went to the channel the first step created, after it existed.
    assert invite.payload["channel"] == channel.external_id
    assert invite.started_at >= channel.finished_at
    assert steps["notify_stakeholders"].started_at >= channel.finished_at
    invites = run.step_runs.filter(step_key="invite_stakeholders")
    assert invites.count() == 20 and all(len(i.payload["emails"]) == 1 and i.payload["channel"] == channel.external_id for i in invites)
    assert all(i.result["data"]["not_found"] == [] for i in invites)

    # Independent steps were dispatched together in the first wave; dependents in the next.
    waves = list(TimelineEvent.objects.filter(run=run, kind="dispatched").order_by("at", "id"))
    assert waves[0].data["steps"] == ["create_channel", "create_tasks", "book_war_room"]
    assert set(waves[1].data["steps"]) == {"invite_stakeholders", "post_briefing", "notify_stakeholders"}

    # The 17 issues went in bulk calls (chunks of 6, run in parallel), never one create per issue; the 20 e-mails in
    # chunks of 10 (the shipped template's notification step is bulk: one task per chunk).
    posts = [r for r in vendor_requests(sandbox) if r["method"] == "POST"]
    assert sum(1 for r in posts if r["path"].endswith("/api/objects/bulk")) == 3 + 2
    assert sum(1 for r in posts if r["path"].endswith("/api/objects")) == 3  # channel, briefing, event

    # Skipped by condition / optional without integration; the run still succeeded.
    assert {s.step_key: s.status for s in run.step_runs.filter(status=StepStatus.SKIPPED)} == {
        "brief_ciso": StepStatus.SKIPPED,
        "page_on_call": StepStatus.SKIPPED,
        "status_page": StepStatus.SKIPPED,
        "copy_legal_template": StepStatus.SKIPPED,  # the scenario names no legal template file
    }
    tasks = Task.objects.filter(run=run)
    assert tasks.filter(kind="jira_issue").count() == 17
    assert tasks.filter(kind="channel").get().title == f"#crisis-{crisis_playbook.created_at.date().isoformat()}-db-outage"
    assert tasks.filter(kind="meeting").get().details["attendees"][0] == {"email": "ava.chen@acme.example", "response": "needsAction"}
    assert tasks.filter(kind="jira_issue", owner="amara.nwosu@acme.example").count() == 17
    assert run.duration_ms is not None and run.duration_ms < 120 * 60_000
    assert all(s.duration_ms is not None for s in run.step_runs.filter(status=StepStatus.SUCCEEDED))


def test_second_activation_returns_the_same_run_and_creates_nothing(crisis_playbook, owner, sandbox, on_commit):
    first, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    second, is_new = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    assert second.pk == first.pk and not is_new
    assert PlaybookRun.objects.filter(playbook=crisis_playbook).count() == 1
    assert kinds(sandbox) == EXPECTED


def test_reactivation_after_cancel_reuses_what_exists(crisis_playbook, owner, sandbox, on_commit):
    first, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    PlaybookRun.objects.filter(pk=first.pk).update(status=RunStatus.CANCELLED)  # as if cancelled after finishing its calls
    second, is_new = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    second.refresh_from_db()
    assert is_new and second.status == RunStatus.SUCCEEDED
    assert kinds(sandbox) == EXPECTED  # same idempotency keys: the vendor objects were found, not created again
    reused = second.step_runs.filter(status=StepStatus.SUCCEEDED, reused_existing=True)
    assert reused.filter(step_key="create_tasks").count() == 17
    assert set(second.step_runs.filter(step_key="create_channel").values_list("external_id", flat=True)) == set(
        first.step_runs.filter(step_key="create_channel").values_list("external_id", flat=True)
    )


def test_terminal_vendor_error_leaves_run_partial_and_retry_runs_only_failed(crisis_playbook, owner, sandbox, on_commit):
    set_rules(sandbox, [{"kind": "event", "status": 400, "message": "Calendar 'primary' has no free slot", "times": None}])
    run, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIAL
    failed = run.step_runs.get(status=StepStatus.FAILED)
    assert failed.step_key == "book_war_room" and failed.attempts == 1  # terminal: no retry
    assert failed.error_class == "configuration" and "Calendar 'primary' has no free slot" in failed.last_error
    assert "Calendar 'primary' has no free slot" in run.error_summary
    assert kinds(sandbox) == {k: v for k, v in EXPECTED.items() if k != "event"}
    before = {s.pk: (s.status, s.attempts, s.external_id) for s in run.step_runs.exclude(step_key="book_war_room")}

    set_rules(sandbox, [])
    retried = on_commit(playbook_run_retry_failed, run=run, actor=owner)
    assert [s.step_key for s in retried] == ["book_war_room"]
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert kinds(sandbox) == EXPECTED
    after = {s.pk: (s.status, s.attempts, s.external_id) for s in run.step_runs.exclude(step_key="book_war_room")}
    assert after == before  # nothing else ran again
    assert run.step_runs.get(step_key="book_war_room").idempotency_key == failed.idempotency_key


def test_failed_dependency_holds_dependents_until_retry(crisis_playbook, owner, sandbox, on_commit):
    set_rules(sandbox, [{"kind": "channel", "status": 400, "message": "invalid_name", "times": 1}])
    run, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.PARTIAL
    assert run.step_runs.filter(step_key="notify_stakeholders", status=StepStatus.PENDING).count() == 20
    assert "wait for failed steps" in run.error_summary
    assert kinds(sandbox) == {"issue": 17, "event": 1}
    on_commit(playbook_run_retry_failed, run=run, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and kinds(sandbox) == EXPECTED


def test_rate_limit_and_transient_errors_are_retried(crisis_playbook, owner, sandbox, on_commit, settings):
    settings.BASTION_PLAYBOOK_RETRY_BASE_SECONDS = 0.01
    # The HttpClient absorbs short waits itself; a long Retry-After comes back to the engine, which re-queues the step.
    set_faults(sandbox, rate_limit_next=1, retry_after=30)
    run, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    retried = TimelineEvent.objects.filter(run=run, kind="step_retrying")
    assert retried.count() == 1 and "retry 2 in 3" in retried.get().message
    assert kinds(sandbox) == EXPECTED


def test_cancel_lists_what_was_created_and_stops_the_rest(crisis_playbook, owner, sandbox, on_commit):
    set_rules(sandbox, [{"kind": "channel", "status": 400, "message": "invalid_name", "times": 1}])
    run, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    outcome = on_commit(playbook_run_cancel, run=run, actor=owner)
    assert outcome.run.status == RunStatus.CANCELLED and outcome.run.cancelled_by == owner
    assert sorted({s.step_key for s in outcome.already_created}) == ["book_war_room", "create_tasks"]
    assert len(outcome.already_created) == 18
    assert run.step_runs.filter(status=StepStatus.CANCELLED).count() == 41  # 20 invitations, the briefing, 20 notifications
    assert "Already created:" in TimelineEvent.objects.filter(run=run, kind="cancelled").get().message
    from common.errors import ApplicationError

    with pytest.raises(ApplicationError):
        playbook_run_retry_failed(run=run, actor=owner)
    assert StepRun.objects.filter(run=run, status=StepStatus.QUEUED).count() == 0
