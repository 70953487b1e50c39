"""Organization, membership and audit API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import invitations, selectors, services
from accounts.models import AuditEvent, Invitation, Membership, Organization, Role
from accounts.tenancy import OrganizationScopedMixin
from common.openapi_summary import SummaryAutoSchema


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

    schema = SummaryAutoSchema()  # listed with a one-line summary in the API docs

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


class MembershipViewSet(
    OrganizationScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Members of the current organization; owners change roles and remove members (people join through invitations)."""

    serializer_class = MembershipSerializer
    write_role = Role.OWNER
    http_method_names = ["get", "patch", "delete", "head", "options"]
    queryset = Membership.objects.none()

    def get_scoped_queryset(self):
        return selectors.membership_list(organization=self.organization)

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


class InvitationSerializer(serializers.ModelSerializer):
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, default=None)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "invited_by", "expires_at", "created_at"]
        read_only_fields = ["id", "invited_by", "expires_at", "created_at"]


class InvitationViewSet(OrganizationScopedMixin, mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Pending invitations of the current organization; owners invite by e-mail and revoke (the answer never says
    whether the address already has an account)."""

    serializer_class = InvitationSerializer
    read_role = Role.OWNER
    write_role = Role.OWNER
    queryset = Invitation.objects.none()

    def get_scoped_queryset(self):
        return selectors.invitation_pending_list(organization=self.organization)

    def perform_create(self, serializer):
        serializer.instance = invitations.invitation_create(
            organization=self.organization, actor=self.request.user, request=self.request, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        invitations.invitation_revoke(invitation=instance, actor=self.request.user, request=self.request)


class InvitationAcceptInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=100, help_text="The token from the e-mailed invitation link.")


class InvitationAcceptApi(APIView):
    """Accept an invitation as the signed-in user (whose e-mail address must be the one invited)."""

    schema = SummaryAutoSchema()  # listed with a one-line summary in the API docs

    permission_classes = [IsAuthenticated]

    @extend_schema(request=InvitationAcceptInputSerializer, responses={200: OrganizationOutputSerializer})
    def post(self, request):
        data = InvitationAcceptInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = invitations.invitation_accept(token=data.validated_data["token"], user=request.user, request=request)
        return Response(OrganizationOutputSerializer(membership.organization, context={"request": request}).data, status=status.HTTP_200_OK)
