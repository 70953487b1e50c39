"""Schedule triggers: a date in each scenario plus an offset, at a time of day in a time zone (launch day − 7 days, 09:00)."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone

from playbooks.triggers.models import FIRED_OUTCOMES, TriggerFiring, TriggerRule
from scenarios.models import Scenario, ScenarioStatus

logger = logging.getLogger(__name__)
DEFAULT_GRACE_HOURS = 24


def schedule_problem(schedule: Any) -> str:
    """Why a schedule cannot work ("" when it can)."""
    if not isinstance(schedule, dict) or not schedule.get("date_field"):
        return "A schedule names the scenario's date field: {'date_field': 'launch_date', 'offset_days': -7, 'at': '09:00', 'timezone': 'Europe/Paris'}."
    try:
        ZoneInfo(str(schedule.get("timezone") or settings.TIME_ZONE))
    except (ZoneInfoNotFoundError, ValueError):
        return f"Unknown time zone '{schedule.get('timezone')}'."
    if _at(schedule) is None:
        return "at is a time of day such as '09:00'."
    if not isinstance(schedule.get("offset_days", 0), int):
        return "offset_days is a whole number of days (negative: before the date)."
    return ""


def _at(schedule: dict[str, Any]) -> time | None:
    try:
        return time.fromisoformat(str(schedule.get("at") or "09:00"))
    except ValueError:
        return None


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def due_at(schedule: dict[str, Any], values: dict[str, Any]) -> datetime | None:
    """When the rule is due for a scenario: its date field + offset_days, at `at` in `timezone`; None without a date."""
    day = _day(values.get(schedule["date_field"]))
    if day is None:
        return None
    zone = ZoneInfo(str(schedule.get("timezone") or settings.TIME_ZONE))
    return datetime.combine(day + timedelta(days=int(schedule.get("offset_days", 0))), _at(schedule) or time(9), tzinfo=zone)


def trigger_schedules_evaluate(*, now: datetime | None = None) -> int:
    """Beat: fire every schedule rule whose moment came for a scenario (within the grace), once per scenario. Returns firings."""
    from playbooks.triggers.services import rule_evaluate

    now = now or timezone.now()
    fired = 0
    for rule in TriggerRule.objects.filter(source="schedule", is_enabled=True).select_related("template"):
        if schedule_problem(rule.schedule):
            logger.warning("playbooks.trigger.schedule_invalid", extra={"rule": str(rule.pk)})
            continue
        grace = timedelta(hours=float(rule.schedule.get("grace_hours", DEFAULT_GRACE_HOURS)))
        scenarios = Scenario.objects.filter(organization_id=rule.organization_id, scenario_type=rule.template.scenario_type).exclude(
            status=ScenarioStatus.CLOSED
        )
        seen = set(TriggerFiring.objects.filter(rule=rule, resource_key__startswith="schedule:scenario:").values_list("resource_key", flat=True))
        for scenario in scenarios:
            moment = due_at(rule.schedule, scenario.values or {})
            key = f"schedule:scenario:{scenario.pk}"
            if moment is None or not (moment <= now < moment + grace) or key in seen:
                continue  # each scenario is evaluated once when its moment comes: no log line every minute
            facts = {
                "connector": "schedule",
                "integration_id": "",
                "event_type": "schedule.due",
                "entity": "scenario",
                "external_id": str(scenario.pk),
                "action": "due",
                "occurred_at": moment.isoformat(),
                "record": {**(scenario.values or {}), "title": scenario.title, "due_at": moment.isoformat()},
            }
            firing = rule_evaluate(rule=rule, facts=facts, received_at=now, scenario=scenario)
            fired += int(firing.outcome in FIRED_OUTCOMES)
    return fired
