"""Creating playbooks and planning them: what each step will do, where, and what blocks it."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from json_logic import jsonLogic

from accounts.models import Organization
from accounts.services import audit_record
from common.errors import ApplicationError
from common.validators import is_uuid
from integrations.access import integration_access_check, integrations_access_check
from integrations.models import Integration, IntegrationStatus
from integrations.registry import UnknownConnector, connectors_playing, get_connector_class
from playbooks.contract import ROLE_NAMES, action_fields, connector_label, step_role
from playbooks.models import (
    Playbook,
    PlaybookStepTemplate,
    PlaybookTemplate,
)
from playbooks.rendering import RenderError, render_payload, render_string, sanitize_payload
from playbooks.services.shared import UNHEALTHY, PlaybookErrorCode
from scenarios.models import Scenario

logger = logging.getLogger(__name__)


def _validate_bindings(organization: Organization, bindings: dict[str, Any] | None, *, actor: Any = None) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for connector_key, integration_id in (bindings or {}).items():
        if not integration_id:
            continue
        integration = Integration.objects.filter(organization=organization, pk=str(integration_id)).first() if is_uuid(integration_id) else None
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
    """The bound integration for a connector key or role, else the organization's (connected first, oldest first)."""
    role = step_role(connector_key)
    keys = connectors_playing(role) if role is not None else [connector_key]
    bindings = playbook.integration_bindings or {}
    # A playbook bound before its template named roles ({"slack": id}) keeps that integration for the role's steps.
    bound = bindings.get(connector_key) or next((bindings[key] for key in keys if bindings.get(key)), None)
    if bound:
        return Integration.objects.filter(organization=playbook.organization_id, pk=bound).first()
    candidates = Integration.objects.filter(organization=playbook.organization_id, connector_key__in=keys).order_by("created_at")
    return candidates.filter(status=IntegrationStatus.CONNECTED).first() or candidates.first()


def concrete_connector_key(connector_key: str, integration: Integration | None) -> str:
    """The connector a step runs on: a role resolves to its integration's connector; unresolved, it stays the role."""
    if step_role(connector_key) is not None and integration is not None:
        return integration.connector_key
    return connector_key


def integration_blocker(integration: Integration | None, step: PlaybookStepTemplate) -> str:
    """Why the step cannot run with this integration ("" when it can)."""
    from playbooks.human.config import is_human_connector, template_problem

    if is_human_connector(step.connector_key):  # a person, a time or a condition: no vendor integration involved
        return template_problem(step.action, step.payload_template)
    role = step_role(step.connector_key)
    if integration is None:
        if role is not None:
            players = " or ".join(get_connector_class(key).manifest.name for key in connectors_playing(role)) or "a tool that can"
            return f"Nothing is connected to host the {ROLE_NAMES[role]}: connect {players}."
        return f"No {connector_label(step.connector_key)} integration is connected."
    if integration.status in UNHEALTHY:
        detail = f": {integration.last_error[:200]}" if integration.last_error else ""
        return f"{integration.display_name} is {integration.get_status_display().lower()}{detail}."
    try:
        manifest = get_connector_class(integration.connector_key).manifest
    except UnknownConnector:
        return f"The connector '{integration.connector_key}' is not installed."
    if role is not None and role not in manifest.roles:
        return f"{integration.display_name} cannot be the {ROLE_NAMES[role]}."
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


def render_step_payload(step_template: dict[str, Any] | Any, connector_key: str, action: str, context: dict[str, Any]) -> dict[str, Any]:
    """Render a step's payload with each field's values escaped for the format it is delivered in, then apply the
    connector's field shapes for the action (ActionSpec.fields)."""
    fields = action_fields(connector_key, action)
    rendered = render_payload(step_template, context, fields=fields)
    if not isinstance(rendered, dict):
        raise RenderError("A payload template must be a JSON object.")
    return sanitize_payload(fields, rendered)


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
        connector_key = concrete_connector_key(step.connector_key, integration)
        connector_name = connector_label(connector_key)
        errors: list[str] = []
        will_run = condition_holds(step, context)
        items = plan_items(step, context) if will_run else []
        sample: dict[str, Any] = {}
        step_context = {**context, "steps": steps_context, "integration": _integration_facts(integration)}
        try:
            if items:
                sample = render_step_payload(step.payload_template, connector_key, step.action, {**step_context, "item": items[0][1] or {}})
        except RenderError as exc:
            errors.append(str(exc))
        steps_context[step.key] = {"external_id": f"<{step.key}>", "url": "", "key": "", "payload": sample, "data": {}}
        previews.append(
            StepPreview(
                key=step.key,
                name=step.name,
                connector_key=connector_key,
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
