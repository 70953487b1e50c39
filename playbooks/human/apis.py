"""Human-step API: list what waits on people, and decide (approve / reject / done) as the signed-in person."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from accounts.tenancy import OrganizationScopedMixin
from playbooks.human import selectors, services
from playbooks.human.models import HumanStep


class ParticipantSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField(help_text="approver | assignee")
    via = serializers.CharField(help_text="How they were chosen: role:admin, user:ava, escalation 1: …")
    decision = serializers.CharField(allow_blank=True, help_text="approve | reject | done, or empty while pending")
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_via = serializers.CharField(allow_blank=True, help_text="war_room | email | api")
    comment = serializers.CharField(allow_blank=True)


class HumanStepOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField(help_text="approval | task | wait | status_update | activation")
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    state = serializers.CharField(help_text="open | resolved | cancelled")
    outcome = serializers.CharField(allow_blank=True, help_text="approved | rejected | timed_out | done | time_reached | condition_met")
    run_id = serializers.UUIDField(allow_null=True)
    playbook_id = serializers.UUIDField()
    step_key = serializers.CharField(allow_blank=True)
    required_approvals = serializers.IntegerField()
    approvals = serializers.IntegerField()
    due_at = serializers.DateTimeField(allow_null=True)
    wake_at = serializers.DateTimeField(allow_null=True)
    is_overdue = serializers.BooleanField()
    escalated_at = serializers.DateTimeField(allow_null=True)
    stalled_reason = serializers.CharField(allow_blank=True)
    draft = serializers.CharField(allow_blank=True, help_text="Status update: the summary to be sent after approval.")
    participants = ParticipantSerializer(many=True)
    can_act = serializers.BooleanField(help_text="The caller may decide now (asked, not yet decided, role still held).")


class DecisionInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject", "done"])
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class HumanStepViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Approvals, human tasks, waits and activation proposals; any member may call decide, the service checks who is asked."""

    queryset = HumanStep.objects.none()
    serializer_class = HumanStepOutputSerializer
    action_roles = {"decide": Role.VIEWER}

    def get_scoped_queryset(self):
        return selectors.human_step_list(
            organization=self.organization, run_id=self.request.query_params.get("run") or None, state=self.request.query_params.get("state") or None
        )

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        data = [selectors.human_step_view(h, user=request.user) for h in page]
        return self.get_paginated_response(HumanStepOutputSerializer(data, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("run", str, description="Only the steps of this run."),
            OpenApiParameter("state", str, description="open | resolved | cancelled"),
        ]
    )
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        return Response(HumanStepOutputSerializer(selectors.human_step_view(self.get_object(), user=request.user)).data)

    @extend_schema(request=DecisionInputSerializer, responses=HumanStepOutputSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Approve, reject or mark done as the signed-in person (their role is re-checked; each decision is audited)."""
        human_step = self.get_object()  # another organization's step is 404 before anything else
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        human = services.human_step_decide(
            human_step=human_step,
            user=request.user,
            decision=data.validated_data["decision"],
            comment=data.validated_data.get("comment", ""),
            via="api",
            request=request,
        )
        return Response(HumanStepOutputSerializer(selectors.human_step_view(human, user=request.user)).data)
