"""Playbook API: templates, playbooks (create, preview, activate) and runs (war-room state, retry, resume, cancel)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError
from playbooks import selectors, services
from playbooks.models import Playbook, PlaybookRun, PlaybookStepTemplate, PlaybookTemplate

# ---- serializers -------------------------------------------------------------------------------------------------


class StepTemplateOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PlaybookStepTemplate
        fields = ["key", "name", "connector_key", "action", "depends_on", "for_each", "is_bulk", "is_required", "condition", "task_kind", "description"]


class PlaybookTemplateOutputSerializer(serializers.ModelSerializer):
    steps = StepTemplateOutputSerializer(many=True, read_only=True)

    class Meta:
        model = PlaybookTemplate
        fields = ["id", "scenario_type", "name", "description", "manual_baseline_minutes", "steps"]


class RunSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField(help_text="pending | running | succeeded | partial | failed | cancelled")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)


class PlaybookOutputSerializer(serializers.ModelSerializer):
    scenario_id = serializers.UUIDField(source="scenario.id", read_only=True)
    scenario_title = serializers.CharField(source="scenario.title", read_only=True)
    scenario_type = serializers.CharField(source="scenario.scenario_type", read_only=True)
    template_id = serializers.UUIDField(source="template.id", read_only=True)
    template_name = serializers.CharField(source="template.name", read_only=True)
    latest_run = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True, help_text="draft | active | completed | partial | cancelled")

    class Meta:
        model = Playbook
        fields = [
            "id",
            "name",
            "status",
            "scenario_id",
            "scenario_title",
            "scenario_type",
            "template_id",
            "template_name",
            "integration_bindings",
            "latest_run",
            "created_at",
        ]

    @extend_schema(responses=RunSummarySerializer(allow_null=True))
    def get_latest_run(self, playbook: Playbook) -> dict[str, Any] | None:
        run = selectors.playbook_latest_run(playbook=playbook)
        return RunSummarySerializer(run).data if run else None


class PlaybookCreateInputSerializer(serializers.Serializer):
    scenario_id = serializers.UUIDField()
    template_id = serializers.UUIDField(required=False, allow_null=True)
    name = serializers.CharField(required=False, allow_blank=True, max_length=300)
    integration_bindings = serializers.DictField(child=serializers.UUIDField(), required=False, help_text="Connector key → integration id.")


class PlaybookUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=300)
    integration_bindings = serializers.DictField(child=serializers.UUIDField(), required=False)


class PreviewIntegrationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    status = serializers.CharField()


class PreviewStepSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    connector_key = serializers.CharField()
    connector_name = serializers.CharField()
    action = serializers.CharField()
    count = serializers.IntegerField(help_text="How many vendor objects or messages this step produces.")
    description = serializers.CharField(help_text="What will happen where, e.g. 'creates 17 Jira issues in project OPS'.")
    depends_on = serializers.ListField(child=serializers.CharField())
    is_required = serializers.BooleanField()
    will_run = serializers.BooleanField(help_text="False when the step's condition does not hold for this scenario.")
    is_blocked = serializers.BooleanField()
    blocked_reason = serializers.CharField(allow_blank=True)
    integration = PreviewIntegrationSerializer(allow_null=True)
    sample_payload = serializers.DictField()
    errors = serializers.ListField(child=serializers.CharField())


class PreviewOutputSerializer(serializers.Serializer):
    playbook_id = serializers.UUIDField()
    summary = serializers.ListField(child=serializers.CharField(), help_text="One sentence per step that will run.")
    blocked = PreviewStepSerializer(many=True, help_text="Steps that cannot run: integration missing or unhealthy.")
    can_activate = serializers.BooleanField(help_text="False when the template has errors; blocked steps do not prevent activation.")
    steps = PreviewStepSerializer(many=True)


class StepItemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    label = serializers.CharField()
    title = serializers.CharField(allow_blank=True, help_text="What the item is about (the person invited, the task filed).")
    item_key = serializers.CharField(allow_blank=True)
    status = serializers.CharField(help_text="pending | queued | running | retrying | succeeded | failed | skipped | cancelled")
    attempts = serializers.IntegerField()
    external_id = serializers.CharField(allow_blank=True)
    external_url = serializers.CharField(allow_blank=True)
    reused_existing = serializers.BooleanField()
    last_error = serializers.CharField(allow_blank=True)
    error_class = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    data = serializers.DictField()


class StepGroupSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    connector_key = serializers.CharField()
    action = serializers.CharField()
    integration = serializers.CharField(allow_blank=True)
    depends_on = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="pending | queued | running | retrying | succeeded | failed | skipped | cancelled")
    counts = serializers.DictField(child=serializers.IntegerField())
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    items = StepItemSerializer(many=True)


class TaskSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    title = serializers.CharField()
    external_id = serializers.CharField()
    external_key = serializers.CharField(allow_blank=True)
    url = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    is_done = serializers.BooleanField()
    details = serializers.DictField()
    last_event_at = serializers.DateTimeField(allow_null=True)
    status_source = serializers.CharField(allow_blank=True, help_text="Where the current status came from: created | webhook | poll | undo.")
    last_polled_at = serializers.DateTimeField(allow_null=True, help_text="When the polling backstop last read the object.")


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    message = serializers.CharField()
    step_key = serializers.CharField(allow_blank=True)


class AttentionSerializer(serializers.Serializer):
    kind = serializers.CharField()
    step_key = serializers.CharField(allow_blank=True)
    message = serializers.CharField()
    error_class = serializers.CharField(allow_blank=True)


class TimeSavedSerializer(serializers.Serializer):
    baseline_minutes = serializers.IntegerField()
    activation_ms = serializers.IntegerField(allow_null=True)
    saved_minutes = serializers.FloatField(allow_null=True)
    saved_percent = serializers.FloatField(allow_null=True)


class UndoItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(allow_null=True, help_text="The undo step, once undo was asked for.")
    step_key = serializers.CharField()
    label = serializers.CharField()
    object = serializers.CharField(help_text="The created object (issue key, channel, meeting…).")
    external_id = serializers.CharField()
    external_url = serializers.CharField(allow_blank=True)
    is_undoable = serializers.BooleanField()
    description = serializers.CharField(help_text="What undo does to it, or why it stays (e-mails cannot be unsent).")
    status = serializers.CharField(help_text="not_requested | not_undoable | queued | running | retrying | succeeded | failed")
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(allow_blank=True, help_text="The vendor's error when undoing failed.")
    error_class = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class UndoGroupSerializer(serializers.Serializer):
    step_key = serializers.CharField()
    name = serializers.CharField()
    is_undoable = serializers.BooleanField()
    description = serializers.CharField()
    objects = serializers.ListField(child=serializers.CharField())


class UndoSerializer(serializers.Serializer):
    requested_at = serializers.DateTimeField(allow_null=True)
    requested_by = serializers.CharField(allow_blank=True)
    is_running = serializers.BooleanField()
    can_undo = serializers.BooleanField(help_text="True when some created object can still be undone (or its undo failed and can go again).")
    undoable_count = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    groups = UndoGroupSerializer(many=True, help_text="The confirmation listing: per step, what undo does and to which objects.")
    items = UndoItemSerializer(many=True)


class RunOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    playbook_id = serializers.UUIDField()
    playbook_name = serializers.CharField()
    status = serializers.CharField(help_text="pending | running | succeeded | partial | failed | cancelled")
    is_live = serializers.BooleanField()
    activated_by = serializers.CharField(allow_blank=True)
    cancelled_by = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    error_summary = serializers.CharField(allow_blank=True)
    counts = serializers.DictField(child=serializers.IntegerField())
    time_saved = TimeSavedSerializer()
    steps = StepGroupSerializer(many=True)
    tasks = TaskSerializer(many=True)
    timeline = TimelineEntrySerializer(many=True)
    attention = AttentionSerializer(many=True)
    undo = UndoSerializer(help_text="What undoing this run does to each object it created, and how that went.")


class CreatedObjectSerializer(serializers.Serializer):
    step_key = serializers.CharField()
    label = serializers.CharField()
    external_id = serializers.CharField()
    external_url = serializers.CharField(allow_blank=True)


class CancelInputSerializer(serializers.Serializer):
    undo = serializers.BooleanField(
        default=False,
        help_text="Also undo what the run created: archive the Slack channel, cancel the meeting (attendees notified), close the Jira issues. "
        "E-mails and texts cannot be unsent. Works on finished and already cancelled runs too (failed undo items go again).",
    )


class CancelOutputSerializer(serializers.Serializer):
    run = RunOutputSerializer()
    already_created = CreatedObjectSerializer(many=True, help_text="What the run created before it was cancelled (left in place unless undo was asked).")
    in_flight = CreatedObjectSerializer(many=True, help_text="Actions that were mid-call and may still complete (undone when they do, if undo was asked).")
    undo_queued = serializers.IntegerField(help_text="Undo steps queued by this request.")


class ResumeInputSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False, help_text="Admins: re-send running steps even if their worker's lease has not expired.")


class ResumeOutputSerializer(serializers.Serializer):
    resent = serializers.IntegerField()
    run = RunOutputSerializer()


def preview_payload(playbook: Playbook) -> dict[str, Any]:
    """The preview as the API and the page present it."""
    previews = services.playbook_preview(playbook=playbook)
    steps = [{**p.__dict__, "is_blocked": p.is_blocked} for p in previews]
    return {
        "playbook_id": playbook.pk,
        "summary": [p.description for p in previews if p.will_run and not p.is_blocked],
        "blocked": [s for s in steps if s["is_blocked"]],
        "can_activate": not any(p.errors for p in previews),
        "steps": steps,
    }


def _created_rows(step_runs: list) -> list[dict[str, Any]]:
    return [{"step_key": s.step_key, "label": s.label, "external_id": s.external_id, "external_url": s.external_url} for s in step_runs]


# ---- views -------------------------------------------------------------------------------------------------------


class PlaybookTemplateViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Playbook templates (edited by ops staff in the admin)."""

    serializer_class = PlaybookTemplateOutputSerializer
    queryset = PlaybookTemplate.objects.none()
    pagination_class = None

    def get_scoped_queryset(self):
        return selectors.playbook_template_list(scenario_type=self.request.query_params.get("scenario_type"))


class PlaybookViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Playbooks of the caller's organization: create from a scenario, preview, activate. Editors act; viewers read."""

    serializer_class = PlaybookOutputSerializer
    queryset = Playbook.objects.none()

    def get_scoped_queryset(self):
        return selectors.playbook_list(organization=self.organization)

    @extend_schema(
        request=PlaybookCreateInputSerializer,
        responses={201: PlaybookOutputSerializer},
        examples=[
            OpenApiExample(
                "From a crisis scenario, with the scenario type's template",
                value={"scenario_id": "3f0c7d2e-8a51-4c4e-9d0e-2b6f1a7c9e10", "name": "Crisis response: Payments outage"},
                request_only=True,
            )
        ],
    )
    def create(self, request: Request) -> Response:
        data = PlaybookCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scenario = selectors.scenario_list(organization=self.organization).filter(pk=data.validated_data["scenario_id"]).first()
        if scenario is None:
            raise ApplicationError("No such scenario in this organization.", code="not_found", fields={"scenario_id": ["No such scenario."]})
        template = None
        if data.validated_data.get("template_id"):
            template = PlaybookTemplate.objects.filter(pk=data.validated_data["template_id"]).first()
            if template is None:
                raise ApplicationError("No such playbook template.", code="template_not_found", fields={"template_id": ["No such template."]})
        playbook = services.playbook_create(
            organization=self.organization,
            scenario=scenario,
            template=template,
            integration_bindings=data.validated_data.get("integration_bindings"),
            name=data.validated_data.get("name", ""),
            actor=request.user,
            request=request,
        )
        return Response(PlaybookOutputSerializer(playbook).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PlaybookUpdateInputSerializer, responses=PlaybookOutputSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        playbook = self.get_object()
        data = PlaybookUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        playbook = services.playbook_update(
            playbook=playbook,
            integration_bindings=data.validated_data.get("integration_bindings"),
            name=data.validated_data.get("name"),
            actor=request.user,
            request=request,
        )
        return Response(PlaybookOutputSerializer(playbook).data)

    @extend_schema(responses=PreviewOutputSerializer)
    @action(detail=True, methods=["get"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """Exactly what activation will do where, and the steps that cannot run."""
        return Response(PreviewOutputSerializer(preview_payload(self.get_object())).data)

    @extend_schema(request=None, responses={200: RunOutputSerializer, 202: RunOutputSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Start a run (202), or return the open run (200): activating twice never acts twice."""
        run, created = services.playbook_activate(playbook=self.get_object(), actor=request.user, request=request)
        run.refresh_from_db()
        return Response(RunOutputSerializer(selectors.playbook_run_view(run=run)).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

    @extend_schema(responses=RunSummarySerializer(many=True))
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, pk: str | None = None) -> Response:
        """Every run of the playbook, newest first."""
        playbook = self.get_object()
        # Paginated like every list (the schema says so, and a playbook run daily for years has thousands).
        page = self.paginate_queryset(playbook.runs.order_by("-created_at"))
        return self.get_paginated_response(RunSummarySerializer(page, many=True).data)


class PlaybookRunViewSet(OrganizationScopedMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A run's live state (the war room), and retry / resume / cancel."""

    serializer_class = RunOutputSerializer
    queryset = PlaybookRun.objects.none()

    def get_scoped_queryset(self):
        return selectors.playbook_run_list(organization=self.organization)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        return Response(RunOutputSerializer(selectors.playbook_run_view(run=self.get_object())).data)

    @extend_schema(request=None, responses=RunOutputSerializer)
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request: Request, pk: str | None = None) -> Response:
        """Re-run only the failed steps, with the same idempotency keys."""
        run = self.get_object()
        services.playbook_run_retry_failed(run=run, actor=request.user, request=request)
        run.refresh_from_db()
        return Response(RunOutputSerializer(selectors.playbook_run_view(run=run)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ResumeInputSerializer, responses=ResumeOutputSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Re-send steps whose worker stopped (expired leases); `force` (admins) ignores leases."""
        run = self.get_object()
        data = ResumeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        force = data.validated_data["force"]
        if force and not self.membership.has_role(Role.ADMIN):
            raise ApplicationError("Only admins may force a resume.", code="permission_denied", status_code=403)
        resent = services.playbook_run_resume(run=run, force=force, actor=request.user)
        run.refresh_from_db()
        return Response({"resent": len(resent), "run": RunOutputSerializer(selectors.playbook_run_view(run=run)).data})

    @extend_schema(request=CancelInputSerializer, responses={200: CancelOutputSerializer, 202: CancelOutputSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop the run and list what was already created; with `undo` also undo it in the vendors (202 while undo steps run)."""
        data = CancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = services.playbook_run_cancel(run=self.get_object(), undo=data.validated_data["undo"], actor=request.user, request=request)
        outcome.run.refresh_from_db()
        return Response(
            {
                "run": RunOutputSerializer(selectors.playbook_run_view(run=outcome.run)).data,
                "already_created": _created_rows(outcome.already_created),
                "in_flight": _created_rows(outcome.in_flight),
                "undo_queued": len(outcome.undo_queued),
            },
            status=status.HTTP_202_ACCEPTED if outcome.undo_queued else status.HTTP_200_OK,
        )
