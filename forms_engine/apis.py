"""Form engine API: form schema, smart-dropdown options, validation without saving, import preview and "Refresh now"."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError
from common.parsers import FormParser, JSONParser, MultiPartParser
from forms_engine.forms import values_from_post
from forms_engine.schema import form_schema
from forms_engine.selectors import record_options
from integrations.access import sources_access_check
from people.selectors import person_typeahead
from scenarios.field_imports import field_import_csv, field_import_from_source
from scenarios.models import Scenario, ScenarioDataModel
from scenarios.selectors import data_model_latest, scenario_list
from scenarios.services import scenario_validate
from scenarios.spec import PERSON_TYPES, source_connectors, source_paths


class FormEngineView(OrganizationScopedMixin, APIView):
    queryset = Scenario.objects.none()

    def get_scoped_queryset(self):
        return scenario_list(organization=self.organization)

    def field_def(self, data_model: ScenarioDataModel, key: str) -> dict[str, Any]:
        for field_def in data_model.field_definitions:
            if field_def["key"] == key:
                return field_def
        raise ApplicationError(f"'{data_model.name}' has no field '{key}'.", code="unknown_field", status_code=404)


FORM_SCHEMA_OUTPUT = inline_serializer(
    "FormSchema",
    {
        "scenario_type": serializers.CharField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "version": serializers.IntegerField(),
        "data_model_id": serializers.UUIDField(),
        "scenario_id": serializers.UUIDField(allow_null=True),
        "fields": serializers.ListField(
            child=serializers.DictField(), help_text="Fields with source (connected or not), options/options_url, value and value_origin."
        ),
        "sections": serializers.ListField(child=serializers.CharField()),
        "rules": serializers.ListField(child=serializers.DictField(), help_text="Cross-field rules as JSON Logic with their messages."),
        "values": serializers.JSONField(help_text="Pre-filled values."),
        "value_origins": serializers.JSONField(help_text="Where each pre-filled value came from."),
        "json_schema": serializers.JSONField(help_text="JSON Schema (draft 2020-12) of the values."),
        "validate_url": serializers.CharField(),
    },
)


class FormSchemaApi(FormEngineView):
    @extend_schema(
        parameters=[OpenApiParameter("scenario", str, description="A scenario id: schema for editing it (its version, its values).")],
        responses=FORM_SCHEMA_OUTPUT,
    )
    def get(self, request: Request, scenario_type: str) -> Response:
        scenario = None
        if request.query_params.get("scenario"):
            try:
                scenario = get_object_or_404(self.get_scoped_queryset(), pk=request.query_params["scenario"], scenario_type=scenario_type)
            except Exception:  # noqa: BLE001 - a malformed id is simply not found
                raise ApplicationError("No such scenario.", code="not_found", status_code=404)
        data_model = scenario.data_model if scenario else data_model_latest(scenario_type=scenario_type)
        return Response(form_schema(data_model=data_model, organization=self.organization, scenario=scenario))


OPTIONS_OUTPUT = inline_serializer(
    "FieldOptions",
    {
        "field": serializers.CharField(),
        "source": serializers.JSONField(allow_null=True),
        "results": serializers.ListField(child=serializers.DictField(), help_text="{value, label, description, data, provenance}"),
    },
)


class FieldOptionsApi(FormEngineView):
    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Typeahead text."),
            OpenApiParameter("limit", int, description="At most 50."),
            OpenApiParameter("connector", str, description="Only people or records from this source connector."),
        ],
        responses=OPTIONS_OUTPUT,
    )
    def get(self, request: Request, scenario_type: str, field_key: str) -> Response:
        data_model = data_model_latest(scenario_type=scenario_type)
        field_def = self.field_def(data_model, field_key)
        query = request.query_params.get("q", "")[:100]
        try:
            limit = int(request.query_params.get("limit", 20))
        except ValueError:
            raise ApplicationError("limit must be a number.", fields={"limit": ["Must be a number."]})
        source = field_def.get("source") or {}
        connectors = source_connectors(source)
        only = request.query_params.get("connector") or ""
        if only and only not in connectors:
            raise ApplicationError(
                f"{field_def['label']} has no source '{only}'.", code="unknown_source", fields={"connector": [f"Not a source of {field_key}."]}
            )
        # allowed_roles: integrations this member may not use are left out (a 403 when the field has nothing else to offer).
        restricted = sources_access_check(organization=self.organization, connector_keys=[only] if only else connectors, membership=self.membership)
        if field_def["type"] in PERSON_TYPES:
            people = person_typeahead(
                organization=self.organization, query=query, limit=limit, connector_keys=[only] if only else None, excluded_integration_ids=restricted
            )
            results = [
                {
                    "value": str(p.pk),
                    "label": p.display_name or p.email,
                    "description": " · ".join(x for x in (p.email, p.title, p.department) if x),
                    "data": {"person_id": str(p.pk), "name": p.display_name or p.email, "email": p.email, "department": p.department},
                    "provenance": {"source": "directory", "person_id": str(p.pk)},
                }
                for p in people
            ]
        elif connectors:
            entities = {source.get("connector"): source.get("entity")} | {
                a.get("connector"): a.get("entity") for a in source.get("alternatives") or [] if isinstance(a, dict)
            }
            pairs = [(c, entities.get(c, "")) for c in ([only] if only else connectors)]
            results = record_options(
                organization=self.organization,
                sources=pairs,
                query=query,
                limit=limit,
                label_path=source.get("options_label") or "$.name",
                value_path=source.get("options_value") or source.get("mapping") or "$.external_id",
                excluded_integration_ids=restricted,
                paths=source_paths(source),
            )
        else:
            results = [
                {"value": o["value"], "label": o["label"], "description": "", "data": {}, "provenance": {}}
                for o in _static(field_def)
                if query.lower() in o["label"].lower()
            ]
        return Response({"field": field_key, "source": source or None, "results": results})


def _static(field_def: dict[str, Any]) -> list[dict[str, str]]:
    from scenarios.spec import field_options

    return field_options(field_def)


VALIDATE_INPUT = inline_serializer("ValidateInput", {"values": serializers.JSONField()})
VALIDATE_OUTPUT = inline_serializer(
    "ValidateResult",
    {
        "valid": serializers.BooleanField(),
        "errors": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
        "values": serializers.JSONField(help_text="The cleaned values that would be saved (hidden fields dropped)."),
        "hidden": serializers.ListField(child=serializers.CharField(), help_text="Fields hidden by their conditions: not validated, not saved."),
    },
)


class _ValidateMixin:
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    write_role = Role.VIEWER  # nothing is saved

    def _validate(self, request: Request, data_model: ScenarioDataModel) -> Response:
        if request.content_type and request.content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            values = values_from_post(data_model.field_definitions, request.data)  # the page's own form, same rules as the API
        else:
            values = request.data.get("values") if isinstance(request.data, dict) else None
            if not isinstance(values, dict):
                raise ApplicationError('Send {"values": {field key: value}}.', fields={"values": ["Must be an object."]})
        result = scenario_validate(data_model=data_model, organization=self.organization, values=values)
        return Response({"valid": result.is_valid, "errors": result.errors, "values": result.values, "hidden": result.hidden})


class TypeValidateApi(_ValidateMixin, FormEngineView):
    @extend_schema(
        request=VALIDATE_INPUT,
        responses=VALIDATE_OUTPUT,
        description="Validate values for a new scenario of this type; nothing is saved.",
        operation_id="scenario_type_validate",
    )
    def post(self, request: Request, scenario_type: str) -> Response:
        return self._validate(request, data_model_latest(scenario_type=scenario_type))


class ScenarioValidateApi(_ValidateMixin, FormEngineView):
    @extend_schema(
        request=VALIDATE_INPUT,
        responses=VALIDATE_OUTPUT,
        description="Validate values against this scenario's version; nothing is saved.",
        operation_id="scenario_validate",
    )
    def post(self, request: Request, pk) -> Response:
        scenario = get_object_or_404(self.get_scoped_queryset(), pk=pk)
        return self._validate(request, scenario.data_model)


class ImportInputSerializer(serializers.Serializer):
    connector = serializers.CharField(required=False, allow_blank=True)
    person_ids = serializers.ListField(child=serializers.CharField(), required=False)
    external_ids = serializers.ListField(child=serializers.CharField(), required=False)
    query = serializers.CharField(required=False, allow_blank=True)
    file = serializers.FileField(required=False)


IMPORT_OUTPUT = inline_serializer(
    "FieldImportPreview",
    {
        "field": serializers.CharField(),
        "value": serializers.JSONField(),
        "items": serializers.ListField(child=serializers.DictField(), help_text="Provenance of each imported item."),
        "errors": serializers.ListField(child=serializers.DictField(), help_text="CSV rows refused, with line numbers."),
    },
)


class FieldImportApi(FormEngineView):
    """Import preview for a form not saved yet: values and their provenance, nothing is saved (see populate-field for saved scenarios)."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(request={"application/json": ImportInputSerializer, "multipart/form-data": ImportInputSerializer}, responses=IMPORT_OUTPUT)
    def post(self, request: Request, scenario_type: str, field_key: str) -> Response:
        data = ImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data_model = data_model_latest(scenario_type=scenario_type)
        upload = data.validated_data.get("file")
        if upload is not None:
            result = field_import_csv(organization=self.organization, data_model=data_model, field_key=field_key, content=upload.read(), filename=upload.name)
        else:
            result = field_import_from_source(
                organization=self.organization,
                data_model=data_model,
                field_key=field_key,
                connector=data.validated_data.get("connector", ""),
                person_ids=data.validated_data.get("person_ids"),
                external_ids=data.validated_data.get("external_ids"),
                query=data.validated_data.get("query", ""),
                actor=request.user,
            )
        return Response({"field": field_key, "value": result["value"], "items": result["items"], "errors": result.get("errors", [])})


REFRESH_OUTPUT = inline_serializer(
    "FieldRefresh",
    {"field": serializers.CharField(), "jobs": serializers.ListField(child=serializers.DictField(), help_text="{id, status, data_source_id, connector}")},
)


class FieldRefreshApi(FormEngineView):
    """ "Refresh now": start a sync of the data sources behind a field (the sync engine does the vendor calls)."""

    @extend_schema(request=None, responses={202: REFRESH_OUTPUT})
    def post(self, request: Request, scenario_type: str, field_key: str) -> Response:
        from integrations.models import DataSource, IntegrationStatus

        data_model = data_model_latest(scenario_type=scenario_type)
        field_def = self.field_def(data_model, field_key)
        source = field_def.get("source") or {}
        if not source:
            raise ApplicationError(f"{field_def['label']} has no data source to refresh.", code="no_source")
        try:
            from sync.services import sync_start
        except ImportError:
            raise ApplicationError("Refreshing is unavailable: the sync engine is not installed on this server.", code="sync_unavailable", status_code=503)
        entities = {source.get("connector"): source.get("entity")} | {
            a.get("connector"): a.get("entity") for a in source.get("alternatives") or [] if isinstance(a, dict)
        }
        data_sources = [
            ds
            for ds in DataSource.objects.filter(
                organization=self.organization, is_enabled=True, integration__status=IntegrationStatus.CONNECTED, integration__connector_key__in=list(entities)
            ).select_related("integration")
            if entities.get(ds.integration.connector_key) == ds.entity_type
        ]
        restricted = sources_access_check(organization=self.organization, connector_keys=list(entities), membership=self.membership)
        data_sources = [ds for ds in data_sources if ds.integration_id not in restricted]
        if not data_sources:
            names = ", ".join(f"{c} {e}" for c, e in entities.items())
            raise ApplicationError(
                f"No connected data source feeds {field_def['label']} ({names}). Connect one under Integrations first.", code="not_connected", status_code=409
            )
        jobs = []
        for data_source in data_sources:
            job = sync_start(data_source=data_source, trigger="manual", actor=request.user)
            jobs.append({"id": str(job.pk), "status": job.status, "data_source_id": str(data_source.pk), "connector": data_source.integration.connector_key})
        return Response({"field": field_key, "jobs": jobs}, status=202)
