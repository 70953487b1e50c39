"""Form schema (sources, options, pre-fill with origins, JSON Schema 2020-12), options API, refresh, and the no-JS page."""

from __future__ import annotations

import importlib

import jsonschema
from django.test import Client

from accounts.models import Role
from scenarios.models import Scenario
from scenarios.services import scenario_create
from tests.scenarios.fixtures import make_person

LEGAL_MESSAGE = "Legal must be on the crisis team: add someone from Legal (role Legal) to the crisis team."


def test_form_schema_content_and_json_schema(api, ldap_integration):
    response = api.get("/api/scenarios/crisis_management/form-schema")
    assert response.status_code == 200
    schema = response.json()
    fields = {f["key"]: f for f in schema["fields"]}
    assert (schema["scenario_type"], schema["version"]) == ("crisis_management", 1)
    stakeholders = fields["stakeholders"]
    assert stakeholders["type"] == "stakeholder_list" and stakeholders["csv_import"] is True
    assert stakeholders["options_url"] == "/api/scenarios/crisis_management/fields/stakeholders/options"
    assert stakeholders["source"]["connected"] is True
    assert [(c["connector"], c["connected"], c["import_label"]) for c in stakeholders["source"]["connectors"]] == [
        ("ldap", True, "Import from Active Directory"),
        ("okta", False, "Import from Okta"),
        ("entra", False, "Import from Microsoft Entra ID"),
    ]
    assert stakeholders["source"]["connectors"][0]["integration_ids"] == [str(ldap_integration.pk)]
    assert fields["communication_channels"]["source"]["connected"] is False
    assert fields["communication_channels"]["source"]["connectors"][0]["import_label"] == "Import from Slack"
    assert [o["value"] for o in fields["severity"]["options"]] == ["sev1", "sev2", "sev3", "sev4"]
    assert fields["ciso"]["visible_if"] == {"==": [{"var": "crisis_type"}, "security_breach"]}
    assert fields["ciso"]["condition_hint"] == "Shown when Crisis type is Security breach."
    assert schema["rules"][0]["key"] == "legal_on_crisis_team" and schema["rules"][0]["message"] == LEGAL_MESSAGE
    assert schema["values"] == {"severity": "sev2", "jira_project_key": "OPS"}
    assert schema["value_origins"]["jira_project_key"] == {"kind": "default", "label": "Default value"}

    json_schema = schema["json_schema"]
    jsonschema.Draft202012Validator.check_schema(json_schema)
    assert json_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = jsonschema.Draft202012Validator(json_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    good = {
        "title": "Breach",
        "crisis_type": "security_breach",
        "severity": "sev1",
        "summary": "x",
        "incident_commander": {"person_id": None, "name": "A", "email": "a@acme.example"},
        "stakeholders": [{"person_id": None, "name": "P", "email": "p@acme.example", "role": "legal"}],
        "jira_project_key": "OPS",
        "ciso": {"person_id": None, "name": "M", "email": "m@acme.example"},
        "breach_scope": "db",
        "communication_channels": [{"external_id": "C1", "name": "ir", "integration_id": ""}],
        "war_room_meeting_at": "2026-12-01T09:30:00+00:00",
    }
    assert list(validator.iter_errors(good)) == []
    missing_ciso = {k: v for k, v in good.items() if k not in ("ciso",)}
    assert [e.message for e in validator.iter_errors(missing_ciso)] == ["'ciso' is a required property"]
    assert [e.message for e in validator.iter_errors({**good, "severity": "sev9"})] == ["'sev9' is not one of ['sev1', 'sev2', 'sev3', 'sev4']"]
    for f in schema["fields"]:
        jsonschema.Draft202012Validator.check_schema(f["json_schema"])


def test_prefill_from_the_last_scenario_says_where_it_came_from(api, owner, organization, crisis_values):
    last = scenario_create(organization=organization, scenario_type="crisis_management", values=crisis_values, actor=owner)
    schema = api.get("/api/scenarios/crisis_management/form-schema").json()
    assert schema["values"]["stakeholders"] == last.values["stakeholders"]
    assert schema["values"]["incident_commander"] == last.values["incident_commander"]
    assert "title" not in schema["values"] and "summary" not in schema["values"]
    origin = schema["value_origins"]["stakeholders"]
    assert (origin["kind"], origin["scenario_id"], origin["title"]) == ("last_scenario", str(last.pk), "Checkout outage")
    assert schema["value_origins"]["severity"]["kind"] == "default"
    # Editing an existing scenario shows its own values.
    mine = api.get(f"/api/scenarios/crisis_management/form-schema?scenario={last.pk}").json()
    assert mine["values"]["title"] == "Checkout outage" and mine["value_origins"]["title"]["kind"] == "saved"


def test_options_typeahead_over_people_and_records(api, organization, other_organization, directory, slack_channels):
    make_person(other_organization, "Priya Elsewhere", "priya@globex.example", "Counsel", "Legal")
    body = api.get("/api/scenarios/crisis_management/fields/stakeholders/options", {"q": "legal"}).json()
    assert [r["label"] for r in body["results"]] == ["Priya Raman"]
    assert body["results"][0]["data"] == {
        "person_id": str(directory["priya"].pk),
        "name": "Priya Raman",
        "email": "priya.raman@acme.example",
        "department": "Legal",
    }
    body = api.get("/api/scenarios/crisis_management/fields/ciso/options", {"q": "chief officer"}).json()
    assert [r["label"] for r in body["results"]] == ["Ava Chen", "Marcus Okafor"]
    assert api.get("/api/scenarios/crisis_management/fields/ciso/options", {"q": "", "limit": 2}).json()["results"][0]["label"] == "Amara Nwosu"
    channels = api.get("/api/scenarios/crisis_management/fields/communication_channels/options", {"q": "press"}).json()["results"]
    assert [(c["value"], c["label"]) for c in channels] == [("C003", "press")]
    assert channels[0]["provenance"]["integration_id"] == str(slack_channels.pk)
    assert api.get("/api/scenarios/crisis_management/fields/severity/options", {"q": "sev1"}).json()["results"][0]["value"] == "sev1"
    assert api.get("/api/scenarios/crisis_management/fields/nope/options").status_code == 404


def test_refresh_now_needs_a_connected_source(api):
    response = api.post("/api/scenarios/crisis_management/fields/stakeholders/refresh")
    has_sync_start = hasattr(importlib.import_module("sync.services"), "sync_start") if importlib.util.find_spec("sync.services") else False
    if has_sync_start:
        assert response.status_code == 409 and response.json()["error"]["code"] == "not_connected"
    else:
        assert response.status_code == 503 and response.json()["error"]["code"] == "sync_unavailable"
    assert api.post("/api/scenarios/crisis_management/fields/title/refresh").json()["error"]["code"] == "no_source"


def _page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post_data(directory, stakeholders: str) -> dict[str, str]:
    return {
        "title": "Checkout outage",
        "crisis_type": "service_outage",
        "severity": "sev1",
        "summary": "Checkout fails.",
        "incident_commander": "amara.nwosu@acme.example",
        "stakeholders": stakeholders,
        "communication_channels": "incident-response,C001,\n",
        "war_room_meeting_at": "2026-12-01T09:30",
        "jira_project_key": "OPS",
        "ciso": "",
        "breach_scope": "",
        "__value_sources": "",
    }


def test_page_without_javascript_validates_on_the_server_like_the_api(api, owner, directory):
    client = _page_client(owner)
    page = client.get("/scenarios/new/crisis_management/")
    assert page.status_code == 200
    html = page.content.decode()
    for marker in ['name="stakeholders"', "Import from Active Directory", 'name="ciso"', "Shown when Crisis type is Security breach.", 'value="OPS"']:
        assert marker in html
    data = _post_data(directory, "Amara Nwosu, amara.nwosu@acme.example, engineering\nAva Chen, ava.chen@acme.example, executive")
    response = client.post("/scenarios/new/crisis_management/", data)
    assert response.status_code == 400
    assert LEGAL_MESSAGE in response.content.decode()
    assert not Scenario.objects.exists()
    api_errors = api.post("/api/scenarios/crisis_management/validate", data, format="multipart").json()["errors"]
    assert api_errors == {"stakeholders": [LEGAL_MESSAGE]}

    data["stakeholders"] += "\nPriya Raman, priya.raman@acme.example, legal"
    response = client.post("/scenarios/new/crisis_management/", data)
    assert response.status_code == 302
    scenario = Scenario.objects.get()
    assert response["Location"] == f"/scenarios/{scenario.pk}/edit/"
    assert [s["email"] for s in scenario.values["stakeholders"]][-1] == "priya.raman@acme.example"
    assert scenario.values["incident_commander"]["person_id"] == str(directory["amara"].pk)
    assert scenario.values["communication_channels"] == [{"external_id": "C001", "name": "incident-response", "integration_id": ""}]
    assert scenario.values["war_room_meeting_at"] == "2026-12-01T09:30:00"
    assert "ciso" not in scenario.values


def test_page_roles_and_tenancy(users_by_role, outsider, owner, organization, crisis_values):
    scenario = scenario_create(organization=organization, scenario_type="crisis_management", values=crisis_values, actor=owner)
    viewer = _page_client(users_by_role[Role.VIEWER])
    page = viewer.get(f"/scenarios/{scenario.pk}/edit/")
    assert page.status_code == 200 and "You have read access" in page.content.decode() and "Save scenario" not in page.content.decode()
    assert viewer.post(f"/scenarios/{scenario.pk}/edit/", {"title": "changed"}).status_code == 403
    assert viewer.get("/scenarios/new/crisis_management/").status_code == 403
    assert "Checkout outage" in viewer.get("/scenarios/").content.decode()
    stranger = _page_client(outsider)
    assert stranger.get(f"/scenarios/{scenario.pk}/edit/").status_code == 404
    assert "Checkout outage" not in stranger.get("/scenarios/").content.decode()
    scenario.refresh_from_db()
    assert scenario.title == "Checkout outage"
