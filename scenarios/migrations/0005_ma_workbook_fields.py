"""M&A gains the financial model workbook, the close date and the synergy targets (filled from the workbook).

Fresh installs load them with version 1 (0004 reads scenarios.definitions); an install whose M&A definition predates
them gets a new published version (published versions are never edited), so existing scenarios upgrade explicitly.
"""

from django.db import migrations
from django.utils import timezone

NOTE = "Shipped with Bastion: the financial model workbook fills deal value, close date and synergy targets."


def add_fields(apps, schema_editor):
    from scenarios.definitions import WORKBOOK_FIELDS
    from scenarios.spec import data_source_mappings

    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    latest = ScenarioDataModel.objects.filter(scenario_type="mergers_acquisitions").order_by("-version").first()
    if latest is None:
        return
    keys = {f.get("key") for f in latest.field_definitions}
    missing = [f for f in WORKBOOK_FIELDS if f["key"] not in keys]
    if not missing:
        return
    fields = list(latest.field_definitions)
    after = next((i + 1 for i, f in enumerate(fields) if f.get("key") == "deal_value"), len(fields))
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


def remove_fields(apps, schema_editor):
    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    ScenarioDataModel.objects.filter(scenario_type="mergers_acquisitions", change_note=NOTE, scenarios__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("scenarios", "0004_shipped_definitions")]
    operations = [migrations.RunPython(add_fields, remove_fields)]
