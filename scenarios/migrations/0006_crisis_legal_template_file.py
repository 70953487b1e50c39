"""Crisis Management gains the legal template file (a document in a connected documents tool) that activation copies.

Fresh installs load it with version 1 (0004 reads scenarios.definitions); an install whose crisis definition predates it
gets a new published version (published versions are never edited), so existing scenarios upgrade explicitly.
"""

from django.db import migrations

NOTE = "Shipped with Bastion: a legal template file that activation copies into the incident's folder and shares."


def add_field(apps, schema_editor):
    from scenarios.definition_upgrades import definition_fields_add
    from scenarios.definitions import LEGAL_TEMPLATE_FIELDS

    definition_fields_add(apps, scenario_type="crisis_management", fields=LEGAL_TEMPLATE_FIELDS, after_key="legal_templates", note=NOTE)


def remove_field(apps, schema_editor):
    from scenarios.definition_upgrades import definition_fields_remove

    definition_fields_remove(apps, scenario_type="crisis_management", note=NOTE)


class Migration(migrations.Migration):
    dependencies = [("scenarios", "0005_ma_workbook_fields")]
    operations = [migrations.RunPython(add_field, remove_field)]
