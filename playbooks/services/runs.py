"""Runs as people drive them: activate, retry the failed steps, resume stalled ones, cancel."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.services import audit_record
from common.errors import ApplicationError
from integrations.access import integrations_access_check
from playbooks import execution_guards, selectors
from playbooks.contract import action_spec
from playbooks.models import (
    ACTIVE_STEP_STATUSES,
    Playbook,
    PlaybookRun,
    PlaybookStatus,
    RunStatus,
    StepRun,
    StepStatus,
)
from playbooks.services.engine import _enqueue_advance, _enqueue_steps, _lease_seconds
from playbooks.services.planning import (
    build_context,
    concrete_connector_key,
    idempotency_key_for,
    integration_blocker,
    plan_items,
    playbook_integrations_access_check,
    playbook_preview,
    resolve_integration,
    step_role,
)
from playbooks.services.shared import BULK_CHUNK, OPEN_RUN_STATUSES, PlaybookErrorCode, dispatch_groups, timeline_add
from playbooks.services.undo import _undo_request, undo_steps_resume_stalled

logger = logging.getLogger(__name__)


def _declared_kind(connector_key: str, action: str) -> str:
    spec = action_spec(connector_key, action)
    return str(spec.tracks) if spec is not None and spec.tracks is not None else ""


@transaction.atomic
def playbook_activate(*, playbook: Playbook, actor: Any = None, request: HttpRequest | None = None) -> tuple[PlaybookRun, bool]:
    """Start a run (or return the open one: a second activation never acts twice). Returns (run, created)."""
    playbook = Playbook.objects.select_for_update().select_related("template", "scenario").get(pk=playbook.pk)
    playbook_integrations_access_check(playbook=playbook, actor=actor)
    existing = playbook.runs.filter(status__in=OPEN_RUN_STATUSES).order_by("-created_at").first()
    if existing is not None:
        return existing, False
    previews = {p.key: p for p in playbook_preview(playbook=playbook)}
    invalid = {key: p.errors for key, p in previews.items() if p.errors}
    if invalid:
        message = "; ".join(f"{key}: {' '.join(errors)}" for key, errors in invalid.items())
        raise ApplicationError(f"The playbook template has errors: {message}", code=PlaybookErrorCode.TEMPLATE_INVALID)
    context = build_context(playbook)
    now = timezone.now()
    run = PlaybookRun.objects.create(
        organization=playbook.organization,
        playbook=playbook,
        status=RunStatus.RUNNING,
        activated_by=actor if getattr(actor, "is_authenticated", False) else None,
        started_at=now,
        manual_baseline_minutes=playbook.template.manual_baseline_minutes,
        context=context,
    )
    step_runs: list[StepRun] = []
    undone = execution_guards.undone_keys(playbook.pk)
    for step in playbook.template.steps.all():
        preview = previews[step.key]
        integration = resolve_integration(playbook, step.connector_key)
        connector_key = concrete_connector_key(step.connector_key, integration)
        items = plan_items(step, context) if preview.will_run else [("", None)]
        for index, (item_key, item) in enumerate(items):
            step_run = StepRun(
                run=run,
                step_key=step.key,
                step_name=step.name,
                position=step.position,
                item_index=index,
                item_key=item_key,
                item=item,
                connector_key=connector_key,
                action=step.action,
                depends_on=list(step.depends_on or []),
                is_bulk=step.is_bulk,
                bulk_chunk_size=max(1, min(BULK_CHUNK, step.bulk_chunk_size or BULK_CHUNK)),
                is_required=step.is_required,
                # The template names the kind; without one, what the connector declares the action creates is tracked.
                task_kind=step.task_kind or _declared_kind(connector_key, step.action),
                integration=integration,
                idempotency_key=execution_guards.key_after_undo(idempotency_key_for(playbook.pk, step.key, item_key), undone),
                result={"payload_template": step.payload_template},
            )
            if not preview.will_run:
                step_run.status = StepStatus.SKIPPED
                step_run.last_error = "Condition not met for this scenario."
                step_run.finished_at = now
            elif preview.is_blocked:
                step_run.last_error = preview.blocked_reason
                step_run.error_class = "configuration"
                step_run.finished_at = now
                step_run.status = StepStatus.FAILED if step.is_required else StepStatus.SKIPPED
            step_runs.append(step_run)
    StepRun.objects.bulk_create(step_runs)
    playbook.status = PlaybookStatus.ACTIVE
    playbook.save(update_fields=["status", "updated_at"])
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    timeline_add(run, "activated", f"Activated by {who}: {len(step_runs)} actions across {len(previews)} steps.")
    for preview in previews.values():
        if preview.will_run and preview.is_blocked:
            timeline_add(run, "blocked", f"{preview.name}: {preview.blocked_reason}", step_key=preview.key)
    audit_record(action="playbook.activate", organization=playbook.organization, actor=actor, target=playbook, changes={"run": str(run.pk)}, request=request)
    _enqueue_advance(run.pk)
    return run, True


# ---------------------------------------------------------------------------------------------------------------
# Retry, resume, cancel


@transaction.atomic
def playbook_run_retry_failed(*, run: PlaybookRun, actor: Any = None, request: HttpRequest | None = None) -> list[StepRun]:
    """Re-run only the failed steps (same idempotency keys); their waiting dependents follow."""
    run = PlaybookRun.objects.select_for_update().select_related("playbook").get(pk=run.pk)
    if run.status == RunStatus.CANCELLED:
        raise ApplicationError("This run was cancelled; activate the playbook again instead.", code=PlaybookErrorCode.RUN_FINISHED, status_code=409)
    failed = list(run.step_runs.filter(status=StepStatus.FAILED).select_related("integration"))
    if getattr(actor, "is_authenticated", False):
        integrations_access_check(integrations=[step_run.integration for step_run in failed], actor=actor)
    skipped_for_integration = list(run.step_runs.filter(status=StepStatus.SKIPPED, error_class="configuration"))
    if not failed and not skipped_for_integration:
        raise ApplicationError("No failed steps to retry.", code=PlaybookErrorCode.NOTHING_TO_RETRY, status_code=409)
    templates = {s.key: s for s in run.playbook.template.steps.all()}
    retried: list[StepRun] = []
    for step_run in failed + skipped_for_integration:
        step = templates.get(step_run.step_key)
        # A step blocked on an unplayed role ("@chat") resolves again: the organization may have connected a tool since.
        integration = resolve_integration(run.playbook, step.connector_key if step else step_run.connector_key)
        blocker = integration_blocker(integration, step) if step else ""
        if blocker:
            step_run.last_error = blocker
            step_run.save(update_fields=["last_error", "updated_at"])
            continue
        step_run.integration = integration
        if step is not None and step_run.connector_key != integration.connector_key and step_role(step.connector_key) is not None:
            step_run.connector_key = integration.connector_key
            step_run.task_kind = step.task_kind or _declared_kind(integration.connector_key, step.action)
        step_run.status = StepStatus.PENDING
        step_run.finished_at = None
        step_run.next_attempt_at = None
        if step_run.error_class == "configuration" and step_run.last_error.startswith("The payload template"):
            step_run.payload = None
        execution_guards.delivery_unmark(step_run)  # a person checked the unconfirmed delivery and asked to send again
        step_run.save(
            update_fields=["integration", "connector_key", "task_kind", "status", "finished_at", "next_attempt_at", "payload", "result", "updated_at"]
        )
        retried.append(step_run)
    if not retried:
        raise ApplicationError(
            "The failed steps still cannot run: " + "; ".join(sorted({s.last_error for s in failed + skipped_for_integration})),
            code=PlaybookErrorCode.NOTHING_TO_RETRY,
            status_code=409,
        )
    run.status = RunStatus.RUNNING
    run.finished_at = None
    run.error_summary = ""
    run.save(update_fields=["status", "finished_at", "error_summary", "updated_at"])
    Playbook.objects.filter(pk=run.playbook_id).update(status=PlaybookStatus.ACTIVE)
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    timeline_add(run, "retry", f"{who} retried {len(retried)} failed action(s): {', '.join(sorted({s.step_name for s in retried}))}")
    audit_record(action="playbook_run.retry_failed", organization=run.organization, actor=actor, target=run, changes={"steps": len(retried)}, request=request)
    _enqueue_advance(run.pk)
    return retried


@transaction.atomic
def playbook_run_resume(*, run: PlaybookRun, force: bool = False, actor: Any = None) -> list[str]:
    """Re-send steps whose worker died: queued ones, and running ones whose lease expired (or all running ones with force)."""
    run = PlaybookRun.objects.select_for_update().get(pk=run.pk)
    if run.status != RunStatus.RUNNING:
        return []
    now = timezone.now()
    stalled = run.step_runs.select_related("integration").filter(
        Q(status=StepStatus.QUEUED) | Q(status=StepStatus.RETRYING, next_attempt_at__lt=now - timedelta(minutes=5))
    )
    running = run.step_runs.select_related("integration").filter(status=StepStatus.RUNNING)
    if not force:
        running = running.filter(lease_expires_at__lt=now)
    to_send = list(stalled) + list(running)
    if not to_send:
        _enqueue_advance(run.pk)
        return []
    StepRun.objects.filter(pk__in=[s.pk for s in to_send]).update(status=StepStatus.QUEUED, lease_expires_at=None, updated_at=now)
    by_step: dict[str, list[StepRun]] = {}
    for step_run in to_send:
        by_step.setdefault(step_run.step_key, []).append(step_run)
    batches = [group for items in by_step.values() for group in dispatch_groups(items)]
    timeline_add(run, "resumed", f"Resumed {len(to_send)} interrupted action(s) after a worker stopped.")
    _enqueue_steps(batches)
    _enqueue_advance(run.pk)  # a lost advance message may also have left ready steps waiting
    return [s for b in batches for s in b]


@dataclass
class CancelOutcome:
    run: PlaybookRun
    already_created: list[StepRun]
    in_flight: list[StepRun]
    undo: list[selectors.UndoPlanItem] = field(default_factory=list)
    undo_queued: list[StepRun] = field(default_factory=list)


@transaction.atomic
def playbook_run_cancel(*, run: PlaybookRun, undo: bool = False, actor: Any = None, request: HttpRequest | None = None) -> CancelOutcome:
    """Stop a run: nothing further starts. Without `undo` what it created stays (listed); with `undo` every object the
    run created is undone in its vendor as tracked steps (a finished or already cancelled run can be undone too)."""
    run = PlaybookRun.objects.select_for_update().select_related("playbook").get(pk=run.pk)
    finished = run.status in (RunStatus.CANCELLED, RunStatus.SUCCEEDED, RunStatus.FAILED)
    was_live = run.status in (RunStatus.PENDING, RunStatus.RUNNING)
    if finished and not undo:
        raise ApplicationError(f"The run already {run.get_status_display().lower()}.", code=PlaybookErrorCode.RUN_FINISHED, status_code=409)
    now = timezone.now()
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    forward = run.step_runs.filter(undo_of__isnull=True)
    created = list(forward.filter(status=StepStatus.SUCCEEDED).exclude(external_id=""))
    in_flight = list(forward.filter(status=StepStatus.RUNNING))
    if run.status != RunStatus.CANCELLED:
        forward.filter(status__in=[StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RETRYING, StepStatus.WAITING]).update(
            status=StepStatus.CANCELLED, finished_at=now, last_error="Cancelled before it ran.", updated_at=now
        )
        from playbooks.human.services import human_step_cancel_for_run

        human_step_cancel_for_run(run)  # open approvals, tasks and waits close; their links stop working
        run.status = RunStatus.CANCELLED
        run.cancelled_by = actor if getattr(actor, "is_authenticated", False) else None
        run.finished_at = run.finished_at or now
        if run.duration_ms is None and run.started_at:
            run.duration_ms = int((now - run.started_at).total_seconds() * 1000)
        run.save(update_fields=["status", "cancelled_by", "finished_at", "duration_ms", "updated_at"])
        Playbook.objects.filter(pk=run.playbook_id).update(status=PlaybookStatus.CANCELLED, updated_at=now)
        listing = ", ".join(f"{s.label} ({s.external_id})" for s in created[:10]) or "nothing"
        more = f" and {len(created) - 10} more" if len(created) > 10 else ""
        flight = f"; {len(in_flight)} action(s) were mid-call and may still complete" if in_flight else ""
        timeline_add(run, "cancelled", f"Cancelled by {who}. Already created: {listing}{more}{flight}.")
        audit_record(
            action="playbook_run.cancel",
            organization=run.organization,
            actor=actor,
            target=run,
            changes={"already_created": len(created), "undo": undo},
            request=request,
        )
    outcome = CancelOutcome(run=run, already_created=created, in_flight=in_flight)
    if undo:
        # A live run may have nothing created yet: what its in-flight actions create is undone when they finish.
        outcome.undo_queued, outcome.undo = _undo_request(run, actor=actor, request=request, allow_empty=was_live)
    return outcome


@transaction.atomic
def playbook_runs_resume_stalled() -> int:
    """Periodic: resume running runs whose steps lost their worker (expired leases, long-queued messages)."""
    count = 0
    stale = timezone.now() - timedelta(seconds=_lease_seconds())
    runs = PlaybookRun.objects.filter(status=RunStatus.RUNNING).filter(
        Q(step_runs__status=StepStatus.RUNNING, step_runs__lease_expires_at__lt=timezone.now())
        | Q(step_runs__status=StepStatus.QUEUED, step_runs__queued_at__lt=stale)
    )
    for run in runs.distinct():
        count += len(playbook_run_resume(run=run))
    # A run with nothing in flight whose last step finished long ago lost its advance (the worker died between
    # the step's commit and the advance that follows it): advance it now.
    idle = (
        PlaybookRun.objects.filter(status=RunStatus.RUNNING)
        .exclude(step_runs__status__in=ACTIVE_STEP_STATUSES)
        .annotate(last_change=Max("step_runs__updated_at"))
        .filter(last_change__lt=stale)
    )
    for run_id in idle.values_list("pk", flat=True):
        _enqueue_advance(run_id)
    return count + undo_steps_resume_stalled()
