"""Decisions that arrive while the run is held by another transaction (the engine pausing it at the gate, a cancel, an advance).

The decision locks the run before the step, in the engine's order, so it waits for whatever holds the run and then sees
what that committed: after a cancel it is refused and changes nothing; after an advance it counts and the run moves on.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from accounts.models import AuditEvent, Role
from common.errors import ApplicationError
from playbooks.human.models import HumanStep, Outcome
from playbooks.human.services import human_step_decide
from playbooks.models import PlaybookRun, RunStatus, StepRun
from playbooks.services import playbook_activate, playbook_create, playbook_run_cancel
from tests.conftest import wait_for
from tests.playbooks.human.conftest import human_step, make_template, vendor_step

GATE = {"title": "Go?", "approvers": [{"role": "admin"}], "timeout_minutes": 60}


def _blocked_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


def _hold_run(run_id, locked: threading.Event, release: threading.Event, then=None) -> None:
    try:
        with transaction.atomic():
            run = PlaybookRun.objects.select_for_update().get(pk=run_id)
            locked.set()
            release.wait(30)
            if then is not None:
                then(run)
    finally:
        connections.close_all()


def _decide_in_thread(human: HumanStep, user, outcome: dict) -> threading.Thread:
    def decide() -> None:
        try:
            outcome["step"] = human_step_decide(human_step=human, user=user, decision="approve")
        except ApplicationError as error:
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=decide)
    thread.start()
    return thread


@pytest.fixture
def gated_run(organization, make_scenario, actions_integration, owner):
    template = make_template("Gate", [human_step("approve", "approval", GATE), vendor_step("publish", depends_on=["approve"])])
    playbook = playbook_create(organization=organization, scenario=make_scenario(), template=template, actor=owner)
    run, _ = playbook_activate(playbook=playbook, actor=owner)  # transactional test: tasks run eagerly on commit
    wait_for(lambda: HumanStep.objects.filter(run=run).exists(), message="the gate to open")
    return run


@pytest.mark.django_db(transaction=True)
def test_approval_arriving_while_the_run_is_being_cancelled_waits_then_is_refused(gated_run, users_by_role, sandbox):
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_run, args=(gated_run.pk, locked, release, lambda run: playbook_run_cancel(run=run, actor=users_by_role[Role.OWNER])))
    holder.start()
    assert locked.wait(10)
    outcome: dict = {}
    decider = _decide_in_thread(HumanStep.objects.get(run=gated_run), users_by_role[Role.ADMIN], outcome)
    wait_for(_blocked_on_a_lock, message="the decision to wait for the run's lock")
    assert "step" not in outcome and "error" not in outcome
    release.set()
    holder.join(10)
    decider.join(10)
    assert outcome["error"].code == "run_not_running" and outcome["error"].status_code == 409
    assert PlaybookRun.objects.get(pk=gated_run.pk).status == RunStatus.CANCELLED
    assert HumanStep.objects.get(run=gated_run).state == "cancelled"
    assert StepRun.objects.get(run=gated_run, step_key="publish").status == "cancelled"
    assert AuditEvent.objects.filter(action="human_step.refused", changes__code="run_not_running").exists()


@pytest.mark.django_db(transaction=True)
def test_approval_arriving_while_the_engine_holds_the_run_waits_then_counts(gated_run, users_by_role, sandbox):
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_run, args=(gated_run.pk, locked, release))
    holder.start()
    assert locked.wait(10)
    outcome: dict = {}
    decider = _decide_in_thread(HumanStep.objects.get(run=gated_run), users_by_role[Role.ADMIN], outcome)
    wait_for(_blocked_on_a_lock, message="the decision to wait for the run's lock")
    release.set()
    holder.join(10)
    decider.join(10)
    assert outcome["step"].outcome == Outcome.APPROVED
    wait_for(lambda: PlaybookRun.objects.get(pk=gated_run.pk).status == RunStatus.SUCCEEDED, message="the run to finish")
    assert StepRun.objects.get(run=gated_run, step_key="publish").status == "succeeded"
