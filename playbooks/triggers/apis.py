"""Trigger API: rules (admins write), each rule's firing log, inbound endpoints, and the signed generic inbound webhook."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from accounts.services import audit_record
from accounts.tenancy import OrganizationScopedMixin
from playbooks.models import PlaybookTemplate
from playbooks.triggers import inbound
from playbooks.triggers.models import InboundEndpoint, TriggerFiring, TriggerMode, TriggerRule
from playbooks.triggers.services import rule_check


class TriggerRuleSerializer(serializers.ModelSerializer):
    template_id = serializers.PrimaryKeyRelatedField(source="template", queryset=PlaybookTemplate.objects.all())
    inbound_endpoint_id = serializers.PrimaryKeyRelatedField(source="inbound_endpoint", queryset=InboundEndpoint.objects.all(), required=False, allow_null=True)
    mode = serializers.ChoiceField(choices=TriggerMode.choices, default=TriggerMode.PROPOSE)

    class Meta:
        model = TriggerRule
        fields = [
            "id", "name", "template_id", "source", "inbound_endpoint_id", "event_types", "condition", "mapping", "defaults", "mode",
            "approval", "schedule", "integration_bindings", "cooldown_seconds", "is_enabled", "last_fired_at", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "last_fired_at", "created_at"]

    def validate(self, attrs):
        merged = {**({f: getattr(self.instance, f) for f in ("condition", "mapping", "mode", "approval", "template")} if self.instance else {}), **attrs}
        endpoint = attrs.get("inbound_endpoint")
        if endpoint is not None and endpoint.organization_id != self.context["organization"].pk:
            raise serializers.ValidationError({"inbound_endpoint_id": ["No such endpoint in this organization."]})
        source = attrs.get("source", getattr(self.instance, "source", ""))
        if source == "schedule":
            from playbooks.triggers.schedules import schedule_problem

            problem = schedule_problem(attrs.get("schedule", getattr(self.instance, "schedule", None)))
            if problem:
                raise serializers.ValidationError({"schedule": [problem]})
        if merged.get("event_types") is not None and not isinstance(merged.get("event_types", []), list):
            raise serializers.ValidationError({"event_types": ["A list of event types."]})
        rule_check(
            condition=merged.get("condition"),
            mapping=merged.get("mapping", {}),
            mode=merged.get("mode", TriggerMode.PROPOSE),
            approval=merged.get("approval"),
            template=merged.get("template"),
        )
        return attrs


class TriggerFiringSerializer(serializers.ModelSerializer):
    class Meta:
        model = TriggerFiring
        fields = [
            "id",
            "resource_key",
            "event_type",
            "delivery_id",
            "outcome",
            "is_firing",
            "reason",
            "values",
            "scenario",
            "playbook",
            "run",
            "received_at",
            "created_at",
        ]


class TriggerRuleViewSet(OrganizationScopedMixin, viewsets.ModelViewSet):
    """Rules that propose or activate a playbook when a verified event matches; admins edit them."""

    queryset = TriggerRule.objects.none()
    serializer_class = TriggerRuleSerializer
    write_role = Role.ADMIN

    def get_scoped_queryset(self):
        return TriggerRule.objects.filter(organization=self.organization).select_related("template")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "organization": self.organization if not getattr(self, "swagger_fake_view", False) else None}

    def perform_create(self, serializer):
        rule = serializer.save(organization=self.organization)
        audit_record(
            action="trigger_rule.create",
            organization=self.organization,
            actor=self.request.user,
            target=rule,
            changes={"name": rule.name},
            request=self.request,
        )

    def perform_update(self, serializer):
        rule = serializer.save()
        changes = {key: str(value)[:200] for key, value in serializer.validated_data.items()}
        audit_record(action="trigger_rule.update", organization=self.organization, actor=self.request.user, target=rule, changes=changes, request=self.request)

    @extend_schema(responses=TriggerFiringSerializer(many=True))
    @action(detail=True, methods=["get"])
    def firings(self, request: Request, pk: str | None = None) -> Response:
        """Every firing and non-firing of the rule, newest first, with its reason."""
        page = self.paginate_queryset(self.get_object().firings.order_by("-created_at"))
        return self.get_paginated_response(TriggerFiringSerializer(page, many=True).data)


class InboundEndpointSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = InboundEndpoint
        fields = ["id", "name", "is_enabled", "url", "created_at"]
        read_only_fields = ["id", "url", "created_at"]

    def get_url(self, endpoint: InboundEndpoint) -> str:
        return f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/api/inbound/{endpoint.pk}"


class InboundEndpointCreatedSerializer(InboundEndpointSerializer):
    secret = serializers.CharField(help_text="Shown once: sign deliveries with it (HMAC-SHA256 over '<timestamp>.<body>').")

    class Meta(InboundEndpointSerializer.Meta):
        fields = [*InboundEndpointSerializer.Meta.fields, "secret"]


class InboundEndpointViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Signed generic webhooks for systems without a connector; the secret is returned once, at creation."""

    queryset = InboundEndpoint.objects.none()
    serializer_class = InboundEndpointSerializer
    write_role = Role.ADMIN

    def get_scoped_queryset(self):
        return InboundEndpoint.objects.filter(organization=self.organization)

    @extend_schema(request=InboundEndpointSerializer, responses={201: InboundEndpointCreatedSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        data = InboundEndpointSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = inbound.inbound_endpoint_create(organization=self.organization, name=data.validated_data["name"], actor=request.user)
        body = {**InboundEndpointSerializer(endpoint).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)


@csrf_exempt
def inbound_intake(request: HttpRequest, endpoint_id: str) -> HttpResponse:
    """POST /api/inbound/<endpoint id>: raw body → HMAC verify → parse → store → enqueue → 202. Never a 500."""
    if request.method != "POST":
        return JsonResponse({"error": {"code": "method_not_allowed", "message": "Send events with POST.", "fields": {}}}, status=405)
    limit = int(settings.BASTION_WEBHOOK_MAX_BYTES)
    body = request.read(limit + 1)
    if len(body) > limit:
        return JsonResponse({"error": {"code": "too_large", "message": f"Bodies are limited to {limit} bytes.", "fields": {}}}, status=413)
    result = inbound.inbound_receive(endpoint_id=endpoint_id, headers=dict(request.headers.items()), body=body)
    return JsonResponse(result.body, status=result.status)


__all__ = ["InboundEndpointViewSet", "TriggerRuleViewSet", "inbound_intake"]
