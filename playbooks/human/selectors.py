"""Reads for human steps: what waits on people in a run or an organization, and what needs attention."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Organization
from playbooks.human.config import is_eligible
from playbooks.human.models import HumanStep, HumanStepKind, HumanStepState


def human_step_list(*, organization: Organization, run_id: Any = None, state: str | None = None) -> QuerySet[HumanStep]:
    steps = HumanStep.objects.filter(organization=organization).select_related("playbook", "run", "step_run").prefetch_related("participants__user")
    if run_id:
        steps = steps.filter(run_id=run_id)
    if state:
        steps = steps.filter(state=state)
    return steps.order_by("-created_at")


def human_step_view(human: HumanStep, *, user: Any = None) -> dict[str, Any]:
    """One step as the war room, the API and the confirmation page show it."""
    participants = list(human.participants.all())
    mine = next((p for p in participants if user is not None and p.user_id == getattr(user, "pk", None)), None)
    return {
        "id": str(human.pk),
        "kind": human.kind,
        "title": human.title,
        "description": human.description,
        "state": human.state,
        "outcome": human.outcome,
        "run_id": str(human.run_id) if human.run_id else None,
        "playbook_id": str(human.playbook_id),
        "step_key": human.step_run.step_key if human.step_run_id else "",
        "required_approvals": human.required_approvals,
        "approvals": sum(1 for p in participants if p.decision == "approve"),
        "due_at": human.due_at,
        "wake_at": human.wake_at,
        "is_overdue": bool(human.state == HumanStepState.OPEN and human.due_at and human.due_at < timezone.now()),
        "escalated_at": human.escalated_at,
        "stalled_reason": human.stalled_reason if human.stalled_at else "",
        "draft": human.draft,
        "participants": [
            {
                "username": p.user.get_username(),
                "role": p.role,
                "via": p.via,
                "decision": p.decision,
                "decided_at": p.decided_at,
                "decided_via": p.decided_via,
                "comment": p.comment,
            }
            for p in participants
        ],
        "can_act": bool(
            mine
            and human.state == HumanStepState.OPEN
            and mine.decided_at is None
            and is_eligible(mine.user, human.organization, mine.required_role)
            and human.kind != HumanStepKind.WAIT
        ),
    }


def human_attention(run: Any) -> list[dict[str, Any]]:
    """ "Needs attention" items: overdue tasks, stuck steps, approvals past their escalation."""
    items: list[dict[str, Any]] = []
    for human in HumanStep.objects.filter(run=run, state=HumanStepState.OPEN).select_related("step_run"):
        key = human.step_run.step_key if human.step_run_id else ""
        if human.stalled_at:
            items.append({"kind": "step_stalled", "step_key": key, "message": f"{human.title} is stuck: {human.stalled_reason}", "error_class": ""})
        if human.kind == HumanStepKind.TASK and human.overdue_at:
            items.append(
                {"kind": "task_overdue", "step_key": key, "message": f"{human.title} is overdue (due {human.due_at:%Y-%m-%d %H:%M}).", "error_class": ""}
            )
    return items
