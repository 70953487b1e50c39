"""How the engine reads a human step's outcome: plain dependents follow the approved path, `<key>:<outcome>` a branch."""

from __future__ import annotations

from typing import Any

from playbooks.human.config import is_human_connector
from playbooks.models import StepStatus

PROCEEDING = ("approved", "done", "time_reached", "condition_met")
DONE = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED)


def human_dependency_state(dependency: str, by_key: dict[str, list[Any]]) -> str:
    """'ok' | 'skipped' | 'failed' | 'waiting' for a dependency on a human step (or one of its branches); '' otherwise."""
    key, _, outcome = dependency.partition(":")
    steps = by_key.get(key) or []
    if not steps:
        return "skipped" if outcome else ""  # a branch of an unknown step never runs (a template error, shown in the admin)
    step = steps[0]
    if not is_human_connector(step.connector_key):
        if not outcome:
            return ""
        # An approved status update became an ordinary vendor send: its approved branch follows the send.
        if step.status not in DONE:
            return "waiting"
        return "ok" if outcome == "approved" and step.status == StepStatus.SUCCEEDED else "skipped"
    if step.status not in DONE:
        return "waiting"
    if step.status in (StepStatus.FAILED, StepStatus.CANCELLED):
        return "failed"
    if step.status == StepStatus.SKIPPED:
        return "skipped"
    data = (step.result or {}).get("data") or {}
    if outcome:
        # A deadline whose path is "continue" goes down the main path, not the timed-out branch.
        taken = data.get("outcome") == outcome and (data.get("branch") != "continue" or outcome in PROCEEDING)
        return "ok" if taken else "skipped"
    return "ok" if data.get("proceed", True) else "skipped"
