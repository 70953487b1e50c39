"""The import-only listings in Debian's Chromium at a laptop's and a phone's width: card, listing page, an import."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from scenarios.models import Scenario
from scenarios.selectors import data_model_latest

VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}
OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const wide = Array.from(document.querySelectorAll('body *')).filter(n => {
        const r = n.getBoundingClientRect();
        return r.width > 0 && r.right > width + 1 && !n.closest('.scroll-x');
    }).slice(0, 5).map(n => n.tagName.toLowerCase() + (n.id ? '#' + n.id : '') + (n.className ? '.' + n.className : ''));
    return {scroll: document.documentElement.scrollWidth, client: width, wide};
}"""


def _check_and_shoot(page, path, name: str) -> None:
    page.wait_for_load_state("load")
    overflow = page.evaluate(OVERFLOW)
    assert overflow["scroll"] <= overflow["client"] and not overflow["wide"], f"{name} is wider than the screen: {overflow}"
    page.screenshot(path=str(path / f"{name}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width_name", list(VIEWPORTS))
def test_listing_card_page_and_import_fit_the_screen(width_name, live_server, browser_page, organization, make_user, tmp_path):
    make_user(Role.ADMIN, organization, username="listing-admin")
    deal = Scenario.objects.create(
        organization=organization,
        data_model=data_model_latest(scenario_type="mergers_acquisitions"),
        scenario_type="mergers_acquisitions",
        title="Project Falcon",
    )
    page = browser_page
    page.set_viewport_size(dict(zip(("width", "height"), VIEWPORTS[width_name], strict=True)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "listing-admin")
    page.fill("#id_password", "pw-Secret-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/integrations/")
    carta = page.locator("li.connector[data-connector=carta]")
    expect(carta.locator(".badge")).to_have_text("Import only")
    expect(carta.get_by_role("link", name="Import from Carta")).to_be_visible()
    page.fill("#q", "cap table")  # the cards filter as you type
    expect(carta).to_be_visible()
    expect(page.locator("li.connector[data-connector=datasite]")).to_be_hidden()
    _check_and_shoot(page, tmp_path, f"marketplace-{width_name}")

    carta.get_by_role("link", name="Import from Carta").click()
    page.wait_for_url(f"{live_server.url}/integrations/listings/carta/")
    expect(page.get_by_role("heading", name="What it cannot do")).to_be_visible()
    expect(page.get_by_role("button", name="Start a custom connector")).to_be_visible()
    _check_and_shoot(page, tmp_path, f"listing-{width_name}")

    form = page.locator("#template-carta-stakeholders form")
    form.locator("select[name=scenario]").select_option(str(deal.pk))
    form.locator("input[type=file]").set_input_files(
        files=[{"name": "shareholders.csv", "mimeType": "text/csv", "buffer": b"Shareholder,Email\nAlex Morgan,alex@example.com\nNo Email,\n"}]
    )
    form.get_by_role("button", name="Import").click()
    expect(page.locator("#import-result")).to_contain_text("1 imported")
    expect(page.locator("#import-result")).to_contain_text("Line 3: email is missing.")
    _check_and_shoot(page, tmp_path, f"imported-{width_name}")
    deal.refresh_from_db()
    assert [p["email"] for p in deal.values["stakeholders"]] == ["alex@example.com"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"{n}-{width_name}.png" for n in ("imported", "listing", "marketplace"))
