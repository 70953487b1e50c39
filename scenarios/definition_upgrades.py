"""Data migrations that add shipped fields to a scenario type: a new published version, never an edited one."""

from __future__ import annotations

from typing import Any

from django.utils import timezone


def definition_fields_add(
    apps: Any, *, scenario_type: str, fields: list[dict[str, Any]], after_key: str, note: str, replace: tuple[dict[str, Any], ...] = ()
) -> None:
    """Publish a new version of the latest definition with the missing `fields` after `after_key` (fresh installs have them),
    and the shipped source and help text of each `replace` field it has (a field gaining a source alternative; the rest of
    the field, which an administrator may have edited, is kept)."""
    from scenarios.spec import data_source_mappings

    ScenarioDataModel = apps.get_model("scenarios", "ScenarioDataModel")
    latest = ScenarioDataModel.objects.filter(scenario_type=scenario_type).order_by("-version").first()
    if latest is None:
        return
    keys = {f.get("key") for f in latest.field_definitions}
    missing = [f for f in fields if f["key"] not in keys]
    replacing = {f["key"]: f for f in replace}
    definitions = [
        {**f, **{k: replacing[f.get("key")][k] for k in ("source", "help_text") if k in replacing[f.get("key")]}} if f.get("key") in replacing else f
        for f in latest.field_definitions
    ]
    if not missing and definitions == list(latest.field_definitions):
        return
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
