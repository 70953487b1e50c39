"""The dynamic scenario form in Debian's Chromium: import stakeholders (directory + CSV), Security Breach fields appear,
Legal missing is reported while typing, fixed, saved."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from scenarios.models import Scenario

LEGAL_MESSAGE = "Legal must be on the crisis team: add someone from Legal (role Legal) to the crisis team."


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_build_a_crisis_scenario_in_the_browser(live_server, browser_page, make_user, organization, directory, tmp_path):
    make_user(Role.EDITOR, organization, username="casey")
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "casey")
    page.fill("#id_password", "pw-Secret-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/scenarios/")
    page.click("text=New scenario")
    page.click("a[data-scenario-type=crisis_management]")
    page.wait_for_url(f"{live_server.url}/scenarios/new/crisis_management/")
    expect(page.locator("#scenario-form")).to_have_attribute("data-enhanced", "1")

    # Conditional section starts hidden.
    expect(page.locator("#field-ciso")).to_be_hidden()
    page.fill("#id_title", "Customer data exposure")
    page.fill("#id_summary", "A database snapshot was exposed.")
    page.select_option("#id_severity", "sev1")

    # Incident commander through the typeahead.
    page.fill("#id_incident_commander", "amara")
    page.click("#field-incident_commander .typeahead-option:has-text('Amara Nwosu')")
    expect(page.locator("#id_incident_commander")).to_have_value("amara.nwosu@acme.example")

    # Import stakeholders from Active Directory: choose two people.
    stakeholders = page.locator("#field-stakeholders")
    stakeholders.locator("button.import-source[data-connector=ldap]").click()
    choices = stakeholders.locator(".import-choices input[type=checkbox]")
    expect(choices).to_have_count(6)
    expect(stakeholders.locator(".import-choices input:checked")).to_have_count(0)  # nothing ticked until chosen
    for name in ("Ava Chen", "Sofia Garcia"):
        stakeholders.locator(f".import-choices input[data-label='{name}']").check()
    stakeholders.locator("button.import-selected").click()
    expect(stakeholders.locator("table.stakeholders tbody tr")).to_have_count(2)
    expect(stakeholders.locator("tr[data-email='ava.chen@acme.example'] td").nth(3)).to_have_attribute("data-source", "ldap")

    # Import more from a CSV file; the bad row is reported with its line number.
    csv_file = tmp_path / "press.csv"
    csv_file.write_text("name,email,role\nDana Scully,dana.scully@press.example,communications\nBroken Row,not-an-email,member\n")
    stakeholders.locator("input.import-csv").set_input_files(str(csv_file))
    expect(stakeholders.locator("table.stakeholders tbody tr")).to_have_count(3)
    expect(stakeholders.locator(".csv-errors li")).to_have_text(["Line 3: 'not-an-email' is not an email address."])

    # Security Breach shows the CISO fields.
    page.select_option("#id_crisis_type", "security_breach")
    expect(page.locator("#field-ciso")).to_be_visible()
    expect(page.locator("#field-breach_scope")).to_be_visible()
    page.fill("#id_ciso", "marcus")
    page.click("#field-ciso .typeahead-option:has-text('Marcus Okafor')")
    page.fill("#id_breach_scope", "Customer table snapshot, EU region")

    # Told that Legal is missing, while editing.
    expect(page.locator("#errors-stakeholders")).to_have_text(LEGAL_MESSAGE)

    # Add Legal through the typeahead; the message goes away.
    page.fill("#field-stakeholders input.typeahead", "general counsel")
    page.click("#field-stakeholders .typeahead-option:has-text('Priya Raman')")
    expect(stakeholders.locator("tr[data-email='priya.raman@acme.example'] select.role-select")).to_have_value("legal")
    expect(page.locator("#errors-stakeholders")).to_have_text("")

    page.click("#save-scenario")
    page.wait_for_url(f"{live_server.url}/scenarios/*/edit/")
    expect(page.locator(".messages")).to_contain_text("Saved “Customer data exposure”.")

    scenario = Scenario.objects.get()
    assert scenario.values["crisis_type"] == "security_breach"
    assert scenario.values["ciso"]["person_id"] == str(directory["marcus"].pk)
    emails = [s["email"] for s in scenario.values["stakeholders"]]
    assert emails == ["ava.chen@acme.example", "sofia.garcia@acme.example", "dana.scully@press.example", "priya.raman@acme.example"]
    assert next(s for s in scenario.values["stakeholders"] if s["email"] == "priya.raman@acme.example")["role"] == "legal"
    items = {i["match"]: i for i in scenario.value_sources["stakeholders"]["items"]}
    assert items["ava.chen@acme.example"]["source"] == "ldap" and items["ava.chen@acme.example"]["entity"] == "users"
    assert items["dana.scully@press.example"] == {**items["dana.scully@press.example"], "source": "csv", "line": 2, "filename": "press.csv"}
    assert "priya.raman@acme.example" not in items  # added by hand
    assert scenario.value_sources["stakeholders"]["origin"] == "mixed"
