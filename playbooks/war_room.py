"""The war room as a person reads it: the run's view model (selectors.playbook_run_view) put into words and links.

Results are named by what they are ("#crisis-…", "20 invited", "OPS-13", "Meeting Tue 7 Dec 09:00, 20 attendees"),
never by a vendor's internal id; skipped steps are not errors; every attention item says what to do next.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from common.url_safety import safe_http_url
from playbooks.models import PlaybookRun, RunStatus, StepRun, StepStatus

RUN_STATUS_WORDS = {
    RunStatus.PENDING: "Starting",
    RunStatus.RUNNING: "Running",
    RunStatus.SUCCEEDED: "Done",
    RunStatus.PARTIAL: "Partly done",
    RunStatus.FAILED: "Failed",
    RunStatus.CANCELLED: "Cancelled",
}
TASK_KIND_WORDS = {
    "jira_issue": "Jira issue",
    "slack_channel": "Slack channel",
    "calendar_event": "Meeting",
    "incident": "On-call incident",
    "status_incident": "Status page incident",
    "salesforce_record": "Salesforce record",
}
DONE_VERBS = {
    "create_channel": "created",
    "invite_users": "invited",
    "post_message": "posted",
    "create_issue": "created",
    "create_event": "booked",
    "send_email": "sent",
    "send_sms": "sent",
    "send_dm": "sent",
    "trigger_incident": "paged",
    "create_incident": "opened",
}
# Event kinds that arrive in bursts from the tools (one per ticket): one timeline line each burst, details folded.
BULKY_EVENTS = {"task_status": "{n} tasks changed status in their tools", "task_updated": "{n} tasks updated in their tools"}
ACTIVE = (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING)
STALLED_AFTER = timedelta(minutes=2)


def _http(url: str | None) -> str:
    return safe_http_url(url)  # the one URL rule (common.url_safety): vendor links become hrefs only when http(s)


def _when(value: Any) -> str:
    moment = parse_datetime(value) if isinstance(value, str) else value if isinstance(value, datetime) else None
    if moment is None:
        return ""
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return timezone.localtime(moment).strftime("%a %-d %b, %H:%M")


def _option_label(run: PlaybookRun, key: str, value: Any) -> str:
    """The scenario definition's label for a choice value ("sev1" → "SEV1 · critical")."""
    fields = getattr(getattr(run.playbook.scenario, "data_model", None), "field_definitions", None) or []
    for field in fields:
        if isinstance(field, dict) and field.get("key") == key:
            for option in field.get("options") or []:
                if isinstance(option, dict) and str(option.get("value")) == str(value):
                    return str(option.get("label") or value)
    return str(value or "").upper() if key == "severity" else str(value or "")


def _person(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("email") or "")
    return str(value or "")


def _step_results(step: dict[str, Any], payloads: dict[str, dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """A one-line summary of what a step made, and the links to the objects (named, never by internal id)."""
    items = step["items"]
    done = [i for i in items if i["status"] == StepStatus.SUCCEEDED]
    action = step["action"]
    links: list[dict[str, str]] = []
    if not done:
        return "", links
    if action == "create_channel":
        payload = payloads.get(done[0]["id"]) or {}
        name = "#" + str(payload.get("name") or done[0]["data"].get("name") or "channel").lstrip("#")
        return "", [{"text": name, "url": _http(done[0]["external_url"])}]
    if action == "invite_users" and len(items) > 1:
        return f"{len(done)} invited", []
    if action == "invite_users":
        data = done[0]["data"] or {}
        payload = payloads.get(done[0]["id"]) or {}
        invited = len(payload.get("emails") or payload.get("users") or []) - len(data.get("not_found") or [])
        return f"{max(invited, 0)} invited" + (f", {len(data['not_found'])} not found" if data.get("not_found") else ""), []
    if action == "create_event":
        payload = payloads.get(done[0]["id"]) or {}
        attendees = len(payload.get("attendees") or [])
        text = "Meeting " + (_when(payload.get("start")) or "booked") + (f", {attendees} attendees" if attendees else "")
        return "", [{"text": text, "url": _http(done[0]["external_url"])}]
    if action == "post_message":
        return "", [{"text": "Briefing posted", "url": _http(done[0]["external_url"])}]
    verb = DONE_VERBS.get(action, "done")
    keyed = [i for i in done if (i["data"] or {}).get("key")]
    if keyed:
        links = [{"text": str(i["data"]["key"]), "url": _http(i["external_url"])} for i in keyed]
        return f"{len(done)} {verb}", links
    if len(items) > 1:
        return f"{len(done)} {verb}", []
    data = done[0]["data"] or {}
    number = data.get("incident_number") or data.get("number")
    text = f"Incident #{number}" if number else (done[0]["title"] or step["name"])
    return verb.capitalize(), [{"text": text, "url": _http(done[0]["external_url"])}] if _http(done[0]["external_url"]) else []


def _skipped_reason(step: dict[str, Any], step_runs: list[StepRun]) -> str:
    reasons = {s.last_error for s in step_runs if s.step_key == step["key"] and s.status == StepStatus.SKIPPED and s.last_error}
    return "; ".join(sorted(reasons))


def _named(message: str, names: dict[str, str]) -> str:
    """Step keys in an engine message ("create_channel, create_tasks (17)") read as the steps' names."""
    return re.sub(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", lambda m: names.get(m.group(0), m.group(0).replace("_", " ")), message)


def _timeline(events: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """Consecutive events of one step and kind become one line with a count (20 invitations read as one)."""
    groups: list[dict[str, Any]] = []
    for event in events:
        event = {**event, "message": _named(event["message"], names)}
        last = groups[-1] if groups else None
        if last and last["step_key"] == event["step_key"] and last["kind"] == event["kind"] and (event["step_key"] or event["kind"] in BULKY_EVENTS):
            last["details"].append(event["message"])
            continue
        groups.append({"at": event["at"], "kind": event["kind"], "step_key": event["step_key"], "message": event["message"], "details": [event["message"]]})
    for group in groups:
        if len(group["details"]) > 1:
            prefixes = {line.split(":", 1)[0] for line in group["details"]}
            if len(prefixes) == 1:
                group["message"] = f"{prefixes.pop()}: {len(group['details'])} done"
            else:
                group["message"] = BULKY_EVENTS.get(group["kind"], "{n} updates").format(n=len(group["details"]))
    return groups


def _attention(view: dict[str, Any], run: PlaybookRun, step_runs: list[StepRun], can_edit: bool) -> list[dict[str, str]]:
    """Each item: what is wrong, why, and the action that fixes it."""
    items: list[dict[str, str]] = []
    connectors = {step["key"]: step["connector_key"] for step in view["steps"]}
    for item in view["attention"]:
        kind = item["kind"]
        action = ""
        link = ""
        if kind == "step_skipped" and connectors.get(item["step_key"]):
            link = f"/integrations/?q={connectors[item['step_key']]}"
        if kind in ("step_failed", "steps_waiting", "step_skipped"):
            action = "retry" if can_edit and run.status in (RunStatus.PARTIAL, RunStatus.FAILED) else ""
        hint = {
            "step_failed": "Fix the cause in the tool, then retry the failed steps.",
            "step_skipped": "Connect it; the next activation runs this step (what already exists is reused).",
            "people_not_found": "Add them to the directory or correct their e-mail in the scenario.",
            "steps_waiting": "They start once the failed steps succeed.",
            "invitation_declined": "Find a stand-in or ask them to reconsider.",
            "undo_failed": "Undo again once the tool is reachable.",
        }.get(kind, "")
        title, _, reason = item["message"].partition(": ")
        items.append({"title": title if reason else item["message"], "reason": reason, "hint": hint, "action": action, "link": link})
    now = timezone.now()
    stalled = [
        s for s in step_runs if s.status in (StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING) and s.updated_at and now - s.updated_at > STALLED_AFTER
    ]
    if stalled and run.status == RunStatus.RUNNING:
        names = ", ".join(sorted({s.step_name for s in stalled}))
        items.append(
            {
                "title": f"{len(stalled)} action{'s' if len(stalled) != 1 else ''} stalled",
                "reason": f"No progress for over {int(STALLED_AFTER.total_seconds() // 60)} minutes: {names}. A worker may have stopped.",
                "hint": "Resume sends them to a worker again; nothing already done is repeated.",
                "action": "resume" if can_edit else "",
                "link": "",
            }
        )
    return items


def war_room_display(*, run: PlaybookRun, view: dict[str, Any], can_edit: bool) -> dict[str, Any]:
    """What the war room page shows for one run."""
    step_runs = list(run.step_runs.filter(undo_of__isnull=True).only("id", "step_key", "step_name", "status", "last_error", "payload", "updated_at"))
    payloads = {str(s.pk): s.payload or {} for s in step_runs}
    values = (run.context or {}).get("scenario") or dict(run.playbook.scenario.values or {})
    counts = view["counts"]
    total = sum(counts.values())
    skipped = counts.get(StepStatus.SKIPPED, 0) + counts.get(StepStatus.CANCELLED, 0)
    done = counts.get(StepStatus.SUCCEEDED, 0)
    steps = []
    for step in view["steps"]:
        summary, links = _step_results(step, payloads)
        step_total = len(step["items"])
        step_done = step["counts"].get(StepStatus.SUCCEEDED, 0)
        failed = [i for i in step["items"] if i["status"] == StepStatus.FAILED]
        steps.append(
            {
                "key": step["key"],
                "name": step["name"],
                "tool": step["integration"] or step["connector_key"].replace("_", " ").title(),
                "status": step["status"],
                "done": step_done,
                "total": step_total,
                "percent": round(100 * step_done / step_total) if step_total else 0,
                "duration_ms": step["duration_ms"],
                "summary": summary,
                "links": links,
                "error": failed[0]["last_error"] if failed else "",
                "skipped_reason": _skipped_reason(step, step_runs) if step["status"] == StepStatus.SKIPPED else "",
            }
        )
    tasks_by_kind = {}
    for task in view["tasks"]:
        tasks_by_kind.setdefault(task["kind"], task)
    channel = tasks_by_kind.get("slack_channel")
    meeting_step = next((s for s in steps if s["key"] and any("Meeting" in link["text"] for link in s["links"])), None)
    tasks = [
        {
            "id": task["id"],
            "key": task["external_key"],
            "title": task["title"],
            "url": _http(task["url"]),
            "kind": TASK_KIND_WORDS.get(task["kind"], task["kind"].replace("_", " ").capitalize()),
            "owner": task["owner"],
            "status": task["status"],
            "is_done": task["is_done"],
            "source": {"poll": "polling", "webhook": "webhook"}.get(task["status_source"] or "", ""),
        }
        for task in view["tasks"]
    ]
    return {
        "status_word": RUN_STATUS_WORDS.get(run.status, run.status),
        "severity": _option_label(run, "severity", values.get("severity")) if values.get("severity") else "",
        "commander": _person(values.get("incident_commander") or values.get("deal_lead") or values.get("launch_owner")),
        "channel": {"text": channel["title"], "url": _http(channel["url"])} if channel else None,
        "meeting": meeting_step["links"][-1] if meeting_step else None,
        "progress": {
            "done": done,
            "total": total - skipped,
            "skipped": skipped,
            "failed": counts.get(StepStatus.FAILED, 0),
            "percent": round(100 * done / (total - skipped)) if total - skipped else 0,
        },
        "steps": steps,
        "tasks": tasks,
        "open_tasks": sum(1 for t in tasks if not t["is_done"]),
        "attention": _attention(view, run, step_runs, can_edit),
        "timeline": _timeline(view["timeline"], {step["key"]: step["name"] for step in view["steps"]}),
        "can_retry": can_edit and run.status in (RunStatus.PARTIAL, RunStatus.FAILED),
        "can_resume": can_edit and run.status == RunStatus.RUNNING,
    }
