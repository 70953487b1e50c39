"""Exactly-once across re-activations, resumes and crashes: e-mails to a real SMTP server, the other vendors over real HTTP."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import requests
from aiosmtpd.controller import Controller
from django.utils import timezone

from integrations.services import integration_connect
from playbooks import execution_guards
from playbooks.models import RunStatus, StepRun, StepStatus, Task
from playbooks.services import (
    playbook_activate,
    playbook_create,
    playbook_run_cancel,
    playbook_run_resume,
    playbook_run_retry_failed,
    playbook_runs_resume_stalled,
    step_run_execute,
)
from tests.conftest import wait_for


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope)
        return "250 OK"

    def recipients(self) -> list[str]:
        return sorted(address for message in self.messages for address in message.rcpt_tos)


@pytest.fixture
def inbox():
    box = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    yield box
    controller.stop()


@pytest.fixture
def mail_playbook(organization, make_scenario, crisis_template, vendor_integrations, inbox, owner):
    """The crisis template on the real Slack, Jira, Calendar and PagerDuty stand-ins, e-mail through a real SMTP server."""
    email = integration_connect(
        organization=organization, connector_key="email", credentials={}, config={"host": "127.0.0.1", "port": inbox.port, "from_email": "bastion@acme.example"}
    )
    email.refresh_from_db()
    assert email.status == "connected", email.last_error
    bindings = {key: str(integration.pk) for key, integration in vendor_integrations.items()} | {"email": str(email.pk)}
    return playbook_create(organization=organization, scenario=make_scenario(), template=crisis_template, integration_bindings=bindings, actor=owner)


def _activate(playbook, owner, on_commit):
    run, created = on_commit(playbook_activate, playbook=playbook, actor=owner)
    assert created
    run.refresh_from_db()
    return run


def test_reactivating_after_cancel_with_undo_sends_no_email_twice_and_recreates_what_was_undone(mail_playbook, owner, on_commit, inbox, sandbox):
    first = _activate(mail_playbook, owner, on_commit)
    assert first.status == RunStatus.SUCCEEDED, first.error_summary
    sent = inbox.recipients()
    assert len(sent) == len(set(sent)) >= 20  # one e-mail per stakeholder (and the CISO brief when the scenario asks)
    channel = Task.objects.get(run=first, kind="channel")

    on_commit(playbook_run_cancel, run=first, undo=True, actor=owner)
    first.refresh_from_db()
    assert first.status == RunStatus.CANCELLED
    assert not first.step_runs.filter(undo_of__isnull=False).exclude(status=StepStatus.SUCCEEDED).exists()

    second = _activate(mail_playbook, owner, on_commit)
    assert second.status == RunStatus.SUCCEEDED, second.error_summary
    assert inbox.recipients() == sent  # nobody got a second e-mail
    notify = second.step_runs.filter(connector_key="email", undo_of__isnull=True).exclude(status=StepStatus.SKIPPED)
    assert notify.exists() and all(s.reused_existing and s.status == StepStatus.SUCCEEDED for s in notify)
    # Undone objects are created afresh: a new channel (Bastion's archived one keeps its name) and 17 new issues.
    new_channel = Task.objects.get(run=second, kind="channel")
    assert new_channel.external_id != channel.external_id
    assert new_channel.title.endswith("-2")
    first_issues = set(Task.objects.filter(run=first, kind="jira_issue").values_list("external_id", flat=True))
    second_issues = set(Task.objects.filter(run=second, kind="jira_issue").values_list("external_id", flat=True))
    assert len(second_issues) == 17 and not first_issues & second_issues
    assert all(key.endswith("~2") for key in second.step_runs.filter(step_key="create_tasks").values_list("idempotency_key", flat=True))


def test_reactivating_after_cancel_without_undo_reuses_everything(mail_playbook, owner, on_commit, inbox, sandbox):
    first = _activate(mail_playbook, owner, on_commit)
    sent = inbox.recipients()
    first.status = RunStatus.CANCELLED  # as a cancel without undo mid-run leaves it (a finished run cannot be cancelled without undo)
    first.save(update_fields=["status"])
    jira_writes = len([r for r in requests.get(f"{sandbox}/_control/requests", params={"vendor": "jira"}, timeout=5).json() if r["method"] == "POST"])

    second = _activate(mail_playbook, owner, on_commit)
    assert second.status == RunStatus.SUCCEEDED, second.error_summary
    assert inbox.recipients() == sent
    assert set(Task.objects.filter(run=second).values_list("external_id", flat=True)) == set(
        Task.objects.filter(run=first).values_list("external_id", flat=True)
    )
    after = len([r for r in requests.get(f"{sandbox}/_control/requests", params={"vendor": "jira"}, timeout=5).json() if r["method"] == "POST"])
    assert after == jira_writes  # nothing asked of Jira again: every step reused its earlier result


def test_an_interrupted_email_is_never_resent_automatically_and_retry_sends_it_once(mail_playbook, owner, on_commit, inbox):
    run = _activate(mail_playbook, owner, on_commit)
    step = run.step_runs.filter(connector_key="email", undo_of__isnull=True).first()
    # The worker died after the delivery started and before its outcome was recorded.
    StepRun.objects.filter(pk=step.pk).update(
        status=StepStatus.RUNNING,
        external_id="",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        result={**step.result, execution_guards.DELIVERY_MARK: timezone.now().isoformat()},
    )
    Task.objects.filter(step_run=step).delete()
    run.status = RunStatus.RUNNING
    run.save(update_fields=["status"])
    before = inbox.recipients()

    on_commit(playbook_runs_resume_stalled)
    step.refresh_from_db()
    assert step.status == StepStatus.FAILED and "not sent again automatically" in step.last_error
    assert inbox.recipients() == before

    run.refresh_from_db()
    on_commit(playbook_run_retry_failed, run=run, actor=owner)
    step.refresh_from_db()
    assert step.status == StepStatus.SUCCEEDED, step.last_error
    assert len(inbox.recipients()) == len(before) + len(step.payload["to"])


def test_a_key_in_flight_in_another_run_waits_instead_of_racing(crisis_playbook, owner, on_commit, sandbox, monkeypatch):
    run = _activate(crisis_playbook, owner, on_commit)
    channel = run.step_runs.get(step_key="create_channel")
    # A cancelled earlier run's worker is still performing the same key right now.
    StepRun.objects.filter(pk=channel.pk).update(status=StepStatus.RUNNING, lease_expires_at=timezone.now() + timedelta(minutes=1))
    run.status = RunStatus.CANCELLED
    run.save(update_fields=["status"])
    sent: list = []
    monkeypatch.setattr("playbooks.services.engine._enqueue_steps", lambda groups, countdown=None: sent.append((groups, countdown)))
    second = _activate(crisis_playbook, owner, on_commit)
    waiting = second.step_runs.get(step_key="create_channel")
    assert waiting.status == StepStatus.QUEUED
    calls_before = len(requests.get(f"{sandbox}/_control/requests", params={"vendor": "sandbox_actions"}, timeout=5).json())
    sent.clear()
    step_run_execute(step_run_id=waiting.pk)
    waiting.refresh_from_db()
    assert waiting.status == StepStatus.QUEUED and waiting.attempts == 0
    assert sent == [([[str(waiting.pk)]], 2)]  # tried again in 2 s, without calling the vendor
    assert len(requests.get(f"{sandbox}/_control/requests", params={"vendor": "sandbox_actions"}, timeout=5).json()) == calls_before


def test_key_generations_after_undo():
    assert execution_guards.key_after_undo("pb-x-1", set()) == "pb-x-1"
    assert execution_guards.key_after_undo("pb-x-1", {"pb-x-1"}) == "pb-x-1~2"
    assert execution_guards.key_after_undo("pb-x-1", {"pb-x-1", "pb-x-1~2"}) == "pb-x-1~3"


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_a_running_steps_lease(crisis_playbook, owner, settings):
    settings.BASTION_PLAYBOOK_STEP_LEASE_SECONDS = 3
    run, _ = playbook_activate(playbook=crisis_playbook, actor=owner)
    step = run.step_runs.first()
    soon = timezone.now() + timedelta(seconds=1)
    StepRun.objects.filter(pk=step.pk).update(status=StepStatus.RUNNING, lease_expires_at=soon)
    with execution_guards.lease_kept([step.pk]):
        renewed = wait_for(lambda: StepRun.objects.get(pk=step.pk).lease_expires_at > soon + timedelta(seconds=1), timeout=30, message="a renewed lease")
    assert renewed
    # A lease that is no longer renewed (the worker died) is taken back by the resume check.
    StepRun.objects.filter(pk=step.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    type(run).objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    assert playbook_run_resume(run=run) == [str(step.pk)]


def test_a_stalled_step_is_raised_under_needs_attention_with_what_happens_next(crisis_playbook, owner, on_commit):
    from playbooks.selectors import playbook_run_view

    run = _activate(crisis_playbook, owner, on_commit)
    step = run.step_runs.get(step_key="create_channel")
    StepRun.objects.filter(pk=step.pk).update(status=StepStatus.RUNNING, lease_expires_at=timezone.now() - timedelta(seconds=5))
    type(run).objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    run.refresh_from_db()
    attention = playbook_run_view(run=run)["attention"]
    stalled = [item for item in attention if item["kind"] == "step_stalled"]
    assert len(stalled) == 1 and stalled[0]["step_key"] == "create_channel"
    assert "resumes them automatically within a minute" in stalled[0]["message"]


def test_only_a_run_that_succeeded_counts_time_saved(crisis_playbook, owner, on_commit):
    from playbooks.selectors import time_saved

    run = _activate(crisis_playbook, owner, on_commit)
    assert run.status == RunStatus.SUCCEEDED and time_saved(run)["saved_minutes"] > 100
    on_commit(playbook_run_cancel, run=run, undo=True, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert time_saved(run) == {"baseline_minutes": run.manual_baseline_minutes, "activation_ms": None, "saved_minutes": None, "saved_percent": None}


def test_a_step_made_ready_while_skips_cascade_is_dispatched_once(organization, make_scenario, actions_integration, owner, monkeypatch):
    from playbooks.models import PlaybookStepTemplate, PlaybookTemplate

    template = PlaybookTemplate.objects.create(scenario_type="crisis_management", name="Cascade check")
    payload = {"kind": "note", "title": "t {{ item.key }}"}
    PlaybookStepTemplate.objects.create(
        template=template,
        key="never",
        name="Never",
        connector_key="sandbox_actions",
        action="create_object",
        payload_template=payload,
        condition={"==": [1, 2]},
    )
    PlaybookStepTemplate.objects.create(
        template=template, key="after", name="After", connector_key="sandbox_actions", action="create_object", payload_template=payload, depends_on=["never"]
    )
    PlaybookStepTemplate.objects.create(
        template=template, key="free", name="Free", connector_key="sandbox_actions", action="create_object", payload_template=payload, position=2
    )
    playbook = playbook_create(
        organization=organization,
        scenario=make_scenario(),
        template=template,
        integration_bindings={"sandbox_actions": str(actions_integration.pk)},
        actor=owner,
    )
    sent: list = []
    monkeypatch.setattr("playbooks.services.engine._enqueue_steps", lambda groups, countdown=None: sent.extend(groups))
    monkeypatch.setattr("playbooks.services.runs._enqueue_advance", lambda run_id: None)
    from playbooks.services import playbook_run_advance

    run, _ = playbook_activate(playbook=playbook, actor=owner)
    playbook_run_advance(run_id=run.pk)
    free = run.step_runs.get(step_key="free")
    assert sent == [[str(free.pk)]]
    assert run.step_runs.get(step_key="after").status == StepStatus.SKIPPED
