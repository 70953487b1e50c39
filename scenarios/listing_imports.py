"""What a listing's page does: the scenarios each template can fill, the import through a template, the starter connector."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Organization
from common.errors import ApplicationError
from common.validators import is_uuid
from integrations.custom.models import CustomConnector
from integrations.custom.services import custom_connector_create, custom_connector_draft_update
from integrations.listings.catalogue import Listing
from scenarios.field_imports import ColumnMapping, scenario_populate_field
from scenarios.models import Scenario
from scenarios.selectors import data_model_latest

MAX_SCENARIOS_LISTED = 50
MAX_UPLOAD_BYTES = 1_000_000  # the field import's own cap (scenarios.field_imports.CSV_MAX_BYTES), refused before reading


def template_targets(*, organization: Organization, listing: Listing) -> list[dict[str, Any]]:
    """Each template with the organization's scenarios whose definition has its field (newest first)."""
    rows = []
    for template in listing.templates:
        scenarios = Scenario.objects.filter(organization=organization, scenario_type=template.scenario_type).select_related("data_model")
        choices = [
            {"id": str(s.pk), "title": s.title}
            for s in scenarios.order_by("-updated_at")[:MAX_SCENARIOS_LISTED]
            if any(f.get("key") == template.field for f in s.data_model.field_definitions)
        ]
        scenario_name, field_label = _target_labels(template.scenario_type, template.field)
        rows.append({"template": template, "scenario_name": scenario_name, "field_label": field_label, "scenarios": choices})
    return rows


def _target_labels(scenario_type: str, field_key: str) -> tuple[str, str]:
    """The scenario type's and the field's names as people read them (the keys when the definition is not installed)."""
    try:
        definition = data_model_latest(scenario_type=scenario_type)
    except ApplicationError:
        return scenario_type, field_key
    label = next((f.get("label") or field_key for f in definition.field_definitions if f.get("key") == field_key), field_key)
    return definition.name or scenario_type, label


def listing_import(
    *,
    organization: Organization,
    listing: Listing,
    template_key: str,
    scenario_id: str,
    content: bytes,
    filename: str,
    mode: str = "append",
    actor: Any = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """Import an export through a template into its scenario field (another organization's scenario is a 404)."""
    template = listing.template(template_key)
    if template is None:
        raise ApplicationError(f"{listing.name} has no import template {template_key[:60]!r}.", code="unknown_template", fields={"template": ["Unknown."]})
    if mode not in ("append", "replace"):
        raise ApplicationError("Choose append or replace.", fields={"mode": ["Unknown mode."]})
    scenario = Scenario.objects.filter(organization=organization, pk=scenario_id).first() if is_uuid(scenario_id) else None
    if scenario is None:
        raise ApplicationError("Choose one of your scenarios.", code="unknown_scenario", status_code=404, fields={"scenario": ["No such scenario."]})
    if scenario.scenario_type != template.scenario_type:
        raise ApplicationError(
            f"{template.title} fills a {template.scenario_type.replace('_', ' ')} scenario; '{scenario.title}' is not one.",
            code="wrong_scenario_type",
            fields={"scenario": ["Wrong scenario type."]},
        )
    result = scenario_populate_field(
        scenario=scenario,
        field_key=template.field,
        csv_content=content,
        filename=filename,
        mapping=ColumnMapping(**template.mapping_spec()),
        mode=mode,
        actor=actor,
        request=request,
    )
    return {**result, "scenario_id": str(scenario.pk), "scenario_title": scenario.title, "template": template.key}


def starter_connector(*, organization: Organization, listing: Listing, actor: Any = None, request: HttpRequest | None = None) -> tuple[Any, bool]:
    """The organization's custom connector started from the listing's starter spec (created once; later calls return it)."""
    existing = CustomConnector.objects.filter(organization=organization, key=listing.key).first()
    if existing is not None:
        return existing, False
    connector = custom_connector_create(organization=organization, name=f"{listing.name} (own data)", key=listing.key, actor=actor, request=request)
    return custom_connector_draft_update(connector=connector, text=listing.starter_text()), True
