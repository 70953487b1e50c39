"""Crisis Management gains the legal template file (a document in a connected documents tool) that activation copies.

Fresh installs load it with version 1 (0004 reads scenarios.definitions); an install whose crisis definition predates it
gets a new published version (published versions are never edited), so existing scenarios upgrade explicitly.
"""

from django.db import migrations
from django.utils import timezone

NOTE = "Shipped with Bastion: a legal template file that activation copies into the incident's folder and shares."


def add_field(apps, schema_editor):
    from scenarios.definitions import LEGAL_TEMPLATE_FIELDS
    from scenarios.spec import data_source_mappings

    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    latest = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    if latest is None:
        return
    keys = {f.get("key") for f in latest.field_definitions}
    missing = [f for f in LEGAL_TEMPLATE_FIELDS if f["key"] not in keys]
    if not missing:
        return
    fields = list(latest.field_definitions)
    after = next((i + 1 for i, f in enumerate(fields) if f.get("key") == "legal_templates"), len(fields))
    fields[after:after] = missing
    ScenarioDataModel.objects.create(
        scenario_type=latest.scenario_type,
        version=latest.version + 1,
        name=latest.name,
        description=latest.description,
        field_definitions=fields,
        data_source_mappings=data_source_mappings(fields),
        validation_rules=latest.validation_rules,
        is_published=True,
        published_at=timezone.now(),
        change_note=NOTE,
    )


def remove_field(apps, schema_editor):
    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    ScenarioDataModel.objects.filter(scenario_type="crisis_management", change_note=NOTE, scenarios__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("scenarios", "0005_ma_workbook_fields")]
    operations = [migrations.RunPython(add_field, remove_field)]
