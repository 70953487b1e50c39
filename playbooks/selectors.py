"""Reads for playbooks, always scoped by organization, and the war-room view model shared by the page and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import Organization
from integrations.registry import UnknownConnector, get_connector_class
from playbooks import execution_guards
from playbooks.contract import action_spec
from playbooks.models import Playbook, PlaybookRun, PlaybookTemplate, RunStatus, StepRun, StepStatus, Task
from scenarios.models import Scenario

# Why a created thing is left in place when a run is undone (actions whose connector has no undo for them).
ACTIVE_UNDO_STATUSES = (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING)


def playbook_template_list(*, scenario_type: str | None = None) -> QuerySet[PlaybookTemplate]:
    templates = PlaybookTemplate.objects.filter(is_active=True).prefetch_related("steps")
    return templates.filter(scenario_type=scenario_type) if scenario_type else templates


def playbook_list(*, organization: Organization) -> QuerySet[Playbook]:
    return Playbook.objects.filter(organization=organization).select_related("scenario", "template").order_by("-created_at")


def playbook_get(*, organization: Organization, playbook_id: Any) -> Playbook | None:
    return playbook_list(organization=organization).filter(pk=playbook_id).first()


def playbook_run_list(*, organization: Organization) -> QuerySet[PlaybookRun]:
    return PlaybookRun.objects.filter(organization=organization).select_related("playbook", "activated_by", "cancelled_by")


def playbook_latest_run(*, playbook: Playbook) -> PlaybookRun | None:
    return playbook.runs.order_by("-created_at").first()


def scenario_list(*, organization: Organization) -> QuerySet[Scenario]:
    return Scenario.objects.filter(organization=organization).order_by("-created_at")


@dataclass
class UndoPlanItem:
    """One object a run created and what undoing the run does with it."""

    step_run: StepRun
    undo_step: StepRun | None
    is_undoable: bool
    description: str  # what undo does, or why the object stays


def _undo_actions(connector_key: str) -> dict[str, str]:
    """Action key → how the connector's undo() reverses it (ActionSpec.undo, under Capability.UNDO)."""
    try:
        return get_connector_class(connector_key).manifest.undoable_actions()
    except UnknownConnector:
        return {}


def undo_plan(*, run: PlaybookRun, step_runs: list[StepRun] | None = None) -> list[UndoPlanItem]:
    """Every object this run created, with what undo does to it; objects the run only found (reused) are left alone."""
    step_runs = step_runs if step_runs is not None else list(run.step_runs.select_related("integration").order_by("position", "item_index"))
    undo_by_origin = {s.undo_of_id: s for s in step_runs if s.undo_of_id}
    created = [s for s in step_runs if s.undo_of_id is None and s.status == StepStatus.SUCCEEDED and s.external_id]
    reused = [s for s in created if s.reused_existing]
    # A reused object was made by this run only when an earlier attempt of this run made it (its answer was lost).
    elsewhere = set(
        StepRun.objects.filter(idempotency_key__in=[s.idempotency_key for s in reused], status=StepStatus.SUCCEEDED, undo_of__isnull=True)
        .exclude(run=run)
        .values_list("idempotency_key", "external_id")
    )
    actions: dict[str, dict[str, str]] = {}
    plan: list[UndoPlanItem] = []
    for step_run in created:
        undo_step = undo_by_origin.get(step_run.pk)
        made_here = not step_run.reused_existing or (step_run.attempts > 1 and (step_run.idempotency_key, step_run.external_id) not in elsewhere)
        known = actions.setdefault(step_run.connector_key, _undo_actions(step_run.connector_key))
        if undo_step is not None:
            plan.append(UndoPlanItem(step_run, undo_step, True, known.get(step_run.action, "Undo")))
        elif not made_here:
            plan.append(UndoPlanItem(step_run, None, False, "It existed before this run (Bastion reused it), so it is left alone."))
        elif step_run.action in known:
            plan.append(UndoPlanItem(step_run, None, True, known[step_run.action]))
        else:
            spec = action_spec(step_run.connector_key, step_run.action)
            reason = (
                spec.kept_on_undo if spec is not None else ""
            ) or f"Bastion cannot undo {step_run.action.replace('_', ' ')} here; remove it by hand if needed."
            plan.append(UndoPlanItem(step_run, None, False, reason))
    return plan


def _undo_view(run: PlaybookRun, plan: list[UndoPlanItem], tasks: list[Task]) -> dict[str, Any]:
    task_by_step = {t.step_run_id: t for t in tasks}
    items: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    groups: dict[str, dict[str, Any]] = {}
    for entry in plan:
        origin, undo_step = entry.step_run, entry.undo_step
        task = task_by_step.get(origin.pk)
        status = undo_step.status if undo_step else ("not_undoable" if not entry.is_undoable else "not_requested")
        counts[status] = counts.get(status, 0) + 1
        ref = (
            (task.external_key if task else "")
            or str(((origin.result or {}).get("data") or {}).get("key") or "")
            or (task.title if task else origin.external_id)
        )
        item = {
            "id": str(undo_step.pk) if undo_step else None,
            "step_key": origin.step_key,
            "label": origin.label,
            "object": ref,
            "external_id": origin.external_id,
            "external_url": origin.external_url,
            "is_undoable": entry.is_undoable,
            "description": entry.description,
            "status": status,
            "attempts": undo_step.attempts if undo_step else 0,
            "last_error": undo_step.last_error if undo_step else "",
            "error_class": undo_step.error_class if undo_step else "",
            "finished_at": undo_step.finished_at if undo_step else None,
        }
        items.append(item)
        group = groups.setdefault(
            f"{origin.step_key}:{entry.is_undoable}",
            {"step_key": origin.step_key, "name": origin.step_name, "is_undoable": entry.is_undoable, "description": entry.description, "objects": []},
        )
        group["objects"].append(ref)
    pending = [i for i in items if i["is_undoable"] and i["status"] in ("not_requested", StepStatus.FAILED, StepStatus.CANCELLED)]
    return {
        "requested_at": run.undo_requested_at,
        "requested_by": run.undo_requested_by.get_username() if run.undo_requested_by else "",
        "is_running": any(i["status"] in ACTIVE_UNDO_STATUSES for i in items),
        "can_undo": bool(pending),
        "undoable_count": len(pending),
        "counts": counts,
        "groups": list(groups.values()),
        "items": items,
    }


def time_saved(run: PlaybookRun) -> dict[str, Any]:
    """Measured activation time against the manual baseline (the seed's 2 hours); only a run that succeeded saved time."""
    baseline_ms = run.manual_baseline_minutes * 60_000
    duration = run.duration_ms
    if duration is None or run.status != RunStatus.SUCCEEDED:
        return {"baseline_minutes": run.manual_baseline_minutes, "activation_ms": None, "saved_minutes": None, "saved_percent": None}
    saved = max(0, baseline_ms - duration)
    return {
        "baseline_minutes": run.manual_baseline_minutes,
        "activation_ms": duration,
        "saved_minutes": round(saved / 60_000, 1),
        "saved_percent": round(100 * saved / baseline_ms, 2) if baseline_ms else None,
    }


def _step_groups(step_runs: list[StepRun]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for step_run in step_runs:
        group = groups.setdefault(
            step_run.step_key,
            {
                "key": step_run.step_key,
                "name": step_run.step_name,
                "connector_key": step_run.connector_key,
                "action": step_run.action,
                "integration": step_run.integration.display_name if step_run.integration else "",
                "depends_on": step_run.depends_on,
                "counts": {},
                "items": [],
                "started_at": None,
                "finished_at": None,
                "duration_ms": None,
            },
        )
        group["counts"][step_run.status] = group["counts"].get(step_run.status, 0) + 1
        group["items"].append(
            {
                "id": str(step_run.pk),
                "label": step_run.label,
                "title": step_run.item_title,
                "item_key": step_run.item_key,
                "status": step_run.status,
                "attempts": step_run.attempts,
                "external_id": step_run.external_id,
                "external_url": step_run.external_url,
                "reused_existing": step_run.reused_existing,
                "last_error": step_run.last_error,
                "error_class": step_run.error_class,
                "duration_ms": step_run.duration_ms,
                "data": (step_run.result or {}).get("data", {}),
                # The connector's words for the outcome (ActionResult.link_text/summary), shown by the war room.
                "link_text": str((step_run.result or {}).get("link_text") or ""),
                "summary": str((step_run.result or {}).get("summary") or ""),
            }
        )
        if step_run.started_at and (group["started_at"] is None or step_run.started_at < group["started_at"]):
            group["started_at"] = step_run.started_at
        if step_run.finished_at and (group["finished_at"] is None or step_run.finished_at > group["finished_at"]):
            group["finished_at"] = step_run.finished_at
    for group in groups.values():
        statuses = set(group["counts"])
        if statuses <= {StepStatus.SUCCEEDED}:
            group["status"] = StepStatus.SUCCEEDED
        elif StepStatus.FAILED in statuses:
            group["status"] = StepStatus.FAILED
        elif statuses & {StepStatus.RUNNING, StepStatus.QUEUED, StepStatus.RETRYING}:
            group["status"] = StepStatus.RUNNING
        elif statuses <= {StepStatus.SKIPPED}:
            group["status"] = StepStatus.SKIPPED
        elif StepStatus.CANCELLED in statuses:
            group["status"] = StepStatus.CANCELLED
        elif StepStatus.WAITING in statuses:  # an approval, a human task or a wait
            group["status"] = StepStatus.WAITING
        elif StepStatus.PENDING in statuses:
            group["status"] = StepStatus.PENDING
        else:
            group["status"] = StepStatus.SUCCEEDED
        if group["started_at"] and group["finished_at"] and group["status"] in (StepStatus.SUCCEEDED, StepStatus.FAILED):
            group["duration_ms"] = int((group["finished_at"] - group["started_at"]).total_seconds() * 1000)
    return list(groups.values())


def _stalled_items(run: PlaybookRun, step_runs: list[StepRun]) -> list[dict[str, Any]]:
    """Steps of a live run that are not moving: a dead worker's expired lease, a message waiting too long, a retry."""
    if run.status not in (RunStatus.PENDING, RunStatus.RUNNING):
        return []
    now = timezone.now()
    lease = timedelta(seconds=execution_guards.lease_seconds())
    stalled = [
        s
        for s in step_runs
        if (s.status == StepStatus.RUNNING and s.lease_expires_at and s.lease_expires_at < now)
        or (s.status == StepStatus.QUEUED and s.queued_at and s.queued_at < now - lease)
    ]
    items: list[dict[str, Any]] = []
    for step_key in sorted({s.step_key for s in stalled}):
        group = [s for s in stalled if s.step_key == step_key]
        items.append(
            {
                "kind": "step_stalled",
                "step_key": step_key,
                "message": f"{group[0].step_name}: {len(group)} action(s) lost their worker (it stopped or restarted). "
                "Bastion resumes them automatically within a minute; press “Resume” to do it now.",
                "error_class": "transient",
            }
        )
    for s in step_runs:
        if s.status == StepStatus.RETRYING:
            when = f" at {timezone.localtime(s.next_attempt_at):%H:%M:%S}" if s.next_attempt_at else ""
            items.append(
                {
                    "kind": "step_retrying",
                    "step_key": s.step_key,
                    "message": f"{s.label}: {s.last_error} — Bastion tries again{when} (attempt {s.attempts + 1}).",
                    "error_class": s.error_class or "transient",
                }
            )
    return items


def attention_items(run: PlaybookRun, step_runs: list[StepRun], tasks: list[Task]) -> list[dict[str, Any]]:
    """What needs a person: failed steps with the vendor's error, people not found, declined invitations."""
    items: list[dict[str, Any]] = []
    for step_run in step_runs:
        if step_run.status == StepStatus.FAILED:
            items.append(
                {
                    "kind": "step_failed",
                    "step_key": step_run.step_key,
                    "message": f"{step_run.label}: {step_run.last_error}",
                    "error_class": step_run.error_class,
                }
            )
        elif step_run.status == StepStatus.SKIPPED and step_run.error_class == "configuration":
            items.append(
                {
                    "kind": "step_skipped",
                    "step_key": step_run.step_key,
                    "message": f"{step_run.label} skipped: {step_run.last_error}",
                    "error_class": "configuration",
                }
            )
        not_found = ((step_run.result or {}).get("data") or {}).get("not_found") or []
        if not_found:
            items.append(
                {
                    "kind": "people_not_found",
                    "step_key": step_run.step_key,
                    "message": f"{step_run.step_name}: {len(not_found)} not found: {', '.join(not_found)}",
                    "error_class": "configuration",
                }
            )
    items.extend(_stalled_items(run, step_runs))
    waiting = [s for s in step_runs if s.status == StepStatus.PENDING and run.status in (RunStatus.PARTIAL, RunStatus.FAILED)]
    if waiting:
        names = ", ".join(sorted({s.step_name for s in waiting}))
        items.append({"kind": "steps_waiting", "step_key": "", "message": f"Waiting on failed steps: {names}. Use “Retry failed steps”.", "error_class": ""})
    for task in tasks:
        declined = [a.get("email", "") for a in task.details.get("attendees", []) if a.get("response") == "declined"]
        if declined:
            items.append({"kind": "invitation_declined", "step_key": "", "message": f"{task.title}: declined by {', '.join(declined)}", "error_class": ""})
    return items


def _task_tracking(task: Task) -> dict[str, str]:
    """What the object is to the war room, as its step's connector declares it (ActionSpec.tracks and tracks_label)."""
    # step_connector/step_action: annotated by playbook_run_view from the task's step.
    spec = action_spec(getattr(task, "step_connector", None) or "", getattr(task, "step_action", None) or "")
    if spec is None or spec.tracks is None:
        return {"tracks": "", "label": ""}
    return {"tracks": str(spec.tracks), "label": spec.tracks_label}


def playbook_run_view(*, run: PlaybookRun) -> dict[str, Any]:
    """Everything the war room shows for a run: steps with items, tracked tasks, timeline, attention, timing."""
    every_step = list(run.step_runs.select_related("integration").order_by("position", "item_index"))
    step_runs = [s for s in every_step if s.undo_of_id is None]
    tasks = list(run.tasks.annotate(step_connector=F("step_run__connector_key"), step_action=F("step_run__action")).order_by("kind", "created_at"))
    undo = _undo_view(run, undo_plan(run=run, step_runs=every_step), tasks)
    counts: dict[str, int] = {}
    for step_run in step_runs:
        counts[step_run.status] = counts.get(step_run.status, 0) + 1
    return {
        "id": str(run.pk),
        "playbook_id": str(run.playbook_id),
        "playbook_name": run.playbook.name,
        "status": run.status,
        "is_live": run.status in (RunStatus.PENDING, RunStatus.RUNNING),
        "activated_by": run.activated_by.get_username() if run.activated_by else "",
        "cancelled_by": run.cancelled_by.get_username() if run.cancelled_by else "",
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "error_summary": run.error_summary,
        "counts": counts,
        "time_saved": time_saved(run),
        "steps": _step_groups(step_runs),
        "tasks": [
            {
                "id": str(task.pk),
                "kind": task.kind,
                **_task_tracking(task),
                "title": task.title,
                "external_id": task.external_id,
                "external_key": task.external_key,
                "url": task.url,
                "owner": task.owner,
                "status": task.status,
                "is_done": task.is_done,
                "details": task.details,
                "last_event_at": task.last_event_at,
                "status_source": task.status_source,
                "last_polled_at": task.last_polled_at,
            }
            for task in tasks
        ],
        "timeline": [{"at": e.at, "kind": e.kind, "message": e.message, "step_key": e.step_key} for e in run.timeline.order_by("at", "id")],
        "attention": attention_items(run, step_runs, tasks)
        + [
            {"kind": "undo_failed", "step_key": i["step_key"], "message": f"Could not undo {i['object']}: {i['last_error']}", "error_class": i["error_class"]}
            for i in undo["items"]
            if i["status"] == StepStatus.FAILED
        ]
        + _human_attention(run),
        "undo": undo,
    }


def _human_attention(run: PlaybookRun) -> list[dict[str, Any]]:
    """Overdue human tasks and steps the stall check found stuck (playbooks/human)."""
    from playbooks.human.selectors import human_attention

    return human_attention(run)
