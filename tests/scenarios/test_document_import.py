"""The file picker API and the workbook import into scenario fields, over real HTTP to the Microsoft Graph stand-in: the M&A
scenario's deal value, close date and synergy targets from "Project Falcon model.xlsx" with provenance; bad mappings refused
naming each problem (nothing written); another organization sees neither the integration nor the scenario."""

from __future__ import annotations

import pytest

from accounts.models import Role
from integrations.models import CredentialType, IntegrationStatus
from integrations.services import integration_connect
from scenarios.models import Scenario
from scenarios.services import scenario_create

TENANT_ID = "a1b2c3d4-0000-4000-8000-000000000001"
MAPPING = {"deal_value": "DealValue", "close_date": "CloseDate", "synergy_targets": "Synergies"}


def connect_documents(organization, sandbox):
    """The documents tool with application access (client credentials), as an admin would connect it."""
    integration = integration_connect(
        organization=organization,
        connector_key="microsoft365",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"tenant_id": TENANT_ID, "client_id": "bastion-app", "client_secret": "sandbox-app-secret"},
        config={"tenant_id": TENANT_ID, "organizer": "amara.nwosu@acme.example"},
        base_url=f"{sandbox}/microsoft365",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


def deal(organization) -> Scenario:
    values = {
        "title": "Project Falcon",
        "deal": "006FALCON",
        "deal_value": {"amount": 1, "currency": "GBP"},
        "summary": "Acquire Falcon Analytics.",
        "stakeholders": [{"name": "Priya Raman", "email": "priya.raman@acme.example", "role": "legal"}],
        "jira_project_key": "MA",
    }
    return scenario_create(organization=organization, scenario_type="mergers_acquisitions", values=values)


def listing(client, integration, **params):
    return client.get(f"/api/integrations/{integration.pk}/documents", params)


def falcon_model(client, integration) -> dict:
    deals = next(i for i in listing(client, integration).json()["items"] if i["name"] == "Deals")
    library = listing(client, integration, folder=deals["id"]).json()["items"][0]
    return next(i for i in listing(client, integration, folder=library["id"]).json()["items"] if i["name"] == "Project Falcon model.xlsx")


@pytest.fixture
def documents(organization, sandbox):
    return connect_documents(organization, sandbox)


def test_the_picker_browses_and_searches_for_editors_only(api_for, users_by_role, documents, outsider):
    editor = api_for(users_by_role[Role.EDITOR])
    top = listing(editor, documents)
    assert top.status_code == 200 and top.json()["integration_id"] == str(documents.pk)
    names = {i["name"]: i for i in top.json()["items"]}
    assert {"Legal", "Deals"} <= set(names) and names["Legal"]["is_folder"] and set(names["Legal"]) >= {"id", "path", "url", "mime_type"}
    found = listing(editor, documents, folder=names["Legal"]["id"], q="breach").json()["items"]
    assert [(i["name"], i["path"], i["is_folder"]) for i in found] == [("Breach notification template.docx", "Templates", False)]
    model = falcon_model(editor, documents)
    assert model["mime_type"].endswith("spreadsheetml.sheet") and model["url"].startswith("https://")
    assert listing(api_for(users_by_role[Role.VIEWER]), documents).status_code == 403
    assert listing(api_for(outsider), documents).status_code == 404  # another organization's integration does not exist for it
    bad = listing(editor, documents, folder="../../etc/passwd")
    assert bad.status_code == 400 and "not a document reference" in bad.json()["error"]["message"]
    missing = listing(editor, documents, folder="item:b!nodrive:01NOPE")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_tool_without_documents_says_so(api_for, users_by_role, organization):
    from integrations.models import Integration

    slack = Integration.objects.create(organization=organization, connector_key="slack", display_name="Acme Slack", status=IntegrationStatus.CONNECTED)
    response = listing(api_for(users_by_role[Role.EDITOR]), slack)
    assert response.status_code == 400 and response.json()["error"]["message"] == "Acme Slack has no documents to browse."


def test_the_ma_fields_fill_from_the_falcon_model_with_provenance(api_for, users_by_role, organization, documents):
    editor = api_for(users_by_role[Role.EDITOR])
    scenario = deal(organization)
    model = falcon_model(editor, documents)
    body = {"integration": str(documents.pk), "document": {"id": model["id"], "name": model["name"]}, "mapping": MAPPING}
    response = editor.post(f"/api/scenarios/{scenario.pk}/document-import", body, format="json")
    assert response.status_code == 200, response.json()
    values = response.json()["values"]
    assert values["deal_value"] == {"amount": 1_250_000_000, "currency": "GBP"}  # the amount from the model, the currency kept
    assert len(values["close_date"]) == 10 and values["close_date"] > "2026-12-07"
    assert values["synergy_targets"].splitlines()[0] == "Area: Procurement consolidation; Type: Cost; Target (USD): 42,000,000; Year: 2028"
    assert len(values["synergy_targets"].splitlines()) == 4
    scenario.refresh_from_db()
    assert scenario.values["deal_value"]["amount"] == 1_250_000_000 and scenario.values["title"] == "Project Falcon"  # other fields kept
    for key, source in MAPPING.items():
        origin = scenario.value_sources[key]
        assert origin["origin"] == "import" and origin["items"], key
        item = origin["items"][0]
        assert item["document"] == "Project Falcon model.xlsx" and item["range"] == source and item["document_id"] == model["id"]
        assert item["integration_id"] == str(documents.pk) and item["source"] == "microsoft365"
    # A regular save of the form keeps where the imported values came from.
    sponsor = {"name": "Ava Chen", "email": "ava.chen@acme.example"}  # the rule for deals over $10M now applies
    saved = editor.put(f"/api/scenarios/{scenario.pk}/", {"values": {**scenario.values, "board_sponsor": sponsor}}, format="json")
    assert saved.status_code == 200, saved.json()
    scenario.refresh_from_db()
    assert scenario.value_sources["deal_value"]["items"][0]["range"] == "DealValue"
    assert scenario.value_sources["close_date"]["items"][0]["document"] == "Project Falcon model.xlsx"
    # A cell address and a table's column work the same way.
    by_cell = {**body, "mapping": {"deal_value": "Model!B2", "legal_requirements": "DealTerms.Notes"}}
    second = editor.post(f"/api/scenarios/{scenario.pk}/document-import", by_cell, format="json")
    assert second.status_code == 200, second.json()
    assert second.json()["values"]["deal_value"]["amount"] == 1_250_000_000
    assert "Enterprise value, cash and stock" in second.json()["values"]["legal_requirements"].splitlines()
    assert second.json()["value_sources"]["deal_value"]["items"][0]["range"] == "Model!B2"


def test_a_bad_mapping_names_every_problem_and_writes_nothing(api_for, users_by_role, organization, documents):
    editor = api_for(users_by_role[Role.EDITOR])
    scenario = deal(organization)
    model = falcon_model(editor, documents)
    before = (dict(scenario.values), dict(scenario.value_sources))
    url = f"/api/scenarios/{scenario.pk}/document-import"
    base = {"integration": str(documents.pk), "document": model["id"]}
    shape = editor.post(url, {**base, "mapping": {"nope": "DealValue", "stakeholders": "DealValue", "close_date": "Bad Name!"}}, format="json")
    assert shape.status_code == 400
    fields = shape.json()["error"]["fields"]
    assert set(fields) == {"mapping.nope", "mapping.stakeholders", "mapping.close_date"}
    assert "is not a field of M&A" in fields["mapping.nope"][0] and "cannot be filled from a workbook" in fields["mapping.stakeholders"][0]
    workbook = {"deal_value": "NoSuchName", "synergy_targets": "DealTerms.Missing", "close_date": "Synergies.Year", "title": "Synergies"}
    read = editor.post(url, {**base, "mapping": workbook}, format="json")
    assert read.status_code == 400
    fields = read.json()["error"]["fields"]
    assert "no table or named range 'NoSuchName'" in fields["mapping.deal_value"][0]
    assert "has no column 'Missing' (columns: Term, Value, Notes)" in fields["mapping.synergy_targets"][0]
    assert "holds 4 values" in fields["mapping.close_date"][0]
    assert "is a whole table" in fields["mapping.title"][0]
    assert read.json()["error"]["code"] == "invalid_mapping" and read.json()["error"]["message"].startswith("The workbook import was not applied")
    not_a_date = editor.post(url, {**base, "mapping": {"close_date": "DealValue"}}, format="json")
    assert not_a_date.status_code == 400 and "not a date" in not_a_date.json()["error"]["fields"]["mapping.close_date"][0]
    assert editor.post(url, {**base, "mapping": {}}, format="json").status_code == 400
    assert editor.post(url, {**base, "mapping": ["DealValue"]}, format="json").status_code == 400
    scenario.refresh_from_db()
    assert (scenario.values, scenario.value_sources) == before


def test_organizations_are_isolated(api_for, users_by_role, organization, other_organization, documents, sandbox, make_user):
    scenario = deal(organization)
    outsider = make_user(Role.OWNER, other_organization, username="globex-owner")
    foreign = connect_documents(other_organization, sandbox)
    model = falcon_model(api_for(outsider), foreign)
    body = {"integration": str(foreign.pk), "document": model["id"], "mapping": {"deal_value": "DealValue"}}
    assert api_for(outsider).post(f"/api/scenarios/{scenario.pk}/document-import", body, format="json").status_code == 404
    editor = api_for(users_by_role[Role.EDITOR])
    response = editor.post(f"/api/scenarios/{scenario.pk}/document-import", body, format="json")  # our scenario, their integration
    assert response.status_code == 404 and response.json()["error"]["fields"] == {"integration": ["Not found."]}
    assert api_for(users_by_role[Role.VIEWER]).post(f"/api/scenarios/{scenario.pk}/document-import", body, format="json").status_code == 403
    scenario.refresh_from_db()
    assert scenario.values["deal_value"]["amount"] == 1


def test_the_form_page_offers_the_picker_and_keeps_the_chosen_workbook(users_by_role, organization, documents, api_for):
    from django.test import Client

    editor_user = users_by_role[Role.EDITOR]
    scenario = deal(organization)
    model = falcon_model(api_for(editor_user), documents)
    page = Client()
    page.force_login(editor_user)
    html = page.get(f"/scenarios/{scenario.pk}/edit/").content.decode()
    assert 'class="document-picker" data-field="financial_model"' in html and "No document chosen." in html
    assert f'<option value="{documents.pk}"' in html and "js/document_picker.js" in html
    assert f'data-url="/api/scenarios/{scenario.pk}/document-import"' in html and "Fill 3 fields from this workbook" in html
    form = {
        "title": "Project Falcon",
        "deal": "006FALCON",
        "deal_value__amount": "1250000000",
        "deal_value__currency": "USD",
        "board_sponsor": "ava.chen@acme.example",
        "summary": "Acquire Falcon Analytics.",
        "stakeholders": "Priya Raman, priya.raman@acme.example, legal",
        "jira_project_key": "MA",
        "__value_sources": "",
        **{f"financial_model__{part}": str(model.get(part) or "") for part in ("id", "name", "path", "url")},
        "financial_model__integration_id": str(documents.pk),
    }
    assert page.post(f"/scenarios/{scenario.pk}/edit/", form).status_code == 302
    scenario.refresh_from_db()
    chosen = scenario.values["financial_model"]
    assert chosen == {"integration_id": str(documents.pk), "id": model["id"], "name": "Project Falcon model.xlsx", "path": "", "url": model["url"]}
    api_for(editor_user).post(
        f"/api/scenarios/{scenario.pk}/document-import", {"integration": str(documents.pk), "document": chosen, "mapping": MAPPING}, format="json"
    )
    html = page.get(f"/scenarios/{scenario.pk}/edit/").content.decode()
    assert "Imported from Project Falcon model.xlsx (DealValue)" in html and "Imported from Project Falcon model.xlsx (Synergies)" in html
    assert f'href="{model["url"]}"' in html
    broken = {**form, "financial_model__integration_id": "not-an-id"}
    response = page.post(f"/scenarios/{scenario.pk}/edit/", broken)
    assert response.status_code == 400 and "choose the document in a connected tool" in response.content.decode()
