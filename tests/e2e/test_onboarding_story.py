"""The seed's whole onboarding story in Debian's Chromium against the vendor sandbox.

The demo command pre-connects the directory, Slack, Calendar and email; the person then discovers the
integrations, connects Jira through OAuth, builds a crisis scenario with stakeholders imported from the
directory and channels from Slack, saves the playbook, activates it and watches the war room — and a Jira
issue transitioned in the sandbox shows up there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core.management import call_command
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from integrations.models import Integration, IntegrationStatus
from playbooks.models import PlaybookRun, Task
from scenarios.models import Scenario
from tests.conftest import wait_for

PASSWORD = "demo-Story-Pass-1"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_onboarding_story_from_marketplace_to_war_room(live_server, browser_page, sandbox, smtp_inbox, settings, monkeypatch):
    settings.BASTION_SANDBOX_URL = sandbox
    settings.BASTION_PUBLIC_URL = live_server.url
    monkeypatch.setenv("BASTION_DEMO_PASSWORD", PASSWORD)
    monkeypatch.setenv("SANDBOX_SMTP_PORT", str(smtp_inbox.port))
    call_command("bastion_demo")
    page = browser_page

    # Sign in.
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # Discover integrations: the demo's tools are connected, Jira is not.
    page.goto(f"{live_server.url}/integrations/")
    expect(page.locator("li.connector[data-connector=okta] .badge").first).to_have_text("Connected")
    expect(page.locator("li.connector[data-connector=slack] .badge").first).to_have_text("Connected")
    jira_card = page.locator("li.connector[data-connector=jira]")
    expect(jira_card.locator(".badge")).to_have_text("Not connected")

    # Connect Jira through the real OAuth redirect (sandbox consent page → Allow).
    jira_card.get_by_role("link", name=re.compile("Connect Jira")).click()
    page.get_by_label(re.compile(r"\(OAuth\)")).check()
    page.click("#connect-continue")
    page.wait_for_url(re.compile(re.escape(f"{sandbox}/jira/") + r".*authorize\?.*state="))
    page.click("#allow")
    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/integrations/[0-9a-f-]+/setup/"))
    expect(page.locator("#webhook-auto")).to_be_visible()  # under OAuth Bastion registers its webhook itself
    page.click("#setup-continue")
    page.wait_for_url(re.compile(r".*/map/$"))
    page.click("#map-continue")
    page.wait_for_url(re.compile(r".*/finish/$"))
    page.click("#test-connection")
    expect(page.locator("#test-result")).to_contain_text("Connection works")
    page.click("#wizard-done")
    expect(page.locator("#integration-status")).to_have_text("Connected")
    jira = Integration.objects.get(connector_key="jira")
    assert jira.status == IntegrationStatus.CONNECTED
    webhook_url = f"{live_server.url}/api/webhooks/{jira.pk}"
    jira_token = jira.credentials.get(credential_type="oauth").data["access_token"]

    # Bastion registered its signed webhook in Jira when the project step was saved, so issue changes flow back.
    # A 3LO token works only through Atlassian's gateway, at the cloudId Bastion resolved after the exchange.
    gateway = f"{sandbox}/jira/ex/jira/{jira.config['cloud_id']}"
    # Under OAuth it is a dynamic webhook (the admin endpoint is out of a 3LO app's reach), listed by the v3 API.
    hooks = requests.get(f"{gateway}/rest/api/3/webhook", headers={"Authorization": f"Bearer {jira_token}"}, timeout=5).json()["values"]
    assert len(hooks) == 1 and hooks[0]["jqlFilter"].startswith("project in (")  # one registration; the flow back is proven below
    assert webhook_url.endswith(f"/api/webhooks/{jira.pk}")

    # Build a crisis scenario: stakeholders from the directory, channels from Slack.
    page.goto(f"{live_server.url}/scenarios/new/crisis_management/")
    expect(page.locator("#scenario-form")).to_have_attribute("data-enhanced", "1")
    page.fill("#id_title", "Payments outage")
    page.fill("#id_summary", "Card payments fail for EU customers.")
    page.select_option("#id_severity", "sev1")
    page.select_option("#id_crisis_type", "service_outage")
    page.fill("#id_incident_commander", "amara")
    page.click("#field-incident_commander .typeahead-option:has-text('Amara Nwosu')")
    stakeholders = page.locator("#field-stakeholders")
    stakeholders.locator("button.import-source[data-connector=okta]").click()
    expect(stakeholders.locator(".import-choices input[type=checkbox]")).to_have_count(20)
    stakeholders.locator("button.import-all").click()
    stakeholders.locator("button.import-selected").click()
    expect(stakeholders.locator("table.stakeholders tbody tr")).to_have_count(20)
    expect(stakeholders.locator(".tool-status")).to_contain_text("Imported 20 from Okta")
    channels = page.locator("#field-communication_channels")
    channels.locator("button.import-source[data-connector=slack]").click()
    choices = channels.locator(".import-choices input[type=checkbox]")
    expect(choices.first).to_be_visible()
    for name in ("incident-response", "exec-team"):
        channels.locator(f".import-choices input[data-label='{name}']").check()
    channels.locator("button.import-selected").click()
    expect(channels.locator(".tool-status")).to_contain_text("Imported 2 from Slack")
    expect(page.locator("#id_communication_channels")).to_have_value(re.compile("incident-response"))
    page.fill("#id_war_room_meeting_at", (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT09:00"))  # always tomorrow
    page.click("#save-scenario")
    try:
        page.wait_for_url(re.compile(r".*/scenarios/[0-9a-f-]+/edit/$"))
    except PlaywrightTimeoutError:
        raise AssertionError(f"Scenario not saved at {page.url}: " + " | ".join(page.locator(".error, .errorlist, [id^=errors-]").all_inner_texts()))
    expect(page.locator(".messages")).to_contain_text("Saved")

    # Make the playbook from the scenario, see what it will do, activate.
    page.goto(f"{live_server.url}/playbooks/")
    scenario = Scenario.objects.get(title="Payments outage")
    assert len(scenario.values["stakeholders"]) == 20
    assert sorted(c["name"] for c in scenario.values["communication_channels"]) == ["exec-team", "incident-response"]
    assert scenario.value_sources["stakeholders"]["items"][0]["source"] == "okta"
    page.select_option("#scenario_id", str(scenario.pk))
    page.get_by_role("button", name="Create playbook").click()
    page.wait_for_url(re.compile(r".*/playbooks/[0-9a-f-]+/$"))
    expect(page.locator("body")).to_contain_text("17 Jira issues")
    page.get_by_role("button", name=re.compile("Activate")).click()
    page.wait_for_url(re.compile(r".*/war-room/.*"))

    # The war room: the channel, the invitations, 17 issues and the event, each linking to the sandbox object.
    run = wait_for(lambda: PlaybookRun.objects.filter(status__in=["succeeded", "partial", "failed"]).first(), timeout=60, message="the activation to finish")
    assert run.status == "succeeded", [(s.step_key, s.status, s.last_error) for s in run.step_runs.exclude(status="succeeded")]
    page.reload()
    issues = Task.objects.filter(run=run, kind="jira_issue")
    assert issues.count() == 17
    assert Task.objects.filter(run=run, kind="channel").count() == 1
    assert Task.objects.filter(run=run, kind="meeting").count() == 1
    for task in [issues.first(), Task.objects.get(run=run, kind="channel"), Task.objects.get(run=run, kind="meeting")]:
        link = page.locator(f"a[href='{task.url}']").first
        expect(link).to_be_visible()
        assert task.url.startswith(sandbox)
    invites = run.step_runs.filter(step_key="invite_stakeholders", status="succeeded")
    assert invites.count() == 20
    expect(page.locator("body")).to_contain_text("Invite")

    # A Jira issue moves to Done in the sandbox; the signed webhook flows back and the war room shows it.
    issue = issues.order_by("external_key").first()
    key = issue.external_key or issue.external_id
    answer = requests.post(f"{sandbox}/jira/_sandbox/transition", json={"issue_key": key, "status": "Done"}, timeout=5).json()
    assert answer["webhooks"] == 1
    wait_for(
        lambda: Task.objects.get(pk=issue.pk).status.lower() in ("done", "closed", "resolved"), timeout=30, message="the Jira transition to reach the task"
    )
    expect(page.locator(f"tr[data-task='{issue.pk}']")).to_contain_text(re.compile("done", re.IGNORECASE), timeout=15000)
