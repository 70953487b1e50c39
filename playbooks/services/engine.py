"""The engine: dispatch ready steps, perform them idempotently through the connectors, record outcomes."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from common import metrics
from common.errors import ApplicationError
from integrations.connectors.base import ActionResult, BaseConnector, TrackedObject
from integrations.connectors.kit.progress import output_listener
from integrations.errors import ApiError, ApiRateLimited
from integrations.models import Integration
from integrations.services import integration_record_failure, shared_connector
from playbooks import execution_guards
from playbooks.contract import OUTCOME_KEYS, OUTPUT_EARLY_KEY, outcome_stored
from playbooks.models import (
    ACTIVE_STEP_STATUSES,
    DONE_STEP_STATUSES,
    Playbook,
    PlaybookRun,
    PlaybookStatus,
    RunStatus,
    StepRun,
    StepStatus,
    Task,
)
from playbooks.rendering import RenderError
from playbooks.services.planning import _integration_facts, render_step_payload
from playbooks.services.shared import MAX_ATTEMPTS, _human_ms, _setting, dispatch_groups, timeline_add

logger = logging.getLogger(__name__)


def _enqueue_advance(run_id: Any) -> None:
    from playbooks import tasks

    transaction.on_commit(lambda: tasks.playbook_run_advance.delay(str(run_id)))


def _enqueue_steps(groups: list[list[str]], countdown: float | None = None) -> None:
    """Send step work to the workers once the rows saying so are committed."""
    from playbooks import tasks

    def send() -> None:
        for ids in groups:
            options = {"countdown": countdown} if countdown else {}
            if len(ids) == 1:
                tasks.step_run_execute.apply_async(args=[ids[0]], **options)
            else:
                tasks.step_runs_execute_bulk.apply_async(args=[ids], **options)

    transaction.on_commit(send)


def _output_early(step_run: StepRun) -> bool:
    """A running step whose action already reported its object (id, link, data final) while it makes its last calls."""
    return step_run.status in (StepStatus.RUNNING, StepStatus.RETRYING) and bool(step_run.external_id) and bool((step_run.result or {}).get(OUTPUT_EARLY_KEY))


def _steps_context(step_runs: Iterable[StepRun]) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for step_run in step_runs:
        entry = outputs.setdefault(step_run.step_key, {"external_id": "", "url": "", "key": "", "payload": {}, "data": {}, "external_ids": []})
        if step_run.status == StepStatus.SUCCEEDED or _output_early(step_run):
            if not entry["external_id"]:
                entry.update(
                    external_id=step_run.external_id,
                    url=step_run.external_url,
                    key=str((step_run.result or {}).get("data", {}).get("key", "")),
                    data=(step_run.result or {}).get("data", {}),
                    payload=step_run.payload or {},
                )
            entry["external_ids"].append(step_run.external_id)
    return outputs


def playbook_run_advance(*, run_id: Any) -> list[str]:
    """Dispatch every step whose dependencies succeeded (independent ones together); finish the run when nothing can move."""
    with transaction.atomic():
        run = PlaybookRun.objects.select_for_update().filter(pk=run_id).first()
        if run is not None and run.status == RunStatus.CANCELLED and run.undo_requested_at is not None:
            from playbooks.services.undo import _undo_after_late_success  # undo builds on the engine

            _undo_after_late_success(run)
        if run is None or run.status != RunStatus.RUNNING:
            return []
        step_runs = list(run.step_runs.select_related("integration"))
        by_key: dict[str, list[StepRun]] = {}
        for step_run in step_runs:
            by_key.setdefault(step_run.step_key, []).append(step_run)

        def key_state(key: str) -> str:
            from playbooks.human.engine import human_dependency_state

            human = human_dependency_state(key, by_key)  # approve / reject / timeout branches of a human step
            if human:
                return human
            items = by_key.get(key, [])
            statuses = {s.status for s in items}
            if not statuses:
                return "ok"  # a dependency on an unknown step is a template error caught in the admin; do not deadlock
            if statuses <= {StepStatus.SUCCEEDED}:
                return "ok"
            if len(items) == 1 and _output_early(items[0]):
                return "ok"  # its object exists: dependents start while it makes its last calls
            if statuses & {StepStatus.FAILED, StepStatus.CANCELLED}:
                return "failed"
            if statuses <= {StepStatus.SUCCEEDED, StepStatus.SKIPPED}:
                return "skipped"
            return "waiting"

        steps_context = _steps_context(step_runs)
        now = timezone.now()
        ready: dict[str, list[StepRun]] = {}
        readied: set[Any] = set()
        changed = True
        while changed:  # skips cascade through chains of dependents
            changed = False
            for step_run in step_runs:
                if step_run.status != StepStatus.PENDING:
                    continue
                states = [key_state(dep) for dep in step_run.depends_on]
                if "skipped" in states:
                    step_run.status = StepStatus.SKIPPED
                    step_run.last_error = "Skipped because a step it needs was skipped."
                    step_run.finished_at = now
                    step_run.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
                    changed = True
                elif all(state == "ok" for state in states) and step_run.pk not in readied:
                    readied.add(step_run.pk)  # a second pass of the loop (a skip cascaded) must not list it twice
                    ready.setdefault(step_run.step_key, []).append(step_run)
        dispatched: list[list[str]] = []
        for group in ready.values():
            for step_run in group:
                if step_run.payload is None:
                    context = {
                        **run.context,
                        "steps": steps_context,
                        "item": step_run.item or {},
                        "integration": _integration_facts(step_run.integration),
                    }
                    try:
                        step_run.payload = render_step_payload(step_run.result.get("payload_template", {}), step_run.connector_key, step_run.action, context)
                    except RenderError as exc:
                        step_run.status = StepStatus.FAILED
                        step_run.last_error = f"The payload template cannot be rendered: {exc}"
                        step_run.error_class = "configuration"
                        step_run.finished_at = now
                        step_run.save(update_fields=["status", "last_error", "error_class", "finished_at", "payload", "updated_at"])
                        continue
                from playbooks.human.config import is_human_connector

                if is_human_connector(step_run.connector_key):
                    from playbooks.human.services import step_open

                    step_open(run=run, step_run=step_run)  # waits for a person, a time or a condition
                    continue
                step_run.status = StepStatus.QUEUED
                step_run.queued_at = now
                step_run.updated_at = now
            queued = [s for s in group if s.status == StepStatus.QUEUED]
            if not queued:
                continue
            # One UPDATE for the whole group: 40 ready items used to be 40 round trips under the run's lock.
            StepRun.objects.bulk_update(queued, ["status", "queued_at", "payload", "updated_at"])
            dispatched.extend(dispatch_groups(queued))
        if dispatched:
            names = [f"{key} ({len(group)})" if len(group) > 1 else key for key, group in ready.items() if any(s.status == StepStatus.QUEUED for s in group)]
            timeline_add(run, "dispatched", "Started together: " + ", ".join(names), data={"steps": list(ready.keys()), "tasks": len(dispatched)})
            _enqueue_steps(dispatched)
            return [i for ids in dispatched for i in ids]
        if any(s.status in ACTIVE_STEP_STATUSES or s.status == StepStatus.WAITING for s in step_runs):
            return []
        _run_finish(run, step_runs)
        return []


def _run_finish(run: PlaybookRun, step_runs: list[StepRun]) -> None:
    """Nothing is in flight and nothing more can start: record the outcome and the measured time."""
    now = timezone.now()
    failed = [s for s in step_runs if s.status in (StepStatus.FAILED, StepStatus.CANCELLED)]
    waiting = [s for s in step_runs if s.status == StepStatus.PENDING]
    succeeded = [s for s in step_runs if s.status == StepStatus.SUCCEEDED]
    if not failed and not waiting:
        run.status = RunStatus.SUCCEEDED
    elif succeeded:
        run.status = RunStatus.PARTIAL
    else:
        run.status = RunStatus.FAILED
    reasons: list[str] = []
    for step_run in failed:
        line = f"{step_run.label}: {step_run.last_error}"
        if line not in reasons:
            reasons.append(line)
    if waiting:
        reasons.append(f"{len(waiting)} action(s) wait for failed steps: {', '.join(sorted({s.step_name for s in waiting}))}")
    run.error_summary = "\n".join(reasons)[:5000]
    run.finished_at = now
    if run.duration_ms is None and run.started_at:
        run.duration_ms = int((now - run.started_at).total_seconds() * 1000)
    run.save(update_fields=["status", "error_summary", "finished_at", "duration_ms", "updated_at"])
    metrics.playbook_runs.labels(run.status).inc()
    if run.duration_ms is not None:
        metrics.playbook_run_duration.labels(run.status).observe(run.duration_ms / 1000)
    Playbook.objects.filter(pk=run.playbook_id).update(
        status=PlaybookStatus.COMPLETED if run.status == RunStatus.SUCCEEDED else PlaybookStatus.PARTIAL, updated_at=now
    )
    saved = run.manual_baseline_minutes * 60_000 - (run.duration_ms or 0)
    if run.status == RunStatus.SUCCEEDED:
        message = (
            f"Playbook activated in {_human_ms(run.duration_ms)}: {len(succeeded)} actions done, about {saved // 60_000} minutes of manual coordination saved."
        )
    else:
        message = f"Run finished {run.get_status_display().lower()}: {len(succeeded)} done, {len(failed)} failed, {len(waiting)} waiting. {reasons[0] if reasons else ''}"
    timeline_add(run, "finished", message, data={"status": run.status, "duration_ms": run.duration_ms})


# ---------------------------------------------------------------------------------------------------------------
# Executing steps


def _lease_seconds() -> float:
    return execution_guards.lease_seconds()


def _claim(step_run_ids: list[str]) -> list[StepRun]:
    """Take the steps for this worker: queued/retrying ones, or running ones whose worker's lease expired.

    The rows come back with their run and integration loaded, and `known_new` set on each: True when no request was
    ever sent with its idempotency key (first attempt here, and no attempt of the same key in an earlier run), so the
    connector may skip its search-before-create. The attempt count is committed before any vendor call, so a crash
    mid-call always makes the next attempt search first.
    """
    now = timezone.now()
    with transaction.atomic():
        claimable = (
            StepRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run", "integration")
            .filter(pk__in=step_run_ids, run__status=RunStatus.RUNNING)
            .filter(
                Q(status__in=[StepStatus.QUEUED, StepStatus.RETRYING]) | Q(status=StepStatus.RUNNING, lease_expires_at__lt=now),
            )
            .order_by("item_index")
        )
        claimed = list(claimable)
        if not claimed:
            return []
        tried_elsewhere = set(
            StepRun.objects.filter(idempotency_key__in=[s.idempotency_key for s in claimed], attempts__gt=0)
            .exclude(pk__in=[s.pk for s in claimed])
            .values_list("idempotency_key", flat=True)
        )
        lease = now + timedelta(seconds=_lease_seconds())
        for step_run in claimed:
            step_run.known_new = step_run.attempts == 0 and step_run.idempotency_key not in tried_elsewhere
            step_run.status = StepStatus.RUNNING
            step_run.attempts += 1
            step_run.lease_expires_at = lease
            step_run.started_at = step_run.started_at or now
            step_run.updated_at = now
        StepRun.objects.bulk_update(claimed, ["status", "attempts", "lease_expires_at", "started_at", "updated_at"])
    return claimed


# ---------------------------------------------------------------------------------------------------------------
# Connectors: one per integration per worker process for a short while


def connector_for(integration: Integration) -> BaseConnector:
    """The worker's shared connector for playbook steps (see integrations.services.shared_connector)."""
    return shared_connector(integration, purpose="playbooks")


def _perform(connector: BaseConnector, step_run: StepRun) -> ActionResult:
    """perform() with the step's idempotency key, and whether that key was never tried (the marker search may be skipped)."""
    known_new = bool(getattr(step_run, "known_new", False))  # set by _claim on the rows it claimed
    return connector.perform(step_run.action, step_run.payload or {}, idempotency_key=step_run.idempotency_key, known_new=known_new)


def _perform_bulk(connector: BaseConnector, step_runs: list[StepRun]) -> list[ActionResult | Exception]:
    """perform_bulk() for a chunk; `known_new` only when every key in the chunk was never tried."""
    fresh = all(getattr(s, "known_new", False) for s in step_runs)
    return connector.perform_bulk(
        step_runs[0].action, [s.payload or {} for s in step_runs], idempotency_keys=[s.idempotency_key for s in step_runs], known_new=fresh
    )


def _advance_when_step_done(run_id: Any, step_key: str) -> None:
    """After this commit: advance the run in this worker if every item of the step is done.

    Dependents wait on whole steps, so an item whose siblings are still running cannot unblock anything; the
    sibling that finishes last advances. The check runs after the item's own commit, so of two items finishing
    together at least one sees both done (an extra advance is harmless: it locks the run and finds nothing new).
    Advancing here instead of through a separate task saves a broker round trip on the critical path.
    """

    def advance() -> None:
        try:
            if StepRun.objects.filter(run_id=run_id, step_key=step_key).exclude(status__in=DONE_STEP_STATUSES).exists():
                return
            playbook_run_advance(run_id=run_id)
        except Exception:  # noqa: BLE001 - the step's outcome is committed; never let a failed advance strand the run
            logger.exception("playbooks.advance.inline_failed", extra={"run": str(run_id), "step": step_key})
            from playbooks import tasks

            tasks.playbook_run_advance.delay(str(run_id))

    transaction.on_commit(advance)


def _task_owner(step_run: StepRun, tracked: TrackedObject) -> str:
    """Who owns the tracked object: the vendor's word, else the owner the playbook's item named."""
    if tracked.owner:
        return tracked.owner[:254]
    item = step_run.item if isinstance(step_run.item, dict) else {}
    owner = item.get("owner")
    if isinstance(owner, dict):
        return str(owner.get("email", ""))[:254]
    return ""


def _task_details(tracked: TrackedObject) -> dict[str, Any]:
    details = dict(tracked.details or {})
    if isinstance(details.get("attendees"), list):
        details["attendees"] = [{"email": a.get("email", ""), "response": a.get("response", "")} for a in details["attendees"] if isinstance(a, dict)]
    return details


def _step_succeeded(step_run: StepRun, result: ActionResult) -> None:
    now = timezone.now()
    with transaction.atomic():
        step_run.status = StepStatus.SUCCEEDED
        step_run.external_id = str(result.external_id)[:200]
        step_run.external_url = str(result.url or "")[:1000]
        step_run.reused_existing = not result.created
        execution_guards.delivery_unmark(step_run)
        kept = {k: v for k, v in (step_run.result or {}).items() if k not in OUTCOME_KEYS}
        step_run.result = {**kept, **outcome_stored(result)}
        step_run.last_error = ""
        step_run.error_class = ""
        step_run.finished_at = now
        step_run.lease_expires_at = None
        step_run.duration_ms = int((now - (step_run.started_at or now)).total_seconds() * 1000)
        step_run.save()
        _step_observe(step_run, "succeeded", step_run.duration_ms / 1000)
        if step_run.task_kind and step_run.external_id:
            # The connector says what it made (ActionResult.tracked): its name, owner and status in the vendor's terms.
            tracked = result.tracked or TrackedObject()
            Task.objects.update_or_create(
                step_run=step_run,
                defaults={
                    "organization_id": step_run.run.organization_id,
                    "playbook_id": step_run.run.playbook_id,
                    "run": step_run.run,
                    "integration": step_run.integration,
                    "kind": step_run.task_kind,
                    "external_id": step_run.external_id,
                    "external_key": str(tracked.key or (result.data or {}).get("key", ""))[:200],
                    "url": step_run.external_url,
                    "title": (tracked.title or step_run.label)[:500],
                    "owner": _task_owner(step_run, tracked),
                    "status": (tracked.status or "open")[:60],
                    "is_done": tracked.is_done,
                    "status_source": "created",
                    "details": _task_details(tracked),
                },
            )
        reused = " (already existed, reused)" if step_run.reused_existing else ""
        not_found = (result.data or {}).get("not_found") or []
        extra = f"; {len(not_found)} not found: {', '.join(not_found[:5])}" if not_found else ""
        if not step_run.is_bulk:
            timeline_add(step_run.run, "step_succeeded", f"{step_run.label}{reused}{extra}", step_key=step_run.step_key)


def _step_observe(step_run: StepRun, outcome: str, seconds: float) -> None:
    metrics.playbook_steps.labels(step_run.connector_key, step_run.action, outcome).inc()
    metrics.playbook_step_duration.labels(step_run.connector_key, step_run.action, outcome).observe(max(0.0, seconds))


def _retry_delay(error: ApiError, attempts: int) -> float:
    if isinstance(error, ApiRateLimited):
        return float(error.retry_after) + random.uniform(0, 0.5)
    hinted = error.retry_after
    if hinted:
        return float(hinted)
    base = _setting("BASTION_PLAYBOOK_RETRY_BASE_SECONDS", 1.0)
    return min(300.0, base * (2 ** (attempts - 1))) * random.uniform(0.5, 1.0)


def _step_failed(step_run: StepRun, error: Exception, *, unconfirmed: bool = False) -> float | None:
    """Record a failure; returns the countdown when the step will be retried, None when it failed for good."""
    now = timezone.now()
    retryable = isinstance(error, ApiError) and error.retryable and step_run.attempts < MAX_ATTEMPTS and not unconfirmed
    error_class = error.category if isinstance(error, ApiError) else "system"
    message = str(error)[:2000] if isinstance(error, ApiError) else f"{type(error).__name__}: {str(error)[:500]}"
    step_run.last_error = message
    step_run.error_class = error_class
    step_run.lease_expires_at = None
    if not unconfirmed:
        execution_guards.delivery_unmark(step_run)  # the vendor answered: the delivery is known not to have happened
    if retryable:
        delay = _retry_delay(error, step_run.attempts)
        step_run.status = StepStatus.RETRYING
        step_run.next_attempt_at = now + timedelta(seconds=delay)
        step_run.save(update_fields=["status", "last_error", "error_class", "lease_expires_at", "next_attempt_at", "result", "updated_at"])
        _step_observe(step_run, "retrying", (now - (step_run.started_at or now)).total_seconds())
        timeline_add(step_run.run, "step_retrying", f"{step_run.label}: {message} — retry {step_run.attempts + 1} in {delay:.1f} s", step_key=step_run.step_key)
        return delay
    step_run.status = StepStatus.FAILED
    step_run.finished_at = now
    step_run.duration_ms = int((now - (step_run.started_at or now)).total_seconds() * 1000)
    step_run.save(update_fields=["status", "last_error", "error_class", "lease_expires_at", "finished_at", "duration_ms", "result", "updated_at"])
    _step_observe(step_run, "failed", step_run.duration_ms / 1000)
    timeline_add(step_run.run, "step_failed", f"{step_run.label} failed ({error_class}): {message}", step_key=step_run.step_key)
    if isinstance(error, ApiError) and error.category == "auth" and step_run.integration is not None:
        integration_record_failure(integration=step_run.integration, error=error)
    logger.warning("playbooks.step.failed", extra={"step_run": str(step_run.pk), "step": step_run.step_key, "error_class": error_class})
    return None


def _never_repeats(step_run: StepRun) -> bool:
    """The step delivers something to a person that cannot be deduplicated or taken back (idempotency "none")."""
    if step_run.integration is None:
        return False
    try:
        return execution_guards.action_idempotency(connector_for(step_run.integration), step_run.action) == "none"
    except Exception:  # noqa: BLE001 - the call that follows builds the connector again and records why it cannot
        return False


def _settle_without_calling(claimed: list[StepRun]) -> list[StepRun]:
    """Settle the claimed steps that must not call the vendor now; return the ones that should.

    A key another run is performing right now waits for it; a key that already succeeded in an earlier run of this
    playbook (and was not undone) reuses that result; an interrupted delivery that cannot be deduplicated ends failed.
    """
    if not claimed:
        return []
    busy = execution_guards.busy_elsewhere(claimed)
    if busy:
        waiting = [s for s in claimed if s.pk in busy]
        StepRun.objects.filter(pk__in=busy).update(status=StepStatus.QUEUED, attempts=F("attempts") - 1, lease_expires_at=None, updated_at=timezone.now())
        _enqueue_steps([[str(s.pk)] for s in waiting], countdown=2)
    rest = [s for s in claimed if s.pk not in busy]
    never_repeat = bool(rest) and _never_repeats(rest[0])
    reusable = execution_guards.earlier_successes(rest, any_payload=never_repeat)
    settled: set[Any] = set()
    for step_run in rest:
        if step_run.pk in reusable:
            _step_succeeded(step_run, reusable[step_run.pk])
            settled.add(step_run.pk)
        elif execution_guards.delivery_interrupted(step_run):
            _step_failed(step_run, ApiError(execution_guards.UNCONFIRMED_DELIVERY), unconfirmed=True)
            settled.add(step_run.pk)
    if reusable:
        first = next(s for s in rest if s.pk in reusable)
        message = f"{first.step_name}: {len(reusable)} already done by an earlier activation of this playbook, not repeated"
        timeline_add(first.run, "step_reused", message, step_key=first.step_key)
    for run_id, step_key in {(s.run_id, s.step_key) for s in rest if s.pk in settled}:
        _advance_when_step_done(run_id, step_key)
    return [s for s in rest if s.pk not in settled]


def _step_output_early(step_run: StepRun, result: ActionResult) -> None:
    """The action's object exists before the action ends: record its reference, then start the steps waiting on it."""
    now = timezone.now()
    kept = {k: v for k, v in (step_run.result or {}).items() if k not in OUTCOME_KEYS}
    stored = {**kept, **outcome_stored(result), OUTPUT_EARLY_KEY: now.isoformat()}
    external_id, url = str(result.external_id)[:200], str(result.url or "")[:1000]
    if not external_id or not StepRun.objects.filter(pk=step_run.pk, status=StepStatus.RUNNING).update(
        external_id=external_id, external_url=url, result=stored, updated_at=now
    ):
        return
    step_run.external_id, step_run.external_url, step_run.result = external_id, url, stored
    playbook_run_advance(run_id=step_run.run_id)


def step_run_execute(*, step_run_id: Any) -> None:
    """Perform one step's action with its stored idempotency key; record the external reference it got."""
    claimed = _settle_without_calling(_claim([str(step_run_id)]))
    if not claimed:
        return
    step_run = claimed[0]
    try:
        if step_run.integration is None:
            raise ApplicationError("No integration is bound for this step.", code="configuration")
        connector = connector_for(step_run.integration)
        with execution_guards.lease_kept([step_run.pk]), output_listener(lambda early: _step_output_early(step_run, early)):
            if execution_guards.action_idempotency(connector, step_run.action) == "none":
                execution_guards.delivery_mark([step_run])
            result = _perform(connector, step_run)
    except ApplicationError as exc:
        _step_failed(step_run, ApiError(exc.message))
        _advance_when_step_done(step_run.run_id, step_run.step_key)
        return
    except Exception as exc:  # noqa: BLE001 - every failure is classified and shown on the step, never swallowed
        delay = _step_failed(step_run, exc)
        if delay is None:
            _advance_when_step_done(step_run.run_id, step_run.step_key)
        else:
            _enqueue_steps([[str(step_run.pk)]], countdown=delay)
        return
    _step_succeeded(step_run, result)
    _advance_when_step_done(step_run.run_id, step_run.step_key)


def step_runs_execute_bulk(*, step_run_ids: list[str]) -> None:
    """Perform one bulk call for a chunk of a fanned-out step (a vendor's bulk endpoint: up to 50 objects per call)."""
    step_runs = _settle_without_calling(_claim([str(i) for i in step_run_ids]))
    if not step_runs:
        return
    first = step_runs[0]
    try:
        if first.integration is None:
            raise ApiError("No integration is bound for this step.")
        connector = connector_for(first.integration)
        with execution_guards.lease_kept([s.pk for s in step_runs]):
            if execution_guards.action_idempotency(connector, first.action) == "none":
                execution_guards.delivery_mark(step_runs)
            results = _perform_bulk(connector, step_runs)
    except Exception as exc:  # noqa: BLE001 - the whole call failed: each item records it; retryable chunks go again together
        delays = [_step_failed(s, exc) for s in step_runs]
        retry = [str(s.pk) for s, d in zip(step_runs, delays, strict=True) if d is not None]
        if retry:
            _enqueue_steps([retry], countdown=max(d for d in delays if d is not None))
        if len(retry) < len(step_runs):
            _advance_when_step_done(first.run_id, first.step_key)
        return
    succeeded = 0
    for step_run, result in zip(step_runs, results, strict=True):
        if isinstance(result, Exception):
            delay = _step_failed(step_run, result)
            if delay is not None:
                _enqueue_steps([[str(step_run.pk)]], countdown=delay)
        else:
            _step_succeeded(step_run, result)
            succeeded += 1
    if succeeded:
        reused = sum(1 for s in step_runs if s.status == StepStatus.SUCCEEDED and s.reused_existing)
        note = f" ({reused} already existed)" if reused else ""
        verb = next((a.verb for a in connector.manifest.actions if a.key == first.action), "done")
        timeline_add(first.run, "step_succeeded", f"{first.step_name}: {succeeded} of {len(step_runs)} {verb} together{note}", step_key=first.step_key)
    _advance_when_step_done(first.run_id, first.step_key)
