"""Scenario API: CRUD, explicit upgrade to the latest definition version, populate a field from its source or a CSV."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError
from common.parsers import FormParser, JSONParser, MultiPartParser
from scenarios.field_imports import scenario_populate_field
from scenarios.models import Scenario
from scenarios.selectors import scenario_list
from scenarios.services import scenario_create, scenario_delete, scenario_update, scenario_upgrade, scenario_upgrade_preview


class ScenarioOutputSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="data_model.version", read_only=True)
    data_model_id = serializers.UUIDField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    status = serializers.CharField(read_only=True, help_text="draft | ready | active | closed")
    values = serializers.JSONField()
    value_sources = serializers.JSONField()

    class Meta:
        model = Scenario
        fields = ["id", "scenario_type", "title", "status", "version", "data_model_id", "values", "value_sources", "created_by", "created_at", "updated_at"]


class ScenarioCreateSerializer(serializers.Serializer):
    scenario_type = serializers.SlugField()
    values = serializers.JSONField(help_text="Field key → value in the shapes of docs/contracts.md (Scenario values).")
    value_sources = serializers.JSONField(required=False, help_text="Optional provenance claims; verified against the records store.")


class ScenarioUpdateSerializer(serializers.Serializer):
    values = serializers.JSONField()
    value_sources = serializers.JSONField(required=False)


class ScenarioScopedView(OrganizationScopedMixin, GenericAPIView):
    queryset = Scenario.objects.none()
    serializer_class = ScenarioOutputSerializer

    def get_scoped_queryset(self):
        return scenario_list(organization=self.organization)

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        # Tenancy before input: another organization's scenario is 404 whatever the body says.
        if "pk" in kwargs:
            self.get_scenario()

    def get_scenario(self) -> Scenario:
        if not hasattr(self, "_scenario"):
            self._scenario = get_object_or_404(self.get_scoped_queryset(), pk=self.kwargs["pk"])
        return self._scenario


class ScenarioListApi(ScenarioScopedView):
    @extend_schema(responses=ScenarioOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        queryset = self.get_scoped_queryset()
        if request.query_params.get("scenario_type"):
            queryset = queryset.filter(scenario_type=request.query_params["scenario_type"])
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ScenarioOutputSerializer(page, many=True).data)

    @extend_schema(
        request=ScenarioCreateSerializer,
        responses={201: ScenarioOutputSerializer},
        examples=[
            OpenApiExample(
                "A crisis",
                value={
                    "scenario_type": "crisis_management",
                    "values": {
                        "title": "Payments outage",
                        "crisis_type": "service_outage",
                        "severity": "sev1",
                        "summary": "Card payments fail for EU customers.",
                        "incident_commander": {"email": "amara.nwosu@acme.example"},
                        "stakeholders": [{"name": "Priya Raman", "email": "priya.raman@acme.example", "role": "legal"}],
                        "communication_channels": [{"name": "incident-response"}],
                        "war_room_meeting_at": "2026-12-07T09:00:00+00:00",
                        "jira_project_key": "OPS",
                    },
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = ScenarioCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scenario = scenario_create(
            organization=self.organization,
            scenario_type=data.validated_data["scenario_type"],
            values=data.validated_data["values"],
            value_sources=data.validated_data.get("value_sources"),
            actor=request.user,
            request=request,
        )
        return Response(ScenarioOutputSerializer(scenario).data, status=status.HTTP_201_CREATED)


class ScenarioDetailApi(ScenarioScopedView):
    @extend_schema(responses=ScenarioOutputSerializer)
    def get(self, request: Request, pk) -> Response:
        return Response(ScenarioOutputSerializer(self.get_scenario()).data)

    @extend_schema(request=ScenarioUpdateSerializer, responses=ScenarioOutputSerializer)
    def put(self, request: Request, pk) -> Response:
        data = ScenarioUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scenario = scenario_update(
            scenario=self.get_scenario(),
            values=data.validated_data["values"],
            value_sources=data.validated_data.get("value_sources"),
            actor=request.user,
            request=request,
        )
        return Response(ScenarioOutputSerializer(scenario).data)

    @extend_schema(request=ScenarioUpdateSerializer, responses=ScenarioOutputSerializer, description="Merge the given values into the scenario's values.")
    def patch(self, request: Request, pk) -> Response:
        data = ScenarioUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scenario = self.get_scenario()
        if not isinstance(data.validated_data["values"], dict):
            raise ApplicationError("values must be an object.", fields={"values": ["Must be an object."]})
        values = {**scenario.values, **data.validated_data["values"]}
        scenario = scenario_update(
            scenario=scenario, values=values, value_sources=data.validated_data.get("value_sources"), actor=request.user, request=request
        )
        return Response(ScenarioOutputSerializer(scenario).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk) -> Response:
        scenario_delete(scenario=self.get_scenario(), actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


DIFF_SERIALIZER = inline_serializer(
    "ScenarioUpgradeDiff",
    {
        "from_version": serializers.IntegerField(),
        "to_version": serializers.IntegerField(),
        "is_current": serializers.BooleanField(),
        "fields_added": serializers.ListField(child=serializers.DictField()),
        "fields_removed": serializers.ListField(child=serializers.DictField()),
        "fields_changed": serializers.ListField(child=serializers.DictField()),
        "rules_added": serializers.ListField(child=serializers.CharField()),
        "rules_removed": serializers.ListField(child=serializers.CharField()),
        "rules_changed": serializers.ListField(child=serializers.CharField()),
        "values_dropped": serializers.ListField(child=serializers.CharField()),
        "problems_after_upgrade": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)


class ScenarioUpgradeApi(ScenarioScopedView):
    @extend_schema(responses=DIFF_SERIALIZER, description="Preview: what upgrading to the latest published version changes.")
    def get(self, request: Request, pk) -> Response:
        return Response(scenario_upgrade_preview(scenario=self.get_scenario()))

    @extend_schema(
        request=None,
        responses=inline_serializer("ScenarioUpgradeResult", {"scenario": ScenarioOutputSerializer(), "diff": DIFF_SERIALIZER}),
    )
    def post(self, request: Request, pk) -> Response:
        scenario, diff = scenario_upgrade(scenario=self.get_scenario(), actor=request.user, request=request)
        return Response({"scenario": ScenarioOutputSerializer(scenario).data, "diff": diff})


class PopulateFieldInputSerializer(serializers.Serializer):
    field = serializers.SlugField()
    connector = serializers.CharField(required=False, allow_blank=True, help_text="Which of the field's sources (default: all of them).")
    person_ids = serializers.ListField(child=serializers.CharField(), required=False, help_text="Import only these directory people.")
    external_ids = serializers.ListField(child=serializers.CharField(), required=False, help_text="Import only these source records.")
    query = serializers.CharField(required=False, allow_blank=True)
    mode = serializers.ChoiceField(choices=["append", "replace"], default="append")
    file = serializers.FileField(required=False, help_text="A people CSV (name,email,role) for CSV-enabled fields.")


POPULATE_OUTPUT = inline_serializer(
    "PopulateFieldResult",
    {
        "field": serializers.CharField(),
        "value": serializers.JSONField(),
        "imported": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField(), help_text="CSV rows refused, with line numbers."),
        "value_sources": serializers.JSONField(),
    },
)


class ScenarioPopulateFieldApi(ScenarioScopedView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    write_role = Role.EDITOR

    @extend_schema(request={"application/json": PopulateFieldInputSerializer, "multipart/form-data": PopulateFieldInputSerializer}, responses=POPULATE_OUTPUT)
    def post(self, request: Request, pk) -> Response:
        data = PopulateFieldInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data.get("file")
        result = scenario_populate_field(
            scenario=self.get_scenario(),
            field_key=data.validated_data["field"],
            connector=data.validated_data.get("connector", ""),
            person_ids=data.validated_data.get("person_ids"),
            external_ids=data.validated_data.get("external_ids"),
            query=data.validated_data.get("query", ""),
            csv_content=upload.read() if upload else None,
            filename=upload.name if upload else "upload.csv",
            mode=data.validated_data["mode"],
            actor=request.user,
            request=request,
        )
        return Response(result)
