"""The post-run report: timeline, time to start and to all-done per step, failures and how they were recovered, approvals
and who gave them, time saved; and across runs, the steps that fail or wait most."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, F, Q
from django.utils import timezone

from accounts.models import Organization
from playbooks.human.models import HumanStep, HumanStepState
from playbooks.models import PlaybookRun, StepRun, StepStatus
from playbooks.selectors import time_saved


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    return int((end - start).total_seconds() * 1000) if start and end else None


def _human(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def run_report(*, run: PlaybookRun) -> dict[str, Any]:
    """Everything the report says about one run, as data (the Markdown below renders it; the API returns it)."""
    steps: dict[str, dict[str, Any]] = {}
    for step in StepRun.objects.filter(run=run, undo_of__isnull=True).order_by("position", "item_index"):
        entry = steps.setdefault(
            step.step_key,
            {
                "key": step.step_key,
                "name": step.step_name,
                "items": 0,
                "statuses": {},
                "first_started": None,
                "last_finished": None,
                "attempts": 0,
                "errors": [],
            },
        )
        entry["items"] += 1
        entry["statuses"][step.status] = entry["statuses"].get(step.status, 0) + 1
        entry["attempts"] += step.attempts
        if step.started_at and (entry["first_started"] is None or step.started_at < entry["first_started"]):
            entry["first_started"] = step.started_at
        if step.finished_at and (entry["last_finished"] is None or step.finished_at > entry["last_finished"]):
            entry["last_finished"] = step.finished_at
        if step.last_error and step.last_error not in entry["errors"]:
            entry["errors"].append(step.last_error)
    for entry in steps.values():
        entry["to_start_ms"] = _ms(run.started_at, entry["first_started"])
        entry["to_all_done_ms"] = (
            _ms(run.started_at, entry["last_finished"]) if not entry["statuses"].keys() - {StepStatus.SUCCEEDED, StepStatus.SKIPPED} else None
        )
        retried = entry["attempts"] > entry["items"]
        entry["recovered"] = retried and set(entry["statuses"]) <= {StepStatus.SUCCEEDED}
        entry["failed"] = bool(entry["statuses"].get(StepStatus.FAILED))
    approvals = []
    for human in HumanStep.objects.filter(run=run).prefetch_related("participants__user").order_by("created_at"):
        approvals.append(
            {
                "title": human.title,
                "kind": human.kind,
                "outcome": human.outcome or human.state,
                "waited_ms": _ms(human.created_at, human.resolved_at),
                "decisions": [
                    {"who": p.user.get_username(), "decision": p.decision, "via": p.decided_via, "at": p.decided_at, "comment": p.comment}
                    for p in human.participants.all()
                    if p.decision
                ],
            }
        )
    return {
        "run_id": str(run.pk),
        "playbook": run.playbook.name,
        "status": run.status,
        "activated_by": run.activated_by.get_username() if run.activated_by else "system",
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "activation_ms": run.duration_ms,
        "time_saved": time_saved(run),
        "steps": list(steps.values()),
        "approvals": approvals,
        "recoveries": [e.message for e in run.timeline.filter(kind__in=["retry", "resumed", "step_retrying"]).order_by("at", "id")],
        "timeline": [{"at": e.at, "kind": e.kind, "message": e.message} for e in run.timeline.order_by("at", "id")],
    }


def run_report_markdown(*, run: PlaybookRun) -> str:
    """The report as a Markdown document."""
    data = run_report(run=run)
    saved = data["time_saved"]
    lines = [
        f"# Run report: {data['playbook']}",
        "",
        f"- Status: **{data['status']}**, activated by {data['activated_by']}",
        f"- Started {_when(data['started_at'])}, finished {_when(data['finished_at'])}",
        f"- Activation took {_human(data['activation_ms'])}"
        + (
            f"; about {saved['saved_minutes']} of {saved['baseline_minutes']} minutes of manual coordination saved"
            if saved["saved_minutes"] is not None
            else ""
        ),
        "",
        "## Steps",
        "",
        "| Step | Items | Outcome | To start | To all done | Attempts |",
        "|---|---|---|---|---|---|",
    ]
    for step in data["steps"]:
        outcome = ", ".join(f"{count} {status}" for status, count in sorted(step["statuses"].items()))
        lines.append(
            f"| {_cell(step['name'])} | {step['items']} | {outcome} | {_human(step['to_start_ms'])} | {_human(step['to_all_done_ms'])} | {step['attempts']} |"
        )
    failed = [s for s in data["steps"] if s["failed"] or s["recovered"]]
    lines += ["", "## What failed and how it was recovered", ""]
    if not failed and not data["recoveries"]:
        lines.append("Nothing failed.")
    for step in failed:
        how = "recovered by retry" if step["recovered"] else "still failed"
        lines.append(f"- **{step['name']}** ({how}, {step['attempts']} attempts): {'; '.join(step['errors'][:3]) or 'no error kept'}")
    lines.extend(f"- {message}" for message in data["recoveries"])
    lines += ["", "## Approvals, tasks and waits", ""]
    if not data["approvals"]:
        lines.append("None in this run.")
    for approval in data["approvals"]:
        who = (
            "; ".join(f"{d['who']} {d['decision']} via {d['via']}" + (f" (“{d['comment']}”)" if d["comment"] else "") for d in approval["decisions"])
            or "no decision"
        )
        lines.append(f"- **{approval['title']}** ({approval['kind']}): {approval['outcome']} after {_human(approval['waited_ms'])} — {who}")
    lines += ["", "## Timeline", ""]
    lines.extend(f"- {_when(event['at'])} — {event['message']}" for event in data["timeline"])
    return "\n".join(lines) + "\n"


def _when(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z}" if moment else "—"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def steps_that_fail_or_wait(*, organization: Organization, limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Across the organization's runs: the steps that fail (or need retries) most, and the human steps that wait longest."""
    failing = (
        StepRun.objects.filter(run__organization=organization, undo_of__isnull=True)
        .values("step_key", "step_name")
        .annotate(runs=Count("run", distinct=True), failed=Count("pk", filter=Q(status=StepStatus.FAILED)), retried=Count("pk", filter=Q(attempts__gt=1)))
        .filter(Q(failed__gt=0) | Q(retried__gt=0))
        .order_by("-failed", "-retried", "step_key")[:limit]
    )
    waiting = (
        HumanStep.objects.filter(organization=organization, state=HumanStepState.RESOLVED, step_run__isnull=False)
        .values("step_run__step_key", "title")
        .annotate(count=Count("pk"), average_wait=Avg(F("resolved_at") - F("created_at")))
        .order_by("-average_wait")[:limit]
    )
    return {
        "failing": [dict(row) for row in failing],
        "waiting": [
            {
                "step_key": row["step_run__step_key"],
                "title": row["title"],
                "count": row["count"],
                "average_wait_seconds": round(row["average_wait"].total_seconds(), 1),
            }
            for row in waiting
        ],
    }


_LATIN1 = str.maketrans({"—": "-", "–": "-", "−": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "…": "...", "→": "->", "·": "-", "×": "x"})


def _latin1(text: str) -> str:
    """The PDF's core fonts are Latin-1: typographic marks become their ASCII look-alikes, anything else '?'."""
    return text.translate(_LATIN1).encode("latin-1", errors="replace").decode("latin-1")


def run_report_pdf(*, run: PlaybookRun) -> bytes:
    """The same report as a PDF (headings, the step table as text rows, bullets)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Run report: {run.playbook.name}"))
    pdf.set_author("Bastion")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for line in run_report_markdown(run=run).splitlines():
        text = _latin1(line.replace("**", ""))
        if line.startswith("# "):
            pdf.set_font("Helvetica", "B", 16)
            pdf.multi_cell(width, 8, text[2:], new_x="LMARGIN", new_y="NEXT")
        elif line.startswith("## "):
            pdf.ln(2)
            pdf.set_font("Helvetica", "B", 12)
            pdf.multi_cell(width, 7, text[3:], new_x="LMARGIN", new_y="NEXT")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            pdf.set_font("Courier", "", 8)
            cells = [cell.strip().replace("\\|", "|") for cell in text.strip("|").split(" | ")]
            pdf.multi_cell(
                width, 4.5, "  ".join(f"{cell[:38]:<38}" if i == 0 else f"{cell[:22]:<22}" for i, cell in enumerate(cells)), new_x="LMARGIN", new_y="NEXT"
            )
        elif line.strip():
            pdf.set_font("Helvetica", "", 10)
            pdf.multi_cell(width, 5, text, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(2)
    return bytes(pdf.output())
