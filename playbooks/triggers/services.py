"""Trigger rules: match verified vendor events (JSON Logic), map them onto scenario values, propose or activate, log every outcome."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import audit_record
from common.errors import ApplicationError
from common.validators import is_uuid
from integrations.models import Integration
from playbooks.models import Playbook, PlaybookTemplate, TimelineEvent
from playbooks.triggers.models import FIRED_OUTCOMES, FiringOutcome, TriggerFiring, TriggerMode, TriggerRule
from scenarios.logic import LogicError, check_expression, evaluate, truthy
from scenarios.models import Scenario, ScenarioDataModel, ScenarioStatus

logger = logging.getLogger(__name__)


def rule_check(*, condition: Any, mapping: Any, mode: str, approval: dict[str, Any] | None, template: PlaybookTemplate | None) -> None:
    """Refuse a rule that could never work: bad JSON Logic, a mapping that is not field → expression, a proposal nobody approves."""
    fields: dict[str, list[str]] = {}
    try:
        if condition is not None:
            check_expression(condition)
    except LogicError as error:
        fields["condition"] = [str(error)]
    if not isinstance(mapping, dict):
        fields["mapping"] = ["The mapping is an object: scenario field → JSON Logic over the event (or a literal)."]
    else:
        for key, expression in mapping.items():
            try:
                check_expression(expression)
            except LogicError as error:
                fields.setdefault("mapping", []).append(f"{key}: {error}")
    if mode == TriggerMode.PROPOSE:
        from playbooks.human.config import _people_problem

        problem = _people_problem((approval or {}).get("approvers"), "approval.approvers")
        if not problem and not isinstance((approval or {}).get("timeout_minutes"), int | float):
            problem = "approval.timeout_minutes is required: a proposal has a deadline, then on_timeout (drop or activate)."
        if not problem and (approval or {}).get("on_timeout", "drop") not in ("drop", "activate"):
            problem = "approval.on_timeout is drop or activate."
        if problem:
            fields["approval"] = [problem]
    if template is None:
        fields["template"] = ["Choose the playbook template the rule starts."]
    if fields:
        raise ApplicationError(next(iter(fields.values()))[0], code="invalid_rule", fields=fields)


def event_facts(connector_key: str, event: dict[str, Any], *, integration_id: str = "") -> dict[str, Any]:
    """What a condition and a mapping read: the normalized event, with the vendor's record (status, title, urgency…)."""
    return {
        "connector": connector_key,
        "integration_id": integration_id,
        "event_type": str(event.get("event_type") or ""),
        "entity": str(event.get("entity") or ""),
        "external_id": str(event.get("external_id") or ""),
        "action": str(event.get("action") or ""),
        "occurred_at": event.get("occurred_at"),
        "record": dict(event.get("record") or {}),
    }


def resource_key(facts: dict[str, Any]) -> str:
    ident = facts["external_id"] or str(facts["record"].get("id") or "")
    return f"{facts['connector']}:{facts['entity']}:{ident}"[:300]


def map_values(rule: TriggerRule, facts: dict[str, Any]) -> dict[str, Any]:
    """Scenario values: the rule's defaults, overlaid with every mapping expression that gives a value."""
    values = dict(rule.defaults or {})
    for field_key, expression in (rule.mapping or {}).items():
        value = evaluate(expression, facts) if isinstance(expression, dict | list) else expression
        if value not in (None, "", []):
            values[field_key] = value
    return values


def _log(rule: TriggerRule, facts: dict[str, Any], outcome: str, reason: str, *, delivery_id: str = "", received_at: datetime | None = None, **extra: Any):
    return TriggerFiring.objects.create(
        organization_id=rule.organization_id,
        rule=rule,
        resource_key=resource_key(facts),
        event_type=facts["event_type"][:120],
        delivery_id=delivery_id[:255],
        outcome=outcome,
        reason=reason[:5000],
        event=facts,
        received_at=received_at,
        **extra,
    )


def _watches(rule: TriggerRule, facts: dict[str, Any]) -> bool:
    return not rule.event_types or facts["event_type"] in rule.event_types


def rule_evaluate(
    *, rule: TriggerRule, facts: dict[str, Any], delivery_id: str = "", received_at: datetime | None = None, scenario: Scenario | None = None
) -> TriggerFiring:
    """Evaluate one rule against one event: fire once per external resource, honour the cooldown, record why not."""
    with transaction.atomic():
        rule = TriggerRule.objects.select_for_update().select_related("template", "organization").get(pk=rule.pk)  # one firing at a time per rule
        key = resource_key(facts)
        earlier = TriggerFiring.objects.filter(rule=rule, resource_key=key, is_firing=True).select_related("run", "playbook").first()
        if earlier is not None:
            return _update(rule, earlier, facts, delivery_id, received_at)
        if not rule.is_enabled:
            return _log(rule, facts, FiringOutcome.DISABLED, "The rule is disabled.", delivery_id=delivery_id, received_at=received_at)
        if not _watches(rule, facts):
            watched = ", ".join(rule.event_types)
            return _log(
                rule,
                facts,
                FiringOutcome.EVENT_NOT_WATCHED,
                f"{facts['event_type']} is not watched ({watched}).",
                delivery_id=delivery_id,
                received_at=received_at,
            )
        if rule.condition and not truthy(evaluate(rule.condition, facts)):
            return _log(rule, facts, FiringOutcome.NOT_MATCHED, _why_not(rule.condition, facts), delivery_id=delivery_id, received_at=received_at)
        now = timezone.now()
        if rule.last_fired_at and rule.cooldown_seconds and now < rule.last_fired_at + timedelta(seconds=rule.cooldown_seconds):
            until = rule.last_fired_at + timedelta(seconds=rule.cooldown_seconds)
            reason = (
                f"Cooling down after the firing at {timezone.localtime(rule.last_fired_at):%H:%M:%S}; fires again from {timezone.localtime(until):%H:%M:%S}."
            )
            return _log(rule, facts, FiringOutcome.COOLDOWN, reason, delivery_id=delivery_id, received_at=received_at)
        try:
            with transaction.atomic():
                return _fire(rule, facts, now, delivery_id=delivery_id, received_at=received_at, scenario=scenario)
        except ApplicationError as error:
            return _log(rule, facts, FiringOutcome.FAILED, f"Could not start the playbook: {error.message}", delivery_id=delivery_id, received_at=received_at)


def _why_not(condition: Any, facts: dict[str, Any]) -> str:
    """Name the parts of an `and` that were false, so a person sees why a rule did not match."""
    parts = condition.get("and") if isinstance(condition, dict) and isinstance(condition.get("and"), list) else [condition]
    failed = [part for part in parts if not truthy(evaluate(part, facts))]
    import json

    return "Condition false: " + "; ".join(json.dumps(part, sort_keys=True)[:300] for part in failed)


def _fire(
    rule: TriggerRule, facts: dict[str, Any], now: datetime, *, delivery_id: str, received_at: datetime | None, scenario: Scenario | None = None
) -> TriggerFiring:
    from playbooks import services as engine
    from playbooks.human.services import activation_propose

    values = map_values(rule, facts)
    if scenario is None:
        scenario = _scenario_make(rule, values)
    elif values:  # a schedule fires for a scenario that exists: the mapping only adds what is missing
        scenario.values = {**values, **(scenario.values or {})}
        scenario.save(update_fields=["values", "updated_at"])
    playbook = engine.playbook_create(
        organization=rule.organization, scenario=scenario, template=rule.template, integration_bindings=rule.integration_bindings or None
    )
    run = None
    if rule.mode == TriggerMode.ACTIVATE:
        run, _ = engine.playbook_activate(playbook=playbook)
        engine.timeline_add(run, "triggered", f"Activated by the rule “{rule.name}” on {facts['connector']} {facts['event_type']} ({facts['external_id']}).")
        outcome, reason = FiringOutcome.ACTIVATED, "Matched: playbook activated."
    else:
        names = activation_propose(
            playbook=playbook,
            approval=rule.approval,
            title=f"Activate “{playbook.name}”?",
            description=f"The rule “{rule.name}” matched {facts['connector']} {facts['event_type']} ({facts['external_id']}).",
        )
        outcome, reason = FiringOutcome.PROPOSED, f"Matched: proposed, waiting for {names.required_approvals} approval(s)."
    try:
        firing = _log(
            rule, facts, outcome, reason, delivery_id=delivery_id, received_at=received_at,
            is_firing=True, values=values, scenario=scenario, playbook=playbook, run=run,
        )  # fmt: skip
    except IntegrityError:  # another worker fired for this resource first (the rule lock makes this the rare path)
        raise ApplicationError("Already fired for this resource.", code="duplicate")
    TriggerRule.objects.filter(pk=rule.pk).update(last_fired_at=now)
    audit_record(
        action=f"trigger.{outcome}", organization=rule.organization, target=rule, changes={"resource": firing.resource_key, "playbook": str(playbook.pk)}
    )
    return firing


def _scenario_make(rule: TriggerRule, values: dict[str, Any]) -> Scenario:
    """A scenario pre-filled from the event; kept as a draft (not refused) when the event does not fill every required field."""
    from scenarios.services import scenario_validate

    data_model = ScenarioDataModel.objects.filter(scenario_type=rule.template.scenario_type, is_published=True).order_by("-version").first()
    data_model = data_model or ScenarioDataModel.objects.filter(scenario_type=rule.template.scenario_type).order_by("-version").first()
    if data_model is None:
        raise ApplicationError(f"No scenario definition for {rule.template.scenario_type}.", code="no_definition")
    result = scenario_validate(data_model=data_model, organization=rule.organization, values=values)
    return Scenario.objects.create(
        organization=rule.organization,
        data_model=data_model,
        scenario_type=rule.template.scenario_type,
        title=str(result.values.get("title") or rule.name)[:300],
        values=result.values,
        status=ScenarioStatus.READY if result.is_valid else ScenarioStatus.DRAFT,
        value_sources={key: {"source": "trigger", "rule": str(rule.pk)} for key in values},
    )


def _update(rule: TriggerRule, earlier: TriggerFiring, facts: dict[str, Any], delivery_id: str, received_at: datetime | None) -> TriggerFiring:
    """A re-sent or updated event about a resource the rule already fired for: note it on that run, never start another."""
    from playbooks import services as engine

    run = earlier.run or (earlier.playbook.runs.order_by("-created_at").first() if earlier.playbook else None)
    status = facts["record"].get("status") or facts["action"]
    if run is not None:
        engine.timeline_add(
            run, "trigger_update", f"{facts['connector']} {facts['event_type']} for {facts['external_id']}: {status}.", data={"firing": str(earlier.pk)}
        )
    return _log(
        rule, facts, FiringOutcome.UPDATED, f"Already fired for this resource (firing {earlier.pk}); noted on its run, no second run.",
        delivery_id=delivery_id, received_at=received_at, playbook=earlier.playbook, run=run, scenario=earlier.scenario,
    )  # fmt: skip


def trigger_events_evaluate(integration_id: str, events: list[dict[str, Any]]) -> int:
    """Registered in settings.BASTION_EVENT_HANDLERS: evaluate the rules watching this integration's events. Returns firings."""

    integration = Integration.objects.filter(pk=integration_id).first() if is_uuid(integration_id) else None
    if integration is None:
        return 0
    rules = TriggerRule.objects.filter(organization_id=integration.organization_id, source=integration.connector_key)
    rules = list(rules.filter(integration__isnull=True) | rules.filter(integration=integration))
    fired = 0
    for event in events:
        if event.get("challenge_response"):
            continue
        facts = event_facts(integration.connector_key, event, integration_id=str(integration.pk))
        received = _received_at(integration, str(event.get("delivery_id") or ""))
        for rule in rules:
            firing = rule_evaluate(rule=rule, facts=facts, delivery_id=str(event.get("delivery_id") or ""), received_at=received)
            fired += int(firing.outcome in FIRED_OUTCOMES)
    from playbooks.human.clock import waits_recheck

    waits_recheck(organization_id=integration.organization_id)  # the events may have changed what a wait's condition reads
    return fired


def _received_at(integration: Integration, delivery_id: str) -> datetime | None:
    from sync.models import WebhookDelivery

    return WebhookDelivery.objects.filter(integration=integration, delivery_id=delivery_id).values_list("received_at", flat=True).first()


def firing_timeline(firing: TriggerFiring) -> list[TimelineEvent]:
    return list(TimelineEvent.objects.filter(run=firing.run).order_by("at", "id")) if firing.run_id else []


def playbook_for_firing(firing: TriggerFiring) -> Playbook | None:
    return firing.playbook
