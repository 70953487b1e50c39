"""Reads for playbooks, always scoped by organization, and the war-room view model shared by the page and the API."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import Organization
from playbooks.models import Playbook, PlaybookRun, PlaybookTemplate, RunStatus, StepRun, StepStatus, Task
from scenarios.models import Scenario


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


def time_saved(run: PlaybookRun) -> dict[str, Any]:
    """Measured activation time against the manual baseline (the seed's 2 hours)."""
    baseline_ms = run.manual_baseline_minutes * 60_000
    duration = run.duration_ms
    if duration is None:
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
        elif StepStatus.PENDING in statuses:
            group["status"] = StepStatus.PENDING
        else:
            group["status"] = StepStatus.SUCCEEDED
        if group["started_at"] and group["finished_at"] and group["status"] in (StepStatus.SUCCEEDED, StepStatus.FAILED):
            group["duration_ms"] = int((group["finished_at"] - group["started_at"]).total_seconds() * 1000)
    return list(groups.values())


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
    waiting = [s for s in step_runs if s.status == StepStatus.PENDING and run.status in (RunStatus.PARTIAL, RunStatus.FAILED)]
    if waiting:
        names = ", ".join(sorted({s.step_name for s in waiting}))
        items.append({"kind": "steps_waiting", "step_key": "", "message": f"Waiting on failed steps: {names}. Use “Retry failed steps”.", "error_class": ""})
    for task in tasks:
        declined = [a.get("email", "") for a in task.details.get("attendees", []) if a.get("response") == "declined"]
        if declined:
            items.append({"kind": "invitation_declined", "step_key": "", "message": f"{task.title}: declined by {', '.join(declined)}", "error_class": ""})
    return items


def playbook_run_view(*, run: PlaybookRun) -> dict[str, Any]:
    """Everything the war room shows for a run: steps with items, tracked tasks, timeline, attention, timing."""
    step_runs = list(run.step_runs.select_related("integration").order_by("position", "item_index"))
    tasks = list(run.tasks.order_by("kind", "created_at"))
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
                "title": task.title,
                "external_id": task.external_id,
                "external_key": task.external_key,
                "url": task.url,
                "owner": task.owner,
                "status": task.status,
                "is_done": task.is_done,
                "details": task.details,
                "last_event_at": task.last_event_at,
            }
            for task in tasks
        ],
        "timeline": [{"at": e.at, "kind": e.kind, "message": e.message, "step_key": e.step_key} for e in run.timeline.order_by("at", "id")],
        "attention": attention_items(run, step_runs, tasks),
    }
