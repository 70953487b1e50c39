"""Schedule triggers: launch day − 7 days at 09:00 in the rule's time zone, once per scenario, through the beat task."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from playbooks.models import PlaybookRun, PlaybookTemplate
from playbooks.triggers.models import FiringOutcome, TriggerFiring, TriggerRule
from playbooks.triggers.schedules import due_at, trigger_schedules_evaluate
from scenarios.models import Scenario, ScenarioDataModel

SCHEDULE = {"date_field": "launch_date", "offset_days": -7, "at": "09:00", "timezone": "Europe/Paris"}


@pytest.fixture
def launch(organization):
    data_model = ScenarioDataModel.objects.filter(scenario_type="product_launch").order_by("-version").first()
    return Scenario.objects.create(
        organization=organization,
        data_model=data_model,
        scenario_type="product_launch",
        title="Bastion 2.0 GA",
        values={"title": "Bastion 2.0 GA", "launch_date": "2030-03-20", "summary": "GA", "launch_tier": "tier1", "stakeholders": []},
    )


def test_due_moment_is_in_the_rules_time_zone():
    moment = due_at(SCHEDULE, {"launch_date": "2030-03-20"})
    assert moment.date() == date(2030, 3, 13) and moment.astimezone(UTC) == datetime(2030, 3, 13, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert due_at({**SCHEDULE, "timezone": "America/New_York"}, {"launch_date": "2030-03-20"}).astimezone(UTC).hour == 13
    assert due_at(SCHEDULE, {"launch_date": ""}) is None


def test_schedule_rule_fires_once_per_scenario_when_its_moment_comes(organization, launch, actions_integration, on_commit, sandbox, api):
    template = PlaybookTemplate.objects.get(scenario_type="product_launch", name="Product launch")
    rule = TriggerRule.objects.create(
        organization=organization,
        name="Launch week",
        template=template,
        source="schedule",
        schedule=SCHEDULE,
        mode="activate",
        integration_bindings={key: str(actions_integration.pk) for key in ("slack", "jira", "google_calendar", "email", "hubspot", "salesforce")},
        cooldown_seconds=0,
    )
    moment = datetime(2030, 3, 13, 8, 0, tzinfo=UTC)
    assert on_commit(trigger_schedules_evaluate, now=moment - timedelta(minutes=1)) == 0
    assert not TriggerFiring.objects.exists()
    assert on_commit(trigger_schedules_evaluate, now=moment + timedelta(minutes=1)) == 1
    firing = TriggerFiring.objects.get(rule=rule)
    assert firing.outcome == FiringOutcome.ACTIVATED and firing.scenario_id == launch.pk and firing.resource_key == f"schedule:scenario:{launch.pk}"
    assert PlaybookRun.objects.filter(playbook__scenario=launch).count() == 1
    assert on_commit(trigger_schedules_evaluate, now=moment + timedelta(minutes=2)) == 0  # once per scenario
    assert TriggerFiring.objects.count() == 1
    # Past the grace (a day), a missed moment is not fired late.
    later = Scenario.objects.create(
        organization=organization, data_model=launch.data_model, scenario_type="product_launch", title="Late", values={"launch_date": "2030-03-10"}
    )
    assert on_commit(trigger_schedules_evaluate, now=moment) == 0
    assert not TriggerFiring.objects.filter(scenario=later).exists()

    bad = api.post(
        "/api/trigger-rules/",
        {
            "name": "x",
            "template_id": str(template.pk),
            "source": "schedule",
            "mode": "activate",
            "schedule": {"date_field": "launch_date", "timezone": "Mars/Olympus"},
        },
        format="json",
    )
    assert bad.status_code == 400 and "Unknown time zone" in bad.json()["error"]["fields"]["schedule"][0]
