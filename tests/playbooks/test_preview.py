"""Preview: exactly what will happen where, and which steps cannot run."""

from __future__ import annotations

from integrations.models import Integration, IntegrationStatus
from playbooks.services import playbook_create, playbook_preview


def test_preview_says_what_happens_where(crisis_playbook, api):
    previews = {p.key: p for p in playbook_preview(playbook=crisis_playbook)}
    date = crisis_playbook.created_at.date().isoformat()
    assert previews["create_channel"].description == f"creates channel #crisis-{date}-db-outage"
    assert previews["invite_stakeholders"].description == f"invites 20 people to #crisis-{date}-db-outage"
    assert previews["create_tasks"].description == "creates 17 Jira issues in project OPS"
    assert previews["book_war_room"].description == "books a 60-minute meeting with 20 attendees"
    assert previews["notify_stakeholders"].description == "sends 20 email notifications"
    assert previews["brief_ciso"].will_run is False  # only for security breaches
    assert previews["status_page"].will_run is False  # sev2: no public status page
    assert previews["page_on_call"].is_blocked and not previews["page_on_call"].is_required
    assert previews["create_tasks"].sample_payload["summary"] == "Confirm incident scope and severity: DB outage"
    assert previews["create_tasks"].sample_payload["assignee_email"] == "amara.nwosu@acme.example"  # the incident commander owns it

    body = api.get(f"/api/playbooks/{crisis_playbook.pk}/preview/").json()
    assert body["summary"][:2] == [f"creates channel #crisis-{date}-db-outage", f"invites 20 people to #crisis-{date}-db-outage"]
    assert "creates 17 Jira issues in project OPS" in body["summary"]
    assert [b["key"] for b in body["blocked"]] == ["page_on_call"]
    assert body["blocked"][0]["blocked_reason"] == "No PagerDuty integration is connected."
    assert body["can_activate"] is True


def test_missing_and_unhealthy_integrations_block_steps(organization, make_scenario, crisis_template, actions_integration, owner, client):
    playbook = playbook_create(
        organization=organization, scenario=make_scenario(), template=crisis_template, integration_bindings={"slack": str(actions_integration.pk)}, actor=owner
    )
    Integration.objects.filter(pk=actions_integration.pk).update(status=IntegrationStatus.AUTH_FAILED, last_error="token revoked")
    blocked = {p.key: p.blocked_reason for p in playbook_preview(playbook=playbook) if p.is_blocked}
    assert blocked["create_channel"] == "Sandbox actions is authentication failed: token revoked."
    assert blocked["create_tasks"] == "No Jira integration is connected."
    assert blocked["book_war_room"] == "Nothing is connected to host the meeting: connect Google Calendar or Microsoft 365."
    assert blocked["notify_stakeholders"] == "No Email (SMTP) integration is connected."
    client.force_login(owner)
    page = client.get(f"/playbooks/{playbook.pk}/")
    assert page.status_code == 200
    assert "No Jira integration is connected." in page.content.decode()
