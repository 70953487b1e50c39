"""Organization, membership and audit API."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.response import Response

from accounts import selectors, services
from accounts.models import AuditEvent, Membership, Organization, Role
from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError


class OrganizationOutputSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "role", "created_at"]

    def get_role(self, obj: Organization) -> str | None:
        membership = obj.memberships.filter(user=self.context["request"].user).first()
        return membership.role if membership else None


class OrganizationViewSet(viewsets.ReadOnlyModelViewSet):
    """Organizations the caller belongs to."""

    serializer_class = OrganizationOutputSerializer
    queryset = Organization.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return selectors.organization_list(user=self.request.user).order_by("name")


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "email", "role", "created_at"]
        read_only_fields = ["id", "username", "email", "created_at"]


class MembershipInputSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipViewSet(
    OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Members of the current organization; owners manage them."""

    serializer_class = MembershipSerializer
    write_role = Role.OWNER
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    queryset = Membership.objects.none()

    def get_scoped_queryset(self):
        return selectors.membership_list(organization=self.organization)

    @extend_schema(request=MembershipInputSerializer, responses=MembershipSerializer)
    def create(self, request):
        data = MembershipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=data.validated_data["username"]).first()
        if user is None:
            raise ApplicationError("No user with that username.", code="unknown_user", fields={"username": ["No user with that username."]})
        membership = services.membership_set(organization=self.organization, user=user, role=data.validated_data["role"], actor=request.user, request=request)
        return Response(MembershipSerializer(membership).data, status=201)

    def perform_update(self, serializer):
        membership = serializer.instance
        services.membership_set(
            organization=self.organization,
            user=membership.user,
            role=serializer.validated_data.get("role", membership.role),
            actor=self.request.user,
            request=self.request,
        )
        serializer.instance.refresh_from_db()

    def perform_destroy(self, instance):
        if instance.role == Role.OWNER and selectors.membership_list(organization=self.organization).filter(role=Role.OWNER).count() == 1:
            raise ApplicationError("An organization needs at least one owner.", code="last_owner", status_code=409)
        services.membership_remove(membership=instance, actor=self.request.user, request=self.request)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "actor_label", "action", "target_type", "target_id", "changes", "ip_address", "created_at"]


class AuditEventViewSet(OrganizationScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The organization's audit trail (admins and owners)."""

    serializer_class = AuditEventSerializer
    read_role = Role.ADMIN
    queryset = AuditEvent.objects.none()

    def get_scoped_queryset(self):
        return selectors.audit_event_list(organization=self.organization)
