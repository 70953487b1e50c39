"""The admin's structured definition editor: refuses broken definitions precisely, previews, versions on save."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from scenarios.models import ScenarioDataModel


@pytest.fixture
def staff_client(make_user) -> Client:
    client = Client()
    client.force_login(make_user(None, is_staff=True, is_superuser=True, username="ops"))
    return client


def editor_post(fields: list[dict[str, str]], rules: list[dict[str, str]], action: str = "_save", **meta) -> dict[str, str]:
    data = {"scenario_type": "tabletop_exercise", "name": "Tabletop exercise", "description": "", "change_note": "", "publish": "on", action: "1"}
    data.update(meta)
    data.update({"fields-TOTAL_FORMS": str(len(fields)), "fields-INITIAL_FORMS": "0", "fields-MIN_NUM_FORMS": "0", "fields-MAX_NUM_FORMS": "1000"})
    for index, row in enumerate(fields):
        data.update({f"fields-{index}-{k}": v for k, v in row.items()})
        data[f"fields-{index}-ORDER"] = str(index + 1)
    data.update({"rules-TOTAL_FORMS": str(len(rules)), "rules-INITIAL_FORMS": "0", "rules-MIN_NUM_FORMS": "0", "rules-MAX_NUM_FORMS": "1000"})
    for index, row in enumerate(rules):
        data.update({f"rules-{index}-{k}": v for k, v in row.items()})
    return data


FIELDS = [
    {"key": "title", "label": "Title", "type": "text", "required": "on"},
    {"key": "scope", "label": "Scope", "type": "select", "options": "internal|Internal\npublic|Public"},
    {
        "key": "facilitator",
        "label": "Facilitator",
        "type": "person",
        "source_connector": "ldap",
        "source_entity": "users",
        "source_mapping": "$.email",
        "source_label": "Active Directory",
        "visible_if": json.dumps({"==": [{"var": "scope"}, "public"]}),
    },
]
RULES = [
    {
        "key": "facilitator_needed",
        "message": "Public exercises need a facilitator.",
        "fields": "facilitator",
        "rule": json.dumps({"!!": [{"var": "facilitator"}]}),
    }
]


def test_structured_editor_refuses_a_broken_definition_with_a_precise_message(staff_client):
    broken = [dict(row) for row in FIELDS]
    broken[2]["source_mapping"] = "$..[email"
    broken[2]["visible_if"] = json.dumps({"==": [{"var": "audience"}, "public"]})
    response = staff_client.post("/admin/scenarios/scenariodatamodel/structure/new/", editor_post(broken, RULES))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Field &#x27;facilitator&#x27;, source.mapping: &#x27;$..[email&#x27; is not valid JSONPath" in html
    assert "Field &#x27;facilitator&#x27;, visible_if: names field &#x27;audience&#x27;, which does not exist" in html
    assert not ScenarioDataModel.objects.filter(scenario_type="tabletop_exercise").exists()

    rules = [dict(RULES[0], rule=json.dumps({"!!": [{"var": "sponsor"}]}))]
    response = staff_client.post("/admin/scenarios/scenariodatamodel/structure/new/", editor_post(FIELDS, rules))
    assert "Rule &#x27;facilitator_needed&#x27;, rule: names field &#x27;sponsor&#x27;, which does not exist" in response.content.decode()
    assert not ScenarioDataModel.objects.filter(scenario_type="tabletop_exercise").exists()


def test_structured_editor_previews_saves_and_versions(staff_client):
    preview = staff_client.post("/admin/scenarios/scenariodatamodel/structure/new/", editor_post(FIELDS, RULES, action="_preview"))
    assert preview.status_code == 200
    html = preview.content.decode()
    assert 'id="definition-preview"' in html and 'name="facilitator"' in html and "Active Directory · not connected" in html and "Shown when:" in html
    assert not ScenarioDataModel.objects.filter(scenario_type="tabletop_exercise").exists()

    saved = staff_client.post("/admin/scenarios/scenariodatamodel/structure/new/", editor_post(FIELDS, RULES))
    v1 = ScenarioDataModel.objects.get(scenario_type="tabletop_exercise")
    assert saved.status_code == 302 and saved["Location"] == f"/admin/scenarios/scenariodatamodel/{v1.pk}/structure/"
    assert [f["key"] for f in v1.field_definitions] == ["title", "scope", "facilitator"]
    assert v1.field_definitions[2]["source"] == {"connector": "ldap", "entity": "users", "mapping": "$.email", "label": "Active Directory"}
    assert v1.data_source_mappings == {"facilitator": v1.field_definitions[2]["source"]}
    assert v1.validation_rules == [
        {"key": "facilitator_needed", "message": "Public exercises need a facilitator.", "rule": {"!!": [{"var": "facilitator"}]}, "fields": ["facilitator"]}
    ]

    page = staff_client.get(f"/admin/scenarios/scenariodatamodel/{v1.pk}/structure/")
    assert page.status_code == 200 and 'value="facilitator"' in page.content.decode()
    edited = [dict(row) for row in FIELDS] + [{"key": "notes", "label": "Notes", "type": "long_text"}]
    staff_client.post(f"/admin/scenarios/scenariodatamodel/{v1.pk}/structure/", editor_post(edited, RULES))
    versions = list(ScenarioDataModel.objects.filter(scenario_type="tabletop_exercise").order_by("version"))
    assert [(m.version, len(m.field_definitions)) for m in versions] == [(1, 3), (2, 4)]


def test_raw_admin_form_refuses_a_broken_definition_too(staff_client):
    crisis = ScenarioDataModel.objects.get(scenario_type="crisis_management")
    fields = [f for f in crisis.field_definitions if f["key"] != "ciso"]
    data = {
        "name": crisis.name,
        "description": crisis.description,
        "field_definitions": json.dumps(fields),
        "validation_rules": json.dumps(crisis.validation_rules),
        "is_published": "on",
        "change_note": "",
    }
    response = staff_client.post(f"/admin/scenarios/scenariodatamodel/{crisis.pk}/change/", data)
    assert response.status_code == 200
    assert "Field &#x27;ciso&#x27;, key: is missing: playbooks for &#x27;crisis_management&#x27; rely on field &#x27;ciso&#x27;" in response.content.decode()
    assert ScenarioDataModel.objects.filter(scenario_type="crisis_management").count() == 1


def test_structured_editor_saves_an_existing_definition_without_its_disabled_type(staff_client):
    """A browser does not post the disabled "Scenario type" input: saving must still work (it used to fail, required)."""
    staff_client.post("/admin/scenarios/scenariodatamodel/structure/new/", editor_post(FIELDS, RULES))
    v1 = ScenarioDataModel.objects.get(scenario_type="tabletop_exercise")
    posted = editor_post([dict(row) for row in FIELDS] + [{"key": "notes", "label": "Notes", "type": "long_text"}], RULES)
    del posted["scenario_type"]  # what the browser sends
    response = staff_client.post(f"/admin/scenarios/scenariodatamodel/{v1.pk}/structure/", posted)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ScenarioDataModel.objects.filter(scenario_type="tabletop_exercise").count() == 2
    tampered = editor_post(FIELDS, RULES, scenario_type="crisis_management")  # a forged type is ignored, never moved
    staff_client.post(f"/admin/scenarios/scenariodatamodel/{v1.pk}/structure/", tampered)
    assert not ScenarioDataModel.objects.filter(scenario_type="crisis_management", name="Tabletop exercise").exists()
