"""The war room as a person reads it: the run's view model (selectors.playbook_run_view) put into words and links.

Results are named by what they are ("#crisis-…", "20 invited", "OPS-13", "Meeting Tue 7 Dec 09:00, 20 attendees"),
never by a vendor's internal id: the words are the connector's (ActionResult.link_text/summary, ActionSpec.verb/tracks_label).
Skipped steps are not errors; every attention item says what to do next.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.utils import timezone

from common.url_safety import safe_http_url
from integrations.connectors.base import ActionSpec, TrackedKind
from playbooks.contract import action_spec, connector_label
from playbooks.models import PlaybookRun, RunStatus, StepRun, StepStatus

RUN_STATUS_WORDS = {
    RunStatus.PENDING: "Starting",
    RunStatus.RUNNING: "Running",
    RunStatus.SUCCEEDED: "Done",
    RunStatus.PARTIAL: "Partly done",
    RunStatus.FAILED: "Failed",
    RunStatus.CANCELLED: "Cancelled",
}
# Objects whose link says it all ("#inc-42", "Meeting Mon 7 Dec…"); others get the action's verb beside the link ("Paged").
LINK_ONLY_KINDS = (None, TrackedKind.CHANNEL, TrackedKind.MEETING, TrackedKind.MESSAGE)
# Event kinds that arrive in bursts from the tools (one per ticket): one timeline line each burst, details folded.
BULKY_EVENTS = {"task_status": "{n} tasks changed status in their tools", "task_updated": "{n} tasks updated in their tools"}
ACTIVE = (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.RETRYING)
STALLED_AFTER = timedelta(minutes=2)


def _http(url: str | None) -> str:
    return safe_http_url(url)  # the one URL rule (common.url_safety): vendor links become hrefs only when http(s)


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


def _natural(text: str) -> tuple[str, int, str]:
    """OPS-9 before OPS-10: parallel bulk calls finish in any order, a person reads the keys in order."""
    head = text.rstrip("0123456789")
    tail = text[len(head) :]
    return (head, int(tail) if tail else -1, text)


def _step_results(step: dict[str, Any], spec: ActionSpec | None) -> tuple[str, list[dict[str, str]]]:
    """A one-line summary of what a step made, and the links to the objects, in the connector's words (never internal ids)."""
    items = step["items"]
    done = [i for i in items if i["status"] == StepStatus.SUCCEEDED]
    if not done:
        return "", []
    verb = spec.verb if spec is not None else "done"
    if len(items) > 1:  # a fanned-out step: a count, and a link per object the connector named ("OPS-12")
        links = [{"text": i["link_text"], "url": _http(i["external_url"])} for i in done if i["link_text"]]
        return f"{len(done)} {verb}", sorted(links, key=lambda link: _natural(link["text"]))
    first = done[0]
    if first["summary"]:  # an outcome that is a count ("5 invited, 1 not found")
        return first["summary"], []
    url = _http(first["external_url"])
    if first["link_text"]:
        summary = "" if spec is None or spec.tracks in LINK_ONLY_KINDS else verb.capitalize()
        return summary, [{"text": first["link_text"], "url": url}]
    return verb.capitalize(), [{"text": first["title"] or step["name"], "url": url}] if url else []


def _skipped_reason(step: dict[str, Any], step_runs: list[StepRun]) -> str:
    reasons = {s.last_error for s in step_runs if s.step_key == step["key"] and s.status == StepStatus.SKIPPED and s.last_error}
    return "; ".join(sorted(reasons))


def _named(message: str, names: dict[str, str]) -> str:
    """Step keys in an engine message ("open_channel, create_tasks (17)") read as the steps' names."""
    return re.sub(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", lambda m: names.get(m.group(0), m.group(0).replace("_", " ")), message)


def _chunks_summed(prefix: str, lines: list[str]) -> str:
    """Chunks of one bulk step ("Notify…: 10 of 10 sent together", twice) read as one line: "Notify…: 20 of 20 sent"."""
    done = total = 0
    verbs: set[str] = set()
    for line in lines:
        words = line.rpartition(": ")[2].split()
        if len(words) < 5 or words[1] != "of" or words[4] != "together" or not (words[0].isdigit() and words[2].isdigit()):
            return ""
        done, total = done + int(words[0]), total + int(words[2])
        verbs.add(words[3])
    return f"{prefix}: {done} of {total} {verbs.pop()}" if len(verbs) == 1 else ""


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
                prefix = prefixes.pop()
                group["message"] = _chunks_summed(prefix, group["details"]) or f"{prefix}: {len(group['details'])} done"
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
    step_runs = list(run.step_runs.filter(undo_of__isnull=True).only("id", "step_key", "step_name", "status", "last_error", "updated_at"))
    values = (run.context or {}).get("scenario") or dict(run.playbook.scenario.values or {})
    counts = view["counts"]
    total = sum(counts.values())
    skipped = counts.get(StepStatus.SKIPPED, 0) + counts.get(StepStatus.CANCELLED, 0)
    done = counts.get(StepStatus.SUCCEEDED, 0)
    steps = []
    meeting: dict[str, str] | None = None
    for step in view["steps"]:
        spec = action_spec(step["connector_key"], step["action"])
        summary, links = _step_results(step, spec)
        if meeting is None and links and spec is not None and spec.tracks == TrackedKind.MEETING:
            meeting = links[-1]
        step_total = len(step["items"])
        step_done = step["counts"].get(StepStatus.SUCCEEDED, 0)
        failed = [i for i in step["items"] if i["status"] == StepStatus.FAILED]
        steps.append(
            {
                "key": step["key"],
                "name": step["name"],
                "tool": step["integration"] or connector_label(step["connector_key"]),
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
    channel = next((task for task in view["tasks"] if task["tracks"] == TrackedKind.CHANNEL), None)
    tasks = [
        {
            "id": task["id"],
            "key": task["external_key"],
            "title": task["title"],
            "url": _http(task["url"]),
            "kind": task["label"] or task["kind"].replace("_", " ").capitalize(),
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
        "meeting": meeting,
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
