"""One template, two stacks: the shipped crisis template names "the collaboration channel" and "the meeting", and each
organization's connected tools decide who plays them. Activated once on Slack + Google Calendar and once on Microsoft Teams
+ Outlook (real connectors, real HTTP against the sandbox), both war rooms reach all-done with the same words."""

from __future__ import annotations

from typing import Any

from integrations.connectors.microsoft365 import MANIFEST
from integrations.models import CredentialType, Integration
from integrations.services import integration_connect
from playbooks.models import RunStatus, StepStatus, Task
from playbooks.selectors import playbook_run_view
from playbooks.services import playbook_activate, playbook_create, playbook_preview
from tests.integrations.connectors.microsoft365.test_connection import TEAM_NAME, TENANT_ID, sign_in
from tests.playbooks.conftest import JIRA_ADMIN, actions_target, sandbox_token

DONE = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)


def _connected(**spec: Any) -> Integration:
    integration = integration_connect(**spec)
    integration.refresh_from_db()
    assert integration.status == "connected", (integration.connector_key, integration.last_error)
    return integration


def _jira(organization, sandbox: str) -> Integration:
    credentials = {"email": JIRA_ADMIN, "api_token": sandbox_token(sandbox, "jira", subject=JIRA_ADMIN)}
    return _connected(organization=organization, connector_key="jira", credentials=credentials, base_url=f"{sandbox}/jira")


def _slack_and_google(organization, sandbox: str) -> list[Integration]:
    from integrations.connectors import slack as slack_module

    scopes = list(slack_module.SCOPE_PURPOSES) + list(slack_module.OPTIONAL_SCOPE_PURPOSES)
    slack = _connected(
        organization=organization,
        connector_key="slack",
        credentials={"access_token": sandbox_token(sandbox, "slack", scopes=scopes)},
        credential_type=CredentialType.OAUTH,
        base_url=f"{sandbox}/slack/api",
    )
    google = _connected(
        organization=organization,
        connector_key="google_calendar",
        credentials={"access_token": "sandbox-google-calendar-token", "scope": "https://www.googleapis.com/auth/calendar"},
        credential_type=CredentialType.OAUTH,
        base_url=f"{sandbox}/google_calendar/calendar/v3/",
    )
    return [slack, google]


def _microsoft(organization, sandbox: str) -> Integration:
    """Microsoft 365 signed in as a delegate (posting to a channel needs one), on the incident response team."""
    integration = _connected(
        organization=organization,
        connector_key="microsoft365",
        credentials=sign_in(sandbox, MANIFEST.oauth.scopes),  # everything the connect page asks: channels, meetings, documents
        credential_type=CredentialType.OAUTH,
        base_url=f"{sandbox}/microsoft365",
        config={"tenant_id": TENANT_ID},
    )
    from integrations.services import build_connector

    connector = build_connector(integration)
    team = next(value for value, label in connector.config_choices("team_id") if label == TEAM_NAME)
    Integration.objects.filter(pk=integration.pk).update(config={**integration.config, "team_id": team})
    integration.refresh_from_db()
    return integration


def _legal_template(integration: Integration) -> dict[str, Any]:
    """The seeded breach notification template, as the form's file picker stores a chosen document."""
    from integrations.services import build_connector

    connector = build_connector(integration)
    # Browse as a person does in the picker: the Legal site, its document library, then search it for the template.
    legal = next(item for item in connector.browse_documents() if item.name == "Legal")
    library = connector.browse_documents(legal.id)[0]
    item = next(item for item in connector.browse_documents(library.id, query="Breach notification") if not item.is_folder)
    return {"integration_id": str(integration.pk), "id": item.id, "name": item.name, "path": item.path, "url": item.url}


def _activate_all_done(playbook, owner, on_commit) -> dict[str, Any]:
    run, _ = on_commit(playbook_activate, playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    statuses = set(run.step_runs.values_list("status", flat=True))
    assert statuses <= set(DONE), statuses
    return playbook_run_view(run=run)


def test_the_crisis_template_runs_unchanged_on_slack_google_and_on_teams_outlook(
    organization, other_organization, make_user, make_scenario, crisis_template, sandbox, on_commit, owner
):
    # Organization 1 lives in Slack and Google; organization 2 in Microsoft 365. Neither playbook binds the roles.
    google_stack = [*_slack_and_google(organization, sandbox), _jira(organization, sandbox)]
    microsoft_stack = [_microsoft(other_organization, sandbox), _jira(other_organization, sandbox)]
    other_owner = make_user("owner", other_organization, username="globex-owner")
    views = {}
    for label, org, person, stack in (("google", organization, owner, google_stack), ("microsoft", other_organization, other_owner, microsoft_stack)):
        email = actions_target(org, sandbox)
        # Only the Microsoft organization has a documents tool: its scenario names the legal template to copy.
        documents = {"legal_template_file": _legal_template(stack[0])} if label == "microsoft" else {}
        playbook = playbook_create(
            organization=org,
            scenario=make_scenario(organization_=org, **documents),
            template=crisis_template,
            integration_bindings={"email": str(email.pk)},
            actor=person,
        )
        previews = {p.key: p for p in playbook_preview(playbook=playbook)}
        expected = {"google": ("slack", "google_calendar"), "microsoft": ("microsoft365", "microsoft365")}[label]
        assert (previews["create_channel"].connector_key, previews["book_war_room"].connector_key) == expected
        assert not previews["create_channel"].is_blocked and not previews["book_war_room"].is_blocked
        views[label] = _activate_all_done(playbook, person, on_commit)
        run_steps = {s.step_key: s for s in playbook.runs.get().step_runs.filter(item_index=0)}
        assert run_steps["create_channel"].connector_key == expected[0] and run_steps["book_war_room"].connector_key == expected[1]
        assert {s.integration_id for s in run_steps.values() if s.step_key in ("create_channel", "post_briefing", "book_war_room")} <= {i.pk for i in stack}

    for label, view in views.items():
        kinds = {}
        for task in view["tasks"]:
            kinds[task["kind"]] = kinds.get(task["kind"], 0) + 1
        # The same war room on both stacks: one channel, one meeting, the 17 Jira issues (and the copied legal template
        # where the organization has a documents tool and the scenario names one).
        expected_kinds = {"channel": 1, "meeting": 1, "jira_issue": 17, **({"record": 1} if label == "microsoft" else {})}
        assert kinds == expected_kinds, (label, kinds)
        meeting = next(t for t in view["tasks"] if t["kind"] == "meeting")
        assert len(meeting["details"]["attendees"]) >= 20, label
        assert view["counts"].get(StepStatus.FAILED, 0) == 0
    teams_channel = Task.objects.get(run__organization=other_organization, kind="channel")
    slack_channel = Task.objects.get(run__organization=organization, kind="channel")
    assert teams_channel.title.lstrip("#") == slack_channel.title.lstrip("#")  # the same channel name on both
    assert teams_channel.url.startswith("http") and slack_channel.url.startswith("http")
    copied = Task.objects.get(run__organization=other_organization, kind="record")
    assert copied.title.startswith("Breach notification template") and copied.url.startswith("http")
    skipped = Task.objects.filter(run__organization=organization, kind="record")
    assert not skipped.exists()  # no documents tool and no template named: the optional step was skipped
