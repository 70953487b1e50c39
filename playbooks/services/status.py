"""Status flowing back to tracked objects: webhook events and the polling backstop."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from common.validators import is_uuid
from integrations.connectors.base import BaseConnector, Capability, TrackedObject
from integrations.errors import ApiError, ApiRateLimited
from integrations.models import Integration
from integrations.registry import get_connector_class
from integrations.services import integration_record_failure, shared_connector
from playbooks.contract import tracks_meeting
from playbooks.models import (
    StepRun,
    Task,
)
from playbooks.services.shared import UNHEALTHY, _setting, timeline_add

logger = logging.getLogger(__name__)

# TrackedObject.details key for the vendor's own modification time (ISO), compared so an older read never wins.
UPDATED_DETAIL = "updated"


def _parse_when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else timezone.make_aware(parsed)
    return None


def _state_from_event(integration: Integration, event: dict[str, Any]) -> TrackedObject | None:
    """What a processed webhook event says of a tracked object, in the connector's own terms (None: nothing)."""
    if str(event.get("action") or "upsert") == "delete":
        return TrackedObject(status="deleted", is_done=True)
    record = event.get("record") or {}
    if not record:
        return None
    entity = str(event.get("entity") or "")
    try:
        return get_connector_class(integration.connector_key).tracked_state(entity, record, config=dict(integration.config or {}))
    except Exception:  # noqa: BLE001 - an unexpected vendor payload must not break the other events of the delivery
        logger.warning("playbooks.webhook.transform_failed", extra={"connector": integration.connector_key, "entity": entity})
        return None


def task_apply_tracked(task: Task, tracked: TrackedObject, *, at: datetime | None = None, source: str = "webhook") -> bool:
    """Update a tracked task from the connector's state of its object (status, done-ness, owner, details). True if it changed."""
    before = (task.status, task.owner, task.is_done, dict(task.details))
    details = dict(task.details)
    for name, value in (tracked.details or {}).items():
        if name == "attendees" and isinstance(value, list):
            value = [{"email": a.get("email", ""), "response": a.get("response", "")} for a in value if isinstance(a, dict)]
        if name != UPDATED_DETAIL:
            details[name] = value
    task.status = (tracked.status or task.status)[:60]
    task.is_done = tracked.is_done
    if tracked.owner:
        task.owner = tracked.owner[:254]
    task.details = details
    task.last_event_at = at or timezone.now()
    changed = (task.status, task.owner, task.is_done, task.details) != before
    if changed or not task.status_source:
        task.status_source = source
    task.save()
    if changed:
        declined = [a["email"] for a in details.get("attendees", []) if isinstance(a, dict) and a.get("response") == "declined"]
        note = f"; declined: {', '.join(declined)}" if declined else ""
        timeline_add(task.run, "task_updated", f"{task.title} is now {task.status} ({source}){note}", data={"task": str(task.pk)})
    return changed


def webhook_events_apply(integration_id: str, events: list[dict[str, Any]]) -> int:
    """Registered in settings.BASTION_EVENT_HANDLERS: update tracked tasks from processed webhook events. Returns tasks changed."""
    integration = Integration.objects.filter(pk=integration_id).first() if is_uuid(integration_id) else None
    if integration is None:
        return 0
    changed = 0
    id_only: list[Task] = []  # tasks whose delivery named them without their state
    for event in events:
        external_id = str(event.get("external_id") or "")
        record = event.get("record") or {}
        ids = {external_id, str(record.get("key") or ""), str(record.get("id") or "")} - {""}
        if not ids:
            continue
        tasks = Task.objects.select_related("run").filter(integration=integration).filter(Q(external_id__in=ids) | Q(external_key__in=ids))
        if not tasks:
            continue
        at = _parse_when(event.get("occurred_at")) or timezone.now()
        tracked = _state_from_event(integration, event)
        if tracked is None:
            if not event.get("record"):
                id_only.extend(task for task in tasks if not task.is_done)
            continue
        with transaction.atomic():
            for task in tasks.select_for_update(of=("self",)):
                if task.last_event_at and at < task.last_event_at:
                    continue  # an older delivery must not overwrite newer state
                changed += int(task_apply_tracked(task, tracked, at=at))
    if id_only:
        changed += _read_back(integration, list({task.pk: task for task in id_only}.values()))
    return changed


def _read_back(integration: Integration, tasks: list[Task]) -> int:
    """A delivery that names objects without their state (Asana sends ids): read those objects now, batched per kind,
    instead of waiting for the poll. A refusal or outage leaves them to the poll."""
    try:
        connector = shared_connector(integration, purpose="poll")
    except Exception:  # noqa: BLE001 - the poll backstop still reads them
        logger.exception("playbooks.webhook.read_back_failed", extra={"integration": str(integration.pk)})
        return 0
    if not connector.supports(Capability.FETCH_STATUS):
        return 0
    changed = 0
    by_kind: dict[str, list[Task]] = {}
    for task in tasks:
        by_kind.setdefault(task.kind, []).append(task)
    for kind, group in by_kind.items():
        read_at = timezone.now()
        try:
            states = _poll_refs(connector, kind, group)
        except (KeyError, ApiError) as exc:
            logger.warning("playbooks.webhook.read_back_failed", extra={"integration": str(integration.pk), "kind": kind, "error": str(exc)})
            continue
        changed += _apply_states(group, states, read_at=read_at, source="webhook")
    return changed


def _apply_states(tasks: list[Task], states: dict[Any, TrackedObject], *, read_at: datetime, source: str) -> int:
    """Apply what the vendor said of each task's object, unless a webhook already told something newer."""
    changed = 0
    for task in tasks:
        tracked = states.get(task.pk)
        if tracked is None:
            continue
        at = _parse_when(tracked.details.get(UPDATED_DETAIL)) or read_at
        with transaction.atomic():
            locked = Task.objects.select_for_update().select_related("run").get(pk=task.pk)
            if locked.last_event_at and at < locked.last_event_at:
                continue  # a webhook already told us something newer
            changed += int(task_apply_tracked(locked, tracked, at=at, source=source))
    return changed


def _poll_interval() -> float:
    return _setting("BASTION_PLAYBOOK_POLL_MIN_INTERVAL_SECONDS", 60)


def _as_moment(value: Any, zone: Any) -> datetime | None:
    """An ISO date or date-time; a naive one is read in `zone` (the event's time zone), else UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        try:
            tz = ZoneInfo(str(zone)) if zone else UTC
        except (ZoneInfoNotFoundError, ValueError):
            tz = UTC
        moment = moment.replace(tzinfo=tz)
    return moment


def _meeting_ends(tasks: list[Task]) -> dict[Any, datetime]:
    """When each tracked meeting ends: the vendor's event as created, else the end the step rendered (time zone from the payload)."""
    steps = StepRun.objects.filter(pk__in=[t.step_run_id for t in tasks]).values_list("pk", "payload", "result")
    by_step: dict[Any, datetime] = {}
    for step_id, payload, result in steps:
        result = result if isinstance(result, dict) else {}
        tracked = result.get("tracked") if isinstance(result.get("tracked"), dict) else {}
        end = _as_moment((tracked.get("details") or {}).get("ends_at"), None)
        data = result.get("data")
        edge = data.get("end") if isinstance(data, dict) else None  # the event as the calendar created it (start/end objects)
        if end is None and isinstance(edge, dict):
            end = _as_moment(edge.get("dateTime") or edge.get("date"), edge.get("timeZone"))
        if end is None and isinstance(payload, dict):
            end = _as_moment(payload.get("end"), payload.get("timezone"))
        if end is not None:
            by_step[step_id] = end
    return {t.pk: by_step[t.step_run_id] for t in tasks if t.step_run_id in by_step}


def _tasks_due(*, now: datetime, limit: int) -> list[Task]:
    """Open tasks to read now: not polled within the interval, of a run inside the horizon, not a meeting over for longer than the grace."""
    horizon = now - timedelta(days=_setting("BASTION_PLAYBOOK_POLL_HORIZON_DAYS", 30))
    grace = timedelta(seconds=_setting("BASTION_PLAYBOOK_POLL_MEETING_GRACE_SECONDS", 3600))
    candidates = (
        Task.objects.select_related("integration")
        .filter(is_done=False, integration__isnull=False)
        .annotate(step_connector=F("step_run__connector_key"), step_action=F("step_run__action"))
        .exclude(integration__status__in=UNHEALTHY)
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=now - timedelta(seconds=_poll_interval())))
        .annotate(run_began=Coalesce("run__started_at", "run__created_at"))
        .filter(run_began__gte=horizon)
        .order_by(F("last_polled_at").asc(nulls_first=True), "created_at", "pk")
    )
    # A meeting's end is in its step's JSON, so ended meetings are skipped here rather than in SQL; the horizon bounds
    # how many there can be, and reading on in pages keeps them from filling the batch ahead of objects still due.
    due: list[Task] = []
    ended = 0
    offset = 0
    while len(due) < limit:
        page = list(candidates[offset : offset + limit])
        if not page:
            break
        offset += len(page)
        ends = _meeting_ends([t for t in page if tracks_meeting(t.step_connector, t.step_action)])
        for task in page:
            end = ends.get(task.pk)
            if end is not None and end + grace < now:
                ended += 1
                continue
            due.append(task)
            if len(due) >= limit:
                break
    if ended:
        logger.info("playbooks.poll.meetings_over", extra={"skipped": ended})
    return due


def _poll_refs(connector: BaseConnector, kind: str, tasks: list[Task]) -> dict[Any, TrackedObject]:
    """Read the tasks' objects in one fetch_objects call (the connector batches where its vendor can: one search for many).

    Each object is asked for by its human key when it has one, else by its id.
    """
    refs = {task.pk: task.external_key or task.external_id for task in tasks}
    states = connector.fetch_objects(kind, list(dict.fromkeys(refs.values())))
    return {pk: states[ref] for pk, ref in refs.items() if ref in states}


def playbook_tasks_poll(*, limit: int = 500) -> int:
    """Polling backstop: re-read open tasks (not done, not polled within the interval) from their vendors. Returns tasks changed.

    Objects are grouped by integration and kind so a vendor that can batch is asked once (one search per 100 issues, say). Every call goes through the integration's shared client and its Redis rate limiter; a throttled or
    refused integration is left for the next round instead of retried here. A read older than what a webhook already
    applied (compared on the vendor's own updated time) changes nothing. A meeting is not read once it ended (plus a grace
    for late responses), nor is any object of a run older than BASTION_PLAYBOOK_POLL_HORIZON_DAYS; webhooks still apply.
    """
    due = _tasks_due(now=timezone.now(), limit=limit)
    groups: dict[tuple[Any, str], list[Task]] = {}
    for task in due:
        groups.setdefault((task.integration_id, task.kind), []).append(task)
    changed = 0
    stopped: set[Any] = set()
    for (integration_id, kind), tasks in groups.items():
        if integration_id in stopped:
            continue
        integration = tasks[0].integration
        try:
            connector = shared_connector(integration, purpose="poll")
        except Exception:  # noqa: BLE001 - one broken integration must not stop polling the others
            logger.exception("playbooks.poll.connector_failed", extra={"integration": str(integration_id)})
            stopped.add(integration_id)
            continue
        if not connector.supports(Capability.FETCH_STATUS):
            continue
        read_at = timezone.now()
        try:
            states = _poll_refs(connector, kind, tasks)
        except KeyError:
            logger.info("playbooks.poll.kind_unsupported", extra={"integration": str(integration_id), "kind": kind})
            continue
        except ApiRateLimited as exc:
            logger.warning("playbooks.poll.throttled", extra={"integration": str(integration_id), "retry_after": exc.retry_after})
            stopped.add(integration_id)
            continue
        except ApiError as exc:
            logger.warning("playbooks.poll.failed", extra={"integration": str(integration_id), "kind": kind, "error": str(exc)})
            integration_record_failure(integration=integration, error=exc)
            stopped.add(integration_id)
            continue
        Task.objects.filter(pk__in=[t.pk for t in tasks]).update(last_polled_at=read_at)
        changed += _apply_states(tasks, states, read_at=read_at, source="poll")
    return changed
