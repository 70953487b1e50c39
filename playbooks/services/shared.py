"""What every part of the playbook engine shares: limits, error codes, settings and the run timeline."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.conf import settings
from django.utils import timezone

from integrations.models import IntegrationStatus
from playbooks.models import PlaybookRun, RunStatus, TimelineEvent

UNHEALTHY = (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DEGRADED, IntegrationStatus.DISCONNECTED)
OPEN_RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.PARTIAL)
MAX_ATTEMPTS = 5
BULK_CHUNK = 50


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
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"
