"""What every part of the playbook engine shares: limits, error codes, settings and the run timeline."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.utils import timezone

from common.errors import ApplicationError
from integrations.connectors.base import Capability
from integrations.models import IntegrationStatus
from integrations.services import connector_class_for
from playbooks.models import PlaybookRun, RunStatus, StepRun, TimelineEvent

UNHEALTHY = (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DEGRADED, IntegrationStatus.DISCONNECTED)
OPEN_RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.PARTIAL)
MAX_ATTEMPTS = 5
BULK_CHUNK = 50


def bulk_supported(step_run: StepRun) -> bool:
    """Whether the step's connector serves this action in bulk (its manifest says so); else each item goes on its own."""
    if step_run.integration is None:
        return step_run.is_bulk
    try:
        manifest = connector_class_for(step_run.integration.connector_key).manifest
    except ApplicationError:
        return step_run.is_bulk  # the call fails with its own message either way
    return Capability.BULK_ACTIONS in manifest.capabilities or any(a.key == step_run.action and a.bulk for a in manifest.actions)


def dispatch_groups(step_runs: Sequence[StepRun]) -> list[list[str]]:
    """One step's queued items as task-sized groups: chunks for a bulk step whose connector has a bulk call, else one each."""
    if not step_runs:
        return []
    first = step_runs[0]
    if first.is_bulk and bulk_supported(first):
        size = max(1, min(BULK_CHUNK, first.bulk_chunk_size or BULK_CHUNK))
        return [[str(s.pk) for s in step_runs[i : i + size]] for i in range(0, len(step_runs), size)]
    return [[str(s.pk)] for s in step_runs]


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


class PlaybookErrorCode(StrEnum):
    TEMPLATE_NOT_FOUND = "template_not_found"
    SCENARIO_TYPE_MISMATCH = "scenario_type_mismatch"
    UNKNOWN_INTEGRATION = "unknown_integration"
    RUN_FINISHED = "run_finished"
    NOTHING_TO_RETRY = "nothing_to_retry"
    TEMPLATE_INVALID = "template_invalid"
    NOTHING_TO_UNDO = "nothing_to_undo"


def timeline_add(run: PlaybookRun, kind: str, message: str, *, step_key: str = "", data: dict[str, Any] | None = None) -> TimelineEvent:
    return TimelineEvent.objects.create(run=run, at=timezone.now(), kind=kind, message=message[:1000], step_key=step_key, data=data or {})


def _human_ms(ms: int | None) -> str:
    if ms is None:
        return "—"
    seconds = ms / 1000
    if ms < 1000:
        return f"{max(seconds, 0.1):.1f} s"  # people read "0.7 s" at a glance; milliseconds are for operators
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"
