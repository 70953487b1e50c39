"""Connecting Microsoft 365 in Debian's Chromium: the catalog card, the Entra consent page of the sandbox (authorization code
with PKCE), the setup wizard, and a connection test that names the signed-in person; screenshots at 1440 and 390 px."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from integrations.models import CredentialType, Integration, IntegrationStatus

PASSWORD = "demo-M365-Pass-1"
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_connect_microsoft365_through_the_entra_consent_page(live_server, browser_page, sandbox, smtp_inbox, settings, monkeypatch):
    settings.BASTION_SANDBOX_URL = sandbox
    settings.BASTION_PUBLIC_URL = live_server.url
    monkeypatch.setenv("BASTION_DEMO_PASSWORD", PASSWORD)
    monkeypatch.setenv("SANDBOX_SMTP_PORT", str(smtp_inbox.port))
    call_command("bastion_demo")
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/integrations/")
    card = page.locator("li.connector[data-connector=microsoft365]")
    expect(card.locator(".badge")).to_have_text("Not connected")
    card.get_by_role("link", name=re.compile("Connect Microsoft 365")).click()
    page.get_by_label(re.compile(r"\(OAuth\)")).check()
    # The scopes each feature needs are shown before consent.
    expect(page.locator("body")).to_contain_text("ChannelMessage.Send")
    page.click("#connect-continue")

    # The sandbox's Entra sign-in: the permissions requested, then Accept.
    page.wait_for_url(re.compile(re.escape(f"{sandbox}/microsoft365/") + r".*oauth2/v2\.0/authorize\?.*code_challenge="))
    expect(page.locator("body")).to_contain_text("Permissions requested")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENS / "microsoft365-consent-390.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.click("#allow")

    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/integrations/[0-9a-f-]+/setup/"))
    integration = Integration.objects.get(connector_key="microsoft365")
    assert integration.credentials.filter(credential_type=CredentialType.OAUTH).exists()
    assert integration.config.get("tenant_id")  # learnt from the grant (post_authorize)
    # The team incident channels go into is chosen from the connection's own teams.
    page.locator("select[name=config_team_id]").select_option(label="Bastion Incident Response")
    page.screenshot(path=str(SCREENS / "microsoft365-setup-1440.png"), full_page=True)
    page.click("#setup-continue")
    page.wait_for_url(re.compile(r".*/(map|finish)/$"))
    integration.refresh_from_db()
    assert integration.config.get("team_id"), integration.config
    if page.url.endswith("/map/"):
        page.click("#map-continue")
        page.wait_for_url(re.compile(r".*/finish/$"))
    page.click("#test-connection")
    expect(page.locator("#test-result")).to_contain_text("Connection works")
    expect(page.locator("#test-result")).to_contain_text("amara.nwosu@acme.example")
    page.click("#wizard-done")
    expect(page.locator("#integration-status")).to_have_text("Connected")
    page.screenshot(path=str(SCREENS / "microsoft365-connected-1440.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow}px of horizontal overflow at 390 px"
    page.screenshot(path=str(SCREENS / "microsoft365-connected-390.png"), full_page=True)
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED
