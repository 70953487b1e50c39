"""The custom connector API: list an organization's connectors, list and save spec versions (refused with each problem's path)."""

from __future__ import annotations

import yaml
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from accounts.tenancy import OrganizationScopedMixin
from integrations.custom import selectors, services
from integrations.custom.models import CustomConnector, CustomConnectorVersion


class CustomConnectorSerializer(serializers.ModelSerializer):
    connector_key = serializers.CharField(read_only=True, help_text='What an integration names to use it: "custom.<id>".')
    published_version = serializers.SerializerMethodField()

    class Meta:
        model = CustomConnector
        fields = ["id", "key", "name", "status", "connector_key", "published_version", "created_at", "updated_at"]

    def get_published_version(self, obj: CustomConnector) -> int | None:
        return obj.current_version.number if obj.current_version else None


class VersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomConnectorVersion
        fields = ["number", "notes", "created_at", "spec"]


class VersionInputSerializer(serializers.Serializer):
    spec = serializers.JSONField(help_text="The spec: YAML text, or the document as a JSON object.")
    notes = serializers.CharField(required=False, allow_blank=True, max_length=500)


class CustomConnectorListApi(OrganizationScopedMixin, generics.ListAPIView):
    """The caller's organization's custom connectors (other organizations' never appear)."""

    queryset = CustomConnector.objects.none()
    serializer_class = CustomConnectorSerializer
    read_role = Role.ADMIN

    def get_scoped_queryset(self):
        return selectors.custom_connectors(organization=self.organization)


class CustomConnectorVersionsApi(OrganizationScopedMixin, generics.GenericAPIView):
    """A connector's saved versions; POST saves the next one, or answers 400 with the path of each problem."""

    queryset = CustomConnectorVersion.objects.none()
    serializer_class = VersionSerializer
    read_role = Role.ADMIN
    write_role = Role.ADMIN

    def get_scoped_queryset(self):
        return CustomConnectorVersion.objects.filter(connector__organization=self.organization)

    def _connector(self, pk) -> CustomConnector:
        connector = selectors.custom_connector_get(organization=self.organization, pk=pk)
        if connector is None:
            raise Http404("No such custom connector.")
        return connector

    def get(self, request: Request, pk) -> Response:
        versions = selectors.custom_connector_versions(connector=self._connector(pk))
        return Response(VersionSerializer(versions, many=True).data)

    @extend_schema(request=VersionInputSerializer, responses={201: VersionSerializer})
    def post(self, request: Request, pk) -> Response:
        connector = self._connector(pk)
        data = VersionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        spec = data.validated_data["spec"]
        text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False)
        version = services.custom_connector_version_save(
            connector=connector, text=text, notes=data.validated_data.get("notes", ""), actor=request.user, request=request
        )
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)
