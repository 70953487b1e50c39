"""Shipped definitions, definition checks (refused with what and where), versioning and upgrades."""

from __future__ import annotations

import copy

import pytest

from accounts.models import AuditEvent
from common.errors import ApplicationError
from integrations.registry import connector_classes
from scenarios.definitions import SHIPPED_DEFINITIONS
from scenarios.models import Scenario, ScenarioDataModel
from scenarios.services import data_model_revise, scenario_create, scenario_upgrade, scenario_upgrade_preview
from scenarios.spec import CONTRACT_KEYS, definition_problems


def latest(scenario_type: str) -> ScenarioDataModel:
    return ScenarioDataModel.objects.filter(scenario_type=scenario_type).order_by("-version").first()


def test_data_migration_loads_the_three_definitions(db):
    loaded = {m.scenario_type: m for m in ScenarioDataModel.objects.all()}
    assert set(loaded) == {"crisis_management", "product_launch", "mergers_acquisitions"}
    for scenario_type, data_model in loaded.items():
        assert data_model.version == 1 and data_model.is_published
        keys = [f["key"] for f in data_model.field_definitions]
        assert set(CONTRACT_KEYS[scenario_type]) <= set(keys)
        assert data_model.data_source_mappings == {f["key"]: f["source"] for f in data_model.field_definitions if f.get("source")}
    crisis = {f["key"]: f for f in loaded["crisis_management"].field_definitions}
    assert crisis["stakeholders"]["source"]["connector"] == "ldap"
    assert {a["connector"] for a in crisis["stakeholders"]["source"]["alternatives"]} == {"okta", "entra"}
    assert crisis["communication_channels"]["source"]["connector"] == "slack" and crisis["communication_channels"]["multiple"] is True
    assert crisis["incident_history"]["source"] == {**crisis["incident_history"]["source"], "connector": "pagerduty", "entity": "incidents"}
    assert crisis["media_contacts"]["source"]["connector"] == "hubspot"
    assert crisis["legal_templates"]["type"] == "document_link"
    assert crisis["jira_project_key"]["default"] == "OPS"
    assert {o["value"] for o in crisis["severity"]["options"]} == {"sev1", "sev2", "sev3", "sev4"}
    assert "security_breach" in {o["value"] for o in crisis["crisis_type"]["options"]}
    assert crisis["ciso"]["visible_if"] == crisis["breach_scope"]["visible_if"] == {"==": [{"var": "crisis_type"}, "security_breach"]}
    ma = {f["key"]: f for f in loaded["mergers_acquisitions"].field_definitions}
    assert ma["deal"]["source"]["connector"] == "salesforce" and ma["deal"]["source"]["alternatives"] == [{"connector": "hubspot", "entity": "deals"}]
    assert ma["integration_tasks"]["source"]["connector"] == "jira"
    launch = {f["key"]: f for f in loaded["product_launch"].field_definitions}
    # Sources Bastion has no connector for stay visible as manual fields.
    assert launch["competitive_intel"]["type"] == "long_text" and "source" not in launch["competitive_intel"]
    assert launch["marketing_assets"]["type"] == "document_link"


@pytest.mark.parametrize("definition", SHIPPED_DEFINITIONS, ids=lambda d: d["scenario_type"])
def test_shipped_definitions_pass_the_checks_against_installed_connectors(db, definition):
    assert definition_problems(definition["field_definitions"], definition["validation_rules"], scenario_type=definition["scenario_type"]) == []


def _crisis() -> tuple[ScenarioDataModel, list, list]:
    data_model = latest("crisis_management")
    return data_model, copy.deepcopy(data_model.field_definitions), copy.deepcopy(data_model.validation_rules)


def _field(fields: list, key: str) -> dict:
    return next(f for f in fields if f["key"] == key)


def _installed_connector_with_entities() -> tuple[str, list[str]]:
    for key, connector in sorted(connector_classes().items()):
        entities = [e.key for e in connector.manifest.entities]
        if entities:
            return key, entities
    raise AssertionError("no installed connector declares entities")


BROKEN = {
    "bad_jsonpath": (
        lambda f, r: _field(f, "stakeholders")["source"].update(mapping="$.[email"),
        "Field 'stakeholders', source.mapping: '$.[email' is not valid JSONPath",
    ),
    "jsonpath_without_root": (
        lambda f, r: _field(f, "ciso")["source"].update(options_label="name"),
        "Field 'ciso', source.options_label: 'name' is not valid JSONPath",
    ),
    "unknown_connector": (
        lambda f, r: _field(f, "communication_channels")["source"].update(connector="nosuchvendor"),
        "Field 'communication_channels', source.connector: 'nosuchvendor' is not a known connector",
    ),
    "rule_names_missing_field": (
        lambda f, r: r[0].update(rule={"some": [{"var": "crisis_team"}, {"==": [{"var": "role"}, "legal"]}]}),
        "Rule 'legal_on_crisis_team', rule: names field 'crisis_team', which does not exist",
    ),
    "rule_fields_missing": (lambda f, r: r[0].update(fields=["team"]), "Rule 'legal_on_crisis_team', fields: names field 'team', which does not exist"),
    "condition_names_missing_field": (
        lambda f, r: _field(f, "ciso").update(visible_if={"==": [{"var": "crisis_kind"}, "security_breach"]}),
        "Field 'ciso', visible_if: names field 'crisis_kind', which does not exist",
    ),
    "condition_cycle": (
        lambda f, r: (
            _field(f, "breach_scope").update(visible_if={"!!": [{"var": "records_exposed"}]}),
            _field(f, "records_exposed").update(visible_if={"!!": [{"var": "breach_scope"}]}),
        ),
        "visible_if: conditions form a cycle: breach_scope → records_exposed → breach_scope",
    ),
    "self_condition": (lambda f, r: _field(f, "summary").update(visible_if={"!!": [{"var": "summary"}]}), "conditions form a cycle: summary → summary"),
    "unknown_operator": (
        lambda f, r: _field(f, "ciso").update(visible_if={"method": [{"var": "crisis_type"}, "upper"]}),
        "Field 'ciso', visible_if: is not valid JSON Logic: unknown operator 'method'",
    ),
    "duplicate_key": (lambda f, r: f.append({"key": "title", "label": "Again", "type": "text"}), "Field 'title', key: is used by more than one field"),
    "bad_regex": (
        lambda f, r: _field(f, "jira_project_key")["validation"].update(regex="[A-Z"),
        "Field 'jira_project_key', validation.regex: '[A-Z' is not a valid regular expression",
    ),
    "contract_key_removed": (lambda f, r: f.remove(_field(f, "ciso")), "Field 'ciso', key: is missing: playbooks for 'crisis_management' rely on field 'ciso'"),
    "unknown_type": (lambda f, r: _field(f, "summary").update(type="essay"), "Field 'summary', type: 'essay' is not a field type"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_definitions_are_refused_with_what_and_where(db, case):
    data_model, fields, rules = _crisis()
    mutate, expected = BROKEN[case]
    mutate(fields, rules)
    with pytest.raises(ApplicationError) as caught:
        data_model_revise(data_model=data_model, field_definitions=fields, validation_rules=rules)
    assert caught.value.code == "definition_invalid"
    assert any(expected in message for message in caught.value.fields["field_definitions"]), caught.value.fields
    assert ScenarioDataModel.objects.filter(scenario_type="crisis_management").count() == 1
    assert latest("crisis_management").field_definitions == data_model.field_definitions


def test_unknown_entity_of_an_installed_connector_is_refused(db):
    connector, entities = _installed_connector_with_entities()
    data_model, fields, rules = _crisis()
    _field(fields, "incident_history")["source"].update(connector=connector, entity="no_such_entity")
    with pytest.raises(ApplicationError) as caught:
        data_model_revise(data_model=data_model, field_definitions=fields, validation_rules=rules)
    assert (
        f"Field 'incident_history', source.entity: '{connector}' has no entity 'no_such_entity' (it has: {', '.join(entities)})"
        in caught.value.fields["field_definitions"]
    )


def test_editing_a_published_version_creates_a_new_one_and_existing_scenarios_keep_theirs(organization, owner, crisis_values):
    v1 = latest("crisis_management")
    old = scenario_create(organization=organization, scenario_type="crisis_management", values=crisis_values, actor=owner)
    _, fields, rules = _crisis()
    fields.append(
        {
            "key": "customer_impact",
            "label": "Customer impact",
            "type": "select",
            "options": [{"value": "low", "label": "Low"}, {"value": "high", "label": "High"}],
        }
    )
    fields.remove(_field(fields, "legal_templates"))
    _field(fields, "severity")["default"] = "sev1"
    v2 = data_model_revise(data_model=v1, field_definitions=fields, validation_rules=rules, change_note="Customer impact", actor=owner)
    assert (v2.version, v2.is_published, v2.pk != v1.pk) == (2, True, True)
    v1.refresh_from_db()
    assert v1.field_definitions != v2.field_definitions and "customer_impact" not in [f["key"] for f in v1.field_definitions]
    old.refresh_from_db()
    assert old.data_model_id == v1.pk
    new = scenario_create(organization=organization, scenario_type="crisis_management", values=crisis_values, actor=owner)
    assert new.data_model_id == v2.pk
    assert AuditEvent.objects.filter(action="scenario_data_model.create", target_id=str(v2.pk)).exists()

    old.values["legal_templates"] = {"url": "https://docs.acme.example/holding", "title": "Holding statement"}
    old.save()
    diff = scenario_upgrade_preview(scenario=old)
    assert diff["from_version"] == 1 and diff["to_version"] == 2 and not diff["is_current"]
    assert [f["key"] for f in diff["fields_added"]] == ["customer_impact"]
    assert [f["key"] for f in diff["fields_removed"]] == ["legal_templates"]
    assert diff["fields_changed"] == [{"key": "severity", "label": "Severity", "changes": {"default": {"from": "sev2", "to": "sev1"}}}]
    assert diff["values_dropped"] == ["legal_templates"]
    old.refresh_from_db()
    assert old.data_model_id == v1.pk  # a preview changes nothing

    upgraded, _ = scenario_upgrade(scenario=old, actor=owner)
    assert upgraded.data_model_id == v2.pk and "legal_templates" not in upgraded.values
    assert upgraded.values["stakeholders"] == Scenario.objects.get(pk=new.pk).values["stakeholders"]
    assert AuditEvent.objects.filter(action="scenario.upgrade", target_id=str(old.pk), changes__version=[1, 2]).exists()


def test_a_draft_is_edited_in_place(db, owner):
    v1 = latest("product_launch")
    _, fields, rules = copy.deepcopy(v1), copy.deepcopy(v1.field_definitions), copy.deepcopy(v1.validation_rules)
    draft = data_model_revise(data_model=v1, field_definitions=fields, validation_rules=rules, publish=False, actor=owner)
    assert draft.version == 2 and not draft.is_published
    fields[0]["label"] = "Launch name"
    same = data_model_revise(data_model=draft, field_definitions=fields, validation_rules=rules, publish=True, actor=owner)
    assert same.pk == draft.pk and same.is_published and same.field_definitions[0]["label"] == "Launch name"
