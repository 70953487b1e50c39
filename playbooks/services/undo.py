"""Undo: what a cancelled run created is undone in the vendors, one tracked step per object."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from accounts.services import audit_record
from common.errors import ApplicationError
from integrations.connectors.base import Capability, TrackedObject
from integrations.errors import ApiError
from playbooks import execution_guards, selectors
from playbooks.contract import outcome_stored
from playbooks.models import (
    ACTIVE_STEP_STATUSES,
    PlaybookRun,
    StepRun,
    StepStatus,
    Task,
)
from playbooks.services.engine import _lease_seconds, _step_failed, connector_for
from playbooks.services.shared import PlaybookErrorCode, timeline_add
from playbooks.services.status import task_apply_tracked

logger = logging.getLogger(__name__)


def _undo_reason(run: PlaybookRun, who: str) -> str:
    return (
        f"Bastion: the activation of the playbook “{run.playbook.name}” was cancelled by {who}, who asked to undo what it created. "
        "This was created by that activation, so Bastion is closing it."
    )


def _undo_request(
    run: PlaybookRun, *, actor: Any, request: HttpRequest | None, allow_empty: bool = False
) -> tuple[list[StepRun], list[selectors.UndoPlanItem]]:
    """Plan the undo of every object the run created (once per object) and queue it; failed undo steps go again."""
    now = timezone.now()
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    queued, plan = _undo_enqueue(run, reason=_undo_reason(run, who), retry_failed=True)
    pending = [item for item in plan if item.is_undoable and (item.undo_step is None or item.undo_step.status != StepStatus.SUCCEEDED)]
    if not allow_empty and not queued and not any(item.undo_step and item.undo_step.status in ACTIVE_STEP_STATUSES for item in pending):
        raise ApplicationError(
            "Nothing left to undo: every object this run created is undone or cannot be undone.", code=PlaybookErrorCode.NOTHING_TO_UNDO, status_code=409
        )
    run.undo_requested_at = now
    run.undo_requested_by = actor if getattr(actor, "is_authenticated", False) else None
    run.save(update_fields=["undo_requested_at", "undo_requested_by", "updated_at"])
    kept = [item for item in plan if not item.is_undoable]
    kept_note = f" Left in place: {', '.join(sorted({item.step_run.step_name for item in kept}))}." if kept else ""
    names = ", ".join(sorted({s.step_name for s in queued}))
    timeline_add(run, "undo_requested", f"{who} asked to undo what this run created: {len(queued)} object(s) ({names}).{kept_note}")
    audit_record(
        action="playbook_run.undo",
        organization=run.organization,
        actor=actor,
        target=run,
        changes={"queued": len(queued), "left_in_place": len(kept), "objects": [s.undo_of.external_id for s in queued][:100]},
        request=request,
    )
    return queued, plan


def _undo_enqueue(run: PlaybookRun, *, reason: str, retry_failed: bool) -> tuple[list[StepRun], list[selectors.UndoPlanItem]]:
    """Create the missing undo steps (the one-to-one undo_of makes each object's undo unique) and send them."""
    now = timezone.now()
    plan = selectors.undo_plan(run=run)
    queued: list[StepRun] = []
    for item in plan:
        if not item.is_undoable:
            continue
        origin, undo_step = item.step_run, item.undo_step
        if undo_step is None:
            data = (origin.result or {}).get("data") or {}
            undo_step = StepRun.objects.create(
                run=run,
                undo_of=origin,
                step_key=f"undo-{origin.step_key}"[:60],
                step_name=f"Undo: {origin.step_name}"[:200],
                position=origin.position,
                item_index=origin.item_index,
                item_key=str(origin.pk),
                item=origin.item,
                connector_key=origin.connector_key,
                action=f"undo_{origin.action}"[:60],
                is_required=False,
                integration=origin.integration,
                idempotency_key="undo-" + hashlib.sha256(origin.idempotency_key.encode()).hexdigest()[:40],
                payload={
                    "action": origin.action,
                    "external_id": origin.external_id,
                    # What undo needs to reverse the action: the object's key, or undo_key when that differs (Aha!'s status before).
                    "key": str(data.get("undo_key") or data.get("key") or ""),
                    "payload": origin.payload or {},
                    "reason": reason,
                },
                status=StepStatus.QUEUED,
                queued_at=now,
            )
            queued.append(undo_step)
        elif retry_failed and undo_step.status in (StepStatus.FAILED, StepStatus.CANCELLED):
            undo_step.status = StepStatus.QUEUED
            undo_step.queued_at = now
            undo_step.finished_at = None
            undo_step.next_attempt_at = None
            undo_step.save(update_fields=["status", "queued_at", "finished_at", "next_attempt_at", "updated_at"])
            queued.append(undo_step)
    if queued:
        _enqueue_undo_steps([str(s.pk) for s in queued])
    return queued, plan


def _enqueue_undo_steps(ids: list[str], countdown: float | None = None) -> None:
    from playbooks import tasks

    def send() -> None:
        for step_run_id in ids:
            tasks.step_run_undo_execute.apply_async(args=[step_run_id], **({"countdown": countdown} if countdown else {}))

    transaction.on_commit(send)


def _undo_after_late_success(run: PlaybookRun) -> None:
    """A step that was mid-call when the run was cancelled and undone finished later: undo what it created too."""
    queued, _ = _undo_enqueue(run, reason=_undo_reason(run, run.undo_requested_by.get_username() if run.undo_requested_by else "system"), retry_failed=False)
    if queued:
        timeline_add(run, "undo_requested", f"Also undoing {len(queued)} object(s) created by actions that finished after the cancel.")


def _claim_undo(step_run_id: str) -> StepRun | None:
    now = timezone.now()
    with transaction.atomic():
        step_run = (
            StepRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run", "run__playbook", "integration", "undo_of")
            .filter(pk=step_run_id, undo_of__isnull=False)
            .filter(Q(status__in=[StepStatus.QUEUED, StepStatus.RETRYING]) | Q(status=StepStatus.RUNNING, lease_expires_at__lt=now))
            .first()
        )
        if step_run is None:
            return None
        step_run.status = StepStatus.RUNNING
        step_run.attempts += 1
        step_run.lease_expires_at = now + timedelta(seconds=_lease_seconds())
        step_run.started_at = step_run.started_at or now
        step_run.save(update_fields=["status", "attempts", "lease_expires_at", "started_at", "updated_at"])
    return step_run


def step_run_undo_execute(*, step_run_id: Any) -> None:
    """Undo one created object in its vendor (idempotent: an object already archived, cancelled or closed counts as undone)."""
    step_run = _claim_undo(str(step_run_id))
    if step_run is None:
        return
    payload = step_run.payload or {}
    try:
        if step_run.integration is None:
            raise ApiError("The integration this object was created with is gone; undo it by hand in the vendor.")
        connector = connector_for(step_run.integration)
        if not connector.supports(Capability.UNDO):
            raise ApiError(f"{connector.manifest.name} cannot undo {payload.get('action', 'this action')}.")
        with execution_guards.lease_kept([step_run.pk]):
            result = connector.undo(
                str(payload.get("action", "")),
                external_id=str(payload.get("external_id", "")),
                key=str(payload.get("key", "")),
                payload=payload.get("payload") or {},
                reason=str(payload.get("reason", "")),
                idempotency_key=step_run.idempotency_key,
            )
    except Exception as exc:  # noqa: BLE001 - classified and shown on the undo item, never swallowed
        delay = _step_failed(step_run, exc)
        if delay is not None:
            _enqueue_undo_steps([str(step_run.pk)], countdown=delay)
        else:
            _undo_finish_when_done(step_run.run_id)
        return
    now = timezone.now()
    with transaction.atomic():
        step_run.status = StepStatus.SUCCEEDED
        step_run.external_id = str(result.external_id)[:200]
        step_run.external_url = str(result.url or "")[:1000]
        step_run.reused_existing = not result.created
        step_run.result = outcome_stored(result)
        step_run.last_error = ""
        step_run.error_class = ""
        step_run.finished_at = now
        step_run.lease_expires_at = None
        step_run.duration_ms = int((now - (step_run.started_at or now)).total_seconds() * 1000)
        step_run.save()
        task = Task.objects.select_for_update().select_related("run").filter(step_run_id=step_run.undo_of_id).first()
        # An undone object is closed by Bastion: done, in the state the connector reports (else "undone").
        tracked = result.tracked or TrackedObject(status=str((result.data or {}).get("status") or "undone"), is_done=True)
        changed = task_apply_tracked(task, tracked, source="undo") if task is not None else False
        if not changed:
            what = "was already undone" if not result.created else "undone"
            timeline_add(step_run.run, "undo_succeeded", f"{step_run.label}: {what}", step_key=step_run.step_key)
    _undo_finish_when_done(step_run.run_id)


def _undo_finish_when_done(run_id: Any) -> None:
    """Once no undo step is left in flight, say how the undo went (once per request)."""

    def finish() -> None:
        with transaction.atomic():
            run = PlaybookRun.objects.select_for_update().filter(pk=run_id).first()
            if run is None or run.undo_requested_at is None:
                return
            steps = list(run.step_runs.filter(undo_of__isnull=False))
            if any(s.status in (StepStatus.PENDING, *ACTIVE_STEP_STATUSES) for s in steps):
                return
            if run.timeline.filter(kind="undo_finished", at__gte=run.undo_requested_at).exists():
                return
            done = [s for s in steps if s.status == StepStatus.SUCCEEDED]
            failed = [s for s in steps if s.status == StepStatus.FAILED]
            note = f"; could not undo: {', '.join(s.label for s in failed[:5])} — see each item" if failed else ""
            timeline_add(run, "undo_finished", f"Undo finished: {len(done)} of {len(steps)} object(s) undone{note}.", data={"failed": len(failed)})

    transaction.on_commit(finish)


def undo_steps_resume_stalled() -> int:
    """Re-send undo steps whose worker died (queued too long, or running past their lease)."""
    now = timezone.now()
    stale = now - timedelta(seconds=_lease_seconds())
    stalled = StepRun.objects.filter(undo_of__isnull=False).filter(
        Q(status=StepStatus.QUEUED, queued_at__lt=stale) | Q(status=StepStatus.RUNNING, lease_expires_at__lt=now)
    )
    ids = [str(pk) for pk in stalled.values_list("pk", flat=True)]
    if ids:
        with transaction.atomic():
            _enqueue_undo_steps(ids)
    return len(ids)
