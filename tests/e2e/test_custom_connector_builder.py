"""An ops admin builds a custom connector from Asana's OpenAPI file in the builder, tries a request live against the sandbox,
saves and publishes a version, exports it, connects an integration to it and imports records — in Debian's Chromium at a
laptop's width and a phone's. Each step is written to docs/screens/custom-connector-*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import expect

from accounts.models import Role
from integrations.custom.models import CustomConnector
from integrations.models import Integration, IntegrationStatus
from sync.models import SyncRecord
from tests.conftest import wait_for
from tests.integrations.test_custom_connectors import project_task_names

PASSWORD = "pw-Secret-123"
PAT = "sandbox-asana-pat"
PROJECT = "1300000000000001"  # the sandbox's "Incident follow-ups" project and its seeded tasks
OPENAPI = Path(__file__).resolve().parents[1] / "integrations" / "fixtures" / "asana_openapi_trimmed.yaml"
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}


def _shot(page, name: str, width_name: str) -> None:
    """Nothing wider than the screen (outside .scroll-x boxes); then the screenshot."""
    page.wait_for_load_state("load")
    overflow = page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const wide = Array.from(document.querySelectorAll('body *')).filter(n => {
                const r = n.getBoundingClientRect();
                return r.width > 0 && r.right > width + 1 && !n.closest('.scroll-x');
            }).slice(0, 5).map(n => n.tagName.toLowerCase() + (n.id ? '#' + n.id : ''));
            return {scroll: document.documentElement.scrollWidth, client: width, wide};
        }"""
    )
    assert overflow["scroll"] <= overflow["client"] and not overflow["wide"], f"{name} at {width_name} is wider than the screen: {overflow}"
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"custom-connector-{name}-{width_name}.png"), full_page=True)


def _row(page, operation: str):
    return page.locator(f'tr[data-operation="{operation}"]')


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width_name", list(VIEWPORTS))
def test_build_a_custom_connector_from_openapi_and_import_records(width_name, live_server, browser_page, sandbox, settings, organization, make_user):
    settings.BASTION_SANDBOX_URL = sandbox
    settings.BASTION_PUBLIC_URL = live_server.url
    vendor = f"{sandbox}/asana/api/1.0"
    make_user(Role.ADMIN, organization, username="ops-admin")
    page = browser_page
    page.set_viewport_size(dict(zip(("width", "height"), VIEWPORTS[width_name], strict=True)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "ops-admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # Start from the vendor's OpenAPI document.
    page.goto(f"{live_server.url}/integrations/custom/")
    page.set_input_files("#openapi", str(OPENAPI))
    page.click("#create-connector")
    page.wait_for_url(re.compile(r".*/integrations/custom/[0-9a-f-]+/$"))
    connector = CustomConnector.objects.get(organization=organization)
    expect(page.locator("h1")).to_contain_text("Asana")
    expect(page.locator("#auth_kind")).to_have_value("bearer")  # read from the document's security schemes

    # Pick the endpoints: a project's tasks are the records, creating a task is an action.
    page.fill("#operation-filter", "tasks")
    expect(_row(page, "GET /workspaces")).to_be_hidden()
    _row(page, "GET /projects/{project_gid}/tasks").locator("select").select_option("entity")
    _row(page, "GET /projects/{project_gid}/tasks").locator("input").fill("Tasks")
    _row(page, "POST /tasks").locator("select").select_option("action")
    _row(page, "POST /tasks").locator("input").fill("Create task")
    _shot(page, "endpoints", width_name)
    page.click("#generate-draft")
    page.wait_for_url(re.compile(r".*/integrations/custom/[0-9a-f-]+/#spec-section$"))
    spec = page.locator("#spec").input_value()
    assert "/projects/{{ config.project_gid }}/tasks" in spec and "create_task:" in spec

    # Edit the YAML: pages of 20, so the import pages through the 45 tasks.
    page.fill("#spec", spec.replace("size: 100", "size: 20"))

    # Try the request live against the sandbox: the raw answer and the records it would produce.
    page.fill("#base_url", vendor)
    page.select_option("#request_name", "entity:tasks")
    page.fill("#credential_token", PAT)
    page.fill("#config", f'{{"project_gid": "{PROJECT}"}}')
    page.click("#try-request")
    expect(page.locator("#try-status")).to_have_text("200")
    expect(page.locator("#try-body")).to_contain_text("Seeded task")
    expect(page.locator("#try-record-count")).to_have_text("20")
    assert PAT not in page.content()  # the token was used, never shown back
    expect(page.locator("#credential_token")).to_have_value("")
    _shot(page, "console", width_name)

    # A broken spec is refused with the path of the problem; the fixed one is saved and published.
    good = page.locator("#spec").input_value()
    page.fill("#spec", good.replace("method: GET", "method: FETCH"))
    page.click("#save-version")
    expect(page.locator("#spec-problems")).to_contain_text("entities[tasks].read.request.method")
    _shot(page, "problems", width_name)
    page.fill("#spec", good.replace(connector.openapi["servers"][0], vendor))
    page.fill("#notes", "Tasks of one project, and create task")
    page.click("#save-version")
    expect(page.locator("#version-list tr[data-version='1']")).to_be_visible()
    page.click("#publish")
    expect(page.locator("#connector-status")).to_have_text("Published")
    _shot(page, "versions", width_name)

    # Export the spec file: the published version, as YAML.
    with page.expect_download() as download:
        page.click("#export-spec")
    exported = yaml.safe_load(Path(download.value.path()).read_text())
    assert download.value.suggested_filename == "asana-v1.yaml"
    assert exported["entities"]["tasks"]["read"]["paging"]["size"] == 20 and "hooks" not in exported

    # Connect an integration to it through the ordinary wizard, then import.
    page.click("#connect-custom")
    page.wait_for_url(re.compile(r".*/integrations/custom/[0-9a-f-]+/connect/$"))
    page.locator("details.advanced summary").click()
    page.fill("#base_url", vendor)
    page.fill("#credential_token", PAT)
    _shot(page, "connect", width_name)
    page.click("#connect-continue")
    page.wait_for_url(re.compile(r".*/integrations/[0-9a-f-]+/setup/$"))
    integration = Integration.objects.get(organization=organization, connector_key=connector.connector_key)
    page.fill("#config_project_gid", PROJECT)
    page.click("#setup-continue")
    page.wait_for_url(re.compile(r".*/map/$"))
    page.click("#map-continue")
    page.wait_for_url(re.compile(r".*/finish/$"))
    page.goto(f"{live_server.url}/integrations/{integration.pk}/")
    page.click("#sync-now")
    expected = project_task_names(vendor)
    wait_for(
        lambda: SyncRecord.objects.filter(integration=integration, entity_type="tasks").count() == len(expected) or None,
        timeout=60,
        message=f"{len(expected)} tasks imported",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    assert set(SyncRecord.objects.filter(integration=integration).values_list("raw__name", flat=True)) == expected
    page.reload()
    _shot(page, "imported", width_name)
