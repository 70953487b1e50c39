"""Steps a person takes part in: open a gate, task or wait when the engine reaches it; decide; resolve into a branch."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.services import audit_record
from common.errors import ApplicationError
from playbooks.human.config import KIND_BY_ACTION, after, is_eligible, resolve_people
from playbooks.human.models import Decision, HumanStep, HumanStepKind, HumanStepState, Outcome, Participant, ParticipantRole
from playbooks.human.notify import draft_status_update
from playbooks.models import Playbook, PlaybookRun, RunStatus, StepRun, StepStatus

logger = logging.getLogger(__name__)
PROCEEDING = (Outcome.APPROVED, Outcome.DONE, Outcome.TIME_REACHED, Outcome.CONDITION_MET)


def _enqueue_notify(human_step_id: Any) -> None:
    from playbooks.human import tasks

    transaction.on_commit(lambda: tasks.human_step_notify.delay(str(human_step_id)))


def _enqueue_check(human_step_id: Any) -> None:
    from playbooks.human import tasks

    transaction.on_commit(lambda: tasks.human_step_check.delay(str(human_step_id)))


def _add_participants(human: HumanStep, specs: Any, *, role: str, level: int = 0) -> list[Participant]:
    added: list[Participant] = []
    for person in resolve_people(human.organization, specs):
        participant, created = Participant.objects.get_or_create(
            human_step=human,
            user=person.user,
            role=role,
            defaults={
                "required_role": person.required_role,
                "via": person.via if not level else f"escalation {level}: {person.via}",
                "escalation_level": level,
            },
        )
        if created:
            added.append(participant)
    return added


def _names(participants: list[Participant]) -> str:
    return ", ".join(p.user.get_username() for p in participants) or "nobody (no member matches)"


def step_open(*, run: PlaybookRun, step_run: StepRun) -> HumanStep | None:
    """Called by the engine (run locked) when a human step becomes ready: the step waits; people are asked after commit."""
    from playbooks.services import timeline_add

    existing = HumanStep.objects.filter(step_run=step_run).first()
    if existing is not None or step_run.status != StepStatus.PENDING:
        return existing  # already opened (the engine may list a ready step twice when skips cascade in the same pass)
    now = timezone.now()
    config = dict(step_run.payload or {})
    kind = KIND_BY_ACTION[step_run.action]
    human = HumanStep.objects.create(
        organization_id=run.organization_id,
        playbook_id=run.playbook_id,
        run=run,
        step_run=step_run,
        kind=kind,
        title=str(config.get("title") or step_run.step_name)[:300],
        description=str(config.get("description") or ""),
        config=config,
        required_approvals=int(config.get("required") or 1),
        due_at=after(now, config.get("timeout_minutes") if kind != HumanStepKind.TASK else config.get("due_minutes")),
        escalate_at=after(now, config.get("escalate_after_minutes")) if config.get("escalate_to") else None,
    )
    if kind == HumanStepKind.WAIT:
        from playbooks.human.clock import wait_time

        human.wake_at = wait_time(now, config)
        human.save(update_fields=["wake_at"])
    if kind == HumanStepKind.STATUS_UPDATE:
        human.draft = draft_status_update(run)
        human.save(update_fields=["draft"])
    people: list[Participant] = []
    if kind in (HumanStepKind.APPROVAL, HumanStepKind.STATUS_UPDATE):
        people = _add_participants(human, config.get("approvers"), role=ParticipantRole.APPROVER)
    elif kind == HumanStepKind.TASK:
        people = _add_participants(human, [config.get("assignee")], role=ParticipantRole.ASSIGNEE)
    step_run.status = StepStatus.WAITING
    step_run.started_at = step_run.started_at or now
    step_run.save(update_fields=["status", "payload", "started_at", "updated_at"])
    if kind == HumanStepKind.WAIT:
        message = f"{human.title}: waiting" + (f" until {timezone.localtime(human.wake_at):%Y-%m-%d %H:%M}" if human.wake_at else " for its condition")
        _enqueue_check(human.pk)
    elif kind == HumanStepKind.TASK:
        message = f"{human.title}: task assigned to {_names(people)}"
    else:
        need = f" ({human.required_approvals} of {len(people)})" if human.required_approvals > 1 else ""
        message = f"{human.title}: waiting for approval by {_names(people)}{need}"
    timeline_add(run, "waiting", message, step_key=step_run.step_key, data={"human_step": str(human.pk)})
    if people:
        _enqueue_notify(human.pk)
    return human


def activation_propose(*, playbook: Playbook, approval: dict[str, Any], title: str, description: str = "") -> HumanStep:
    """A trigger's proposal: the accountable people approve (or reject) activating this playbook."""
    now = timezone.now()
    human = HumanStep.objects.create(
        organization_id=playbook.organization_id,
        playbook=playbook,
        kind=HumanStepKind.ACTIVATION,
        title=title[:300],
        description=description,
        config=dict(approval),
        required_approvals=int(approval.get("required") or 1),
        due_at=after(now, approval.get("timeout_minutes")),
        escalate_at=after(now, approval.get("escalate_after_minutes")) if approval.get("escalate_to") else None,
    )
    if _add_participants(human, approval.get("approvers"), role=ParticipantRole.APPROVER):
        _enqueue_notify(human.pk)
    return human


# ---------------------------------------------------------------------------------------------------------------
# Deciding


def _refuse(human: HumanStep, user: Any, code: str, message: str, status: int, request: HttpRequest | None) -> ApplicationError:
    audit_record(
        action="human_step.refused",
        organization=human.organization,
        actor=user,
        target=human,
        changes={"code": code, "kind": human.kind},
        request=request,
    )
    return ApplicationError(message, code=code, status_code=status)


def human_step_decide(
    *,
    human_step: HumanStep,
    user: Any,
    decision: str,
    comment: str = "",
    via: str = "war_room",
    token_participant: Participant | None = None,
    request: HttpRequest | None = None,
) -> HumanStep:
    """Record one identified person's decision (approve / reject / done) after re-checking their role; resolve when settled."""
    if decision not in Decision.values:
        raise ApplicationError("decision must be approve, reject or done.", code="invalid", fields={"decision": ["approve | reject | done"]})
    refusal: ApplicationError | None = None
    with transaction.atomic():
        # The run first, then the step: the same order as the engine, so a decision arriving while the run is being
        # advanced, cancelled or paused waits for it and then sees what it committed.
        if human_step.run_id:
            run = PlaybookRun.objects.select_for_update().get(pk=human_step.run_id)
        human = HumanStep.objects.select_for_update().select_related("organization", "playbook").get(pk=human_step.pk)
        role = ParticipantRole.ASSIGNEE if human.kind == HumanStepKind.TASK else ParticipantRole.APPROVER
        participant = human.participants.select_for_update().filter(user=user, role=role).first() if getattr(user, "is_authenticated", False) else None
        if token_participant is not None and (participant is None or participant.pk != token_participant.pk):
            refusal = _refuse(human, user, "link_not_yours", "This link was sent to someone else.", 403, request)
        elif human.run_id and run.status != RunStatus.RUNNING:
            refusal = _refuse(human, user, "run_not_running", f"The run is {run.get_status_display().lower()}; nothing waits for this anymore.", 409, request)
        elif human.state != HumanStepState.OPEN:
            refusal = _refuse(human, user, "already_decided", f"This was already settled: {human.get_outcome_display() or human.state}.", 409, request)
        elif participant is None:
            refusal = _refuse(human, user, "not_a_participant", "You are not asked to act on this step.", 403, request)
        elif participant.decided_at is not None:
            refusal = _refuse(human, user, "already_decided", "You already decided on this step.", 409, request)
        elif (role == ParticipantRole.ASSIGNEE) != (decision == Decision.DONE):
            refusal = _refuse(human, user, "invalid", "Approvals are approved or rejected; tasks are marked done.", 400, request)
        elif not is_eligible(participant.user, human.organization, participant.required_role):
            refusal = _refuse(
                human,
                user,
                "role_changed",
                f"You no longer hold the {participant.required_role} role this step needs, so your decision is not counted.",
                403,
                request,
            )
        if refusal is None:
            now = timezone.now()
            participant.decision = decision
            participant.decided_at = now
            participant.decided_via = via
            participant.comment = comment[:2000]
            if token_participant is not None:
                participant.token_used_at = now
            participant.save(update_fields=["decision", "decided_at", "decided_via", "comment", "token_used_at", "updated_at"])
            audit_record(
                action=f"human_step.{decision}",
                organization=human.organization,
                actor=user,
                target=human,
                changes={"kind": human.kind, "via": via, "comment": comment[:200], "step": human.step_run.step_key if human.step_run_id else ""},
                request=request,
            )
            _after_decision(human, participant)
    if refusal is not None:
        raise refusal  # raised after the block so the refusal's audit row is kept
    human.refresh_from_db()
    return human


def _after_decision(human: HumanStep, participant: Participant) -> None:
    from playbooks.services import timeline_add

    who = participant.user.get_username()
    if human.kind == HumanStepKind.TASK:
        resolve(human, Outcome.DONE, actor=participant.user)
        return
    decisions = list(human.participants.filter(role=ParticipantRole.APPROVER).values_list("decision", flat=True))
    approvals = decisions.count(Decision.APPROVE)
    rejections = decisions.count(Decision.REJECT)
    undecided = decisions.count("")
    if human.run_id:
        verb = "approved" if participant.decision == Decision.APPROVE else "rejected"
        tally = f" ({approvals} of {human.required_approvals})" if human.required_approvals > 1 else ""
        timeline_add(human.run, "approval_vote", f"{human.title}: {verb} by {who}{tally}", step_key=human.step_run.step_key if human.step_run_id else "")
    # One rejection vetoes unless the step says otherwise; without a veto it fails once N can no longer be reached.
    veto = bool(human.config.get("veto", True))
    if approvals >= human.required_approvals:
        resolve(human, Outcome.APPROVED, actor=participant.user)
    elif rejections and (veto or approvals + undecided < human.required_approvals):
        resolve(human, Outcome.REJECTED, actor=participant.user)


def resolve(human: HumanStep, outcome: str, *, actor: Any = None) -> None:
    """Settle a step (caller holds the locks): record the outcome, void unused links, and move the run down its branch."""
    from playbooks import services as engine

    now = timezone.now()
    human.state = HumanStepState.RESOLVED
    human.outcome = outcome
    human.resolved_at = now
    human.resolved_by = actor if getattr(actor, "is_authenticated", False) else None
    human.stalled_at = None
    human.save(update_fields=["state", "outcome", "resolved_at", "resolved_by", "stalled_at", "updated_at"])
    human.participants.filter(decided_at__isnull=True).update(token_hash="", updated_at=now)
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "Bastion"
    if human.kind == HumanStepKind.ACTIVATION:
        _resolve_activation(human, outcome, actor)
        return
    step_run = StepRun.objects.select_for_update().get(pk=human.step_run_id)
    run = human.run
    branch = "continue" if outcome in PROCEEDING else human.config.get("on_reject" if outcome == Outcome.REJECTED else "on_timeout", "branch")
    proceed = outcome in PROCEEDING or branch == "continue"
    label = Outcome(outcome).label.lower()
    if human.kind == HumanStepKind.STATUS_UPDATE and outcome == Outcome.APPROVED:
        _status_update_send(human, step_run)
        engine.timeline_add(run, "approved", f"{human.title}: approved by {who}; sending the update.", step_key=step_run.step_key)
        return
    step_run.status = StepStatus.SUCCEEDED
    step_run.finished_at = now
    step_run.duration_ms = int((now - (step_run.started_at or now)).total_seconds() * 1000)
    decided_by = list(human.participants.exclude(decision="").values_list("user__username", "decision"))
    step_run.result = {**(step_run.result or {}), "data": {"outcome": outcome, "proceed": proceed, "branch": branch, "decided_by": decided_by}}
    step_run.save(update_fields=["status", "finished_at", "duration_ms", "result", "updated_at"])
    path = {"continue": "continuing", "branch": f"taking the {outcome} branch", "cancel": "cancelling the run"}[branch]
    engine.timeline_add(run, outcome, f"{human.title}: {label} by {who}; {path}.", step_key=step_run.step_key, data={"outcome": outcome})
    if branch == "cancel" and not proceed:
        engine.playbook_run_cancel(run=run, actor=actor if getattr(actor, "is_authenticated", False) else None)
        return
    engine._enqueue_advance(run.pk)
    from playbooks.human.clock import waits_recheck_later

    waits_recheck_later(run.pk)


def _status_update_send(human: HumanStep, step_run: StepRun) -> None:
    """The approved draft becomes an ordinary vendor step (idempotent, retried, tracked) on the chosen channel."""
    from playbooks import services as engine
    from playbooks.contract import action_fields
    from playbooks.rendering import sanitize_payload

    send = dict(human.config.get("send") or {})
    payload = dict(send.get("payload") or {})
    fields = action_fields(str(send["connector_key"]), str(send["action"]))
    # The draft goes into the action's message field: "text" where the connector shapes one (chat), else "body".
    field = send.get("body_field") or ("text" if "text" in fields else "body")
    payload[field] = f"{payload[field]}\n\n{human.draft}" if payload.get(field) else human.draft
    step_run.connector_key = str(send["connector_key"])[:60]
    step_run.action = str(send["action"])[:60]
    step_run.integration = engine.resolve_integration(human.playbook, step_run.connector_key)
    step_run.payload = sanitize_payload(fields, payload)
    step_run.status = StepStatus.QUEUED
    step_run.queued_at = timezone.now()
    step_run.save(update_fields=["connector_key", "action", "integration", "payload", "status", "queued_at", "updated_at"])
    engine._enqueue_steps([[str(step_run.pk)]])


def _resolve_activation(human: HumanStep, outcome: str, actor: Any) -> None:
    from playbooks import services as engine

    activate = outcome == Outcome.APPROVED or (outcome == Outcome.TIMED_OUT and human.config.get("on_timeout") == "activate")
    if activate:
        engine.playbook_activate(playbook=human.playbook, actor=actor if getattr(actor, "is_authenticated", False) else None)
    audit_record(action=f"trigger.proposal_{outcome}", organization=human.organization, actor=actor, target=human.playbook, changes={"activated": activate})


def human_step_cancel_for_run(run: PlaybookRun) -> int:
    """Close the open steps of a run that stopped (their links die with them)."""
    now = timezone.now()
    open_steps = HumanStep.objects.filter(run=run, state=HumanStepState.OPEN)
    Participant.objects.filter(human_step__in=open_steps, decided_at__isnull=True).update(token_hash="", updated_at=now)
    return open_steps.update(state=HumanStepState.CANCELLED, resolved_at=now, updated_at=now)
