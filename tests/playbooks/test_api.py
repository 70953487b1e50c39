"""Playbook API and pages: tenancy, roles (editors activate, viewers read), the run's war-room state."""

from __future__ import annotations

import pytest

from accounts.models import Role
from playbooks.models import Playbook, PlaybookRun, RunStatus
from tests.playbooks.conftest import CRISIS_CONNECTORS, created


@pytest.fixture
def as_role(users_by_role, api_for):
    return lambda role: api_for(users_by_role[role])


def test_create_activate_and_read_the_war_room_over_the_api(as_role, make_scenario, actions_integration, sandbox, django_capture_on_commit_callbacks):
    editor = as_role(Role.EDITOR)
    scenario = make_scenario()
    response = editor.post(
        "/api/playbooks/", {"scenario_id": str(scenario.pk), "integration_bindings": {k: str(actions_integration.pk) for k in CRISIS_CONNECTORS}}, format="json"
    )
    assert response.status_code == 201, response.json()
    playbook_id = response.json()["id"]
    assert response.json()["template_name"] == "Crisis response"

    with django_capture_on_commit_callbacks(execute=True):
        activated = editor.post(f"/api/playbooks/{playbook_id}/activate/")
    assert activated.status_code == 202
    run_id = activated.json()["id"]
    again = editor.post(f"/api/playbooks/{playbook_id}/activate/")
    assert again.status_code == 200 and again.json()["id"] == run_id

    run = as_role(Role.VIEWER).get(f"/api/playbook-runs/{run_id}/").json()
    assert run["status"] == RunStatus.SUCCEEDED and run["is_live"] is False
    assert len([t for t in run["tasks"] if t["kind"] == "jira_issue"]) == 17
    assert all(t["url"].startswith(sandbox) for t in run["tasks"])
    assert [s["key"] for s in run["steps"]][:2] == ["create_channel", "invite_stakeholders"]
    assert run["time_saved"]["baseline_minutes"] == 120 and run["time_saved"]["saved_percent"] > 90
    # Only the optional PagerDuty page was skipped (no PagerDuty connected): shown, but the run succeeded.
    assert [(a["kind"], a["step_key"]) for a in run["attention"]] == [("step_skipped", "page_on_call")]
    assert run["timeline"][0]["message"].startswith("Activated by editor-user")
    assert len(created(sandbox, "issue")) == 17


def test_viewers_read_but_cannot_act(as_role, crisis_playbook):
    viewer = as_role(Role.VIEWER)
    assert viewer.get("/api/playbooks/").json()["count"] == 1
    assert viewer.get(f"/api/playbooks/{crisis_playbook.pk}/preview/").status_code == 200
    assert viewer.post(f"/api/playbooks/{crisis_playbook.pk}/activate/").status_code == 403
    assert viewer.post("/api/playbooks/", {"scenario_id": str(crisis_playbook.scenario_id)}, format="json").status_code == 403
    assert not PlaybookRun.objects.exists()


def test_other_organizations_see_nothing(outsider, api_for, crisis_playbook, make_scenario, other_organization):
    stranger = api_for(outsider)
    assert stranger.get("/api/playbooks/").json()["count"] == 0
    assert stranger.get(f"/api/playbooks/{crisis_playbook.pk}/").status_code == 404
    assert stranger.get(f"/api/playbooks/{crisis_playbook.pk}/preview/").status_code == 404
    assert stranger.post(f"/api/playbooks/{crisis_playbook.pk}/activate/").status_code == 404
    # A scenario of another organization cannot be used, nor can another organization's integration be bound.
    response = stranger.post("/api/playbooks/", {"scenario_id": str(crisis_playbook.scenario_id)}, format="json")
    assert response.status_code == 400 and response.json()["error"]["fields"]["scenario_id"] == ["No such scenario."]
    theirs = make_scenario(organization_=other_organization)
    bound = {"slack": next(iter(crisis_playbook.integration_bindings.values()))}
    response = stranger.post("/api/playbooks/", {"scenario_id": str(theirs.pk), "integration_bindings": bound}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_integration"
    assert Playbook.objects.filter(organization=other_organization).count() == 0


def test_run_actions_need_editors_and_same_organization(as_role, outsider, api_for, crisis_playbook, owner, sandbox, django_capture_on_commit_callbacks):
    from tests.playbooks.conftest import set_rules

    set_rules(sandbox, [{"kind": "event", "status": 400, "message": "No room", "times": 1}])
    editor = as_role(Role.EDITOR)
    with django_capture_on_commit_callbacks(execute=True):
        run_id = editor.post(f"/api/playbooks/{crisis_playbook.pk}/activate/").json()["id"]
    run = editor.get(f"/api/playbook-runs/{run_id}/").json()
    assert run["status"] == "partial"
    assert run["attention"][0]["kind"] == "step_failed" and "No room" in run["attention"][0]["message"]
    assert as_role(Role.VIEWER).post(f"/api/playbook-runs/{run_id}/retry-failed/").status_code == 403
    assert api_for(outsider).post(f"/api/playbook-runs/{run_id}/retry-failed/").status_code == 404
    assert editor.post(f"/api/playbook-runs/{run_id}/resume/", {"force": True}, format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        retried = editor.post(f"/api/playbook-runs/{run_id}/retry-failed/")
    assert retried.status_code == 202
    assert editor.get(f"/api/playbook-runs/{run_id}/").json()["status"] == "succeeded"
    cancel = editor.post(f"/api/playbook-runs/{run_id}/cancel/")
    assert cancel.status_code == 409 and cancel.json()["error"]["code"] == "run_finished"


def test_pages_render_and_activate_button_works(client, users_by_role, crisis_playbook, django_capture_on_commit_callbacks):
    client.force_login(users_by_role[Role.EDITOR])
    listing = client.get("/playbooks/")
    assert listing.status_code == 200 and crisis_playbook.name in listing.content.decode()
    detail = client.get(f"/playbooks/{crisis_playbook.pk}/").content.decode()
    assert "creates 17 Jira issues in project OPS" in detail and 'id="activate"' in detail
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/playbooks/{crisis_playbook.pk}/activate/")
    assert response.status_code == 302 and "/war-room/" in response["Location"]
    room = client.get(response["Location"]).content.decode()
    assert "Confirm incident scope and severity: DB outage" in room
    assert "js/war_room.js" in room and 'data-run-url="/api/playbook-runs/' in room
    assert "minutes</strong> saved against 120 minutes" in room
    client.force_login(users_by_role[Role.VIEWER])
    assert client.post(f"/playbooks/{crisis_playbook.pk}/activate/").status_code == 403
    assert 'id="activate"' not in client.get(f"/playbooks/{crisis_playbook.pk}/").content.decode()


def test_playbook_page_offers_no_second_activation_while_its_run_is_live(client, users_by_role, crisis_playbook, django_capture_on_commit_callbacks):
    from playbooks.models import PlaybookRun
    from playbooks.services import playbook_run_cancel

    client.force_login(users_by_role[Role.EDITOR])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/playbooks/{crisis_playbook.pk}/activate/")
    run = PlaybookRun.objects.get(playbook=crisis_playbook)
    assert run.status == "succeeded"
    live = client.get(f"/playbooks/{crisis_playbook.pk}/").content.decode()
    assert 'id="activate"' not in live and 'id="run-open-note"' in live and "Cancel and undo" in live

    with django_capture_on_commit_callbacks(execute=True):
        playbook_run_cancel(run=run, undo=True, actor=users_by_role[Role.EDITOR])
    ended = client.get(f"/playbooks/{crisis_playbook.pk}/").content.decode()
    assert 'id="activate"' in ended and "Activate again" in ended and 'id="run-open-note"' not in ended
