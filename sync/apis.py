"""Sync engine API: jobs and their logs, sync triggers, people, CSV import/export, webhook intake and inbox, metrics."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.tenancy import HasOrganizationRole, OrganizationScopedMixin
from common.errors import ApplicationError, error_body
from common.openapi_summary import SummaryAutoSchema
from common.parsers import FormParser, JSONParser, MultiPartParser
from integrations.models import DataSource, Integration
from people import selectors as people_selectors
from people import services as people_services
from people.models import PeopleSettings, Person, PersonIdentity
from sync import selectors, services
from sync.access import people_export_check
from sync.models import DataSyncJob, SyncJobLog, WebhookDelivery
from sync.services.webhooks import IntakeResult, webhook_receive_by_account

# Serializers -----------------------------------------------------------------------------------------------------------------


class SyncJobSerializer(serializers.ModelSerializer):
    integration_name = serializers.CharField(source="integration.display_name", read_only=True, default="")
    entity_type = serializers.CharField(source="data_source.entity_type", read_only=True, default="")
    is_paused = serializers.BooleanField(read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True, default="")

    class Meta:
        model = DataSyncJob
        fields = [
            "id",
            "job_type",
            "status",
            "phase",
            "trigger",
            "actor",
            "integration",
            "integration_name",
            "data_source",
            "entity_type",
            "is_full_refresh",
            "is_paused",
            "resume_at",
            "records_processed",
            "pages",
            "created_count",
            "updated_count",
            "unchanged_count",
            "deleted_count",
            "error_count",
            "error_class",
            "last_error",
            "heartbeat_at",
            "started_at",
            "completed_at",
            "created_at",
        ]


class SyncJobStartSerializer(SyncJobSerializer):
    already_running = serializers.BooleanField(read_only=True)

    class Meta(SyncJobSerializer.Meta):
        fields = [*SyncJobSerializer.Meta.fields, "already_running"]


class SyncJobLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncJobLog
        fields = ["id", "at", "level", "event", "message", "data"]


class SyncStartInputSerializer(serializers.Serializer):
    full_refresh = serializers.BooleanField(required=False, default=False)


class ScheduleInputSerializer(serializers.Serializer):
    every_seconds = serializers.IntegerField(required=False, min_value=30)
    crontab = serializers.CharField(required=False, max_length=100)
    is_enabled = serializers.BooleanField(required=False, default=True)


class ScheduleOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    interval_seconds = serializers.IntegerField(allow_null=True)
    crontab = serializers.CharField(allow_null=True)


class PersonIdentitySerializer(serializers.ModelSerializer):
    integration_name = serializers.CharField(source="integration.display_name", read_only=True, default="")
    is_deleted = serializers.SerializerMethodField()

    class Meta:
        model = PersonIdentity
        fields = ["id", "source", "integration", "integration_name", "entity_type", "external_id", "is_deleted", "updated_at"]

    def get_is_deleted(self, obj: PersonIdentity) -> bool:
        return bool((obj.attributes or {}).get("deleted"))


class PersonSerializer(serializers.ModelSerializer):
    sources = serializers.SerializerMethodField()
    manager_name = serializers.CharField(source="manager.display_name", read_only=True, default="")

    class Meta:
        model = Person
        fields = ["id", "display_name", "email", "title", "department", "phone", "manager", "manager_name", "is_active", "sources", "updated_at"]

    def get_sources(self, obj: Person) -> list[str]:
        return sorted({i.source for i in obj.identities.all()})


class PersonDetailSerializer(PersonSerializer):
    identities = PersonIdentitySerializer(many=True, read_only=True)

    class Meta(PersonSerializer.Meta):
        fields = [*PersonSerializer.Meta.fields, "given_name", "family_name", "groups", "provenance", "identities"]


class PeopleSettingsSerializer(serializers.Serializer):
    source_priority = serializers.ListField(child=serializers.CharField(max_length=60), max_length=50)


class CsvUploadSerializer(serializers.Serializer):
    file = serializers.FileField(required=False)
    upload_id = serializers.UUIDField(required=False)


class CsvImportInputSerializer(CsvUploadSerializer):
    mapping = serializers.JSONField(help_text='Bastion field → CSV column, e.g. {"email": "E-mail", "name": "Full name"}.')

    def validate_mapping(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise serializers.ValidationError("mapping must be a JSON object.")
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise serializers.ValidationError("mapping must be an object of field → column name.")
        return value


class CsvPreviewSerializer(serializers.Serializer):
    upload_id = serializers.UUIDField()
    encoding = serializers.CharField()
    delimiter = serializers.CharField()
    dialect = serializers.CharField()
    headers = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.DictField())
    suggested_mapping = serializers.DictField(child=serializers.CharField())
    fields = serializers.DictField(child=serializers.CharField())
    problems = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class WebhookDeliverySerializer(serializers.ModelSerializer):
    outcome = serializers.SerializerMethodField(help_text="applied, not_used or unsupported once processed; empty before.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "integration",
            "delivery_id",
            "event_types",
            "status",
            "outcome",
            "received_at",
            "processed_at",
            "attempts",
            "duplicates",
            "last_error",
            "result",
        ]

    def get_outcome(self, delivery: WebhookDelivery) -> str:
        return str((delivery.result or {}).get("outcome") or "")


class WebhookOutcomeCountSerializer(serializers.Serializer):
    integration = serializers.CharField()
    name = serializers.CharField()
    connector = serializers.CharField()
    applied = serializers.IntegerField()
    not_used = serializers.IntegerField()
    unsupported = serializers.IntegerField()


MetricsSerializer = inline_serializer(
    "SyncMetrics",
    fields={
        "window_hours": serializers.IntegerField(),
        "targets": serializers.DictField(),
        "overall": serializers.DictField(),
        "integrations": serializers.ListField(child=serializers.DictField()),
    },
)


def _start_response(jobs: list[DataSyncJob]) -> Response:
    """202 when at least one job was started, 200 when every one was already running."""
    data = SyncJobStartSerializer(jobs, many=True).data
    started = any(not getattr(j, "already_running", False) for j in jobs)
    return Response({"jobs": data, "already_running": not started}, status=status.HTTP_202_ACCEPTED if started else status.HTTP_200_OK)


StartResponse = inline_serializer("SyncStartResponse", fields={"jobs": SyncJobStartSerializer(many=True), "already_running": serializers.BooleanField()})


# Views ----------------------------------------------------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter("status", str, description="Filter by status"),
        OpenApiParameter("integration", str, description="Filter by integration id"),
        OpenApiParameter("data_source", str, description="Filter by data source id"),
    ]
)
class SyncJobViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Sync and import jobs with live progress; editors may cancel."""

    serializer_class = SyncJobSerializer
    queryset = DataSyncJob.objects.none()
    action_roles = {"cancel": Role.EDITOR}

    def get_scoped_queryset(self):
        params = self.request.query_params
        return selectors.sync_job_list(
            organization=self.organization, status=params.get("status"), integration_id=params.get("integration"), data_source_id=params.get("data_source")
        )

    @extend_schema(responses=SyncJobLogSerializer(many=True))
    @action(detail=True, methods=["get"])
    def log(self, request, pk=None):
        """The job's log lines (paginated, oldest first): pages stored, pauses, retries, rejected rows with line numbers."""
        job = self.get_object()
        page = self.paginate_queryset(selectors.sync_job_log_list(job=job))
        return self.get_paginated_response(SyncJobLogSerializer(page, many=True).data)

    @extend_schema(request=None, responses=SyncJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = services.sync_job_cancel(job=self.get_object(), actor=request.user)
        return Response(SyncJobSerializer(job).data)


class IntegrationSyncApi(OrganizationScopedMixin, APIView):
    """Start syncs of all enabled data sources of an integration (or `?data_source=<id>`). 202 new, 200 already running."""

    write_role = Role.EDITOR
    queryset = Integration.objects.none()

    @extend_schema(
        request=SyncStartInputSerializer,
        responses={200: StartResponse, 202: StartResponse},
        parameters=[OpenApiParameter("data_source", str, description="Only this data source")],
    )
    def post(self, request, pk):
        integration = get_object_or_404(Integration, pk=pk, organization=self.organization)
        data = SyncStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = None
        if request.query_params.get("data_source"):
            source = get_object_or_404(DataSource, pk=request.query_params["data_source"], integration=integration)
        jobs = services.sync_integration_start(
            integration=integration, actor=request.user, full_refresh=data.validated_data["full_refresh"], data_source=source
        )
        if not jobs:
            raise ApplicationError("This integration has no enabled data sources.", code="no_data_sources", status_code=409)
        return _start_response(jobs)


class DataSourceSyncApi(OrganizationScopedMixin, APIView):
    """Start a sync of one data source. 202 new, 200 with already_running when one is active."""

    write_role = Role.EDITOR
    queryset = DataSource.objects.none()

    @extend_schema(request=SyncStartInputSerializer, responses={200: StartResponse, 202: StartResponse})
    def post(self, request, pk):
        source = get_object_or_404(DataSource.objects.select_related("integration"), pk=pk, organization=self.organization)
        data = SyncStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.sync_start(data_source=source, actor=request.user, full_refresh=data.validated_data["full_refresh"])
        return _start_response([job])


class DataSourceScheduleApi(OrganizationScopedMixin, APIView):
    """Set a data source's schedule (admins): an interval in seconds or a crontab."""

    write_role = Role.ADMIN
    queryset = DataSource.objects.none()

    @extend_schema(request=ScheduleInputSerializer, responses=ScheduleOutputSerializer)
    def put(self, request, pk):
        source = get_object_or_404(DataSource.objects.select_related("integration", "organization"), pk=pk, organization=self.organization)
        data = ScheduleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.data_source_schedule_set(
            data_source=source,
            every_seconds=data.validated_data.get("every_seconds"),
            crontab=data.validated_data.get("crontab"),
            is_enabled=data.validated_data["is_enabled"],
        )
        return Response(
            {
                "name": task.name,
                "enabled": task.enabled,
                "interval_seconds": task.interval.every if task.interval else None,
                "crontab": str(task.crontab) if task.crontab else None,
            }
        )


@extend_schema(parameters=[OpenApiParameter("q", str, description="Search name, email, title, department")])
class PersonViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The merged people directory: one person per human, with their ids in every connected system."""

    serializer_class = PersonSerializer
    queryset = Person.objects.none()

    def get_scoped_queryset(self):
        return people_selectors.person_list(organization=self.organization, query=self.request.query_params.get("q", ""))

    def get_serializer_class(self):
        return PersonDetailSerializer if self.action == "retrieve" else PersonSerializer


class PeopleExportApi(OrganizationScopedMixin, APIView):
    """Every person as CSV (streamed); cells a spreadsheet would run as formulas are prefixed with a single quote."""

    queryset = Person.objects.none()

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def get(self, request):
        people_export_check(organization=self.organization, membership=self.membership)  # allowed_roles of the people's sources
        response = StreamingHttpResponse(services.people_export_rows(organization=self.organization), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="people.csv"'
        return response


class PeopleSettingsApi(OrganizationScopedMixin, APIView):
    """Source priority for merged people (most trusted first); admins change it and every person is recomputed."""

    write_role = Role.ADMIN
    queryset = PeopleSettings.objects.none()

    @extend_schema(responses=PeopleSettingsSerializer)
    def get(self, request):
        return Response({"source_priority": people_services.people_priority(organization=self.organization)})

    @extend_schema(request=PeopleSettingsSerializer, responses=PeopleSettingsSerializer)
    def put(self, request):
        data = PeopleSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        settings_row = people_services.people_settings_update(organization=self.organization, source_priority=data.validated_data["source_priority"])
        return Response({"source_priority": settings_row.priority()})


def _upload_id(request, data: dict, organization) -> str:
    if data.get("file") is not None:
        return services.csv_upload_store(organization=organization, uploaded=data["file"])
    if data.get("upload_id"):
        return str(data["upload_id"])
    raise ApplicationError("Attach a CSV file (multipart field 'file') or give an upload_id.", code="file_required", fields={"file": ["A file is required."]})


class CsvPreviewApi(OrganizationScopedMixin, APIView):
    """Upload a CSV (or name an earlier upload): detected encoding and delimiter, headers, first rows, suggested mapping."""

    write_role = Role.EDITOR
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    queryset = Person.objects.none()

    @extend_schema(request={"multipart/form-data": CsvUploadSerializer}, responses=CsvPreviewSerializer)
    def post(self, request):
        data = CsvUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload_id = _upload_id(request, data.validated_data, self.organization)
        return Response(services.csv_preview(organization=self.organization, upload_id=upload_id))


class CsvImportApi(OrganizationScopedMixin, APIView):
    """Import people from a CSV with a column mapping; runs as an import job (202). Bad mappings fail before anything is written."""

    write_role = Role.EDITOR
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    queryset = Person.objects.none()

    @extend_schema(request={"multipart/form-data": CsvImportInputSerializer}, responses={202: SyncJobSerializer})
    def post(self, request):
        data = CsvImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload_id = _upload_id(request, data.validated_data, self.organization)
        filename = getattr(data.validated_data.get("file"), "name", "") or ""
        job = services.csv_import_start(
            organization=self.organization, upload_id=upload_id, mapping=data.validated_data["mapping"], actor=request.user, filename=filename
        )
        job.refresh_from_db()
        return Response(SyncJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The webhook inbox; admins replay a delivery."""

    serializer_class = WebhookDeliverySerializer
    queryset = WebhookDelivery.objects.none()
    action_roles = {"replay": Role.ADMIN}

    def get_scoped_queryset(self):
        params = self.request.query_params
        return selectors.webhook_delivery_list(organization=self.organization, status=params.get("status"), outcome=params.get("outcome"))

    @extend_schema(responses=WebhookOutcomeCountSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="outcomes", pagination_class=None)  # one row per integration: a plain list
    def outcomes(self, request):
        """Per integration: how many deliveries were applied, not used, or unsupported."""
        return Response(WebhookOutcomeCountSerializer(selectors.webhook_outcome_counts(organization=self.organization), many=True).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        delivery = services.webhook_delivery_replay(delivery=self.get_object())
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class SyncMetricsApi(APIView):
    """Sync success rate, API error rate and data freshness per integration and overall, beside the seed's targets."""

    schema = SummaryAutoSchema()  # listed with a one-line summary in the API docs

    permission_classes = [HasOrganizationRole]

    @extend_schema(responses=MetricsSerializer)
    def get(self, request):
        from accounts.tenancy import resolve_organization

        return Response(selectors.sync_metrics(organization=resolve_organization(request)))


@csrf_exempt
def webhook_intake(request: HttpRequest, integration_id: str) -> HttpResponse:
    """POST /api/webhooks/<integration id>: raw body (size-limited) → verify → parse → inbox → enqueue → 2xx. Never a 500."""
    if request.method not in ("POST", "GET"):
        return JsonResponse(error_body("method_not_allowed", "Send webhooks with POST."), status=405)
    body = _webhook_body(request)
    if isinstance(body, HttpResponse):
        return body
    result = services.webhook_receive(
        integration_id=integration_id,
        method=request.method,
        url=request.build_absolute_uri(),
        headers={k: v for k, v in request.headers.items()},
        body=body,
        content_type=request.content_type or "",
    )
    return _intake_response(result)


@csrf_exempt
def webhook_intake_by_account(request: HttpRequest, connector_key: str) -> HttpResponse:
    """POST /api/webhooks/by-account/<connector key>: routed to the one integration connected to the vendor account the
    delivery names (vendors with one delivery URL for every account), then verified and stored like webhook_intake."""
    if request.method != "POST":
        return JsonResponse(error_body("method_not_allowed", "Send webhooks with POST."), status=405)
    body = _webhook_body(request)
    if isinstance(body, HttpResponse):
        return body
    result = webhook_receive_by_account(
        connector_key=connector_key,
        method=request.method,
        url=request.build_absolute_uri(),
        headers={k: v for k, v in request.headers.items()},
        body=body,
        content_type=request.content_type or "",
    )
    return _intake_response(result)


def _webhook_body(request: HttpRequest) -> bytes | HttpResponse:
    """The raw body, or a 413 when it is over BASTION_WEBHOOK_MAX_BYTES (declared or read)."""
    from django.conf import settings

    limit = int(settings.BASTION_WEBHOOK_MAX_BYTES)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    body = b"" if declared > limit else request.read(limit + 1)
    if declared > limit or len(body) > limit:
        return JsonResponse(error_body("too_large", f"Webhook bodies are limited to {limit} bytes."), status=413)
    return body


def _intake_response(result: IntakeResult) -> HttpResponse:
    if result.text is not None:
        response = HttpResponse(result.text, status=result.status, content_type="text/plain; charset=utf-8")
    else:
        response = JsonResponse(result.body, status=result.status)
    for name, value in result.headers.items():
        response[name] = value
    return response
