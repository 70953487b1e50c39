"""M&A gains the financial model workbook, the close date and the synergy targets (filled from the workbook).

Fresh installs load them with version 1 (0004 reads scenarios.definitions); an install whose M&A definition predates
them gets a new published version (published versions are never edited), so existing scenarios upgrade explicitly.
"""

from django.db import migrations

NOTE = "Shipped with Bastion: the financial model workbook fills deal value, close date and synergy targets."


def add_fields(apps, schema_editor):
    from scenarios.definition_upgrades import definition_fields_add
    from scenarios.definitions import WORKBOOK_FIELDS

    definition_fields_add(apps, scenario_type="mergers_acquisitions", fields=WORKBOOK_FIELDS, after_key="deal_value", note=NOTE)


def remove_fields(apps, schema_editor):
    from scenarios.definition_upgrades import definition_fields_remove

    definition_fields_remove(apps, scenario_type="mergers_acquisitions", note=NOTE)


class Migration(migrations.Migration):
    dependencies = [("scenarios", "0004_shipped_definitions")]
    operations = [migrations.RunPython(add_fields, remove_fields)]
