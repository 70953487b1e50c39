"""The document picker in Debian's Chromium at phone width (390 px): browse the Deals library, choose the Falcon model, fill the
M&A fields from it; the values appear with the workbook and range they came from."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from tests.scenarios.test_document_import import connect_documents, deal


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_choose_the_model_and_fill_the_deal_fields_on_a_phone(live_server, browser_page, make_user, organization, sandbox):
    make_user(Role.EDITOR, organization, username="casey")
    connect_documents(organization, sandbox)
    scenario = deal(organization)
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "casey")
    page.fill("#id_password", "pw-Secret-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/scenarios/{scenario.pk}/edit/")
    picker = page.locator("#field-financial_model")
    expect(picker.locator(".document-chosen")).to_have_text("No document chosen.")
    picker.locator("button.doc-browse").click()
    picker.locator(".doc-list button", has_text="Deals").click()
    picker.locator(".doc-list button", has_text="Documents").click()
    expect(picker.locator(".doc-up")).to_be_visible()
    picker.locator(".doc-list button", has_text="Project Falcon model.xlsx").click()
    expect(picker.locator(".document-chosen a")).to_have_text("Project Falcon model.xlsx")
    expect(picker.locator(".doc-panel")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows the phone's width

    picker.locator("button.doc-import").click()
    page.wait_for_load_state("load")
    expect(page.locator("input[name=deal_value__amount]")).to_have_value("1250000000")
    expect(page.locator("#id_close_date")).not_to_have_value("")
    expect(page.locator("#field-deal_value .origin")).to_have_text("Imported from Project Falcon model.xlsx (DealValue)")
    expect(page.locator("#id_synergy_targets")).to_contain_text("Procurement consolidation")
    scenario.refresh_from_db()
    assert scenario.value_sources["synergy_targets"]["items"][0]["range"] == "Synergies"
