"""Templates as code: YAML export valid against the published JSON Schema, import with versions, diff, restore, dry run."""

from __future__ import annotations

import jsonschema
import pytest
import yaml
from django.test import Client

from playbooks.as_code.models import PlaybookTemplateVersion
from playbooks.models import Playbook, PlaybookTemplate
from scenarios.models import Scenario
from tests.playbooks.conftest import created


@pytest.fixture
def staff_api(make_user, organization, api_for):
    return api_for(make_user("owner", organization, username="operator", is_staff=True))


def test_export_import_versions_diff_and_restore(staff_api, api, crisis_template):
    schema = staff_api.get("/api/template-files/schema.json").json()
    exported = staff_api.get(f"/api/template-files/{crisis_template.pk}.yaml")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("application/yaml")
    document = yaml.safe_load(exported.content)
    jsonschema.Draft202012Validator(schema).validate(document)
    assert [v["number"] for v in staff_api.get(f"/api/template-files/{crisis_template.pk}/versions/").json()] == [1]
    staff_api.get(f"/api/template-files/{crisis_template.pk}.yaml")
    assert PlaybookTemplateVersion.objects.filter(template=crisis_template).count() == 1  # unchanged: no new version

    # A change as code: rename a step and put an approval in front of the e-mails.
    document["steps"][0]["name"] = "Open the crisis channel"
    document["steps"].append(
        {
            "key": "approve_mail",
            "name": "Approve the e-mails",
            "connector_key": "bastion",
            "action": "approval",
            "payload_template": {"approvers": [{"role": "admin"}], "timeout_minutes": 30},
        }
    )
    next(s for s in document["steps"] if s["key"] == "notify_stakeholders")["depends_on"] = ["approve_mail"]
    text = yaml.safe_dump(document, sort_keys=False)
    answer = staff_api.post("/api/template-files/", text, content_type="application/yaml")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["changed"] and answer.json()["version"]["number"] == 2
    crisis_template.refresh_from_db()
    assert crisis_template.steps.get(key="create_channel").name == "Open the crisis channel"
    assert crisis_template.steps.get(key="notify_stakeholders").depends_on == ["approve_mail"]
    again = staff_api.post("/api/template-files/", {"yaml": text}, format="json")
    assert again.status_code == 200 and not again.json()["changed"] and again.json()["version"]["number"] == 2
    diff = staff_api.get(f"/api/template-files/{crisis_template.pk}/versions/2/diff/").json()["diff"]
    assert "-  name: Create the crisis channel" in diff and "+  name: Open the crisis channel" in diff and "+- key: approve_mail" in diff

    # Only operators change the shared templates.
    assert api.post("/api/template-files/", text, content_type="application/yaml").status_code == 403
    assert api.post(f"/api/template-files/{crisis_template.pk}/versions/1/restore/").status_code == 403

    restored = staff_api.post(f"/api/template-files/{crisis_template.pk}/versions/1/restore/")
    assert restored.status_code == 200 and restored.json()["number"] == 3 and restored.json()["note"] == "Restored from v1"
    crisis_template.refresh_from_db()
    assert crisis_template.steps.get(key="create_channel").name == "Create the crisis channel"
    assert not crisis_template.steps.filter(key="approve_mail").exists()
    assert (
        PlaybookTemplateVersion.objects.get(template=crisis_template, number=3).digest
        == PlaybookTemplateVersion.objects.get(template=crisis_template, number=1).digest
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("steps: [unclosed", "Not YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("format: bastion/playbook-template@1\nscenario_type: crisis_management\nname: X\nsteps: []\n", "steps: [] should be non-empty"),
        (
            "format: bastion/playbook-template@1\nscenario_type: crisis_management\nname: X\nsteps:\n- {key: a, name: A, connector_key: slack, action: post_message, colour: red}\n",
            "Additional properties are not allowed ('colour'",
        ),
        (
            "format: bastion/playbook-template@1\nscenario_type: crisis_management\nname: X\nsteps:\n- {key: a, name: A, connector_key: slack, action: post_message, depends_on: [b]}\n",
            "depends on unknown step 'b'",
        ),
        (
            "format: bastion/playbook-template@1\nscenario_type: crisis_management\nname: X\nsteps:\n- {key: a, name: A, connector_key: bastion, action: approval, payload_template: {approvers: [{role: admin}]}}\n",
            "timeout_minutes is required",
        ),
        (
            "format: bastion/playbook-template@1\nscenario_type: crisis_management\nname: X\nsteps:\n- {key: a, name: A, connector_key: slack, action: post_message, payload_template: {text: '{{ secrets.key }}'}}\n",
            "secrets",
        ),
        (
            "format: bastion/playbook-template@1\nscenario_type: crisis_management\nname: X\nsteps:\n- {key: a, name: A, connector_key: slack, action: post_message, condition: {method: [a, b]}}\n",
            "unknown operator 'method'",
        ),
    ],
)
def test_invalid_files_are_refused_with_every_problem(staff_api, text, problem):
    before = PlaybookTemplate.objects.count()
    answer = staff_api.post("/api/template-files/", text, content_type="application/yaml")
    assert answer.status_code == 400
    assert any(problem in message for message in answer.json()["error"]["fields"]["yaml"]), answer.json()
    assert PlaybookTemplate.objects.count() == before


def test_admin_shows_the_diff_and_restores(make_user, crisis_template, staff_api):
    document = yaml.safe_load(staff_api.get(f"/api/template-files/{crisis_template.pk}.yaml").content)
    document["description"] = "Edited as code"
    staff_api.post("/api/template-files/", yaml.safe_dump(document), content_type="application/yaml")
    admin_user = make_user(None, username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    version = PlaybookTemplateVersion.objects.get(template=crisis_template, number=2)
    page = client.get(f"/admin/playbooks/playbooktemplateversion/{version.pk}/change/").content.decode()
    assert "+description: Edited as code" in page
    first = PlaybookTemplateVersion.objects.get(template=crisis_template, number=1)
    client.post("/admin/playbooks/playbooktemplateversion/", {"action": "restore", "_selected_action": [str(first.pk)]})
    crisis_template.refresh_from_db()
    assert crisis_template.description != "Edited as code" and crisis_template.versions.count() == 3


def test_dry_run_renders_every_step_against_the_sandbox_and_creates_nothing(api, crisis_template, actions_integration, sandbox):
    before = (Scenario.objects.count(), Playbook.objects.count())
    bindings = {key: str(actions_integration.pk) for key in ("slack", "jira", "google_calendar", "email")}
    answer = api.post(
        f"/api/template-files/{crisis_template.pk}/dry-run/",
        {
            "values": {
                "title": "Dry DB outage",
                "severity": "sev3",
                "crisis_type": "service_outage",
                "stakeholders": [{"email": "ava.chen@acme.example", "name": "Ava"}],
            },
            "integration_bindings": bindings,
        },
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    steps = {s["key"]: s for s in answer.json()}
    assert steps["create_channel"]["sample_payload"]["name"].endswith("dry-db-outage") and steps["create_channel"]["blocked_reason"] == ""
    assert steps["create_tasks"]["count"] == 17 and steps["notify_stakeholders"]["count"] == 1
    assert steps["brief_ciso"]["will_run"] is False and "Not needed" in steps["brief_ciso"]["description"]
    assert steps["page_on_call"]["will_run"] is False  # sev3
    assert created(sandbox) == [] and (Scenario.objects.count(), Playbook.objects.count()) == before
