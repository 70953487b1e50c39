"""Writes for playbooks: create, preview, activate, execute steps idempotently, retry, cancel, undo, and apply status coming back.

One module per concern; this package re-exports the names views, APIs, tasks, other apps and settings
(BASTION_EVENT_HANDLERS: "playbooks.services.webhook_events_apply") use.
"""

from playbooks.services.engine import (
    _advance_when_step_done,
    _claim,
    _enqueue_advance,
    _enqueue_steps,
    _step_succeeded,
    connector_for,
    playbook_run_advance,
    step_run_execute,
    step_runs_execute_bulk,
)
from playbooks.services.planning import (
    StepPreview,
    build_context,
    condition_holds,
    idempotency_key_for,
    integration_blocker,
    plan_items,
    playbook_create,
    playbook_integrations_access_check,
    playbook_preview,
    playbook_update,
    render_step_payload,
    resolve_integration,
    scenario_context,
)
from playbooks.services.runs import (
    CancelOutcome,
    playbook_activate,
    playbook_run_cancel,
    playbook_run_resume,
    playbook_run_retry_failed,
    playbook_runs_resume_stalled,
)
from playbooks.services.shared import BULK_CHUNK, MAX_ATTEMPTS, OPEN_RUN_STATUSES, UNHEALTHY, PlaybookErrorCode, timeline_add
from playbooks.services.status import playbook_tasks_poll, task_apply_tracked, webhook_events_apply
from playbooks.services.undo import step_run_undo_execute, undo_steps_resume_stalled

__all__ = [
    "BULK_CHUNK",
    "MAX_ATTEMPTS",
    "OPEN_RUN_STATUSES",
    "UNHEALTHY",
    "CancelOutcome",
    "PlaybookErrorCode",
    "StepPreview",
    "_advance_when_step_done",
    "_claim",
    "_enqueue_advance",
    "_enqueue_steps",
    "_step_succeeded",
    "build_context",
    "condition_holds",
    "connector_for",
    "idempotency_key_for",
    "integration_blocker",
    "plan_items",
    "playbook_activate",
    "playbook_create",
    "playbook_integrations_access_check",
    "playbook_preview",
    "playbook_run_advance",
    "playbook_run_cancel",
    "playbook_run_resume",
    "playbook_run_retry_failed",
    "playbook_runs_resume_stalled",
    "playbook_tasks_poll",
    "playbook_update",
    "render_step_payload",
    "resolve_integration",
    "scenario_context",
    "step_run_execute",
    "step_run_undo_execute",
    "step_runs_execute_bulk",
    "task_apply_tracked",
    "timeline_add",
    "undo_steps_resume_stalled",
    "webhook_events_apply",
]
