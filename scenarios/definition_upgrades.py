"""Data migrations that add shipped fields to a scenario type: a new published version, never an edited one."""

from __future__ import annotations

from typing import Any

from django.utils import timezone


def definition_fields_add(apps: Any, *, scenario_type: str, fields: list[dict[str, Any]], after_key: str, note: str) -> None:
    """Publish a new version of the latest definition with the missing `fields` after `after_key` (fresh installs have them)."""
    from scenarios.spec import data_source_mappings

    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    latest = ScenarioDataModel.objects.filter(scenario_type=scenario_type).order_by("-version").first()
    if latest is None:
        return
    keys = {f.get("key") for f in latest.field_definitions}
    missing = [f for f in fields if f["key"] not in keys]
    if not missing:
        return
    definitions = list(latest.field_definitions)
    after = next((i + 1 for i, f in enumerate(definitions) if f.get("key") == after_key), len(definitions))
    definitions[after:after] = missing
    ScenarioDataModel.objects.create(
        scenario_type=latest.scenario_type,
        version=latest.version + 1,
        name=latest.name,
        description=latest.description,
        field_definitions=definitions,
        data_source_mappings=data_source_mappings(definitions),
        validation_rules=latest.validation_rules,
        is_published=True,
        published_at=timezone.now(),
        change_note=note,
    )


def definition_fields_remove(apps: Any, *, scenario_type: str, note: str) -> None:
    """Undo definition_fields_add: drop the version it published while no scenario uses it."""
    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    ScenarioDataModel.objects.filter(scenario_type=scenario_type, change_note=note, scenarios__isnull=True).delete()
