"""Server-rendered scenario pages: list, choose a type, the dynamic form (works without JavaScript), upgrade."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from accounts.tenancy import organization_page
from common.errors import ApplicationError
from forms_engine.forms import claimed_sources_from_post, prefill_claims, sections, values_from_post, widgets
from forms_engine.schema import form_schema
from forms_engine.selectors import record_options
from integrations.access import restricted_integration_ids
from scenarios.models import Scenario
from scenarios.selectors import data_model_latest, data_model_latest_all, scenario_list
from scenarios.services import scenario_create, scenario_update, scenario_upgrade, scenario_upgrade_preview, scenario_validate
from scenarios.spec import DEPARTMENT_ROLES
from scenarios.validation import visible_field_keys


def _preload_source_options(request: HttpRequest, schema: dict[str, Any]) -> None:
    """Selects fed by a source get their first options server-side, so the form works without JavaScript.

    Records of integrations the member may not use (allowed_roles) are left out, as in the options API.
    """
    restricted = restricted_integration_ids(organization=request.organization, membership=request.membership)
    for field in schema["fields"]:
        source = field.get("source")
        if not source or field["type"] not in ("select", "multi_select", "channel") or field["options"]:
            continue
        pairs = [(c["connector"], c["entity"]) for c in source["connectors"]]
        field["options"] = [
            {"value": o["value"], "label": o["label"]}
            for o in record_options(
                organization=request.organization,
                sources=pairs,
                limit=50,
                label_path=source.get("options_label") or "$.name",
                value_path=source.get("options_value") or "$.external_id",
                excluded_integration_ids=restricted,
                paths={c["connector"]: (c["options_label"], c["options_value"]) for c in source["connectors"]},
            )
        ]


@organization_page(Role.VIEWER)
def scenario_list_page(request: HttpRequest) -> HttpResponse:
    scenarios = scenario_list(organization=request.organization)[:200]
    return render(
        request,
        "scenarios/list.html",
        {"scenarios": scenarios, "types": data_model_latest_all(), "can_write": request.membership.has_role(Role.EDITOR)},
    )


@organization_page(Role.EDITOR)
def scenario_choose_type_page(request: HttpRequest) -> HttpResponse:
    return render(request, "scenarios/choose_type.html", {"types": data_model_latest_all()})


def _render_form(
    request: HttpRequest, *, schema: dict[str, Any], values: dict[str, Any], errors: dict[str, list[str]], claims: dict[str, Any], scenario=None, status=200
):
    data_model_fields = [{"key": f["key"], "visible_if": f["visible_if"]} for f in schema["fields"]]
    visible = visible_field_keys(data_model_fields, values)
    _preload_source_options(request, schema)
    widget_list = widgets(schema, values, errors, visible)
    can_write = request.membership.has_role(Role.EDITOR)
    client_schema = {k: schema[k] for k in ("scenario_type", "version", "rules", "validate_url", "scenario_id")}
    client_schema["department_roles"] = DEPARTMENT_ROLES
    client_schema["fields"] = [
        {k: f[k] for k in ("key", "label", "type", "required", "visible_if", "options_url", "source", "csv_import", "csv_import_url", "multiple", "options")}
        for f in schema["fields"]
    ]
    return render(
        request,
        "scenarios/form.html",
        {
            "schema": schema,
            "sections": sections(widget_list),
            "errors": errors,
            "non_field_errors": errors.get("non_field_errors", []),
            "error_count": sum(len(v) for v in errors.values()),
            "scenario": scenario,
            "can_write": can_write,
            "readonly": not can_write,
            "client_schema": client_schema,
            "claims_json": json.dumps(claims),
        },
        status=status,
    )


@organization_page(Role.EDITOR)
@require_http_methods(["GET", "POST"])
def scenario_new_page(request: HttpRequest, scenario_type: str) -> HttpResponse:
    try:
        data_model = data_model_latest(scenario_type=scenario_type)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("scenario-choose-type")
    schema = form_schema(data_model=data_model, organization=request.organization)
    if request.method == "GET":
        return _render_form(request, schema=schema, values=schema["values"], errors={}, claims=prefill_claims(schema))
    values = values_from_post(data_model.field_definitions, request.POST)
    claims = claimed_sources_from_post(request.POST)
    result = scenario_validate(data_model=data_model, organization=request.organization, values=values)
    if not result.is_valid:
        return _render_form(request, schema=schema, values=values, errors=result.errors, claims=claims, status=400)
    scenario = scenario_create(
        organization=request.organization, scenario_type=scenario_type, values=values, value_sources=claims, actor=request.user, request=request
    )
    messages.success(request, f"Saved “{scenario.title}”.")
    return redirect("scenario-edit", pk=scenario.pk)


@organization_page(Role.VIEWER)
@require_http_methods(["GET", "POST"])
def scenario_edit_page(request: HttpRequest, pk) -> HttpResponse:
    scenario = get_object_or_404(scenario_list(organization=request.organization), pk=pk)
    schema = form_schema(data_model=scenario.data_model, organization=request.organization, scenario=scenario)
    if request.method == "GET":
        return _render_form(request, schema=schema, values=schema["values"], errors={}, claims=prefill_claims(schema), scenario=scenario)
    if not request.membership.has_role(Role.EDITOR):
        raise PermissionDenied("Viewers cannot change scenarios.")
    values = values_from_post(scenario.data_model.field_definitions, request.POST)
    claims = claimed_sources_from_post(request.POST)
    result = scenario_validate(data_model=scenario.data_model, organization=request.organization, values=values)
    if not result.is_valid:
        return _render_form(request, schema=schema, values=values, errors=result.errors, claims=claims, scenario=scenario, status=400)
    scenario = scenario_update(scenario=scenario, values=values, value_sources=claims, actor=request.user, request=request)
    messages.success(request, f"Saved “{scenario.title}”.")
    return redirect("scenario-edit", pk=scenario.pk)


@organization_page(Role.VIEWER)
@require_http_methods(["GET", "POST"])
def scenario_upgrade_page(request: HttpRequest, pk) -> HttpResponse:
    scenario: Scenario = get_object_or_404(scenario_list(organization=request.organization), pk=pk)
    if request.method == "POST":
        if not request.membership.has_role(Role.EDITOR):
            raise PermissionDenied("Viewers cannot upgrade scenarios.")
        scenario, diff = scenario_upgrade(scenario=scenario, actor=request.user, request=request)
        messages.success(request, f"Upgraded to version {scenario.data_model.version}.")
        return redirect("scenario-edit", pk=scenario.pk)
    return render(
        request,
        "scenarios/upgrade.html",
        {"scenario": scenario, "diff": scenario_upgrade_preview(scenario=scenario), "can_write": request.membership.has_role(Role.EDITOR)},
    )
