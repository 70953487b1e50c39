"""The shipped scenarios use the product note's remaining systems where a company has them.

Crisis: incident history from PagerDuty or ServiceNow. Product launch: features in Productboard or Aha!, customer feedback
from Intercom, metrics from Amplitude, a Brandfolder collection, and the timeline from Jira or Asana. M&A: a DocuSign
signature template and its signers, integration tasks from Jira or Asana, the model in Excel or Google Sheets.
Fresh installs load them with version 1 (0004 reads scenarios.definitions); an older install gets a new published version
per type (published versions are never edited) with the new fields and the fields' new sources and help texts.
"""

from django.db import migrations

NOTE = "Shipped with Bastion: sources from ServiceNow, Asana, Productboard, Aha!, Intercom, Amplitude, Brandfolder, DocuSign and Google Sheets."


def _shipped(scenario_type: str) -> dict:
    from scenarios.definitions import SHIPPED_DEFINITIONS

    definition = next(d for d in SHIPPED_DEFINITIONS if d["scenario_type"] == scenario_type)
    return {f["key"]: f for f in definition["field_definitions"]}


def upgrade(apps, schema_editor):
    from scenarios.definition_upgrades import definition_fields_add
    from scenarios.definitions import LAUNCH_PRODUCT_FIELDS, SIGNATURE_FIELDS

    crisis = _shipped("crisis_management")
    definition_fields_add(apps, scenario_type="crisis_management", fields=[], after_key="", note=NOTE, replace=(crisis["incident_history"],))
    launch = _shipped("product_launch")
    replaced = tuple(launch[k] for k in ("launch_timeline", "product_specs", "marketing_assets", "competitive_intel"))
    definition_fields_add(apps, scenario_type="product_launch", fields=LAUNCH_PRODUCT_FIELDS, after_key="product_specs", note=NOTE, replace=replaced)
    deal = _shipped("mergers_acquisitions")
    replaced = tuple(deal[k] for k in ("integration_tasks", "financial_model", "financial_models"))
    definition_fields_add(apps, scenario_type="mergers_acquisitions", fields=SIGNATURE_FIELDS, after_key="synergy_targets", note=NOTE, replace=replaced)


def downgrade(apps, schema_editor):
    from scenarios.definition_upgrades import definition_fields_remove

    for scenario_type in ("crisis_management", "product_launch", "mergers_acquisitions"):
        definition_fields_remove(apps, scenario_type=scenario_type, note=NOTE)


class Migration(migrations.Migration):
    dependencies = [("scenarios", "0006_crisis_legal_template_file")]
    operations = [migrations.RunPython(upgrade, downgrade)]
