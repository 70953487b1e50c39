"""The connection wizard in Debian's Chromium: marketplace → real OAuth redirect (sandbox consent → Allow) → project →
discovered fields mapped → connection tested → done."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from integrations.models import CredentialType, Integration, IntegrationStatus


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_connect_the_demo_workspace_through_the_wizard(live_server, browser_page, make_user, organization, sandbox, settings):
    settings.BASTION_SANDBOX_URL = sandbox  # development: the wizard points new integrations at the sandbox
    make_user(Role.ADMIN, organization, username="morgan")
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "morgan")
    page.fill("#id_password", "pw-Secret-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # Marketplace: the demo connector is not connected yet.
    page.goto(f"{live_server.url}/integrations/")
    card = page.locator("li.connector[data-connector=demo]")
    expect(card.locator(".badge")).to_have_text("Not connected")
    card.get_by_role("link", name="Connect Demo Workspace").click()

    # Step 1: the scopes and why each is needed are shown before consent.
    expect(page.get_by_role("heading", name="Permissions Bastion will ask for")).to_be_visible()
    expect(page.locator("table.scopes")).to_contain_text("Read people to pre-fill stakeholders in scenario forms.")
    expect(page.get_by_label("API base URL")).to_have_value(f"{sandbox}/demo")
    page.get_by_label("Sign in with Demo Workspace (OAuth)").check()
    page.click("#connect-continue")

    # The vendor's consent page (the sandbox's OAuth server), then back through the callback.
    page.wait_for_url(re.compile(re.escape(f"{sandbox}/demo/oauth/authorize") + r"\?.*code_challenge_method=S256"))
    expect(page.get_by_role("heading", name="Demo sandbox")).to_be_visible()
    page.click("#allow")
    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/integrations/[0-9a-f-]+/setup/"))
    expect(page.locator(".messages")).to_contain_text("Connected to Demo Workspace as sandbox-user @ Demo Workspace.")

    # Step 2: choose the project from the live list; the webhook secret is shown once.
    expect(page.locator("#webhook-secret")).to_contain_text("It is shown only once")
    page.get_by_label("Project").select_option("OPS")
    page.click("#setup-continue")

    # Step 3: discovered fields with suggestions preselected; map one more by hand.
    page.wait_for_url(re.compile(r".*/map/$"))
    expect(page.locator("#discovered-people")).to_contain_text("First name")  # the vendor's fields by their labels
    expect(page.locator("#discovered-people")).to_contain_text("Job title")
    expect(page.locator("#map_people_given_name")).to_have_value("first_name")
    expect(page.locator("#map_people_title")).to_have_value("job_title")
    page.locator("section:has(#map_people_username) details.more-fields > summary").click()  # fields nothing matched are folded
    page.locator("#map_people_username").select_option("email")
    page.click("#map-continue")

    # Step 4: test; step 5: done.
    page.wait_for_url(re.compile(r".*/finish/$"))
    page.click("#test-connection")
    expect(page.locator("#test-result")).to_contain_text("Connection works: signed in as sandbox-user @ Demo Workspace")
    expect(page.locator("li[aria-current=step]")).to_have_text("5. Done")
    page.click("#wizard-done")
    expect(page.locator("#integration-status")).to_have_text("Connected")

    page.goto(f"{live_server.url}/integrations/")
    expect(page.locator("li.connector[data-connector=demo] .badge").first).to_have_text("Connected")

    integration = Integration.objects.get()
    assert integration.status == IntegrationStatus.CONNECTED and integration.config["project"] == "OPS"
    mapping = integration.data_sources.get(entity_type="people").field_mapping
    assert mapping["given_name"] == "first_name" and mapping["title"] == "job_title" and mapping["username"] == "email"
    assert integration.credentials.get(credential_type=CredentialType.OAUTH).data["refresh_token"].startswith("sbx-rt-demo-")
