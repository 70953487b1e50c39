"""Scenario API: CRUD with validation, conditions, cross-field rules, populate-field with provenance, CSV, tenancy, roles, audit."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent, Role
from scenarios.models import Scenario
from tests.scenarios.fixtures import person_value, stakeholder

LEGAL_MESSAGE = "Legal must be on the crisis team: add someone from Legal (role Legal) to the crisis team."


def create(client, values, scenario_type="crisis_management", **extra):
    return client.post("/api/scenarios/", {"scenario_type": scenario_type, "values": values, **extra}, format="json")


def test_create_read_update_delete_with_audit(api, owner, organization, crisis_values):
    response = create(api, crisis_values)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 1 and body["title"] == "Checkout outage" and body["scenario_type"] == "crisis_management"
    assert body["values"]["stakeholders"][1] == {**crisis_values["stakeholders"][1], "department": "Legal", "source": "manual"}
    assert body["values"]["war_room_meeting_at"] == "2026-12-01T09:30:00+00:00"
    scenario_id = body["id"]
    assert api.get(f"/api/scenarios/{scenario_id}/").json()["values"] == body["values"]
    assert [s["id"] for s in api.get("/api/scenarios/").json()["results"]] == [scenario_id]

    patched = api.patch(f"/api/scenarios/{scenario_id}/", {"values": {"severity": "sev2"}}, format="json")
    assert patched.status_code == 200 and patched.json()["values"]["severity"] == "sev2"
    assert api.delete(f"/api/scenarios/{scenario_id}/").status_code == 204
    assert not Scenario.objects.filter(pk=scenario_id).exists()
    actions = list(AuditEvent.objects.filter(target_id=scenario_id).order_by("created_at").values_list("action", flat=True))
    assert actions == ["scenario.create", "scenario.update", "scenario.delete"]
    created = AuditEvent.objects.get(target_id=scenario_id, action="scenario.create")
    assert created.actor == owner and created.organization == organization
    assert "priya.raman@acme.example" not in str(created.changes)  # counts, not people's details


def test_legal_missing_then_fixed(api, crisis_values, directory):
    crisis_values["stakeholders"] = [stakeholder(directory["amara"], "engineering"), stakeholder(directory["ava"], "executive")]
    response = create(api, crisis_values)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"stakeholders": [LEGAL_MESSAGE]}
    assert response.json()["error"]["message"] == LEGAL_MESSAGE
    assert not Scenario.objects.exists()
    # Department Legal counts even with another role.
    crisis_values["stakeholders"].append(stakeholder(directory["priya"], "member"))
    assert create(api, crisis_values).status_code == 201


def test_security_breach_shows_ciso_fields_and_hidden_fields_are_neither_validated_nor_saved(api, crisis_values, directory):
    crisis_values["ciso"] = {"email": "not-an-email"}  # hidden for an outage: not validated
    crisis_values["breach_scope"] = "ignored"
    response = create(api, crisis_values)
    assert response.status_code == 201
    assert "ciso" not in response.json()["values"] and "breach_scope" not in response.json()["values"]

    crisis_values.pop("ciso")
    crisis_values.pop("breach_scope")
    crisis_values["crisis_type"] = "security_breach"
    response = create(api, crisis_values)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"ciso": ["CISO is required."], "breach_scope": ["Breach scope is required."]}
    crisis_values.update(ciso={"email": "marcus.okafor@acme.example"}, breach_scope="Customer DB snapshot, EU region", records_exposed=-3)
    response = create(api, crisis_values)
    assert response.json()["error"]["fields"] == {"records_exposed": ["Records exposed (estimate) must be at least 0."]}
    crisis_values["records_exposed"] = 1200
    response = create(api, crisis_values)
    assert response.status_code == 201
    # The CISO typed as an email is matched to the directory person.
    assert response.json()["values"]["ciso"] == person_value(directory["marcus"])


def test_validate_endpoint_saves_nothing_and_reports_types(api, crisis_values):
    crisis_values.update(severity="sev9", jira_project_key="ops-1", war_room_meeting_at="tomorrow", legal_templates={"url": "ftp://x"})
    response = api.post("/api/scenarios/crisis_management/validate", {"values": crisis_values}, format="json")
    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert response.json()["errors"] == {
        "severity": ["'sev9' is not one of the choices for Severity."],
        "war_room_meeting_at": ["War-room meeting must be a date and time (YYYY-MM-DDTHH:MM)."],
        "legal_templates": ["Legal templates: 'ftp://x' is not a web address (https://…)."],
        "jira_project_key": ["Jira project key must be 2–10 capital letters or digits, starting with a letter (e.g. OPS)."],
    }
    assert set(response.json()["hidden"]) == {"ciso", "breach_scope", "records_exposed", "regulators_notified"}
    assert not Scenario.objects.exists()


def test_deal_over_ten_million_needs_a_board_sponsor(api, directory):
    values = {
        "title": "Project Falcon",
        "deal": "006A0000001",
        "deal_value": {"amount": 12_500_000, "currency": "USD"},
        "summary": "Acquire Falcon Analytics.",
        "stakeholders": [stakeholder(directory["ava"], "executive")],
        "jira_project_key": "MA",
    }
    response = create(api, values, "mergers_acquisitions")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"board_sponsor": ["A deal over $10M needs a board sponsor."]}
    assert create(api, {**values, "deal_value": {"amount": 9_000_000, "currency": "USD"}}, "mergers_acquisitions").status_code == 201
    response = create(api, {**values, "board_sponsor": person_value(directory["ava"])}, "mergers_acquisitions")
    assert response.status_code == 201 and response.json()["values"]["deal_value"] == {"amount": 12_500_000, "currency": "USD"}


def test_populate_field_from_the_directory_keeps_provenance(api, organization, crisis_values, directory, ldap_integration):
    scenario_id = create(api, crisis_values).json()["id"]
    response = api.post(
        f"/api/scenarios/{scenario_id}/populate-field",
        {"field": "stakeholders", "connector": "ldap", "person_ids": [str(directory["marcus"].pk), str(directory["liam"].pk)]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["imported"] == 2
    emails = [s["email"] for s in body["value"]]
    assert emails == ["amara.nwosu@acme.example", "priya.raman@acme.example", "liam.novak@acme.example", "marcus.okafor@acme.example"]
    marcus = body["value"][3]
    assert (marcus["role"], marcus["source"], marcus["person_id"]) == ("security", "ldap", str(directory["marcus"].pk))
    items = {i["match"]: i for i in body["value_sources"]["items"]}
    assert items["marcus.okafor@acme.example"]["integration_id"] == str(ldap_integration.pk)
    assert items["marcus.okafor@acme.example"]["entity"] == "users"
    assert items["marcus.okafor@acme.example"]["external_id"].startswith("CN=Marcus Okafor")
    assert body["value_sources"]["origin"] == "mixed"  # two manual people plus two imported
    scenario = Scenario.objects.get(pk=scenario_id)
    assert scenario.value_sources["stakeholders"]["items"] == body["value_sources"]["items"]
    assert AuditEvent.objects.filter(action="scenario.populate_field", target_id=scenario_id).exists()
    # A later save that keeps the people keeps their provenance; a removed person loses it.
    values = dict(scenario.values)
    values["stakeholders"] = [s for s in values["stakeholders"] if s["email"] != "liam.novak@acme.example"]
    api.put(f"/api/scenarios/{scenario_id}/", {"values": values}, format="json")
    scenario.refresh_from_db()
    assert {i["match"] for i in scenario.value_sources["stakeholders"]["items"]} == {"marcus.okafor@acme.example"}


def test_populate_channels_from_synced_slack_records(api, crisis_values, slack_channels):
    crisis_values.pop("communication_channels")
    scenario_id = create(api, crisis_values).json()["id"]
    response = api.post(f"/api/scenarios/{scenario_id}/populate-field", {"field": "communication_channels", "external_ids": ["C001", "C003"]}, format="json")
    assert response.status_code == 200
    assert response.json()["value"] == [
        {"external_id": "C001", "name": "incident-response", "integration_id": str(slack_channels.pk)},
        {"external_id": "C003", "name": "press", "integration_id": str(slack_channels.pk)},
    ]
    assert [i["external_id"] for i in response.json()["value_sources"]["items"]] == ["C001", "C003"]


def test_populate_from_csv_reports_bad_rows_with_line_numbers(api, crisis_values, directory):
    scenario_id = create(api, crisis_values).json()["id"]
    csv_text = (
        "name,email,role\n"
        "Dana Scully,dana.scully@press.example,communications\n"
        "No Email,,legal\n"
        "Bad Role,bad.role@acme.example,ceo\n"
        "Liam Novak,LIAM.NOVAK@acme.example,communications\n"
        "\n"
        "Broken,not-an-email,member\n"
        "Dana Again,dana.scully@press.example,member\n"
    )
    upload = SimpleUploadedFile("team.csv", csv_text.encode(), content_type="text/csv")
    response = api.post(f"/api/scenarios/{scenario_id}/populate-field", {"field": "stakeholders", "file": upload}, format="multipart")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["errors"] == [
        {"line": 3, "message": "Line 3: email is missing."},
        {
            "line": 4,
            "message": "Line 4: 'ceo' is not a stakeholder role (use one of: communications, engineering, executive, finance, hr, legal, member, operations, security, support).",
        },
        {"line": 7, "message": "Line 7: 'not-an-email' is not an email address."},
        {"line": 8, "message": "Line 8: dana.scully@press.example is already on line 2."},
    ]
    added = {s["email"]: s for s in body["value"]}
    assert added["dana.scully@press.example"]["person_id"] is None and added["dana.scully@press.example"]["source"] == "csv"
    assert added["liam.novak@acme.example"]["person_id"] == str(directory["liam"].pk)  # matched to the directory
    items = {i["match"]: i for i in body["value_sources"]["items"]}
    assert items["dana.scully@press.example"]["line"] == 2 and items["dana.scully@press.example"]["filename"] == "team.csv"
    assert items["liam.novak@acme.example"]["line"] == 5


def test_csv_without_email_column_is_refused_and_nothing_changes(api, crisis_values):
    scenario_id = create(api, crisis_values).json()["id"]
    before = Scenario.objects.get(pk=scenario_id).values
    upload = SimpleUploadedFile("team.csv", b"full name,mail\nA,b@c.de\n", content_type="text/csv")
    response = api.post(f"/api/scenarios/{scenario_id}/populate-field", {"field": "stakeholders", "file": upload}, format="multipart")
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"] == "The CSV header must have name,email and optionally role columns; missing: name, email (found: full name, mail)."
    )
    assert Scenario.objects.get(pk=scenario_id).values == before


def test_claimed_provenance_is_verified(api, crisis_values, directory, other_organization):
    crisis_values["stakeholders"].append(stakeholder(directory["sofia"], "engineering"))
    claims = {
        "stakeholders": {
            "origin": "import",
            "items": [
                {"match": "sofia.garcia@acme.example", "source": "ldap", "integration_id": "00000000-0000-0000-0000-000000000000", "external_id": "forged"},
                {"match": "priya.raman@acme.example", "source": "csv", "line": 4, "filename": "legal.csv"},
            ],
        }
    }
    body = create(api, crisis_values, value_sources=claims).json()
    assert body["value_sources"]["stakeholders"]["items"] == [{"match": "priya.raman@acme.example", "source": "csv", "line": 4, "filename": "legal.csv"}]
    assert body["value_sources"]["stakeholders"]["origin"] == "mixed"


@pytest.mark.parametrize("role,can_write", [(Role.VIEWER, False), (Role.EDITOR, True), (Role.ADMIN, True)])
def test_roles(api_for, users_by_role, crisis_values, role, can_write):
    client = api_for(users_by_role[role])
    response = create(client, crisis_values)
    assert response.status_code == (201 if can_write else 403)
    assert client.get("/api/scenarios/").status_code == 200
    assert client.post("/api/scenarios/crisis_management/validate", {"values": crisis_values}, format="json").status_code == 200


def test_another_organizations_scenario_is_not_found(api, api_for, outsider, crisis_values):
    scenario_id = create(api, crisis_values).json()["id"]
    intruder = api_for(outsider)
    for method, url, payload in [
        ("get", f"/api/scenarios/{scenario_id}/", None),
        ("put", f"/api/scenarios/{scenario_id}/", {"values": crisis_values}),
        ("delete", f"/api/scenarios/{scenario_id}/", None),
        ("post", f"/api/scenarios/{scenario_id}/validate", {"values": crisis_values}),
        ("post", f"/api/scenarios/{scenario_id}/populate-field", {"field": "stakeholders", "connector": "ldap"}),
        ("post", f"/api/scenarios/{scenario_id}/upgrade", None),
    ]:
        response = getattr(intruder, method)(url, payload, format="json")
        assert response.status_code == 404, (method, url)
    assert intruder.get("/api/scenarios/").json()["results"] == []
    assert Scenario.objects.get(pk=scenario_id).values["title"] == "Checkout outage"
