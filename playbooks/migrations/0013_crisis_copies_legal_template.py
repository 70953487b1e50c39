"""The shipped crisis template copies the scenario's legal template into the incident's folder, shared with the team.

The step names the documents role: SharePoint/OneDrive today, whichever documents tool the organization connects. It is
optional and runs only when the scenario names a template file, so organizations without a documents tool are unaffected.
"""

from django.db import migrations

STEP = {
    "key": "copy_legal_template",
    "name": "Copy the legal template for the crisis team",
    "connector_key": "@documents",
    "action": "copy_document",
    "is_required": False,
    "condition": {"!!": [{"var": "legal_template_file.id"}]},
    "payload_template": {
        "source": "{{ scenario.legal_template_file.id }}",
        "folder": "Incidents/{{ playbook.date }} {{ scenario.title | slug }}",
        "share_with": "{{ scenario.stakeholders | emails }}",
        "share_role": "write",
    },
    "description": "copies {{ scenario.legal_template_file.name }} into the incident folder, shared with {{ payload.share_with | count }} people",
}


def add_step(apps, schema_editor):
    PlaybookStepTemplate = apps.get_model("playbooks", "PlaybookStepTemplate")
    PlaybookTemplate = apps.get_model("playbooks", "PlaybookTemplate")
    template = PlaybookTemplate.objects.filter(scenario_type="crisis_management", name="Crisis response").first()
    if template is None or template.steps.filter(key=STEP["key"]).exists():
        return
    after = template.steps.filter(key="book_war_room").values_list("position", flat=True).first()
    PlaybookStepTemplate.objects.create(template=template, position=(after or 0) + 5, **STEP)


def remove_step(apps, schema_editor):
    PlaybookStepTemplate = apps.get_model("playbooks", "PlaybookStepTemplate")
    PlaybookStepTemplate.objects.filter(template__scenario_type="crisis_management", key=STEP["key"]).delete()


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0012_role_based_steps")]
    operations = [migrations.RunPython(add_step, remove_step)]
