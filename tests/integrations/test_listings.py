"""Listings for systems without a usable public API: marketplace cards, the listing page, templates, imports, starters, API."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import AuditEvent, Role
from integrations.custom import adapter
from integrations.custom.models import CustomConnector
from integrations.custom.services import spec_check, spec_parse
from integrations.listings.catalogue import listing_get, listings
from scenarios.definitions import SHIPPED_DEFINITIONS
from scenarios.models import Scenario
from scenarios.selectors import data_model_latest
from scenarios.spec import PERSON_TYPES
from sync.csv_import import suggest_mapping

SIX = {"datasite", "dealroom", "carta", "klue", "crayon", "linkedin"}
ALL_TEMPLATES = [(listing.key, template.key) for listing in listings() for template in listing.templates]


@pytest.fixture
def admin_client(users_by_role) -> Client:
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    return client


@pytest.fixture
def viewer_client(users_by_role) -> Client:
    client = Client()
    client.force_login(users_by_role[Role.VIEWER])
    return client


def _scenario(organization, scenario_type: str, title: str = "Project Falcon", values: dict | None = None) -> Scenario:
    return Scenario.objects.create(
        organization=organization, data_model=data_model_latest(scenario_type=scenario_type), scenario_type=scenario_type, title=title, values=values or {}
    )


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def _import(api, key: str, template: str, scenario: Scenario, content: bytes, mode: str = "append", name: str = "export.csv"):
    return api.post(
        f"/api/listings/{key}/import",
        {"template": template, "scenario": str(scenario.pk), "mode": mode, "file": SimpleUploadedFile(name, content, content_type="text/csv")},
        format="multipart",
    )


# The catalogue ------------------------------------------------------------------------------------------------------


def test_the_six_systems_are_declared_and_each_template_fills_a_shipped_field_of_the_right_kind():
    assert {listing.key for listing in listings()} == SIX
    fields = {(d["scenario_type"], f["key"]): f for d in SHIPPED_DEFINITIONS for f in d["field_definitions"]}
    for listing in listings():
        assert listing.can and listing.cannot and listing.why and listing.api_status
        for template in listing.templates:
            field = fields[(template.scenario_type, template.field)]
            if template.kind == "people":
                assert field["type"] in PERSON_TYPES and field.get("csv_import"), template.key
            else:
                assert field["type"] == "long_text", template.key
    linkedin = listing_get("linkedin")
    assert any("org chart" in line for line in linkedin.cannot)
    assert listing_get("carta").starter and listing_get("klue").starter
    assert not any(listing_get(k).starter for k in ("datasite", "dealroom", "crayon", "linkedin"))
    assert not any(listing.inbound_webhook for listing in listings())  # no vendor here is known to post signed events


def test_no_listing_shadows_an_installed_connector():
    """A vendor that gains a real connector must lose its import-only listing (one card per tool)."""
    from integrations.registry import manifests

    assert not SIX & {manifest.key for manifest in manifests()}


@pytest.mark.parametrize("key", ["carta", "klue"])
def test_starter_specs_validate_and_compile_without_hooks(key):
    doc = spec_parse(listing_get(key).starter_text())
    spec_check(doc)  # raises with every problem listed
    assert "hooks" not in doc
    connector = adapter.spec_compile(doc, key=f"custom.{key}", name=key.title())
    assert connector.manifest.key == f"custom.{key}" and connector.manifest.entities


# Marketplace and listing page ---------------------------------------------------------------------------------------


def test_marketplace_shows_each_listing_as_an_import_only_card(admin_client):
    page = admin_client.get("/integrations/").content.decode()
    for key in SIX:
        card = page.split(f'data-connector="{key}"', 1)[1].split("</li>", 1)[0]
        assert "Import only" in card and f'href="/integrations/listings/{key}/"' in card, key
        assert "/integrations/connect/" not in card  # nothing to connect
        assert listing_get(key).availability_label in card  # why, even on a phone where the description is hidden
    assert "Connect your tools" in page and "Demo Workspace" in page  # the connectors are still there


# Every system the product note names (seed/architecture-note.md and the table), by the card that stands for it.
PRODUCT_NOTE_SYSTEMS = {
    "Slack": "slack", "Jira": "jira", "Google Calendar": "google_calendar", "Google Sheets": "google_sheets",
    "SharePoint / Excel / Teams / Outlook": "microsoft365", "HubSpot": "hubspot", "Salesforce": "salesforce",
    "Active Directory": "ldap", "Okta": "okta", "PagerDuty": "pagerduty", "Twilio": "twilio", "Statuspage": "statuspage",
    "ServiceNow": "servicenow", "Asana": "asana", "DocuSign": "docusign", "Intercom": "intercom", "Productboard": "productboard",
    "Aha!": "aha", "Amplitude": "amplitude", "Brandfolder": "brandfolder",
    "Datasite": "datasite", "DealRoom": "dealroom", "Carta": "carta", "Klue": "klue", "Crayon": "crayon", "LinkedIn": "linkedin",
}  # fmt: skip


def test_the_marketplace_lists_every_system_of_the_product_note_connectable_or_with_its_import_path(admin_client):
    page = admin_client.get("/integrations/").content.decode()
    for system, key in PRODUCT_NOTE_SYSTEMS.items():
        assert f'data-connector="{key}"' in page, system
        card = page.split(f'data-connector="{key}"', 1)[1].split("</li>", 1)[0]
        if key in SIX:
            assert f'href="/integrations/listings/{key}/"' in card, system  # honestly marked, with its import path
        else:
            assert f'href="/integrations/connect/{key}/"' in card, system  # works end to end against its stand-in


def test_marketplace_search_and_category_filter_cover_listings(admin_client):
    found = admin_client.get("/integrations/?q=cap+table").content.decode()
    assert 'data-connector="carta"' in found and 'data-connector="datasite"' not in found and 'data-connector="demo"' not in found
    rooms = admin_client.get("/integrations/?category=deal_rooms").content.decode()
    assert 'data-connector="datasite"' in rooms and 'data-connector="dealroom"' in rooms and 'data-connector="klue"' not in rooms
    assert "Data rooms &amp; M&amp;A" in rooms
    assert 'data-connector="klue"' in admin_client.get("/integrations/?q=import+only").content.decode()


def test_listing_page_explains_limits_and_offers_templates_and_import(admin_client, organization):
    falcon = _scenario(organization, "crisis_management", "Data exposure")
    page = admin_client.get("/integrations/listings/linkedin/").content.decode()
    assert "What Bastion can do" in page and "What it cannot do" in page and "org chart" in page
    assert "No API gives employees of a company, org charts" in page  # FACTS §28's wording
    assert 'href="/integrations/listings/linkedin/templates/linkedin-connections.csv"' in page
    assert f'<option value="{falcon.pk}"' in page and 'action="/integrations/listings/linkedin/import/"' in page
    assert "Media contacts" in page and "Crisis Management" in page
    assert "Start a custom connector" not in page  # LinkedIn has no starter
    carta = admin_client.get("/integrations/listings/carta/").content.decode()
    assert 'id="load-starter"' in carta and "invite-only" in carta
    assert admin_client.get("/integrations/listings/nope/").status_code == 404


def test_viewers_read_the_page_but_cannot_import_or_start(viewer_client, organization):
    scenario = _scenario(organization, "mergers_acquisitions")
    page = viewer_client.get("/integrations/listings/carta/").content.decode()
    assert "Editors and admins can import." in page and "<form" not in page.split('id="import"', 1)[1].split("Sources", 1)[0].replace('<form method="get"', "")
    denied = viewer_client.post(
        "/integrations/listings/carta/import/", {"template": "carta-stakeholders", "scenario": str(scenario.pk), "file": SimpleUploadedFile("a.csv", b"x")}
    )
    assert denied.status_code == 403
    assert viewer_client.post("/integrations/listings/carta/starter/").status_code == 403
    assert not CustomConnector.objects.exists()
    scenario.refresh_from_db()
    assert scenario.values == {}


# Templates ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "template_key"), ALL_TEMPLATES)
def test_each_downloaded_template_imports_back_into_its_field(key, template_key, admin_client, organization, api):
    template = listing_get(key).template(template_key)
    response = admin_client.get(f"/integrations/listings/{key}/templates/{template_key}.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'filename="bastion-{template_key}.csv"' in response["Content-Disposition"]
    body = response.content
    assert body.startswith("\ufeff".encode())  # spreadsheets then read it as UTF-8
    header = next(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert header == [template.columns[name][0] for name in template.template_columns]
    scenario = _scenario(organization, template.scenario_type)
    result = _import(api, key, template_key, scenario, body, name=f"bastion-{template_key}.csv")
    assert result.status_code == 200, result.json()
    data = result.json()
    assert data["imported"] >= 1 and data["field"] == template.field
    scenario.refresh_from_db()
    assert scenario.values[template.field]
    items = scenario.value_sources[template.field]["items"]
    assert items and all(i["source"] == "csv" and i["filename"] == f"bastion-{template_key}.csv" and i["line"] >= 2 for i in items)
    assert AuditEvent.objects.filter(action="scenario.populate_field", changes__template=template.title).exists()


def test_unknown_template_download_is_404(admin_client):
    assert admin_client.get("/integrations/listings/carta/templates/nope.csv").status_code == 404
    assert admin_client.get("/integrations/listings/nope/templates/carta-stakeholders.csv").status_code == 404


# Imports: people ----------------------------------------------------------------------------------------------------


def test_linkedin_connections_skip_the_preamble_compose_names_and_refuse_rows_without_email(api, organization):
    crisis = _scenario(organization, "crisis_management", "Data exposure")
    content = b'Notes:\r\n"When exporting your connection data, you may notice that some of the email addresses are missing."\r\n\r\n' + _csv(
        [
            ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"],
            ["Maria", "Lopez", "https://www.linkedin.com/in/m", "Maria.Lopez@Example.com", "Daily Ledger", "Reporter", "14 Mar 2025"],
            ["Ken", "Ito", "https://www.linkedin.com/in/k", "", "Wire Weekly", "Editor", "02 Jan 2024"],
            ["", "", "https://www.linkedin.com/in/x", "not-an-address", "", "", ""],
        ]
    )
    result = _import(api, "linkedin", "linkedin-connections", crisis, content, name="Connections.csv").json()
    assert result["imported"] == 1
    assert [e["line"] for e in result["errors"]] == [6, 7]
    assert "email is missing" in result["errors"][0]["message"] and "not an email address" in result["errors"][1]["message"]
    crisis.refresh_from_db()
    assert crisis.values["media_contacts"] == [
        {"person_id": None, "name": "Maria Lopez", "email": "maria.lopez@example.com", "role": "member", "department": "", "source": "csv"}
    ]
    assert crisis.value_sources["media_contacts"]["items"][0] | {"at": None} == {
        "match": "maria.lopez@example.com", "source": "csv", "line": 5, "filename": "Connections.csv", "at": None,
    }  # fmt: skip


def test_carta_shareholders_on_several_share_classes_are_imported_once(api, organization):
    deal = _scenario(organization, "mergers_acquisitions")
    content = _csv(
        [
            ["Shareholder", "External ID", "Email", "Contact Email", "Security Class", "Shares", "Bastion role"],
            ["Alex Morgan", "", "alex@example.com", "", "Common", "1200000", "executive"],
            ["Alex Morgan", "", "alex@example.com", "", "Series A Preferred", "50000", "executive"],
            ["Northwind Ventures", "", "partners@northwind.example.com", "", "Series A Preferred", "2500000", "investor"],
            ["Nobody", "", "", "", "Common", "10", ""],
        ]
    )
    result = _import(api, "carta", "carta-stakeholders", deal, content).json()
    assert result["imported"] == 1 and result["skipped"] == 1
    assert [(e["line"], "'investor' is not a stakeholder role" in e["message"]) for e in result["errors"]] == [(4, True), (5, False)]
    deal.refresh_from_db()
    assert [(p["name"], p["role"]) for p in deal.values["stakeholders"]] == [("Alex Morgan", "executive")]


def test_an_export_of_another_kind_is_refused_with_the_columns_it_needs(api, organization):
    deal = _scenario(organization, "mergers_acquisitions")
    response = _import(api, "carta", "carta-stakeholders", deal, _csv([["Title", "Owner"], ["Q1", "x"]]))
    assert response.status_code == 400 and response.json()["error"]["code"] == "csv_header"
    assert "'Shareholder' or 'Stakeholder'" in response.json()["error"]["message"]
    deal.refresh_from_db()
    assert deal.values == {} and deal.value_sources == {}


# Imports: lines of text ---------------------------------------------------------------------------------------------


def test_datasite_open_questions_become_lines_and_closed_ones_are_left_out(api, organization):
    deal = _scenario(organization, "mergers_acquisitions", values={"legal_requirements": "HSR filing"})
    content = _csv(
        [
            ["Question ID", "Question", "Category", "Status", "Priority"],
            ["Q-1", "Provide change-of-control clauses", "Legal", "Open", "High"],
            ["Q-2", "Share the cap table", "Finance", "Closed", "Low"],
            ["Q-3", "", "Legal", "Open", ""],
            ["Q-4", "Confirm   EU\nfilings", "", "Open", ""],
        ]
    )
    result = _import(api, "datasite", "datasite-qa", deal, content).json()
    assert result["imported"] == 2 and result["skipped"] == 1
    assert result["errors"] == [{"line": 4, "message": "Line 4: question is empty."}]
    deal.refresh_from_db()
    assert deal.values["legal_requirements"] == "HSR filing\nProvide change-of-control clauses (Q-1, Legal, Open, High)\nConfirm EU filings (Q-4, Open)"
    assert deal.value_sources["legal_requirements"]["items"][0]["line"] == 2
    again = _import(api, "datasite", "datasite-qa", deal, content).json()  # the same export again adds nothing twice
    deal.refresh_from_db()
    assert again["imported"] == 2 and deal.values["legal_requirements"].count("change-of-control") == 1
    _import(api, "datasite", "datasite-qa", deal, content, mode="replace")
    deal.refresh_from_db()
    assert not deal.values["legal_requirements"].startswith("HSR")


def test_battlecards_fill_competitive_intel_and_a_too_long_line_is_refused(api, organization):
    launch = _scenario(organization, "product_launch", "Bastion 2.0")
    content = _csv(
        [
            ["Competitor", "Card Title", "Summary"],
            ["Acme", "Quick dismiss", '=HYPERLINK("http://evil")'],
            ["Globex", "", "x" * 2500],
            ["Initech", "", "Slow onboarding"],
        ]
    )
    result = _import(api, "klue", "klue-battlecards", launch, content).json()
    assert result["imported"] == 2 and [e["line"] for e in result["errors"]] == [3]
    assert "at most 2000" in result["errors"][0]["message"]
    launch.refresh_from_db()
    # Kept as text (a formula is only dangerous in a spreadsheet; exports guard it there).
    assert launch.values["competitive_intel"] == 'Acme: =HYPERLINK("http://evil") (Quick dismiss)\nInitech: Slow onboarding'


# Hostile files ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("Competitor,Summary\nAcmé,Prix\n".encode("latin-1"), "csv_encoding"),
        (b"Competitor,Summary\nAcme," + b"x" * 140_000 + b"\n", "csv_invalid"),
        (b"Competitor,Summary\n" + b"Acme,short\n" * 100_000, "csv_too_large"),
    ],
    ids=["latin-1", "huge-cell", "too-large"],
)
def test_hostile_files_are_refused_whole_with_nothing_written(api, organization, content, code):
    launch = _scenario(organization, "product_launch", "Bastion 2.0")
    response = _import(api, "klue", "klue-battlecards", launch, content)
    assert response.status_code in (400, 413) and response.json()["error"]["code"] == code, response.json()
    launch.refresh_from_db()
    assert launch.values == {} and not AuditEvent.objects.filter(action="scenario.populate_field").exists()


def test_a_bom_is_accepted(api, organization):
    launch = _scenario(organization, "product_launch", "Bastion 2.0")
    result = _import(api, "crayon", "crayon-battlecards", launch, "\ufeffCompetitor,Tile,Content\r\nGlobex,Pricing,Doubles above 200 seats\r\n".encode())
    assert result.status_code == 200 and result.json()["imported"] == 1
    launch.refresh_from_db()
    assert launch.values["competitive_intel"] == "Globex: Doubles above 200 seats (Pricing)"


# Tenancy, roles, bad input ------------------------------------------------------------------------------------------


def test_another_organizations_scenario_is_neither_listed_nor_importable(api, admin_client, organization, other_organization, api_for, outsider):
    theirs = _scenario(other_organization, "mergers_acquisitions", "Their deal")
    page = admin_client.get("/integrations/listings/datasite/").content.decode()
    assert str(theirs.pk) not in page and "Their deal" not in page
    content = _csv([["Name", "Email"], ["Ann", "ann@example.com"]])
    response = _import(api, "datasite", "datasite-users", theirs, content)
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_scenario"
    on_page = admin_client.post(
        "/integrations/listings/datasite/import/",
        {"template": "datasite-users", "scenario": str(theirs.pk), "file": SimpleUploadedFile("u.csv", content)},
    )
    assert on_page.status_code == 404 and "Choose one of your scenarios." in on_page.content.decode()
    theirs.refresh_from_db()
    assert theirs.values == {}
    mine = _scenario(organization, "mergers_acquisitions", "Our deal")
    assert _import(api, "datasite", "datasite-users", mine, content).status_code == 200
    assert _import(api_for(outsider), "datasite", "datasite-users", mine, content).status_code == 404  # and the other way round


def test_bad_import_requests_are_clear_4xx(api, organization):
    deal = _scenario(organization, "mergers_acquisitions")
    launch = _scenario(organization, "product_launch", "Launch")
    content = _csv([["Name", "Email"], ["Ann", "ann@example.com"]])
    wrong_type = _import(api, "datasite", "datasite-users", launch, content)
    assert wrong_type.status_code == 400 and wrong_type.json()["error"]["code"] == "wrong_scenario_type"
    unknown = _import(api, "datasite", "carta-stakeholders", deal, content)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_template"
    assert _import(api, "nope", "datasite-users", deal, content).status_code == 404
    missing_file = api.post("/api/listings/datasite/import", {"template": "datasite-users", "scenario": str(deal.pk)}, format="multipart")
    assert missing_file.status_code == 400 and "file" in missing_file.json()["error"]["fields"]
    deal.refresh_from_db()
    assert deal.values == {}


def test_page_import_shows_the_result_and_refused_rows(admin_client, organization):
    deal = _scenario(organization, "mergers_acquisitions")
    content = _csv([["Request", "Worklist", "Status"], ["Audited financials", "Financial", "In Progress"], ["", "Legal", "Open"], ["Old", "", "Completed"]])
    page = admin_client.post(
        "/integrations/listings/dealroom/import/",
        {"template": "dealroom-requests", "scenario": str(deal.pk), "mode": "append", "file": SimpleUploadedFile("requests.csv", content)},
    )
    text = page.content.decode()
    assert page.status_code == 200 and "1 imported" in text and "1 left out on purpose" in text and "Line 3: request is empty." in text
    assert f'href="/scenarios/{deal.pk}/edit/"' in text
    no_file = admin_client.post("/integrations/listings/dealroom/import/", {"template": "dealroom-requests", "scenario": str(deal.pk)})
    assert no_file.status_code == 400 and "Choose the exported file to import." in no_file.content.decode()


# Starter connectors -------------------------------------------------------------------------------------------------


def test_admin_starts_a_custom_connector_from_the_starter_once(admin_client, organization):
    response = admin_client.post("/integrations/listings/klue/starter/")
    connector = CustomConnector.objects.get(organization=organization)
    assert response.status_code == 302 and response["Location"] == f"/integrations/custom/{connector.pk}/"
    assert connector.key == "klue" and connector.draft == listing_get("klue").starter_text()
    builder = admin_client.get(response["Location"]).content.decode()
    assert "Content API key" in builder  # the builder offers the starter's credential field to try it with
    again = admin_client.post("/integrations/listings/klue/starter/")
    assert again["Location"] == f"/integrations/custom/{connector.pk}/" and CustomConnector.objects.count() == 1
    assert admin_client.post("/integrations/listings/crayon/starter/").status_code == 404
    assert admin_client.get("/integrations/listings/klue/starter/").status_code == 405


# API ----------------------------------------------------------------------------------------------------------------


def test_api_lists_listings_with_templates_and_the_schema_documents_them(api):
    data = api.get("/api/listings").json()
    assert {entry["key"] for entry in data} == SIX
    carta = next(entry for entry in data if entry["key"] == "carta")
    assert carta["availability"] == "partner_only" and carta["custom_connector_starter"] is True and carta["inbound_webhook"] is False
    assert carta["templates"][0]["download_url"] == "/integrations/listings/carta/templates/carta-stakeholders.csv"
    assert carta["templates"][0]["columns"]["name"][0] == "Shareholder"
    assert api.get("/api/listings/linkedin").json()["page_url"] == "/integrations/listings/linkedin/"
    missing = api.get("/api/listings/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_listing"
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/api/listings", "/api/listings/{key}", "/api/listings/{key}/import"} <= set(schema["paths"])


def test_api_requires_sign_in(client):
    assert client.get("/api/listings").status_code in (401, 403)


def test_the_directory_import_recognises_linkedin_connections_columns():
    headers = ["First Name", "Last Name", "URL", "Email Address", "Company", "Position", "Connected On"]
    assert suggest_mapping(headers) == {"email": "Email Address", "given_name": "First Name", "family_name": "Last Name", "title": "Position"}


def test_lines_past_the_fields_limit_are_refused_row_by_row_not_the_whole_file(api, organization):
    deal = _scenario(organization, "mergers_acquisitions", values={"legal_requirements": "x" * 19_900})
    content = _csv([["Question", "Status"], ["Short one", "Open"], ["A question too long to fit " + "y" * 100, "Open"], ["Fits", "Open"]])
    result = _import(api, "datasite", "datasite-qa", deal, content).json()
    assert result["imported"] == 2 and result["errors"] == [
        {"line": 3, "message": "Line 3: Legal requirements is full (20,000 characters); this line was not imported."}
    ]
    deal.refresh_from_db()
    assert deal.values["legal_requirements"].endswith("\nShort one (Open)\nFits (Open)")
