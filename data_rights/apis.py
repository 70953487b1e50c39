"""Data-rights API: export and erase a person; read and set retention."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.tenancy import OrganizationScopedMixin
from data_rights import services
from data_rights.models import RetentionPolicy
from people.models import Person


class PersonExportApi(OrganizationScopedMixin, APIView):
    """Everything Bastion holds about a person, as JSON (admins)."""

    read_role = Role.ADMIN

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, person_id):
        person = get_object_or_404(Person, pk=person_id, organization=self.organization)
        return Response(services.person_export(organization=self.organization, person=person, actor=request.user))


class PersonEraseApi(OrganizationScopedMixin, APIView):
    """Erase a person across the records store, people, scenarios, playbooks and logs (owners and admins)."""

    write_role = Role.ADMIN

    @extend_schema(request=None, responses=inline_serializer("ErasureSummary", {"erased": serializers.DictField(child=serializers.IntegerField())}))
    def post(self, request, person_id):
        person = get_object_or_404(Person, pk=person_id, organization=self.organization)
        return Response({"erased": services.person_erase(organization=self.organization, person=person, actor=request.user)})


class SuppressionLiftInputSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254, trim_whitespace=True, help_text="The erased person's email address (any case).")

    def validate_email(self, value: str) -> str:
        if "@" not in value:
            raise serializers.ValidationError("Enter the email address the person was erased with.")
        return value


class SuppressionLiftApi(OrganizationScopedMixin, APIView):
    """Let an erased person be synced and imported again, at their request (owners and admins; audited, 404 when none)."""

    write_role = Role.ADMIN

    @extend_schema(request=SuppressionLiftInputSerializer, responses=inline_serializer("SuppressionLifted", {"lifted": serializers.IntegerField(min_value=1)}))
    def post(self, request):
        serializer = SuppressionLiftInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifted = services.suppression_lift(organization=self.organization, email=serializer.validated_data["email"], actor=request.user)
        return Response({"lifted": lifted})


class RetentionPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = RetentionPolicy
        fields = ["deleted_records_days", "webhook_deliveries_days", "job_logs_days", "updated_at"]
        read_only_fields = ["updated_at"]


class RetentionPolicyApi(OrganizationScopedMixin, APIView):
    """The organization's retention settings (admins change them)."""

    write_role = Role.ADMIN

    @extend_schema(responses=RetentionPolicySerializer)
    def get(self, request):
        return Response(RetentionPolicySerializer(services.retention_policy_for(self.organization)).data)

    @extend_schema(request=RetentionPolicySerializer, responses=RetentionPolicySerializer)
    def put(self, request):
        policy = services.retention_policy_for(self.organization)
        serializer = RetentionPolicySerializer(policy, data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        from accounts.services import audit_record

        audit_record(action="data_rights.retention_update", organization=self.organization, request=request, target=policy, changes=serializer.validated_data)
        return Response(serializer.data)
