"""Time moves human steps: deadlines, escalation, overdue tasks, waits (time, duration, condition), and the stall check."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from playbooks.human.config import after, is_eligible
from playbooks.human.models import HumanStep, HumanStepKind, HumanStepState, Outcome, Participant, ParticipantRole
from playbooks.models import PlaybookRun, RunStatus, StepRun, StepStatus
from scenarios.logic import evaluate, truthy

logger = logging.getLogger(__name__)


def _parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else timezone.make_aware(moment)


def wait_time(now: datetime, config: dict[str, Any]) -> datetime | None:
    """When a wait ends by the clock: `until` (a time) or `minutes` (a duration); None for a pure condition wait."""
    return _parse(config.get("until")) or after(now, config.get("minutes"))


def wait_data(run: PlaybookRun) -> dict[str, Any]:
    """What a wait's condition reads: the scenario, each step's status and outcome, and the tracked tasks."""
    steps: dict[str, Any] = {}
    for step in run.step_runs.filter(undo_of__isnull=True):
        entry = steps.setdefault(step.step_key, {"status": step.status, "outcome": "", "done": 0, "total": 0})
        entry["total"] += 1
        entry["done"] += int(step.status == StepStatus.SUCCEEDED)
        entry["outcome"] = ((step.result or {}).get("data") or {}).get("outcome", "") or entry["outcome"]
        if step.status != StepStatus.SUCCEEDED:
            entry["status"] = step.status
    tasks = list(run.tasks.values("kind", "is_done", "status"))
    kinds: dict[str, Any] = {}
    for task in tasks:
        entry = kinds.setdefault(task["kind"], {"open": 0, "done": 0, "statuses": []})
        entry["done" if task["is_done"] else "open"] += 1
        entry["statuses"].append(task["status"])
    done = sum(1 for t in tasks if t["is_done"])
    return {
        "scenario": (run.context or {}).get("scenario", {}),
        "steps": steps,
        "tasks": {"total": len(tasks), "done": done, "open": len(tasks) - done, "kinds": kinds},
    }


def _lock(human_step_id: Any) -> tuple[HumanStep | None, PlaybookRun | None]:
    """Lock the run (if any) then the step: the engine's and the decision's order."""
    human = HumanStep.objects.filter(pk=human_step_id).only("run_id").first()
    if human is None:
        return None, None
    run = PlaybookRun.objects.select_for_update().filter(pk=human.run_id).first() if human.run_id else None
    return HumanStep.objects.select_for_update(of=("self",)).select_related("organization", "playbook", "run").get(pk=human_step_id), run


def human_step_check(*, human_step_id: Any, now: datetime | None = None) -> str:
    """Move one open step if its time came: escalate, time out, raise an overdue task, end a wait. Returns what happened."""
    from playbooks.human.services import _add_participants, _enqueue_notify, resolve
    from playbooks.services import timeline_add

    now = now or timezone.now()
    with transaction.atomic():
        human, run = _lock(human_step_id)
        if human is None or human.state != HumanStepState.OPEN:
            return ""
        human.last_checked_at = now
        human.save(update_fields=["last_checked_at"])
        if run is not None and run.status != RunStatus.RUNNING:
            from playbooks.human.services import human_step_cancel_for_run

            human_step_cancel_for_run(run)
            return "cancelled"
        if human.kind == HumanStepKind.WAIT:
            if human.wake_at and now >= human.wake_at:
                resolve(human, Outcome.TIME_REACHED)
                return "time_reached"
            condition = human.config.get("condition")
            if condition and run is not None and truthy(evaluate(condition, wait_data(run))):
                resolve(human, Outcome.CONDITION_MET)
                return "condition_met"
        if human.kind in (HumanStepKind.APPROVAL, HumanStepKind.STATUS_UPDATE, HumanStepKind.ACTIVATION):
            if human.escalate_at and not human.escalated_at and now >= human.escalate_at:
                added = _add_participants(human, human.config.get("escalate_to"), role=ParticipantRole.APPROVER, level=1)
                human.escalated_at = now
                human.save(update_fields=["escalated_at", "updated_at"])
                if run is not None:
                    names = ", ".join(p.user.get_username() for p in added) or "nobody new"
                    timeline_add(run, "escalated", f"{human.title}: no decision in time, escalated to {names}.", step_key=_step_key(human))
                _enqueue_notify(human.pk)
                return "escalated"
        if human.due_at and now >= human.due_at:
            if human.kind == HumanStepKind.TASK:
                if human.overdue_at is None:
                    human.overdue_at = now
                    human.save(update_fields=["overdue_at", "updated_at"])
                    if run is not None:
                        timeline_add(run, "task_overdue", f"{human.title} is overdue; its assignee was reminded.", step_key=_step_key(human))
                    from playbooks.human import tasks

                    transaction.on_commit(lambda: tasks.human_step_notify.delay(str(human.pk), True))
                    return "overdue"
                return ""
            resolve(human, Outcome.TIMED_OUT)
            return "timed_out"
    return ""


def _step_key(human: HumanStep) -> str:
    return human.step_run.step_key if human.step_run_id else ""


def human_steps_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: check every open step whose clock may have moved (or whose condition may now hold); re-send lost notices."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    # Only steps whose clock came (a deadline, a wake-up, an escalation) and condition waits (re-checked on every tick).
    due = (
        Q(due_at__lte=now) | Q(wake_at__lte=now) | Q(escalate_at__lte=now, escalated_at__isnull=True) | Q(kind=HumanStepKind.WAIT, config__has_key="condition")
    )
    open_steps = HumanStep.objects.filter(state=HumanStepState.OPEN).filter(due).exclude(kind=HumanStepKind.TASK, overdue_at__isnull=False)
    for human_step_id in open_steps.values_list("pk", flat=True):
        outcome = human_step_check(human_step_id=human_step_id, now=now)
        if outcome:
            counts[outcome] = counts.get(outcome, 0) + 1
    # A notice whose e-mail failed (SMTP down) was rolled back; send it again.
    grace = now - timedelta(seconds=60)
    unsent = Participant.objects.filter(human_step__state=HumanStepState.OPEN, notified_at__isnull=True, decided_at__isnull=True, created_at__lt=grace)
    from playbooks.human import tasks

    for human_step_id in set(unsent.values_list("human_step_id", flat=True)):
        tasks.human_step_notify.delay(str(human_step_id))
        counts["renotified"] = counts.get("renotified", 0) + 1
    return counts


def waits_recheck(*, run_ids: list[Any] | None = None, organization_id: Any = None) -> int:
    """Re-check condition waits now (data changed: a webhook, a step done). Returns waits that ended."""
    waits = HumanStep.objects.filter(state=HumanStepState.OPEN, kind=HumanStepKind.WAIT)
    if run_ids is not None:
        waits = waits.filter(run_id__in=run_ids)
    if organization_id is not None:
        waits = waits.filter(organization_id=organization_id)
    return sum(1 for pk in waits.values_list("pk", flat=True) if human_step_check(human_step_id=pk) in ("condition_met", "time_reached"))


def waits_recheck_later(run_id: Any) -> None:
    from playbooks.human import tasks

    transaction.on_commit(lambda: tasks.human_waits_recheck.delay(str(run_id)))


def _stall_grace() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "BASTION_HUMAN_STEP_STALL_GRACE_SECONDS", 600)))


def stall_reason(human: HumanStep | None, step_run: StepRun | None, now: datetime) -> str:
    """Why nothing will ever move this waiting step ("" when something will: a person who can act, a time, a deadline)."""
    if human is None or human.state != HumanStepState.OPEN:
        return "The step waits, but no open approval, task or wait backs it (lost when it was opened)."
    deadline = human.due_at if human.kind != HumanStepKind.TASK else None
    if deadline and deadline + _stall_grace() < now:
        return f"Its deadline passed at {timezone.localtime(deadline):%Y-%m-%d %H:%M} and its {human.config.get('on_timeout', 'branch')} path did not run."
    if human.kind == HumanStepKind.WAIT:
        if human.wake_at or deadline:
            return ""
        return "A wait on a condition without a deadline: if the condition never holds, nothing moves it."
    people = list(human.participants.select_related("user").filter(decided_at__isnull=True))
    can_act = [p for p in people if is_eligible(p.user, human.organization, p.required_role)]
    escalation_left = bool(human.escalate_at and not human.escalated_at and human.config.get("escalate_to"))
    if can_act or escalation_left or deadline:
        return ""
    who = "assignee" if human.kind == HumanStepKind.TASK else "approver"
    return f"No {who} who can still act (left, removed or demoted) and no deadline to take another path."


def human_steps_stall_check(*, now: datetime | None = None) -> list[str]:
    """Beat: raise every waiting step nothing will ever move (once, until it moves). Returns the flagged step ids."""
    from playbooks.services import timeline_add

    now = now or timezone.now()
    flagged: list[str] = []
    waiting = StepRun.objects.filter(status=StepStatus.WAITING, run__status=RunStatus.RUNNING).select_related("run")
    for step_run in waiting:
        human = HumanStep.objects.select_related("organization").filter(step_run=step_run).first()
        reason = stall_reason(human, step_run, now)
        if not reason:
            if human is not None and human.stalled_at:
                HumanStep.objects.filter(pk=human.pk).update(stalled_at=None, stalled_reason="")
            continue
        if human is not None and human.stalled_at:
            continue  # raised once already
        with transaction.atomic():
            if human is not None:
                HumanStep.objects.filter(pk=human.pk).update(stalled_at=now, stalled_reason=reason[:500])
            timeline_add(step_run.run, "stalled", f"{step_run.step_name} is stuck: {reason}", step_key=step_run.step_key, data={"step_run": str(step_run.pk)})
        logger.warning("playbooks.human.stalled", extra={"run": str(step_run.run_id), "step": step_run.step_key, "reason": reason})
        flagged.append(str(step_run.pk))
    # A trigger's proposal waits outside any run: raise it the same way (on the step, shown in the admin and the API).
    for human in HumanStep.objects.filter(kind=HumanStepKind.ACTIVATION, state=HumanStepState.OPEN, stalled_at__isnull=True).select_related("organization"):
        reason = stall_reason(human, None, now)
        if reason:
            HumanStep.objects.filter(pk=human.pk).update(stalled_at=now, stalled_reason=reason[:500])
            logger.warning("playbooks.human.proposal_stalled", extra={"human_step": str(human.pk), "reason": reason})
            flagged.append(str(human.pk))
    return flagged
