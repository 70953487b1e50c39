"""Load the Crisis Management, Product Launch and M&A definitions so every install has them."""

from django.db import migrations
from django.utils import timezone


def load(apps, schema_editor):
    from scenarios.definitions import SHIPPED_DEFINITIONS
    from scenarios.spec import data_source_mappings

    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    for definition in SHIPPED_DEFINITIONS:
        if ScenarioDataModel.objects.filter(scenario_type=definition["scenario_type"]).exists():
            continue
        ScenarioDataModel.objects.create(
            scenario_type=definition["scenario_type"],
            version=1,
            name=definition["name"],
            description=definition["description"],
            field_definitions=definition["field_definitions"],
            data_source_mappings=data_source_mappings(definition["field_definitions"]),
            validation_rules=definition["validation_rules"],
            is_published=True,
            published_at=timezone.now(),
            change_note="Shipped with Bastion.",
        )


def unload(apps, schema_editor):
    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    ScenarioDataModel.objects.filter(version=1, change_note="Shipped with Bastion.", scenarios__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("scenarios", "0003_definition_publishing")]
    operations = [migrations.RunPython(load, unload)]
