"""Writes for playbooks: create, preview, activate, execute steps idempotently, retry, cancel, and apply status coming back."""

from __future__ import annotations

import hashlib
import inspect
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from json_logic import jsonLogic

from accounts.models import Organization
from accounts.services import audit_record
from common import metrics
from common.errors import ApplicationError
from integrations.access import integration_access_check, integrations_access_check
from integrations.connectors.base import BaseConnector
from integrations.errors import ApiError, ApiRateLimited
from integrations.models import Integration, IntegrationStatus
from integrations.registry import UnknownConnector, get_connector_class
from integrations.services import integration_record_failure, shared_connector, shared_connectors_forget
from playbooks import execution_guards, selectors
from playbooks.models import (
    ACTIVE_STEP_STATUSES,
    DONE_STEP_STATUSES,
    Playbook,
    PlaybookRun,
    PlaybookStatus,
    PlaybookStepTemplate,
    PlaybookTemplate,
    RunStatus,
    StepRun,
    StepStatus,
    Task,
    TimelineEvent,
)
from playbooks.rendering import RenderError, render_payload, render_string, sanitize_payload
from scenarios.models import Scenario

logger = logging.getLogger(__name__)

UNHEALTHY = (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DEGRADED, IntegrationStatus.DISCONNECTED)
OPEN_RUN_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.PARTIAL)
MAX_ATTEMPTS = 5
BULK_CHUNK = 50
DONE_TASK_STATUSES = {"done", "closed", "resolved", "archived", "cancelled", "deleted", "completed"}


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


# ---------------------------------------------------------------------------------------------------------------
# Creating playbooks


def _validate_bindings(organization: Organization, bindings: dict[str, Any] | None, *, actor: Any = None) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for connector_key, integration_id in (bindings or {}).items():
        if not integration_id:
            continue
        integration = Integration.objects.filter(organization=organization, pk=str(integration_id)).first() if _is_uuid(integration_id) else None
        if integration is None:
            message = f"No integration {integration_id} in this organization."
            raise ApplicationError(message, code=PlaybookErrorCode.UNKNOWN_INTEGRATION, fields={"integration_bindings": [message]})
        integration_access_check(integration=integration, actor=actor)  # binding it means acting through it later
        cleaned[str(connector_key)] = str(integration.pk)
    return cleaned


def playbook_integrations_access_check(*, playbook: Playbook, actor: Any) -> None:
    """A person activating or retrying a playbook acts through every integration its steps use: allowed_roles apply to each."""
    from playbooks.human.config import is_human_connector

    if not getattr(actor, "is_authenticated", False):
        return  # trigger rules and resumes by Bastion itself: checked when the person set them up
    integrations = [resolve_integration(playbook, step.connector_key) for step in playbook.template.steps.all() if not is_human_connector(step.connector_key)]
    integrations_access_check(integrations=integrations, actor=actor)


def _is_uuid(value: Any) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@transaction.atomic
def playbook_create(
    *,
    organization: Organization,
    scenario: Scenario,
    template: PlaybookTemplate | None = None,
    integration_bindings: dict[str, Any] | None = None,
    name: str = "",
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Playbook:
    """Make a playbook from a scenario and a template (default: the active template for the scenario's type)."""
    if scenario.organization_id != organization.pk:
        raise ApplicationError("No such scenario.", code="not_found", status_code=404)
    if template is None:
        template = PlaybookTemplate.objects.filter(scenario_type=scenario.scenario_type, is_active=True).order_by("name").first()
        if template is None:
            raise ApplicationError(
                f"No playbook template exists for scenario type '{scenario.scenario_type}'.",
                code=PlaybookErrorCode.TEMPLATE_NOT_FOUND,
                fields={"template_id": ["Choose a template."]},
            )
    elif template.scenario_type != scenario.scenario_type:
        message = f"The template '{template.name}' is for {template.scenario_type}, not {scenario.scenario_type}."
        raise ApplicationError(message, code=PlaybookErrorCode.SCENARIO_TYPE_MISMATCH, fields={"template_id": [message]})
    playbook = Playbook.objects.create(
        organization=organization,
        scenario=scenario,
        template=template,
        name=(name or f"{template.name}: {scenario.title}")[:300],
        integration_bindings=_validate_bindings(organization, integration_bindings, actor=actor),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        action="playbook.create",
        organization=organization,
        actor=actor,
        target=playbook,
        changes={"scenario": str(scenario.pk), "template": template.name, "integration_bindings": playbook.integration_bindings},
        request=request,
    )
    return playbook


@transaction.atomic
def playbook_update(
    *, playbook: Playbook, integration_bindings: dict[str, Any] | None = None, name: str | None = None, actor: Any = None, request: HttpRequest | None = None
) -> Playbook:
    """Change a playbook's name or which integration each connector uses."""
    if integration_bindings is not None:
        playbook.integration_bindings = _validate_bindings(playbook.organization, integration_bindings, actor=actor)
    if name:
        playbook.name = name[:300]
    playbook.save()
    audit_record(
        action="playbook.update",
        organization=playbook.organization,
        actor=actor,
        target=playbook,
        changes={"integration_bindings": playbook.integration_bindings, "name": playbook.name},
        request=request,
    )
    return playbook


# ---------------------------------------------------------------------------------------------------------------
# Planning: what each step will do, where, and what blocks it


def scenario_context(scenario: Scenario) -> dict[str, Any]:
    """The scenario's values as the payload templates see them (plus id, title and type)."""
    values = dict(scenario.values or {})
    values.setdefault("title", scenario.title)
    return {**values, "id": str(scenario.pk), "type": scenario.scenario_type}


def _integration_facts(integration: Integration | None) -> dict[str, Any]:
    if integration is None:
        return {}
    return {"id": str(integration.pk), "display_name": integration.display_name, "config": dict(integration.config or {})}


def build_context(playbook: Playbook) -> dict[str, Any]:
    """Everything a payload may refer to, snapshotted at activation so retries render the same text."""
    # A default meeting slot derived from the playbook (not the clock) so a retry tomorrow books the same time.
    next_slot = (playbook.created_at + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return {
        "scenario": scenario_context(playbook.scenario),
        "playbook": {
            "id": str(playbook.pk),
            "name": playbook.name,
            "date": timezone.localdate(playbook.created_at).isoformat(),
            "url": f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/playbooks/{playbook.pk}/war-room/",
            "next_slot": next_slot.isoformat(),
        },
        "template": {"name": playbook.template.name, "manual_baseline_minutes": playbook.template.manual_baseline_minutes},
    }


def resolve_integration(playbook: Playbook, connector_key: str) -> Integration | None:
    """The bound integration for a connector key, else the organization's (connected first)."""
    bound = (playbook.integration_bindings or {}).get(connector_key)
    if bound:
        return Integration.objects.filter(organization=playbook.organization_id, pk=bound).first()
    candidates = Integration.objects.filter(organization=playbook.organization_id, connector_key=connector_key)
    return candidates.filter(status=IntegrationStatus.CONNECTED).first() or candidates.first()


def integration_blocker(integration: Integration | None, step: PlaybookStepTemplate) -> str:
    """Why the step cannot run with this integration ("" when it can)."""
    from playbooks.human.config import is_human_connector, template_problem

    if is_human_connector(step.connector_key):  # a person, a time or a condition: no vendor integration involved
        return template_problem(step.action, step.payload_template)
    try:
        connector_name = get_connector_class(step.connector_key).manifest.name
    except UnknownConnector:
        connector_name = step.connector_key
    if integration is None:
        return f"No {connector_name} integration is connected."
    if integration.status in UNHEALTHY:
        detail = f": {integration.last_error[:200]}" if integration.last_error else ""
        return f"{integration.display_name} is {integration.get_status_display().lower()}{detail}."
    try:
        manifest = get_connector_class(integration.connector_key).manifest
    except UnknownConnector:
        return f"The connector '{integration.connector_key}' is not installed."
    if step.action not in {a.key for a in manifest.actions}:
        return f"{integration.display_name} cannot perform '{step.action}'."
    return ""


def _item_identity(step: PlaybookStepTemplate, item: Any, index: int) -> str:
    if isinstance(item, dict):
        for name in [step.item_key] if step.item_key else ["key", "email", "person_id", "external_id", "id"]:
            if name and item.get(name):
                return str(item[name]).lower()[:200]
    elif isinstance(item, str) and item:
        return item.lower()[:200]
    return str(index)


def _resolve_owner(item: dict[str, Any], scenario: dict[str, Any]) -> dict[str, Any]:
    """Items may name `owner_field` ("ciso|incident_commander"): the first scenario person present owns it."""
    fields = str(item.get("owner_field") or "").split("|")
    for name in fields:
        person = scenario.get(name.strip()) if name.strip() else None
        if isinstance(person, dict) and person.get("email"):
            return {**item, "owner": person}
    return {**item, "owner": item.get("owner") or {}}


def plan_items(step: PlaybookStepTemplate, context: dict[str, Any]) -> list[tuple[str, Any]]:
    """The (item key, item) pairs a step fans out over; a plain step has one item ("", None)."""
    if not step.for_each:
        return [("", None)]
    if step.for_each == "items":
        raw: Any = step.items or []
    else:
        raw = render_string("{{ " + step.for_each + " }}", context)
    if not isinstance(raw, list):
        raw = [] if raw in (None, "") else [raw]
    planned: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if isinstance(item, dict):
            item = _resolve_owner(item, context["scenario"])
        identity = _item_identity(step, item, index)
        if identity in seen:  # the same stakeholder listed twice gets one notification
            continue
        seen.add(identity)
        planned.append((identity, item))
    return planned


def condition_holds(step: PlaybookStepTemplate, context: dict[str, Any]) -> bool:
    if not step.condition:
        return True
    return bool(jsonLogic(step.condition, context["scenario"]))


def idempotency_key_for(playbook_id: Any, step_key: str, item_key: str) -> str:
    """Deterministic per playbook + step + item: a retry, a crash or a second activation reuses it."""
    digest = hashlib.sha256(f"{playbook_id}:{step_key}:{item_key}".encode()).hexdigest()[:40]
    return f"pb-{step_key[:30]}-{digest}"


def render_step_payload(step_template: dict[str, Any] | Any, action: str, context: dict[str, Any]) -> dict[str, Any]:
    """Render a step's payload with each field's values escaped for the format it is delivered in, then apply the field rules."""
    rendered = render_payload(step_template, context, action=action)
    if not isinstance(rendered, dict):
        raise RenderError("A payload template must be a JSON object.")
    return sanitize_payload(action, rendered)


@dataclass
class StepPreview:
    key: str
    name: str
    connector_key: str
    connector_name: str
    action: str
    count: int
    description: str
    depends_on: list[str]
    is_required: bool
    will_run: bool
    blocked_reason: str = ""
    integration: dict[str, Any] | None = None
    sample_payload: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def is_blocked(self) -> bool:
        return bool(self.blocked_reason)


def _describe(step: PlaybookStepTemplate, count: int, payload: dict[str, Any], items: list[Any], context: dict[str, Any], connector_name: str) -> str:
    if step.description:
        try:
            return str(render_string(step.description, {**context, "count": count, "payload": payload, "items": items}))
        except RenderError:
            pass
    times = f" ×{count}" if count != 1 else ""
    return f"{connector_name}: {step.action.replace('_', ' ')}{times}"


def playbook_preview(*, playbook: Playbook) -> list[StepPreview]:
    """Exactly what activation will do where, and which steps cannot run (missing or unhealthy integrations)."""
    context = build_context(playbook)
    steps_context: dict[str, Any] = {}
    previews: list[StepPreview] = []
    for step in playbook.template.steps.all():
        integration = resolve_integration(playbook, step.connector_key)
        try:
            connector_name = get_connector_class(step.connector_key).manifest.name
        except UnknownConnector:
            connector_name = step.connector_key.replace("_", " ").title()
        errors: list[str] = []
        will_run = condition_holds(step, context)
        items = plan_items(step, context) if will_run else []
        sample: dict[str, Any] = {}
        step_context = {**context, "steps": steps_context, "integration": _integration_facts(integration)}
        try:
            if items:
                sample = render_step_payload(step.payload_template, step.action, {**step_context, "item": items[0][1] or {}})
        except RenderError as exc:
            errors.append(str(exc))
        steps_context[step.key] = {"external_id": f"<{step.key}>", "url": "", "key": "", "payload": sample, "data": {}}
        previews.append(
            StepPreview(
                key=step.key,
                name=step.name,
                connector_key=step.connector_key,
                connector_name=connector_name,
                action=step.action,
                count=len(items),
                description=_describe(step, len(items), sample, [i for _, i in items], step_context, connector_name)
                if will_run
                else "Not needed for this scenario.",
                depends_on=list(step.depends_on or []),
                is_required=step.is_required,
                will_run=will_run,
                blocked_reason=integration_blocker(integration, step) if will_run else "",
                integration=({"id": str(integration.pk), "display_name": integration.display_name, "status": integration.status} if integration else None),
                sample_payload=sample,
                errors=errors,
            )
        )
    return previews


# ---------------------------------------------------------------------------------------------------------------
# Timeline


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


# ---------------------------------------------------------------------------------------------------------------
# Activation


@transaction.atomic
def playbook_activate(*, playbook: Playbook, actor: Any = None, request: HttpRequest | None = None) -> tuple[PlaybookRun, bool]:
    """Start a run (or return the open one: a second activation never acts twice). Returns (run, created)."""
    playbook = Playbook.objects.select_for_update().select_related("template", "scenario").get(pk=playbook.pk)
    playbook_integrations_access_check(playbook=playbook, actor=actor)
    existing = playbook.runs.filter(status__in=OPEN_RUN_STATUSES).order_by("-created_at").first()
    if existing is not None:
        return existing, False
    previews = {p.key: p for p in playbook_preview(playbook=playbook)}
    invalid = {key: p.errors for key, p in previews.items() if p.errors}
    if invalid:
        message = "; ".join(f"{key}: {' '.join(errors)}" for key, errors in invalid.items())
        raise ApplicationError(f"The playbook template has errors: {message}", code=PlaybookErrorCode.TEMPLATE_INVALID)
    context = build_context(playbook)
    now = timezone.now()
    run = PlaybookRun.objects.create(
        organization=playbook.organization,
        playbook=playbook,
        status=RunStatus.RUNNING,
        activated_by=actor if getattr(actor, "is_authenticated", False) else None,
        started_at=now,
        manual_baseline_minutes=playbook.template.manual_baseline_minutes,
        context=context,
    )
    step_runs: list[StepRun] = []
    undone = execution_guards.undone_keys(playbook.pk)
    for step in playbook.template.steps.all():
        preview = previews[step.key]
        integration = resolve_integration(playbook, step.connector_key)
        items = plan_items(step, context) if preview.will_run else [("", None)]
        for index, (item_key, item) in enumerate(items):
            step_run = StepRun(
                run=run,
                step_key=step.key,
                step_name=step.name,
                position=step.position,
                item_index=index,
                item_key=item_key,
                item=item,
                connector_key=step.connector_key,
                action=step.action,
                depends_on=list(step.depends_on or []),
                is_bulk=step.is_bulk,
                bulk_chunk_size=max(1, min(BULK_CHUNK, step.bulk_chunk_size or BULK_CHUNK)),
                is_required=step.is_required,
                task_kind=step.task_kind,
                integration=integration,
                idempotency_key=execution_guards.key_after_undo(idempotency_key_for(playbook.pk, step.key, item_key), undone),
                result={"payload_template": step.payload_template},
            )
            if not preview.will_run:
                step_run.status = StepStatus.SKIPPED
                step_run.last_error = "Condition not met for this scenario."
                step_run.finished_at = now
            elif preview.is_blocked:
                step_run.last_error = preview.blocked_reason
                step_run.error_class = "configuration"
                step_run.finished_at = now
                step_run.status = StepStatus.FAILED if step.is_required else StepStatus.SKIPPED
            step_runs.append(step_run)
    StepRun.objects.bulk_create(step_runs)
    playbook.status = PlaybookStatus.ACTIVE
    playbook.save(update_fields=["status", "updated_at"])
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    timeline_add(run, "activated", f"Activated by {who}: {len(step_runs)} actions across {len(previews)} steps.")
    for preview in previews.values():
        if preview.will_run and preview.is_blocked:
            timeline_add(run, "blocked", f"{preview.name}: {preview.blocked_reason}", step_key=preview.key)
    audit_record(action="playbook.activate", organization=playbook.organization, actor=actor, target=playbook, changes={"run": str(run.pk)}, request=request)
    _enqueue_advance(run.pk)
    return run, True


def _enqueue_advance(run_id: Any) -> None:
    from playbooks import tasks

    transaction.on_commit(lambda: tasks.playbook_run_advance.delay(str(run_id)))


def _enqueue_steps(groups: list[list[str]], countdown: float | None = None) -> None:
    """Send step work to the workers once the rows saying so are committed."""
    from playbooks import tasks

    def send() -> None:
        for ids in groups:
            options = {"countdown": countdown} if countdown else {}
            if len(ids) == 1:
                tasks.step_run_execute.apply_async(args=[ids[0]], **options)
            else:
                tasks.step_runs_execute_bulk.apply_async(args=[ids], **options)

    transaction.on_commit(send)


def _steps_context(step_runs: Iterable[StepRun]) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for step_run in step_runs:
        entry = outputs.setdefault(step_run.step_key, {"external_id": "", "url": "", "key": "", "payload": {}, "data": {}, "external_ids": []})
        if step_run.status == StepStatus.SUCCEEDED:
            if not entry["external_id"]:
                entry.update(
                    external_id=step_run.external_id,
                    url=step_run.external_url,
                    key=str((step_run.result or {}).get("data", {}).get("key", "")),
                    data=(step_run.result or {}).get("data", {}),
                    payload=step_run.payload or {},
                )
            entry["external_ids"].append(step_run.external_id)
    return outputs


def playbook_run_advance(*, run_id: Any) -> list[str]:
    """Dispatch every step whose dependencies succeeded (independent ones together); finish the run when nothing can move."""
    with transaction.atomic():
        run = PlaybookRun.objects.select_for_update().filter(pk=run_id).first()
        if run is not None and run.status == RunStatus.CANCELLED and run.undo_requested_at is not None:
            _undo_after_late_success(run)
        if run is None or run.status != RunStatus.RUNNING:
            return []
        step_runs = list(run.step_runs.select_related("integration"))
        by_key: dict[str, list[StepRun]] = {}
        for step_run in step_runs:
            by_key.setdefault(step_run.step_key, []).append(step_run)

        def key_state(key: str) -> str:
            from playbooks.human.engine import human_dependency_state

            human = human_dependency_state(key, by_key)  # approve / reject / timeout branches of a human step
            if human:
                return human
            statuses = {s.status for s in by_key.get(key, [])}
            if not statuses:
                return "ok"  # a dependency on an unknown step is a template error caught in the admin; do not deadlock
            if statuses <= {StepStatus.SUCCEEDED}:
                return "ok"
            if statuses & {StepStatus.FAILED, StepStatus.CANCELLED}:
                return "failed"
            if statuses <= {StepStatus.SUCCEEDED, StepStatus.SKIPPED}:
                return "skipped"
            return "waiting"

        steps_context = _steps_context(step_runs)
        now = timezone.now()
        ready: dict[str, list[StepRun]] = {}
        readied: set[Any] = set()
        changed = True
        while changed:  # skips cascade through chains of dependents
            changed = False
            for step_run in step_runs:
                if step_run.status != StepStatus.PENDING:
                    continue
                states = [key_state(dep) for dep in step_run.depends_on]
                if "skipped" in states:
                    step_run.status = StepStatus.SKIPPED
                    step_run.last_error = "Skipped because a step it needs was skipped."
                    step_run.finished_at = now
                    step_run.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
                    changed = True
                elif all(state == "ok" for state in states) and step_run.pk not in readied:
                    readied.add(step_run.pk)  # a second pass of the loop (a skip cascaded) must not list it twice
                    ready.setdefault(step_run.step_key, []).append(step_run)
        dispatched: list[list[str]] = []
        for group in ready.values():
            for step_run in group:
                if step_run.payload is None:
                    context = {
                        **run.context,
                        "steps": steps_context,
                        "item": step_run.item or {},
                        "integration": _integration_facts(step_run.integration),
                    }
                    try:
                        step_run.payload = render_step_payload(step_run.result.get("payload_template", {}), step_run.action, context)
                    except RenderError as exc:
                        step_run.status = StepStatus.FAILED
                        step_run.last_error = f"The payload template cannot be rendered: {exc}"
                        step_run.error_class = "configuration"
                        step_run.finished_at = now
                        step_run.save(update_fields=["status", "last_error", "error_class", "finished_at", "payload", "updated_at"])
                        continue
                from playbooks.human.config import is_human_connector

                if is_human_connector(step_run.connector_key):
                    from playbooks.human.services import step_open

                    step_open(run=run, step_run=step_run)  # waits for a person, a time or a condition
                    continue
                step_run.status = StepStatus.QUEUED
                step_run.queued_at = now
                step_run.updated_at = now
            queued = [s for s in group if s.status == StepStatus.QUEUED]
            if not queued:
                continue
            # One UPDATE for the whole group: 40 ready items used to be 40 round trips under the run's lock.
            StepRun.objects.bulk_update(queued, ["status", "queued_at", "payload", "updated_at"])
            if queued[0].is_bulk:
                size = queued[0].bulk_chunk_size or BULK_CHUNK
                for start in range(0, len(queued), size):
                    dispatched.append([str(s.pk) for s in queued[start : start + size]])
            else:
                dispatched.extend([str(s.pk)] for s in queued)
        if dispatched:
            names = [f"{key} ({len(group)})" if len(group) > 1 else key for key, group in ready.items() if any(s.status == StepStatus.QUEUED for s in group)]
            timeline_add(run, "dispatched", "Started together: " + ", ".join(names), data={"steps": list(ready.keys()), "tasks": len(dispatched)})
            _enqueue_steps(dispatched)
            return [i for ids in dispatched for i in ids]
        if any(s.status in ACTIVE_STEP_STATUSES or s.status == StepStatus.WAITING for s in step_runs):
            return []
        _run_finish(run, step_runs)
        return []


def _run_finish(run: PlaybookRun, step_runs: list[StepRun]) -> None:
    """Nothing is in flight and nothing more can start: record the outcome and the measured time."""
    now = timezone.now()
    failed = [s for s in step_runs if s.status in (StepStatus.FAILED, StepStatus.CANCELLED)]
    waiting = [s for s in step_runs if s.status == StepStatus.PENDING]
    succeeded = [s for s in step_runs if s.status == StepStatus.SUCCEEDED]
    if not failed and not waiting:
        run.status = RunStatus.SUCCEEDED
    elif succeeded:
        run.status = RunStatus.PARTIAL
    else:
        run.status = RunStatus.FAILED
    reasons: list[str] = []
    for step_run in failed:
        line = f"{step_run.label}: {step_run.last_error}"
        if line not in reasons:
            reasons.append(line)
    if waiting:
        reasons.append(f"{len(waiting)} action(s) wait for failed steps: {', '.join(sorted({s.step_name for s in waiting}))}")
    run.error_summary = "\n".join(reasons)[:5000]
    run.finished_at = now
    if run.duration_ms is None and run.started_at:
        run.duration_ms = int((now - run.started_at).total_seconds() * 1000)
    run.save(update_fields=["status", "error_summary", "finished_at", "duration_ms", "updated_at"])
    metrics.playbook_runs.labels(run.status).inc()
    if run.duration_ms is not None:
        metrics.playbook_run_duration.labels(run.status).observe(run.duration_ms / 1000)
    Playbook.objects.filter(pk=run.playbook_id).update(
        status=PlaybookStatus.COMPLETED if run.status == RunStatus.SUCCEEDED else PlaybookStatus.PARTIAL, updated_at=now
    )
    saved = run.manual_baseline_minutes * 60_000 - (run.duration_ms or 0)
    if run.status == RunStatus.SUCCEEDED:
        message = (
            f"Playbook activated in {_human_ms(run.duration_ms)}: {len(succeeded)} actions done, about {saved // 60_000} minutes of manual coordination saved."
        )
    else:
        message = f"Run finished {run.get_status_display().lower()}: {len(succeeded)} done, {len(failed)} failed, {len(waiting)} waiting. {reasons[0] if reasons else ''}"
    timeline_add(run, "finished", message, data={"status": run.status, "duration_ms": run.duration_ms})


# ---------------------------------------------------------------------------------------------------------------
# Executing steps


def _lease_seconds() -> float:
    return execution_guards.lease_seconds()


def _claim(step_run_ids: list[str]) -> list[StepRun]:
    """Take the steps for this worker: queued/retrying ones, or running ones whose worker's lease expired.

    The rows come back with their run and integration loaded, and `known_new` set on each: True when no request was
    ever sent with its idempotency key (first attempt here, and no attempt of the same key in an earlier run), so the
    connector may skip its search-before-create. The attempt count is committed before any vendor call, so a crash
    mid-call always makes the next attempt search first.
    """
    now = timezone.now()
    with transaction.atomic():
        claimable = (
            StepRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run", "integration")
            .filter(pk__in=step_run_ids, run__status=RunStatus.RUNNING)
            .filter(
                Q(status__in=[StepStatus.QUEUED, StepStatus.RETRYING]) | Q(status=StepStatus.RUNNING, lease_expires_at__lt=now),
            )
            .order_by("item_index")
        )
        claimed = list(claimable)
        if not claimed:
            return []
        tried_elsewhere = set(
            StepRun.objects.filter(idempotency_key__in=[s.idempotency_key for s in claimed], attempts__gt=0)
            .exclude(pk__in=[s.pk for s in claimed])
            .values_list("idempotency_key", flat=True)
        )
        lease = now + timedelta(seconds=_lease_seconds())
        for step_run in claimed:
            step_run.known_new = step_run.attempts == 0 and step_run.idempotency_key not in tried_elsewhere
            step_run.status = StepStatus.RUNNING
            step_run.attempts += 1
            step_run.lease_expires_at = lease
            step_run.started_at = step_run.started_at or now
            step_run.updated_at = now
        StepRun.objects.bulk_update(claimed, ["status", "attempts", "lease_expires_at", "started_at", "updated_at"])
    return claimed


# ---------------------------------------------------------------------------------------------------------------
# Connectors: one per integration per worker process for a short while

_known_new_support: dict[tuple[type, str], bool] = {}


def connector_for(integration: Integration) -> BaseConnector:
    """The worker's shared connector for playbook steps (see integrations.services.shared_connector)."""
    return shared_connector(integration, purpose="playbooks")


def connectors_forget() -> None:
    """Drop every cached connector (tests; a worker shutting down)."""
    shared_connectors_forget()


def _accepts_known_new(connector: BaseConnector, method: str) -> bool:
    key = (type(connector), method)
    if key not in _known_new_support:
        _known_new_support[key] = "known_new" in inspect.signature(getattr(connector, method)).parameters
    return _known_new_support[key]


def _perform(connector: BaseConnector, step_run: StepRun) -> Any:
    """perform() with the step's idempotency key; tells connectors that understand it when the key was never tried."""
    extra = {"known_new": True} if getattr(step_run, "known_new", False) and _accepts_known_new(connector, "perform") else {}
    return connector.perform(step_run.action, step_run.payload or {}, idempotency_key=step_run.idempotency_key, **extra)


def _perform_bulk(connector: BaseConnector, step_runs: list[StepRun]) -> list[Any]:
    """perform_bulk() for a chunk; `known_new` only when every key in the chunk was never tried."""
    fresh = all(getattr(s, "known_new", False) for s in step_runs)
    extra = {"known_new": True} if fresh and _accepts_known_new(connector, "perform_bulk") else {}
    return connector.perform_bulk(step_runs[0].action, [s.payload or {} for s in step_runs], idempotency_keys=[s.idempotency_key for s in step_runs], **extra)


def _advance_when_step_done(run_id: Any, step_key: str) -> None:
    """After this commit: advance the run in this worker if every item of the step is done.

    Dependents wait on whole steps, so an item whose siblings are still running cannot unblock anything; the
    sibling that finishes last advances. The check runs after the item's own commit, so of two items finishing
    together at least one sees both done (an extra advance is harmless: it locks the run and finds nothing new).
    Advancing here instead of through a separate task saves a broker round trip on the critical path.
    """

    def advance() -> None:
        try:
            if StepRun.objects.filter(run_id=run_id, step_key=step_key).exclude(status__in=DONE_STEP_STATUSES).exists():
                return
            playbook_run_advance(run_id=run_id)
        except Exception:  # noqa: BLE001 - the step's outcome is committed; never let a failed advance strand the run
            logger.exception("playbooks.advance.inline_failed", extra={"run": str(run_id), "step": step_key})
            from playbooks import tasks

            tasks.playbook_run_advance.delay(str(run_id))

    transaction.on_commit(advance)


def _task_title(step_run: StepRun) -> str:
    # What the vendor named it wins over what was asked for (a channel whose name was taken got a successor name).
    payload = {**(step_run.payload or {}), **{k: v for k, v in ((step_run.result or {}).get("data") or {}).items() if k in ("name", "title")}}
    for name in ("summary", "name", "title", "subject", "text", "body"):
        if payload.get(name):
            prefix = "#" if step_run.action == "create_channel" else ""
            return f"{prefix}{payload[name]}"[:500]
    return step_run.label[:500]


def _task_owner(step_run: StepRun) -> str:
    payload = step_run.payload or {}
    for name in ("assignee_email", "owner", "email"):
        if isinstance(payload.get(name), str) and payload[name]:
            return payload[name][:254]
    item = step_run.item if isinstance(step_run.item, dict) else {}
    owner = item.get("owner")
    if isinstance(owner, dict):
        return str(owner.get("email", ""))[:254]
    return ""


def _step_succeeded(step_run: StepRun, result: Any) -> None:
    now = timezone.now()
    with transaction.atomic():
        step_run.status = StepStatus.SUCCEEDED
        step_run.external_id = str(result.external_id)[:200]
        step_run.external_url = str(result.url or "")[:1000]
        step_run.reused_existing = not result.created
        execution_guards.delivery_unmark(step_run)
        step_run.result = {**(step_run.result or {}), "data": dict(result.data or {})}
        step_run.last_error = ""
        step_run.error_class = ""
        step_run.finished_at = now
        step_run.lease_expires_at = None
        step_run.duration_ms = int((now - (step_run.started_at or now)).total_seconds() * 1000)
        step_run.save()
        _step_observe(step_run, "succeeded", step_run.duration_ms / 1000)
        if step_run.task_kind and step_run.external_id:
            payload = step_run.payload or {}
            details: dict[str, Any] = {}
            if step_run.task_kind == "calendar_event":
                details["attendees"] = [{"email": e, "response": "needsAction"} for e in payload.get("attendees") or []]
            Task.objects.update_or_create(
                step_run=step_run,
                defaults={
                    "organization_id": step_run.run.organization_id,
                    "playbook_id": step_run.run.playbook_id,
                    "run": step_run.run,
                    "integration": step_run.integration,
                    "kind": step_run.task_kind,
                    "external_id": step_run.external_id,
                    "external_key": str((result.data or {}).get("key", ""))[:200],
                    "url": step_run.external_url,
                    "title": _task_title(step_run),
                    "owner": _task_owner(step_run),
                    "status": str((result.data or {}).get("status") or "open")[:60],
                    "status_source": "created",
                    "details": details,
                },
            )
        reused = " (already existed, reused)" if step_run.reused_existing else ""
        not_found = (result.data or {}).get("not_found") or []
        extra = f"; {len(not_found)} not found: {', '.join(not_found[:5])}" if not_found else ""
        if not step_run.is_bulk:
            timeline_add(step_run.run, "step_succeeded", f"{step_run.label}{reused}{extra}", step_key=step_run.step_key)


def _step_observe(step_run: StepRun, outcome: str, seconds: float) -> None:
    metrics.playbook_steps.labels(step_run.connector_key, step_run.action, outcome).inc()
    metrics.playbook_step_duration.labels(step_run.connector_key, step_run.action, outcome).observe(max(0.0, seconds))


def _retry_delay(error: ApiError, attempts: int) -> float:
    if isinstance(error, ApiRateLimited):
        return float(error.retry_after) + random.uniform(0, 0.5)
    hinted = getattr(error, "retry_after", None)
    if hinted:
        return float(hinted)
    base = _setting("BASTION_PLAYBOOK_RETRY_BASE_SECONDS", 1.0)
    return min(300.0, base * (2 ** (attempts - 1))) * random.uniform(0.5, 1.0)


def _step_failed(step_run: StepRun, error: Exception, *, unconfirmed: bool = False) -> float | None:
    """Record a failure; returns the countdown when the step will be retried, None when it failed for good."""
    now = timezone.now()
    retryable = isinstance(error, ApiError) and error.retryable and step_run.attempts < MAX_ATTEMPTS and not unconfirmed
    error_class = error.category if isinstance(error, ApiError) else "system"
    message = str(error)[:2000] if isinstance(error, ApiError) else f"{type(error).__name__}: {str(error)[:500]}"
    step_run.last_error = message
    step_run.error_class = error_class
    step_run.lease_expires_at = None
    if not unconfirmed:
        execution_guards.delivery_unmark(step_run)  # the vendor answered: the delivery is known not to have happened
    if retryable:
        delay = _retry_delay(error, step_run.attempts)
        step_run.status = StepStatus.RETRYING
        step_run.next_attempt_at = now + timedelta(seconds=delay)
        step_run.save(update_fields=["status", "last_error", "error_class", "lease_expires_at", "next_attempt_at", "result", "updated_at"])
        _step_observe(step_run, "retrying", (now - (step_run.started_at or now)).total_seconds())
        timeline_add(step_run.run, "step_retrying", f"{step_run.label}: {message} — retry {step_run.attempts + 1} in {delay:.1f} s", step_key=step_run.step_key)
        return delay
    step_run.status = StepStatus.FAILED
    step_run.finished_at = now
    step_run.duration_ms = int((now - (step_run.started_at or now)).total_seconds() * 1000)
    step_run.save(update_fields=["status", "last_error", "error_class", "lease_expires_at", "finished_at", "duration_ms", "result", "updated_at"])
    _step_observe(step_run, "failed", step_run.duration_ms / 1000)
    timeline_add(step_run.run, "step_failed", f"{step_run.label} failed ({error_class}): {message}", step_key=step_run.step_key)
    if isinstance(error, ApiError) and error.category == "auth" and step_run.integration is not None:
        integration_record_failure(integration=step_run.integration, error=error)
    logger.warning("playbooks.step.failed", extra={"step_run": str(step_run.pk), "step": step_run.step_key, "error_class": error_class})
    return None


def _never_repeats(step_run: StepRun) -> bool:
    """The step delivers something to a person that cannot be deduplicated or taken back (idempotency "none")."""
    if step_run.integration is None:
        return False
    try:
        return execution_guards.action_idempotency(connector_for(step_run.integration), step_run.action) == "none"
    except Exception:  # noqa: BLE001 - the call that follows builds the connector again and records why it cannot
        return False


def _settle_without_calling(claimed: list[StepRun]) -> list[StepRun]:
    """Settle the claimed steps that must not call the vendor now; return the ones that should.

    A key another run is performing right now waits for it; a key that already succeeded in an earlier run of this
    playbook (and was not undone) reuses that result; an interrupted delivery that cannot be deduplicated ends failed.
    """
    if not claimed:
        return []
    busy = execution_guards.busy_elsewhere(claimed)
    if busy:
        waiting = [s for s in claimed if s.pk in busy]
        StepRun.objects.filter(pk__in=busy).update(status=StepStatus.QUEUED, attempts=F("attempts") - 1, lease_expires_at=None, updated_at=timezone.now())
        _enqueue_steps([[str(s.pk)] for s in waiting], countdown=2)
    rest = [s for s in claimed if s.pk not in busy]
    never_repeat = bool(rest) and _never_repeats(rest[0])
    reusable = execution_guards.earlier_successes(rest, any_payload=never_repeat)
    settled: set[Any] = set()
    for step_run in rest:
        if step_run.pk in reusable:
            _step_succeeded(step_run, reusable[step_run.pk])
            settled.add(step_run.pk)
        elif execution_guards.delivery_interrupted(step_run):
            _step_failed(step_run, ApiError(execution_guards.UNCONFIRMED_DELIVERY), unconfirmed=True)
            settled.add(step_run.pk)
    if reusable:
        first = next(s for s in rest if s.pk in reusable)
        message = f"{first.step_name}: {len(reusable)} already done by an earlier activation of this playbook, not repeated"
        timeline_add(first.run, "step_reused", message, step_key=first.step_key)
    for run_id, step_key in {(s.run_id, s.step_key) for s in rest if s.pk in settled}:
        _advance_when_step_done(run_id, step_key)
    return [s for s in rest if s.pk not in settled]


def step_run_execute(*, step_run_id: Any) -> None:
    """Perform one step's action with its stored idempotency key; record the external reference it got."""
    claimed = _settle_without_calling(_claim([str(step_run_id)]))
    if not claimed:
        return
    step_run = claimed[0]
    try:
        if step_run.integration is None:
            raise ApplicationError("No integration is bound for this step.", code="configuration")
        connector = connector_for(step_run.integration)
        with execution_guards.lease_kept([step_run.pk]):
            if execution_guards.action_idempotency(connector, step_run.action) == "none":
                execution_guards.delivery_mark([step_run])
            result = _perform(connector, step_run)
    except ApplicationError as exc:
        _step_failed(step_run, ApiError(exc.message))
        _advance_when_step_done(step_run.run_id, step_run.step_key)
        return
    except Exception as exc:  # noqa: BLE001 - every failure is classified and shown on the step, never swallowed
        delay = _step_failed(step_run, exc)
        if delay is None:
            _advance_when_step_done(step_run.run_id, step_run.step_key)
        else:
            _enqueue_steps([[str(step_run.pk)]], countdown=delay)
        return
    _step_succeeded(step_run, result)
    _advance_when_step_done(step_run.run_id, step_run.step_key)


def step_runs_execute_bulk(*, step_run_ids: list[str]) -> None:
    """Perform one bulk call for a chunk of a fanned-out step (Jira: up to 50 issues per call)."""
    step_runs = _settle_without_calling(_claim([str(i) for i in step_run_ids]))
    if not step_runs:
        return
    first = step_runs[0]
    try:
        if first.integration is None:
            raise ApiError("No integration is bound for this step.")
        connector = connector_for(first.integration)
        with execution_guards.lease_kept([s.pk for s in step_runs]):
            if execution_guards.action_idempotency(connector, first.action) == "none":
                execution_guards.delivery_mark(step_runs)
            results = _perform_bulk(connector, step_runs)
    except Exception as exc:  # noqa: BLE001 - the whole call failed: each item records it; retryable chunks go again together
        delays = [_step_failed(s, exc) for s in step_runs]
        retry = [str(s.pk) for s, d in zip(step_runs, delays, strict=True) if d is not None]
        if retry:
            _enqueue_steps([retry], countdown=max(d for d in delays if d is not None))
        if len(retry) < len(step_runs):
            _advance_when_step_done(first.run_id, first.step_key)
        return
    succeeded = 0
    for step_run, result in zip(step_runs, results, strict=True):
        if isinstance(result, Exception):
            delay = _step_failed(step_run, result)
            if delay is not None:
                _enqueue_steps([[str(step_run.pk)]], countdown=delay)
        else:
            _step_succeeded(step_run, result)
            succeeded += 1
    if succeeded:
        reused = sum(1 for s in step_runs if s.status == StepStatus.SUCCEEDED and s.reused_existing)
        note = f" ({reused} already existed)" if reused else ""
        timeline_add(first.run, "step_succeeded", f"{first.step_name}: {succeeded} of {len(step_runs)} created in one bulk call{note}", step_key=first.step_key)
    _advance_when_step_done(first.run_id, first.step_key)


# ---------------------------------------------------------------------------------------------------------------
# Retry, resume, cancel


@transaction.atomic
def playbook_run_retry_failed(*, run: PlaybookRun, actor: Any = None, request: HttpRequest | None = None) -> list[StepRun]:
    """Re-run only the failed steps (same idempotency keys); their waiting dependents follow."""
    run = PlaybookRun.objects.select_for_update().select_related("playbook").get(pk=run.pk)
    if run.status == RunStatus.CANCELLED:
        raise ApplicationError("This run was cancelled; activate the playbook again instead.", code=PlaybookErrorCode.RUN_FINISHED, status_code=409)
    failed = list(run.step_runs.filter(status=StepStatus.FAILED).select_related("integration"))
    if getattr(actor, "is_authenticated", False):
        integrations_access_check(integrations=[step_run.integration for step_run in failed], actor=actor)
    skipped_for_integration = list(run.step_runs.filter(status=StepStatus.SKIPPED, error_class="configuration"))
    if not failed and not skipped_for_integration:
        raise ApplicationError("No failed steps to retry.", code=PlaybookErrorCode.NOTHING_TO_RETRY, status_code=409)
    templates = {s.key: s for s in run.playbook.template.steps.all()}
    retried: list[StepRun] = []
    for step_run in failed + skipped_for_integration:
        step = templates.get(step_run.step_key)
        integration = resolve_integration(run.playbook, step_run.connector_key)
        blocker = integration_blocker(integration, step) if step else ""
        if blocker:
            step_run.last_error = blocker
            step_run.save(update_fields=["last_error", "updated_at"])
            continue
        step_run.integration = integration
        step_run.status = StepStatus.PENDING
        step_run.finished_at = None
        step_run.next_attempt_at = None
        if step_run.error_class == "configuration" and step_run.last_error.startswith("The payload template"):
            step_run.payload = None
        execution_guards.delivery_unmark(step_run)  # a person checked the unconfirmed delivery and asked to send again
        step_run.save(update_fields=["integration", "status", "finished_at", "next_attempt_at", "payload", "result", "updated_at"])
        retried.append(step_run)
    if not retried:
        raise ApplicationError(
            "The failed steps still cannot run: " + "; ".join(sorted({s.last_error for s in failed + skipped_for_integration})),
            code=PlaybookErrorCode.NOTHING_TO_RETRY,
            status_code=409,
        )
    run.status = RunStatus.RUNNING
    run.finished_at = None
    run.error_summary = ""
    run.save(update_fields=["status", "finished_at", "error_summary", "updated_at"])
    Playbook.objects.filter(pk=run.playbook_id).update(status=PlaybookStatus.ACTIVE)
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    timeline_add(run, "retry", f"{who} retried {len(retried)} failed action(s): {', '.join(sorted({s.step_name for s in retried}))}")
    audit_record(action="playbook_run.retry_failed", organization=run.organization, actor=actor, target=run, changes={"steps": len(retried)}, request=request)
    _enqueue_advance(run.pk)
    return retried


@transaction.atomic
def playbook_run_resume(*, run: PlaybookRun, force: bool = False, actor: Any = None) -> list[str]:
    """Re-send steps whose worker died: queued ones, and running ones whose lease expired (or all running ones with force)."""
    run = PlaybookRun.objects.select_for_update().get(pk=run.pk)
    if run.status != RunStatus.RUNNING:
        return []
    now = timezone.now()
    stalled = run.step_runs.filter(Q(status=StepStatus.QUEUED) | Q(status=StepStatus.RETRYING, next_attempt_at__lt=now - timedelta(minutes=5)))
    running = run.step_runs.filter(status=StepStatus.RUNNING)
    if not force:
        running = running.filter(lease_expires_at__lt=now)
    to_send = list(stalled) + list(running)
    if not to_send:
        _enqueue_advance(run.pk)
        return []
    StepRun.objects.filter(pk__in=[s.pk for s in to_send]).update(status=StepStatus.QUEUED, lease_expires_at=None, updated_at=now)
    groups: dict[tuple[str, bool], list[str]] = {}
    for step_run in to_send:
        groups.setdefault((step_run.step_key, step_run.is_bulk), []).append(str(step_run.pk))
    batches: list[list[str]] = []
    for (_key, is_bulk), ids in groups.items():
        batches.extend([ids[i : i + BULK_CHUNK] for i in range(0, len(ids), BULK_CHUNK)] if is_bulk else [[i] for i in ids])
    timeline_add(run, "resumed", f"Resumed {len(to_send)} interrupted action(s) after a worker stopped.")
    _enqueue_steps(batches)
    _enqueue_advance(run.pk)  # a lost advance message may also have left ready steps waiting
    return [s for b in batches for s in b]


@dataclass
class CancelOutcome:
    run: PlaybookRun
    already_created: list[StepRun]
    in_flight: list[StepRun]
    undo: list[selectors.UndoPlanItem] = field(default_factory=list)
    undo_queued: list[StepRun] = field(default_factory=list)


@transaction.atomic
def playbook_run_cancel(*, run: PlaybookRun, undo: bool = False, actor: Any = None, request: HttpRequest | None = None) -> CancelOutcome:
    """Stop a run: nothing further starts. Without `undo` what it created stays (listed); with `undo` every object the
    run created is undone in its vendor as tracked steps (a finished or already cancelled run can be undone too)."""
    run = PlaybookRun.objects.select_for_update().select_related("playbook").get(pk=run.pk)
    finished = run.status in (RunStatus.CANCELLED, RunStatus.SUCCEEDED, RunStatus.FAILED)
    was_live = run.status in (RunStatus.PENDING, RunStatus.RUNNING)
    if finished and not undo:
        raise ApplicationError(f"The run already {run.get_status_display().lower()}.", code=PlaybookErrorCode.RUN_FINISHED, status_code=409)
    now = timezone.now()
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    forward = run.step_runs.filter(undo_of__isnull=True)
    created = list(forward.filter(status=StepStatus.SUCCEEDED).exclude(external_id=""))
    in_flight = list(forward.filter(status=StepStatus.RUNNING))
    if run.status != RunStatus.CANCELLED:
        forward.filter(status__in=[StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RETRYING, StepStatus.WAITING]).update(
            status=StepStatus.CANCELLED, finished_at=now, last_error="Cancelled before it ran.", updated_at=now
        )
        from playbooks.human.services import human_step_cancel_for_run

        human_step_cancel_for_run(run)  # open approvals, tasks and waits close; their links stop working
        run.status = RunStatus.CANCELLED
        run.cancelled_by = actor if getattr(actor, "is_authenticated", False) else None
        run.finished_at = run.finished_at or now
        if run.duration_ms is None and run.started_at:
            run.duration_ms = int((now - run.started_at).total_seconds() * 1000)
        run.save(update_fields=["status", "cancelled_by", "finished_at", "duration_ms", "updated_at"])
        Playbook.objects.filter(pk=run.playbook_id).update(status=PlaybookStatus.CANCELLED, updated_at=now)
        listing = ", ".join(f"{s.label} ({s.external_id})" for s in created[:10]) or "nothing"
        more = f" and {len(created) - 10} more" if len(created) > 10 else ""
        flight = f"; {len(in_flight)} action(s) were mid-call and may still complete" if in_flight else ""
        timeline_add(run, "cancelled", f"Cancelled by {who}. Already created: {listing}{more}{flight}.")
        audit_record(
            action="playbook_run.cancel",
            organization=run.organization,
            actor=actor,
            target=run,
            changes={"already_created": len(created), "undo": undo},
            request=request,
        )
    outcome = CancelOutcome(run=run, already_created=created, in_flight=in_flight)
    if undo:
        # A live run may have nothing created yet: what its in-flight actions create is undone when they finish.
        outcome.undo_queued, outcome.undo = _undo_request(run, actor=actor, request=request, allow_empty=was_live)
    return outcome


# ---------------------------------------------------------------------------------------------------------------
# Undo: what a cancelled run created is undone in the vendors, one tracked step per object


def _undo_reason(run: PlaybookRun, who: str) -> str:
    return (
        f"Bastion: the activation of the playbook “{run.playbook.name}” was cancelled by {who}, who asked to undo what it created. "
        "This was created by that activation, so Bastion is closing it."
    )


def _undo_request(
    run: PlaybookRun, *, actor: Any, request: HttpRequest | None, allow_empty: bool = False
) -> tuple[list[StepRun], list[selectors.UndoPlanItem]]:
    """Plan the undo of every object the run created (once per object) and queue it; failed undo steps go again."""
    now = timezone.now()
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "system"
    queued, plan = _undo_enqueue(run, reason=_undo_reason(run, who), retry_failed=True)
    pending = [item for item in plan if item.is_undoable and (item.undo_step is None or item.undo_step.status != StepStatus.SUCCEEDED)]
    if not allow_empty and not queued and not any(item.undo_step and item.undo_step.status in ACTIVE_STEP_STATUSES for item in pending):
        raise ApplicationError(
            "Nothing left to undo: every object this run created is undone or cannot be undone.", code=PlaybookErrorCode.NOTHING_TO_UNDO, status_code=409
        )
    run.undo_requested_at = now
    run.undo_requested_by = actor if getattr(actor, "is_authenticated", False) else None
    run.save(update_fields=["undo_requested_at", "undo_requested_by", "updated_at"])
    kept = [item for item in plan if not item.is_undoable]
    kept_note = f" Left in place: {', '.join(sorted({item.step_run.step_name for item in kept}))}." if kept else ""
    names = ", ".join(sorted({s.step_name for s in queued}))
    timeline_add(run, "undo_requested", f"{who} asked to undo what this run created: {len(queued)} object(s) ({names}).{kept_note}")
    audit_record(
        action="playbook_run.undo",
        organization=run.organization,
        actor=actor,
        target=run,
        changes={"queued": len(queued), "left_in_place": len(kept), "objects": [s.undo_of.external_id for s in queued][:100]},
        request=request,
    )
    return queued, plan


def _undo_enqueue(run: PlaybookRun, *, reason: str, retry_failed: bool) -> tuple[list[StepRun], list[selectors.UndoPlanItem]]:
    """Create the missing undo steps (the one-to-one undo_of makes each object's undo unique) and send them."""
    now = timezone.now()
    plan = selectors.undo_plan(run=run)
    queued: list[StepRun] = []
    for item in plan:
        if not item.is_undoable:
            continue
        origin, undo_step = item.step_run, item.undo_step
        if undo_step is None:
            data = (origin.result or {}).get("data") or {}
            undo_step = StepRun.objects.create(
                run=run,
                undo_of=origin,
                step_key=f"undo-{origin.step_key}"[:60],
                step_name=f"Undo: {origin.step_name}"[:200],
                position=origin.position,
                item_index=origin.item_index,
                item_key=str(origin.pk),
                item=origin.item,
                connector_key=origin.connector_key,
                action=f"undo_{origin.action}"[:60],
                is_required=False,
                integration=origin.integration,
                idempotency_key="undo-" + hashlib.sha256(origin.idempotency_key.encode()).hexdigest()[:40],
                payload={
                    "action": origin.action,
                    "external_id": origin.external_id,
                    "key": str(data.get("key") or ""),
                    "payload": origin.payload or {},
                    "reason": reason,
                },
                status=StepStatus.QUEUED,
                queued_at=now,
            )
            queued.append(undo_step)
        elif retry_failed and undo_step.status in (StepStatus.FAILED, StepStatus.CANCELLED):
            undo_step.status = StepStatus.QUEUED
            undo_step.queued_at = now
            undo_step.finished_at = None
            undo_step.next_attempt_at = None
            undo_step.save(update_fields=["status", "queued_at", "finished_at", "next_attempt_at", "updated_at"])
            queued.append(undo_step)
    if queued:
        _enqueue_undo_steps([str(s.pk) for s in queued])
    return queued, plan


def _enqueue_undo_steps(ids: list[str], countdown: float | None = None) -> None:
    from playbooks import tasks

    def send() -> None:
        for step_run_id in ids:
            tasks.step_run_undo_execute.apply_async(args=[step_run_id], **({"countdown": countdown} if countdown else {}))

    transaction.on_commit(send)


def _undo_after_late_success(run: PlaybookRun) -> None:
    """A step that was mid-call when the run was cancelled and undone finished later: undo what it created too."""
    queued, _ = _undo_enqueue(run, reason=_undo_reason(run, run.undo_requested_by.get_username() if run.undo_requested_by else "system"), retry_failed=False)
    if queued:
        timeline_add(run, "undo_requested", f"Also undoing {len(queued)} object(s) created by actions that finished after the cancel.")


def _claim_undo(step_run_id: str) -> StepRun | None:
    now = timezone.now()
    with transaction.atomic():
        step_run = (
            StepRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("run", "run__playbook", "integration", "undo_of")
            .filter(pk=step_run_id, undo_of__isnull=False)
            .filter(Q(status__in=[StepStatus.QUEUED, StepStatus.RETRYING]) | Q(status=StepStatus.RUNNING, lease_expires_at__lt=now))
            .first()
        )
        if step_run is None:
            return None
        step_run.status = StepStatus.RUNNING
        step_run.attempts += 1
        step_run.lease_expires_at = now + timedelta(seconds=_lease_seconds())
        step_run.started_at = step_run.started_at or now
        step_run.save(update_fields=["status", "attempts", "lease_expires_at", "started_at", "updated_at"])
    return step_run


def step_run_undo_execute(*, step_run_id: Any) -> None:
    """Undo one created object in its vendor (idempotent: an object already archived, cancelled or closed counts as undone)."""
    step_run = _claim_undo(str(step_run_id))
    if step_run is None:
        return
    payload = step_run.payload or {}
    try:
        if step_run.integration is None:
            raise ApiError("The integration this object was created with is gone; undo it by hand in the vendor.")
        connector = connector_for(step_run.integration)
        undo = getattr(connector, "undo", None)
        if undo is None:
            raise ApiError(f"{connector.manifest.name} cannot undo {payload.get('action', 'this action')}.")
        with execution_guards.lease_kept([step_run.pk]):
            result = undo(
                str(payload.get("action", "")),
                external_id=str(payload.get("external_id", "")),
                key=str(payload.get("key", "")),
                payload=payload.get("payload") or {},
                reason=str(payload.get("reason", "")),
                idempotency_key=step_run.idempotency_key,
            )
    except Exception as exc:  # noqa: BLE001 - classified and shown on the undo item, never swallowed
        delay = _step_failed(step_run, exc)
        if delay is not None:
            _enqueue_undo_steps([str(step_run.pk)], countdown=delay)
        else:
            _undo_finish_when_done(step_run.run_id)
        return
    now = timezone.now()
    with transaction.atomic():
        step_run.status = StepStatus.SUCCEEDED
        step_run.external_id = str(result.external_id)[:200]
        step_run.external_url = str(result.url or "")[:1000]
        step_run.reused_existing = not result.created
        step_run.result = {"data": dict(result.data or {})}
        step_run.last_error = ""
        step_run.error_class = ""
        step_run.finished_at = now
        step_run.lease_expires_at = None
        step_run.duration_ms = int((now - (step_run.started_at or now)).total_seconds() * 1000)
        step_run.save()
        task = Task.objects.select_for_update().select_related("run").filter(step_run_id=step_run.undo_of_id).first()
        changed = task_apply_shape(task, dict(result.data or {}), source="undo") if task is not None else False
        if not changed:
            what = "was already undone" if not result.created else "undone"
            timeline_add(step_run.run, "undo_succeeded", f"{step_run.label}: {what}", step_key=step_run.step_key)
    _undo_finish_when_done(step_run.run_id)


def _undo_finish_when_done(run_id: Any) -> None:
    """Once no undo step is left in flight, say how the undo went (once per request)."""

    def finish() -> None:
        with transaction.atomic():
            run = PlaybookRun.objects.select_for_update().filter(pk=run_id).first()
            if run is None or run.undo_requested_at is None:
                return
            steps = list(run.step_runs.filter(undo_of__isnull=False))
            if any(s.status in (StepStatus.PENDING, *ACTIVE_STEP_STATUSES) for s in steps):
                return
            if run.timeline.filter(kind="undo_finished", at__gte=run.undo_requested_at).exists():
                return
            done = [s for s in steps if s.status == StepStatus.SUCCEEDED]
            failed = [s for s in steps if s.status == StepStatus.FAILED]
            note = f"; could not undo: {', '.join(s.label for s in failed[:5])} — see each item" if failed else ""
            timeline_add(run, "undo_finished", f"Undo finished: {len(done)} of {len(steps)} object(s) undone{note}.", data={"failed": len(failed)})

    transaction.on_commit(finish)


def undo_steps_resume_stalled() -> int:
    """Re-send undo steps whose worker died (queued too long, or running past their lease)."""
    now = timezone.now()
    stale = now - timedelta(seconds=_lease_seconds())
    stalled = StepRun.objects.filter(undo_of__isnull=False).filter(
        Q(status=StepStatus.QUEUED, queued_at__lt=stale) | Q(status=StepStatus.RUNNING, lease_expires_at__lt=now)
    )
    ids = [str(pk) for pk in stalled.values_list("pk", flat=True)]
    if ids:
        with transaction.atomic():
            _enqueue_undo_steps(ids)
    return len(ids)


@transaction.atomic
def playbook_runs_resume_stalled() -> int:
    """Periodic: resume running runs whose steps lost their worker (expired leases, long-queued messages)."""
    count = 0
    stale = timezone.now() - timedelta(seconds=_lease_seconds())
    runs = PlaybookRun.objects.filter(status=RunStatus.RUNNING).filter(
        Q(step_runs__status=StepStatus.RUNNING, step_runs__lease_expires_at__lt=timezone.now())
        | Q(step_runs__status=StepStatus.QUEUED, step_runs__queued_at__lt=stale)
    )
    for run in runs.distinct():
        count += len(playbook_run_resume(run=run))
    # A run with nothing in flight whose last step finished long ago lost its advance (the worker died between
    # the step's commit and the advance that follows it): advance it now.
    idle = (
        PlaybookRun.objects.filter(status=RunStatus.RUNNING)
        .exclude(step_runs__status__in=ACTIVE_STEP_STATUSES)
        .annotate(last_change=Max("step_runs__updated_at"))
        .filter(last_change__lt=stale)
    )
    for run_id in idle.values_list("pk", flat=True):
        _enqueue_advance(run_id)
    return count + undo_steps_resume_stalled()


# ---------------------------------------------------------------------------------------------------------------
# Status flowing back


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


def _shape_for(connector_key: str, entity: str, record: dict[str, Any], action: str) -> dict[str, Any]:
    """Turn a vendor record into Bastion's shape through the connector's own transformer."""
    if action == "status" or not record:
        return dict(record or {})
    try:
        connector_class = get_connector_class(connector_key)
        return dict(connector_class().to_bastion(entity, record))
    except Exception:  # noqa: BLE001 - an unexpected vendor payload must not break the other events of the delivery
        logger.warning("playbooks.webhook.transform_failed", extra={"connector": connector_key, "entity": entity})
        return {}


def task_apply_shape(task: Task, shape: dict[str, Any], *, at: datetime | None = None, source: str = "webhook") -> bool:
    """Update a tracked task from a Bastion-shaped record (task, channel, event, incident). Returns True if it changed."""
    before = (task.status, task.owner, task.is_done, dict(task.details))
    status = task.status
    if "is_archived" in shape:
        status = "archived" if shape.get("is_archived") else "active"
    elif shape.get("status"):
        status = str(shape["status"])
    details = dict(task.details)
    if isinstance(shape.get("attendees"), list):
        details["attendees"] = [{"email": a.get("email", ""), "response": a.get("response", "")} for a in shape["attendees"] if isinstance(a, dict)]
    if shape.get("status_category"):
        details["status_category"] = shape["status_category"]
    task.status = status[:60]
    task.is_done = shape.get("status_category") == "done" or status.lower() in DONE_TASK_STATUSES
    owner = shape.get("assignee_email") or shape.get("owner")
    if isinstance(owner, str) and owner:
        task.owner = owner[:254]
    task.details = details
    task.last_event_at = at or timezone.now()
    changed = (task.status, task.owner, task.is_done, task.details) != before
    if changed or not task.status_source:
        task.status_source = source
    task.save()
    if changed:
        declined = [a["email"] for a in details.get("attendees", []) if a.get("response") == "declined"]
        note = f"; declined: {', '.join(declined)}" if declined else ""
        timeline_add(task.run, "task_updated", f"{task.title} is now {task.status} ({source}){note}", data={"task": str(task.pk)})
    return changed


def webhook_events_apply(integration_id: str, events: list[dict[str, Any]]) -> int:
    """Registered in settings.BASTION_EVENT_HANDLERS: update tracked tasks from processed webhook events. Returns tasks changed."""
    integration = Integration.objects.filter(pk=integration_id).first() if _is_uuid(integration_id) else None
    if integration is None:
        return 0
    changed = 0
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
        action = str(event.get("action") or "upsert")
        shape = {"status": "deleted"} if action == "delete" else _shape_for(integration.connector_key, str(event.get("entity") or ""), record, action)
        if not shape:
            continue
        with transaction.atomic():
            for task in tasks.select_for_update(of=("self",)):
                if task.last_event_at and at < task.last_event_at:
                    continue  # an older delivery must not overwrite newer state
                changed += int(task_apply_shape(task, shape, at=at))
    return changed


def _poll_interval() -> float:
    return _setting("BASTION_PLAYBOOK_POLL_MIN_INTERVAL_SECONDS", 60)


MEETING_TASK_KINDS = ("calendar_event",)


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
        data = (result or {}).get("data") if isinstance(result, dict) else None
        edge = data.get("end") if isinstance(data, dict) else None
        end = _as_moment(edge.get("dateTime") or edge.get("date"), edge.get("timeZone")) if isinstance(edge, dict) else None
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
        ends = _meeting_ends([t for t in page if t.kind in MEETING_TASK_KINDS])
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


def _poll_refs(connector: BaseConnector, kind: str, tasks: list[Task]) -> dict[Any, dict[str, Any]]:
    """Read the tasks' objects: one batched call where the connector can (Jira's JQL), else one read per object."""
    batch = getattr(connector, "fetch_objects", None)
    if batch is not None:
        refs = {task.pk: task.external_key or task.external_id for task in tasks}
        shapes = batch(kind, list(refs.values()))
        return {pk: shapes[ref] for pk, ref in refs.items() if ref in shapes}
    found: dict[Any, dict[str, Any]] = {}
    for task in tasks:
        try:
            found[task.pk] = dict(connector.fetch_object(kind, task.external_id) or {})
        except (ApiRateLimited, KeyError):
            raise
        except ApiError as exc:
            if exc.category == "auth":
                raise
            # One unreadable object must not hide the others; the integration counts the failure.
            logger.warning("playbooks.poll.fetch_failed", extra={"task": str(task.pk), "kind": kind, "error": str(exc)})
            if task.integration is not None:
                integration_record_failure(integration=task.integration, error=exc)
    return found


def playbook_tasks_poll(*, limit: int = 500) -> int:
    """Polling backstop: re-read open tasks (not done, not polled within the interval) from their vendors. Returns tasks changed.

    Objects are grouped by integration and kind so a vendor that can batch is asked once (Jira: one JQL search per 100
    issues). Every call goes through the integration's shared client and its Redis rate limiter; a throttled or
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
        if getattr(connector, "fetch_object", None) is None and getattr(connector, "fetch_objects", None) is None:
            continue
        read_at = timezone.now()
        try:
            shapes = _poll_refs(connector, kind, tasks)
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
        for task in tasks:
            shape = shapes.get(task.pk)
            if not shape:
                continue
            at = _parse_when(shape.get("updated")) or read_at
            with transaction.atomic():
                locked = Task.objects.select_for_update().select_related("run").get(pk=task.pk)
                if locked.last_event_at and at < locked.last_event_at:
                    continue  # a webhook already told us something newer
                changed += int(task_apply_shape(locked, shape, at=at, source="poll"))
    return changed
