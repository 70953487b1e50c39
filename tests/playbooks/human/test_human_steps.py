"""Approval gates, human tasks and waits inside real runs: links from a real SMTP sink, decisions as POSTs, branches, deadlines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, Membership, Role
from playbooks.human.clock import human_steps_stall_check, human_steps_tick
from playbooks.human.models import HumanStep, Outcome, Participant
from playbooks.human.services import human_step_decide
from playbooks.models import PlaybookRun, RunStatus, StepRun, StepStatus
from playbooks.services import playbook_activate, playbook_create, playbook_preview
from tests.playbooks.conftest import created
from tests.playbooks.human.conftest import human_step, make_template, vendor_step

GATE = {"title": "Approve the public statement for {{ scenario.title }}", "approvers": [{"role": "admin"}], "timeout_minutes": 60}


def _branching_template(config: dict | None = None, name: str = "Gate"):
    return make_template(
        name,
        [
            human_step("approve", "approval", {**GATE, **(config or {})}),
            vendor_step("publish", depends_on=["approve"]),
            vendor_step("rework", depends_on=["approve:rejected"]),
            vendor_step("chase", depends_on=["approve:timed_out"]),
        ],
    )


@pytest.fixture
def start(organization, make_scenario, actions_integration, owner, on_commit):
    def run(template) -> PlaybookRun:
        playbook = playbook_create(organization=organization, scenario=make_scenario(), template=template, actor=owner)
        activated, _ = on_commit(playbook_activate, playbook=playbook, actor=owner)
        return PlaybookRun.objects.get(pk=activated.pk)

    return run


def _steps(run: PlaybookRun) -> dict[str, str]:
    return {s.step_key: s.status for s in StepRun.objects.filter(run=run)}


def _confirm_page(client: Client, token: str):
    page = client.get(f"/approvals/{token}/")
    csrf = client.cookies["csrftoken"].value
    return page, csrf


def test_approval_link_get_decides_nothing_post_approves_and_replay_is_refused(start, users_by_role, smtp_sink, sandbox, django_capture_on_commit_callbacks):
    admin, owner = users_by_role[Role.ADMIN], users_by_role[Role.OWNER]
    run = start(_branching_template())
    gate = HumanStep.objects.get(run=run)
    assert _steps(run) == {"approve": "waiting", "publish": "pending", "rework": "pending", "chase": "pending"}
    assert {p.user for p in gate.participants.all()} == {admin, owner}  # role admin or higher
    token = smtp_sink.link_for(admin.email)
    assert "decides nothing" in smtp_sink.to(admin.email)[0]["body"]

    # A link preview, a mail scanner or a chat unfurl: GET (and HEAD) decide nothing.
    scanner = Client()
    assert scanner.get(f"/approvals/{token}/").status_code == 200
    assert scanner.head(f"/approvals/{token}/").status_code == 200
    # A scanner that POSTs without the page's CSRF token is refused too.
    assert Client(enforce_csrf_checks=True).post(f"/approvals/{token}/", {"decision": "approve"}).status_code == 403
    gate.refresh_from_db()
    assert gate.state == "open" and not Participant.objects.filter(human_step=gate).exclude(decision="").exists()
    assert created(sandbox) == []

    person = Client(enforce_csrf_checks=True)
    page, csrf = _confirm_page(person, token)
    assert b"Opening this page decided nothing" in page.content and b'id="confirm-approve"' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        answer = person.post(f"/approvals/{token}/", {"decision": "approve", "comment": "ok to publish", "csrfmiddlewaretoken": csrf})
    assert answer.status_code == 200 and b"decision-recorded" in answer.content
    gate.refresh_from_db()
    assert gate.outcome == Outcome.APPROVED and gate.resolved_by == admin
    assert _steps(run) == {"approve": "succeeded", "publish": "succeeded", "rework": "skipped", "chase": "skipped"}
    assert [o["summary"] for o in created(sandbox)] == ["publish: DB outage"]
    assert PlaybookRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    decision = AuditEvent.objects.get(action="human_step.approve")
    assert decision.actor == admin and decision.changes["via"] == "email"

    # Replay of the same link: refused, nothing changes. The owner's unused link died with the decision.
    replay = person.post(f"/approvals/{token}/", {"decision": "reject", "csrfmiddlewaretoken": csrf})
    assert replay.status_code == 409 and b"already used" in replay.content
    other = smtp_sink.link_for(owner.email)
    assert Client().get(f"/approvals/{other}/").status_code == 404
    assert gate.participants.get(user=admin).decision == "approve" and gate.participants.get(user=owner).decision == ""


def test_forged_and_foreign_links_are_refused(start, users_by_role, smtp_sink, make_user, organization):
    admin = users_by_role[Role.ADMIN]
    run = start(_branching_template())
    token = smtp_sink.link_for(admin.email)
    assert Client().get(f"/approvals/{token[:-3]}abc/").status_code == 404
    # Signed in as someone else: the link is bound to its approver.
    other = make_user(Role.OWNER, organization, username="someone-else")
    client = Client()
    client.force_login(other)
    assert client.post(f"/approvals/{token}/", {"decision": "approve"}).status_code == 403
    assert HumanStep.objects.get(run=run).state == "open"


def test_demoted_approver_is_refused_and_the_refusal_audited(start, users_by_role, smtp_sink):
    admin = users_by_role[Role.ADMIN]
    run = start(_branching_template())
    token = smtp_sink.link_for(admin.email)
    Membership.objects.filter(user=admin).update(role=Role.VIEWER)
    client = Client()
    answer = client.post(f"/approvals/{token}/", {"decision": "approve"})
    assert answer.status_code == 403 and b"no longer hold the admin role" in answer.content
    gate = HumanStep.objects.get(run=run)
    assert gate.state == "open" and gate.participants.get(user=admin).decision == ""
    assert AuditEvent.objects.filter(action="human_step.refused", actor=admin, changes__code="role_changed").exists()
    assert _steps(run)["publish"] == "pending"


def test_reject_takes_the_reject_branch(start, users_by_role, smtp_sink, sandbox, on_commit):
    run = start(_branching_template())
    gate = HumanStep.objects.get(run=run)
    on_commit(human_step_decide, human_step=gate, user=users_by_role[Role.OWNER], decision="reject", comment="wrong numbers")
    assert _steps(run) == {"approve": "succeeded", "publish": "skipped", "rework": "succeeded", "chase": "skipped"}
    assert [o["summary"] for o in created(sandbox)] == ["rework: DB outage"]
    assert run.timeline.filter(kind="rejected", message__contains="taking the rejected branch").exists()


def test_reject_can_cancel_the_run(start, users_by_role, smtp_sink, sandbox, on_commit):
    run = start(_branching_template({"on_reject": "cancel"}))
    on_commit(human_step_decide, human_step=HumanStep.objects.get(run=run), user=users_by_role[Role.ADMIN], decision="reject")
    assert PlaybookRun.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert created(sandbox) == []


def test_timeout_takes_the_timeout_branch_or_continues_with_the_default(start, smtp_sink, sandbox, on_commit):
    run = start(_branching_template())
    assert on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=59)) == {}
    assert on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=61)) == {"timed_out": 1}
    assert _steps(run) == {"approve": "succeeded", "publish": "skipped", "rework": "skipped", "chase": "succeeded"}

    other = start(_branching_template({"on_timeout": "continue"}, name="Gate continue"))
    on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=61))
    assert _steps(other) == {"approve": "succeeded", "publish": "succeeded", "rework": "skipped", "chase": "skipped"}
    assert HumanStep.objects.get(run=other).outcome == Outcome.TIMED_OUT


def test_two_of_three_named_approvers(start, organization, make_user, smtp_sink, on_commit):
    people = [make_user(Role.EDITOR, organization, username=f"board{i}") for i in range(3)]
    run = start(_branching_template({"approvers": [{"user": p.username} for p in people], "required": 2, "veto": False}))
    gate = HumanStep.objects.get(run=run)
    assert gate.participants.count() == 3 and gate.required_approvals == 2
    on_commit(human_step_decide, human_step=gate, user=people[0], decision="approve")
    on_commit(human_step_decide, human_step=gate, user=people[1], decision="reject")  # without a veto, 2 of 3 is still reachable
    assert HumanStep.objects.get(pk=gate.pk).state == "open" and _steps(run)["publish"] == "pending"
    on_commit(human_step_decide, human_step=gate, user=people[2], decision="approve")
    gate.refresh_from_db()
    assert gate.outcome == Outcome.APPROVED and _steps(run)["publish"] == "succeeded"
    assert run.timeline.filter(kind="approval_vote", message__contains="(2 of 2)").exists()


def test_escalation_to_the_next_approver_after_the_deadline(start, organization, make_user, smtp_sink, on_commit):
    first = make_user(Role.EDITOR, organization, username="first-approver")
    deputy = make_user(Role.EDITOR, organization, username="deputy")
    config = {"approvers": [{"user": "first-approver"}], "escalate_after_minutes": 15, "escalate_to": [{"user": "deputy"}]}
    run = start(_branching_template(config))
    assert smtp_sink.to(first.email) and not smtp_sink.to(deputy.email)
    on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=16))
    assert len(smtp_sink.to(deputy.email)) == 1
    assert run.timeline.filter(kind="escalated", message__contains="deputy").exists()
    on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=17))  # escalates once
    assert len(smtp_sink.to(deputy.email)) == 1
    client = Client()
    token = smtp_sink.link_for(deputy.email)
    client.get(f"/approvals/{token}/")
    from django.test.utils import CaptureQueriesContext  # noqa: F401 - keeps the import list honest for readers

    client.post(f"/approvals/{token}/", {"decision": "approve"})
    assert _steps(run)["approve"] == "succeeded"
    assert HumanStep.objects.get(run=run).participants.get(user=deputy).via.startswith("escalation 1")


def test_sequential_approvals_and_approvals_inside_branches(start, users_by_role, smtp_sink, sandbox, on_commit):
    template = make_template(
        "Two gates",
        [
            human_step("legal", "approval", {**GATE, "title": "Legal sign-off"}),
            human_step("ceo", "approval", {**GATE, "title": "CEO sign-off", "approvers": [{"role": "owner"}]}, depends_on=["legal"]),
            vendor_step("announce", depends_on=["ceo"]),
            human_step("appeal", "approval", {**GATE, "title": "Appeal"}, depends_on=["legal:rejected"]),
            vendor_step("announce_after_appeal", depends_on=["appeal"]),
        ],
    )
    admin, owner = users_by_role[Role.ADMIN], users_by_role[Role.OWNER]
    run = start(template)
    assert _steps(run)["ceo"] == "pending"
    on_commit(human_step_decide, human_step=HumanStep.objects.get(run=run, step_run__step_key="legal"), user=admin, decision="approve")
    assert _steps(run)["ceo"] == "waiting"
    with pytest.raises(Exception, match="not asked"):
        human_step_decide(human_step=HumanStep.objects.get(run=run, step_run__step_key="ceo"), user=admin, decision="approve")
    on_commit(human_step_decide, human_step=HumanStep.objects.get(run=run, step_run__step_key="ceo"), user=owner, decision="approve")
    assert _steps(run) == {"legal": "succeeded", "ceo": "succeeded", "announce": "succeeded", "appeal": "skipped", "announce_after_appeal": "skipped"}

    second = start(make_template("Two gates b", [dict(s) for s in [
        human_step("legal", "approval", {**GATE, "title": "Legal sign-off"}),
        human_step("appeal", "approval", {**GATE, "title": "Appeal"}, depends_on=["legal:rejected"]),
        vendor_step("announce_after_appeal", depends_on=["appeal"]),
    ]]))  # fmt: skip
    on_commit(human_step_decide, human_step=HumanStep.objects.get(run=second, step_run__step_key="legal"), user=admin, decision="reject")
    assert _steps(second)["appeal"] == "waiting"
    on_commit(human_step_decide, human_step=HumanStep.objects.get(run=second, step_run__step_key="appeal"), user=owner, decision="approve")
    assert _steps(second) == {"legal": "succeeded", "appeal": "succeeded", "announce_after_appeal": "succeeded"}
    assert PlaybookRun.objects.get(pk=second.pk).status == RunStatus.SUCCEEDED


def test_decision_after_the_run_was_cancelled_is_refused(start, users_by_role, smtp_sink, on_commit):
    from playbooks.services import playbook_run_cancel

    admin = users_by_role[Role.ADMIN]
    run = start(_branching_template())
    token = smtp_sink.link_for(admin.email)
    on_commit(playbook_run_cancel, run=run, actor=users_by_role[Role.OWNER])
    assert HumanStep.objects.get(run=run).state == "cancelled"
    assert Client().post(f"/approvals/{token}/", {"decision": "approve"}).status_code == 404  # the link died with the run
    with pytest.raises(Exception, match="already settled|run is cancelled"):
        human_step_decide(human_step=HumanStep.objects.get(run=run), user=admin, decision="approve")


def test_human_task_done_from_the_war_room_and_overdue_raised(start, users_by_role, organization, make_user, smtp_sink, on_commit, sandbox):
    scribe = make_user(Role.EDITOR, organization, username="scribe")
    template = make_template(
        "Task",
        [
            human_step("call_regulator", "human_task", {"title": "Call the regulator", "assignee": {"user": "scribe"}, "due_minutes": 30}),
            vendor_step("log_call", depends_on=["call_regulator"]),
        ],
    )
    run = start(template)
    assert "Task for you: Call the regulator" in smtp_sink.to(scribe.email)[0]["subject"]
    on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=31))
    task = HumanStep.objects.get(run=run)
    assert task.overdue_at is not None and run.timeline.filter(kind="task_overdue").exists()
    assert smtp_sink.to(scribe.email)[-1]["subject"].startswith("Reminder: Task for you")
    on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=40))
    assert len(smtp_sink.to(scribe.email)) == 2  # reminded once

    client = Client()
    client.force_login(scribe)
    page = client.get(f"/playbooks/{run.playbook_id}/war-room/?run={run.pk}")
    assert page.status_code == 200
    view = client.get(f"/api/playbook-runs/{run.pk}/").json()
    assert {s["key"]: s["status"] for s in view["steps"]}["call_regulator"] == "waiting"
    assert any(a["kind"] == "task_overdue" for a in view["attention"])
    from django.template.loader import render_to_string

    html = render_to_string("playbooks/_human_steps.html", {"run": run, "request": page.wsgi_request})
    assert "Call the regulator is overdue" in html and f'id="task-done-{task.pk}"' in html
    # Someone who is not the assignee cannot mark it done.
    viewer = Client()
    viewer.force_login(users_by_role[Role.OWNER])
    viewer.post(f"/human-steps/{task.pk}/decide/", {"decision": "done"})
    assert HumanStep.objects.get(pk=task.pk).state == "open"
    with_callbacks = on_commit(client.post, f"/human-steps/{task.pk}/decide/", {"decision": "done"})
    assert with_callbacks.status_code == 302
    assert HumanStep.objects.get(pk=task.pk).outcome == Outcome.DONE
    assert _steps(run) == {"call_regulator": "succeeded", "log_call": "succeeded"}


def test_wait_until_a_condition_is_rechecked_when_data_changes(start, actions_integration, smtp_sink, on_commit, sandbox):
    from playbooks.models import Task
    from playbooks.services import webhook_events_apply
    from playbooks.triggers.services import trigger_events_evaluate

    template = make_template(
        "Wait",
        [
            vendor_step("open_issue", task_kind="jira_issue"),
            human_step(
                "until_fixed",
                "wait",
                {"condition": {"==": [{"var": "tasks.kinds.jira_issue.open"}, 0]}, "timeout_minutes": 240, "title": "Wait until the issue is closed"},
                depends_on=["open_issue"],
            ),
            vendor_step("all_clear", depends_on=["until_fixed"]),
        ],
    )
    run = start(template)
    assert _steps(run) == {"open_issue": "succeeded", "until_fixed": "waiting", "all_clear": "pending"}
    assert on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=5)) == {}
    issue = Task.objects.get(run=run)
    event = {"delivery_id": "d-1", "event_type": "object.status_changed", "entity": "issue", "external_id": issue.external_id, "action": "status",
             "record": {"status": "done"}, "occurred_at": timezone.now().isoformat(), "challenge_response": None}  # fmt: skip
    # The two registered event handlers, in the order the sync engine calls them.
    webhook_events_apply(str(actions_integration.pk), [event])
    on_commit(trigger_events_evaluate, str(actions_integration.pk), [event])
    assert HumanStep.objects.get(run=run).outcome == Outcome.CONDITION_MET
    assert _steps(run)["all_clear"] == "succeeded"


def test_wait_for_a_duration(start, smtp_sink, on_commit, sandbox):
    run = start(make_template("Pause", [human_step("pause", "wait", {"minutes": 10}), vendor_step("after", depends_on=["pause"])]))
    assert on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=9)) == {}
    assert on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=11)) == {"time_reached": 1}
    assert _steps(run) == {"pause": "succeeded", "after": "succeeded"}


def test_stall_check_raises_a_run_waiting_with_nothing_to_move_it(start, users_by_role, organization, make_user, smtp_sink, on_commit):
    run = start(make_template("Stuck", [human_step("until", "wait", {"condition": {"==": [1, 2]}, "timeout_minutes": 60})]))
    wait = HumanStep.objects.get(run=run)
    assert human_steps_stall_check() == []
    HumanStep.objects.filter(pk=wait.pk).update(due_at=None)  # its deadline lost (rendered empty, edited away)
    flagged = human_steps_stall_check()
    assert flagged == [str(wait.step_run_id)]
    assert "without a deadline" in HumanStep.objects.get(pk=wait.pk).stalled_reason
    assert run.timeline.filter(kind="stalled").count() == 1
    assert human_steps_stall_check() == []  # raised once

    lonely = make_user(Role.EDITOR, organization, username="lonely")
    other = start(make_template("Orphan", [human_step("gate", "approval", {**GATE, "approvers": [{"user": "lonely"}]})]))
    gate = HumanStep.objects.get(run=other)
    HumanStep.objects.filter(pk=gate.pk).update(due_at=None)
    assert human_steps_stall_check() == []  # lonely can still decide
    Membership.objects.filter(user=lonely).delete()
    assert human_steps_stall_check() == [str(gate.step_run_id)]
    assert "No approver who can still act" in HumanStep.objects.get(pk=gate.pk).stalled_reason

    # A waiting step with nothing behind it at all.
    third = start(make_template("Lost", [human_step("gate", "approval", GATE)]))
    HumanStep.objects.filter(run=third).delete()
    assert human_steps_stall_check() == [str(StepRun.objects.get(run=third).pk)]


def test_a_template_without_deadlines_cannot_run(organization, make_scenario, owner, actions_integration):
    template = make_template(
        "No deadline", [human_step("gate", "approval", {"approvers": [{"role": "admin"}]}), human_step("w", "wait", {"condition": {"==": [1, 1]}})]
    )
    playbook = playbook_create(organization=organization, scenario=make_scenario(), template=template, actor=owner)
    blocked = {p.key: p.blocked_reason for p in playbook_preview(playbook=playbook)}
    assert "timeout_minutes is required" in blocked["gate"] and "needs timeout_minutes" in blocked["w"]


def test_status_update_drafted_from_the_timeline_and_sent_after_approval(start, users_by_role, smtp_sink, on_commit, sandbox):
    template = make_template(
        "Update",
        [
            vendor_step("open_issue", task_kind="jira_issue"),
            human_step(
                "exec_update",
                "status_update",
                {
                    **GATE,
                    "title": "Executive update",
                    "send": {
                        "connector_key": "sandbox_actions",
                        "action": "send_email",
                        "payload": {"to": ["exec@acme.example"], "subject": "Update: {{ scenario.title }}"},
                    },
                },
                depends_on=["open_issue"],
            ),
        ],
    )
    run = start(template)
    update = HumanStep.objects.get(run=run)
    assert "Done (1): Open issue" in update.draft and "Pending (1): Exec update" in update.draft
    assert "Draft to be sent" in smtp_sink.to(users_by_role[Role.ADMIN].email)[0]["body"]
    on_commit(human_step_decide, human_step=update, user=users_by_role[Role.ADMIN], decision="approve")
    sent = [o for o in created(sandbox) if "Update: DB outage" in o["summary"]]
    assert len(sent) == 1
    step = StepRun.objects.get(run=run, step_key="exec_update")
    assert step.status == StepStatus.SUCCEEDED and step.connector_key == "sandbox_actions" and "Done (1)" in step.payload["body"]


def test_smtp_down_leaves_the_notice_for_the_beat(start, users_by_role, smtp_sink, settings, on_commit):
    admin = users_by_role[Role.ADMIN]
    real_port = settings.EMAIL_PORT
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        settings.EMAIL_PORT = probe.getsockname()[1]
    run = start(_branching_template())
    gate = HumanStep.objects.get(run=run)
    assert not smtp_sink.to(admin.email) and not gate.participants.exclude(notified_at=None).exists()
    settings.EMAIL_PORT = real_port
    Participant.objects.filter(human_step=gate).update(created_at=timezone.now() - timedelta(minutes=2))
    assert on_commit(human_steps_tick)["renotified"] == 1
    assert len(smtp_sink.to(admin.email)) == 1 and not gate.participants.filter(notified_at=None).exists()
    on_commit(human_steps_tick)
    assert len(smtp_sink.to(admin.email)) == 1  # once only


def test_a_proposal_that_times_out_is_dropped_or_activated(organization, make_scenario, crisis_template, actions_integration, owner, smtp_sink, on_commit):
    from playbooks.human.services import activation_propose

    bindings = {key: str(actions_integration.pk) for key in ("slack", "jira", "google_calendar", "email", "pagerduty", "statuspage")}
    dropped = playbook_create(organization=organization, scenario=make_scenario(), template=crisis_template, integration_bindings=bindings, actor=owner)
    kept = playbook_create(organization=organization, scenario=make_scenario(), template=crisis_template, integration_bindings=bindings, actor=owner)
    on_commit(activation_propose, playbook=dropped, approval={"approvers": [{"role": "admin"}], "timeout_minutes": 30}, title="Activate?")
    on_commit(
        activation_propose, playbook=kept, approval={"approvers": [{"role": "admin"}], "timeout_minutes": 30, "on_timeout": "activate"}, title="Activate?"
    )
    assert on_commit(human_steps_tick, now=timezone.now() + timedelta(minutes=31)) == {"timed_out": 2}
    assert not PlaybookRun.objects.filter(playbook=dropped).exists()
    assert PlaybookRun.objects.filter(playbook=kept).exists()
    assert AuditEvent.objects.filter(action="trigger.proposal_timed_out").count() == 2


def test_human_task_done_from_the_e_mailed_link_after_confirmation(start, organization, make_user, smtp_sink, sandbox, django_capture_on_commit_callbacks):
    scribe = make_user(Role.EDITOR, organization, username="scribe2")
    run = start(
        make_template(
            "Task link",
            [
                human_step("call", "human_task", {"title": "Call the insurer", "assignee": {"user": "scribe2"}, "due_minutes": 60}),
                vendor_step("after", depends_on=["call"]),
            ],
        )
    )
    token = smtp_sink.link_for(scribe.email)
    client = Client(enforce_csrf_checks=True)
    page, csrf = _confirm_page(client, token)
    assert b'id="confirm-done"' in page.content and b"confirm-approve" not in page.content
    assert HumanStep.objects.get(run=run).state == "open"
    assert client.post(f"/approvals/{token}/", {"decision": "approve", "csrfmiddlewaretoken": csrf}).status_code == 400  # a task is done, not approved
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/approvals/{token}/", {"decision": "done", "csrfmiddlewaretoken": csrf}).status_code == 200
    assert HumanStep.objects.get(run=run).outcome == Outcome.DONE and _steps(run)["after"] == "succeeded"


def test_stall_check_raises_a_proposal_nobody_can_approve(organization, make_scenario, crisis_template, owner, smtp_sink, on_commit):
    from playbooks.human.services import activation_propose

    playbook = playbook_create(organization=organization, scenario=make_scenario(), template=crisis_template, actor=owner)
    proposal = on_commit(activation_propose, playbook=playbook, approval={"approvers": [{"user": "nobody-here"}], "timeout_minutes": 30}, title="Activate?")
    assert human_steps_stall_check() == []  # its deadline will drop it
    HumanStep.objects.filter(pk=proposal.pk).update(due_at=None)
    assert human_steps_stall_check() == [str(proposal.pk)]
    assert "No approver who can still act" in HumanStep.objects.get(pk=proposal.pk).stalled_reason
    assert human_steps_stall_check() == []
