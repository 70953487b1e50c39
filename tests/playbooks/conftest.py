"""Playbook fixtures: a crisis scenario with the shared 20 people, the sandbox action target bound for every connector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from integrations.models import CredentialType
from integrations.services import integration_connect
from playbooks.models import Playbook, PlaybookTemplate
from playbooks.services import playbook_create
from sandbox.vendors._people import people
from scenarios.models import Scenario, ScenarioDataModel

CRISIS_CONNECTORS = ("slack", "jira", "google_calendar", "email")


def stakeholders(count: int = 20) -> list[dict[str, Any]]:
    return [{"person_id": f"p{p['index']}", "name": p["name"], "email": p["email"], "role": p["title"], "source": "directory"} for p in people()[:count]]


def crisis_values(**overrides: Any) -> dict[str, Any]:
    team = stakeholders()
    values = {
        "title": "DB outage",
        "crisis_type": "outage",
        "severity": "sev2",
        "incident_commander": {"person_id": team[19]["person_id"], "name": team[19]["name"], "email": team[19]["email"]},
        "stakeholders": team,
        "communication_channels": [],
        "war_room_meeting_at": "2099-11-25T15:00:00+00:00",  # far ahead: an ended meeting is no longer polled
        "jira_project_key": "OPS",
        "summary": "Primary database cluster is down in eu-west.",
    }
    values.update(overrides)
    return values


@pytest.fixture
def make_scenario(organization) -> Callable[..., Scenario]:
    def make(scenario_type: str = "crisis_management", organization_=None, **values: Any) -> Scenario:
        data_model = ScenarioDataModel.objects.filter(scenario_type=scenario_type).order_by("-version").first()
        merged = crisis_values(**values) if scenario_type == "crisis_management" else values
        return Scenario.objects.create(
            organization=organization_ or organization,
            data_model=data_model,
            scenario_type=scenario_type,
            title=merged.get("title", "Scenario"),
            values=merged,
        )

    return make


@pytest.fixture
def actions_integration(organization, sandbox):
    """The sandbox's generic action target, connected over real HTTP with its demo token."""
    return actions_target(organization, sandbox)


def actions_target(organization, sandbox: str):
    """Connect the sandbox's generic action target for an organization."""
    from sandbox.vendors.sandbox_actions import DEMO_TOKEN

    return integration_connect(
        organization=organization,
        connector_key="sandbox_actions",
        credentials={"api_key": DEMO_TOKEN},
        credential_type=CredentialType.API_KEY,
        base_url=f"{sandbox}/sandbox_actions",
    )


@pytest.fixture
def crisis_template() -> PlaybookTemplate:
    return PlaybookTemplate.objects.get(scenario_type="crisis_management", name="Crisis response")


@pytest.fixture
def crisis_playbook(organization, make_scenario, crisis_template, actions_integration, owner) -> Playbook:
    """The shipped crisis template with Slack, Jira, Calendar and e-mail all bound to the sandbox action target."""
    scenario = make_scenario()
    return playbook_create(
        organization=organization,
        scenario=scenario,
        template=crisis_template,
        integration_bindings={key: str(actions_integration.pk) for key in CRISIS_CONNECTORS},
        actor=owner,
    )


def created(sandbox: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Objects the sandbox action target created (the sandbox's own inspector list)."""
    params = {"vendor": "sandbox_actions", **({"kind": kind} if kind else {})}
    return requests.get(f"{sandbox}/_control/created", params=params, timeout=5).json()


def vendor_requests(sandbox: str, vendor: str = "sandbox_actions") -> list[dict[str, Any]]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": vendor}, timeout=5).json()


def set_faults(sandbox: str, vendor: str = "sandbox_actions", **knobs: Any) -> None:
    requests.put(f"{sandbox}/_control/faults/{vendor}", json=knobs, timeout=5).raise_for_status()


def set_rules(sandbox: str, rules: list[dict[str, Any]]) -> None:
    requests.put(f"{sandbox}/sandbox_actions/_control/rules", json=rules, timeout=5).raise_for_status()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (task dispatch) inside the test transaction, nested ones included."""

    def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            result = function(*args, **kwargs)
        return result

    return run


# ---- the real vendor connectors (Slack, Jira, Google Calendar, PagerDuty) against their sandbox stand-ins ----------

JIRA_ADMIN = "jira.admin@acme.example"


def sandbox_token(sandbox: str, vendor: str, **extra: Any) -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": vendor, **extra}, timeout=5).json()["token"]


@pytest.fixture
def vendor_integrations(organization, sandbox) -> dict[str, Any]:
    """Slack, Jira, Google Calendar and PagerDuty connected to the sandbox the way the demo connects them."""
    from integrations.connectors import slack as slack_module

    slack_scopes = list(slack_module.SCOPE_PURPOSES) + list(slack_module.OPTIONAL_SCOPE_PURPOSES)
    services = requests.get(
        f"{sandbox}/pagerduty/services",
        headers={"Authorization": "Token token=sandbox-pagerduty-token", "Accept": "application/vnd.pagerduty+json;version=2"},
        timeout=5,
    ).json()["services"]
    specs = {
        "slack": {
            "credentials": {"access_token": sandbox_token(sandbox, "slack", scopes=slack_scopes)},
            "credential_type": CredentialType.OAUTH,
            "base_url": f"{sandbox}/slack/api",
        },
        "jira": {"credentials": {"email": JIRA_ADMIN, "api_token": sandbox_token(sandbox, "jira", subject=JIRA_ADMIN)}, "base_url": f"{sandbox}/jira"},
        "google_calendar": {
            "credentials": {"access_token": "sandbox-google-calendar-token", "scope": "https://www.googleapis.com/auth/calendar"},
            "credential_type": CredentialType.OAUTH,
            "base_url": f"{sandbox}/google_calendar/calendar/v3/",
        },
        "pagerduty": {
            "credentials": {"api_key": "sandbox-pagerduty-token"},
            "config": {"from_email": "amara.nwosu@acme.example", "service_id": services[0]["id"]},
            "base_url": f"{sandbox}/pagerduty",
        },
    }
    connected = {key: integration_connect(organization=organization, connector_key=key, **spec) for key, spec in specs.items()}
    for integration in connected.values():
        integration.refresh_from_db()
        assert integration.status == "connected", (integration.connector_key, integration.last_error)
    return connected


@pytest.fixture
def vendor_playbook(organization, make_scenario, crisis_template, vendor_integrations, actions_integration, owner) -> Playbook:
    """The shipped crisis template acting in the real connectors' sandboxes (e-mail goes to the generic action target)."""
    bindings = {key: str(integration.pk) for key, integration in vendor_integrations.items()}
    bindings["email"] = str(actions_integration.pk)
    return playbook_create(organization=organization, scenario=make_scenario(), template=crisis_template, integration_bindings=bindings, actor=owner)
