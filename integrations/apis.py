"""The Data Source Registry API: catalog, integrations, data sources. Thin views over services and selectors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError
from integrations import selectors, services
from integrations.models import CredentialType, DataSource, Integration

# Serializers --------------------------------------------------------------------------------------------------


class CredentialFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    is_secret = serializers.BooleanField()
    is_required = serializers.BooleanField()
    help_text = serializers.CharField()


class ScopeSerializer(serializers.Serializer):
    scope = serializers.CharField()
    purpose = serializers.CharField()


class NamedSpecSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()


class ConnectorIntegrationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    display_name = serializers.CharField()
    status = serializers.CharField()


class ConnectorSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    category_label = serializers.CharField()
    description = serializers.CharField()
    logo_url = serializers.CharField()
    auth_methods = serializers.ListField(child=serializers.CharField())
    credential_fields = CredentialFieldSerializer(many=True)
    config_fields = CredentialFieldSerializer(many=True)
    scopes = ScopeSerializer(many=True, help_text="OAuth scopes Bastion requests, each with the feature that needs it.")
    entities = NamedSpecSerializer(many=True)
    actions = NamedSpecSerializer(many=True)
    supports_webhooks = serializers.BooleanField()
    capabilities = serializers.ListField(child=serializers.CharField())
    source = serializers.ChoiceField(choices=["builtin", "entry_point"])
    connection_status = serializers.ChoiceField(choices=["not_connected", "connected", "needs_attention"])
    integrations = ConnectorIntegrationSerializer(many=True)


class IntegrationSerializer(serializers.ModelSerializer):
    """An integration with its health; credentials are write-only and never appear here."""

    error_rate = serializers.SerializerMethodField()
    credential_types = serializers.SerializerMethodField()

    class Meta:
        model = Integration
        fields = [
            "id",
            "connector_key",
            "display_name",
            "status",
            "config",
            "base_url",
            "external_account_id",
            "allowed_roles",
            "last_sync_at",
            "last_success_at",
            "last_error",
            "last_error_at",
            "error_count",
            "calls_24h",
            "failures_24h",
            "error_rate",
            "auth_failed_at",
            "credential_types",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_error_rate(self, obj: Integration) -> float:
        return selectors.integration_error_rate(obj)

    def get_credential_types(self, obj: Integration) -> list[str]:
        return sorted(obj.credentials.values_list("credential_type", flat=True))


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    identity = serializers.CharField(allow_blank=True)
    scopes = serializers.ListField(child=serializers.CharField())
    account_id = serializers.CharField(allow_blank=True)
    detail = serializers.DictField()


class ConnectInputSerializer(serializers.Serializer):
    connector_key = serializers.CharField(max_length=60)
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    base_url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    config = serializers.DictField(required=False, default=dict)
    allowed_roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), required=False, default=list)
    credential_type = serializers.ChoiceField(
        choices=[CredentialType.API_KEY, CredentialType.SERVICE_ACCOUNT, CredentialType.OAUTH],
        default=CredentialType.API_KEY,
        help_text="oauth without credentials starts the authorization redirect: open authorize_url in the browser.",
    )
    credentials = serializers.DictField(required=False, default=dict, write_only=True, help_text="Write-only; never returned.")


class ConnectOutputSerializer(serializers.Serializer):
    integration = IntegrationSerializer()
    test = ConnectionTestSerializer(allow_null=True)
    webhook_secret = serializers.CharField(allow_null=True, help_text="Shown once: paste it into the vendor's webhook settings.")
    authorize_url = serializers.CharField(allow_null=True, help_text="Where to send the browser to finish an OAuth connection.")


class IntegrationUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=200, required=False)
    base_url = serializers.CharField(max_length=500, required=False, allow_blank=True)
    allowed_roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), required=False)
    config = serializers.DictField(required=False)


class DataSourceMappingSerializer(serializers.Serializer):
    entity_type = serializers.CharField()
    field_mapping = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    is_enabled = serializers.BooleanField(required=False)


class ConfigInputSerializer(serializers.Serializer):
    config = serializers.DictField(required=False)
    data_sources = DataSourceMappingSerializer(many=True, required=False)
    finish = serializers.BooleanField(default=False, help_text="Check required settings (the wizard's last step).")


class ReconnectInputSerializer(serializers.Serializer):
    credential_type = serializers.ChoiceField(
        choices=[CredentialType.API_KEY, CredentialType.SERVICE_ACCOUNT, CredentialType.OAUTH], default=CredentialType.API_KEY
    )
    credentials = serializers.DictField(required=False, default=dict, write_only=True)


class ReconnectOutputSerializer(serializers.Serializer):
    integration = IntegrationSerializer()
    test = ConnectionTestSerializer(allow_null=True)
    authorize_url = serializers.CharField(allow_null=True)


class DataSourceSerializer(serializers.ModelSerializer):
    integration_id = serializers.UUIDField(read_only=True)
    field_count = serializers.SerializerMethodField()

    class Meta:
        model = DataSource
        fields = [
            "id",
            "integration_id",
            "entity_type",
            "is_enabled",
            "field_mapping",
            "field_count",
            "discovered_at",
            "last_synced_at",
            "is_stale",
            "stale_reason",
        ]
        read_only_fields = fields

    def get_field_count(self, obj: DataSource) -> int:
        return len(obj.discovered_fields or [])


class FieldInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    type = serializers.CharField()
    path = serializers.CharField(allow_blank=True)
    is_required = serializers.BooleanField()
    is_custom = serializers.BooleanField()


class BastionFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()


class SuggestionSerializer(serializers.Serializer):
    bastion_field = serializers.CharField()
    source_field = serializers.CharField()
    score = serializers.FloatField()
    reason = serializers.CharField()


class FieldsOutputSerializer(serializers.Serializer):
    data_source_id = serializers.UUIDField()
    entity_type = serializers.CharField()
    bastion_type = serializers.CharField(allow_blank=True)
    discovered_at = serializers.DateTimeField(allow_null=True)
    fields = FieldInfoSerializer(many=True)
    bastion_fields = BastionFieldSerializer(many=True)
    field_mapping = serializers.DictField(child=serializers.CharField())
    suggestions = SuggestionSerializer(many=True)


class QueryInputSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=services.QUERY_MAX_LIMIT, default=20)
    page = serializers.JSONField(required=False, allow_null=True, default=None, help_text="The next_page of a previous answer.")


class QueryOutputSerializer(serializers.Serializer):
    entity_type = serializers.CharField()
    records = serializers.ListField(child=serializers.DictField(), help_text="Records in the vendor's shape.")
    bastion = serializers.ListField(child=serializers.DictField(), help_text="The same records in Bastion's shape.")
    next_page = serializers.JSONField(allow_null=True)
    truncated = serializers.BooleanField()


class PushInputSerializer(serializers.Serializer):
    action = serializers.CharField(max_length=80)
    record = serializers.DictField(help_text="A record in Bastion's shape; the connector's from_bastion turns it into the vendor's.")
    idempotency_key = serializers.CharField(max_length=200, help_text="A retry with the same key returns the same external object.")


class PushOutputSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    url = serializers.CharField(allow_blank=True)
    data = serializers.DictField()
    created = serializers.BooleanField()


def _test_data(result) -> dict:
    return {"ok": result.ok, "identity": result.identity, "scopes": list(result.scopes), "account_id": result.account_id, "detail": result.detail}


def _authorize_url(integration: Integration) -> str:
    return f"/integrations/{integration.pk}/authorize/"


# Views -----------------------------------------------------------------------------------------------------------


class ConnectorCatalogApi(OrganizationScopedMixin, generics.GenericAPIView):
    """The connector catalog with this organization's connection status per connector."""

    queryset = Integration.objects.none()
    serializer_class = ConnectorSerializer
    pagination_class = None

    def get_scoped_queryset(self):
        return selectors.integration_list(organization=self.organization)

    @extend_schema(responses=ConnectorSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ConnectorSerializer(selectors.connector_catalog(organization=self.organization), many=True).data)


class IntegrationListApi(OrganizationScopedMixin, generics.ListAPIView):
    """Integrations of the caller's organization with their health."""

    queryset = Integration.objects.none()
    serializer_class = IntegrationSerializer

    def get_scoped_queryset(self):
        return selectors.integration_list(organization=self.organization)


class IntegrationConnectApi(OrganizationScopedMixin, generics.GenericAPIView):
    """Connect a connector: credentials are validated, encrypted and tested; OAuth returns where to authorize."""

    queryset = Integration.objects.none()
    serializer_class = ConnectInputSerializer
    write_role = Role.ADMIN

    def get_scoped_queryset(self):
        return selectors.integration_list(organization=self.organization)

    @extend_schema(
        request=ConnectInputSerializer,
        responses={201: ConnectOutputSerializer},
        examples=[
            OpenApiExample(
                "Jira with an API token",
                value={
                    "connector_key": "jira",
                    "display_name": "Jira",
                    "base_url": "https://acme.atlassian.net",
                    "config": {"project_keys": "OPS"},
                    "credential_type": "api_key",
                    "credentials": {"email": "ops-bot@acme.example", "api_token": "<token>"},
                },
                request_only=True,
            ),
            OpenApiExample("Slack through OAuth (open authorize_url next)", value={"connector_key": "slack", "credential_type": "oauth"}, request_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        data = ConnectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        common = {
            "organization": self.organization,
            "connector_key": values["connector_key"],
            "display_name": values["display_name"],
            "config": values["config"],
            "base_url": values["base_url"],
            "allowed_roles": values["allowed_roles"],
            "actor": request.user,
            "request": request,
        }
        test = authorize_url = None
        if values["credential_type"] == CredentialType.OAUTH and not values["credentials"]:
            manifest = services.connector_class_for(values["connector_key"]).manifest
            if manifest.oauth is None:
                raise ApplicationError(f"{manifest.name} does not use OAuth.", code="invalid", fields={"credential_type": ["OAuth is not available."]})
            integration = services.integration_create(**common)
            authorize_url = _authorize_url(integration)
        else:
            integration = services.integration_connect(**common, credentials=values["credentials"], credential_type=values["credential_type"], test=False)
            test = _test_data(services.integration_test(integration=integration, actor=request.user, request=request))
        integration.refresh_from_db()
        secret = services.webhook_secret_reveal(integration=integration, actor=request.user, request=request)
        body = {"integration": integration, "test": test, "webhook_secret": secret, "authorize_url": authorize_url}
        return Response(ConnectOutputSerializer(body).data, status=status.HTTP_201_CREATED)


class IntegrationDetailApi(OrganizationScopedMixin, generics.GenericAPIView):
    """Read, update or delete one integration (admins write)."""

    queryset = Integration.objects.none()
    serializer_class = IntegrationSerializer
    write_role = Role.ADMIN

    def get_scoped_queryset(self):
        return selectors.integration_list(organization=self.organization)

    def get(self, request: Request, pk) -> Response:
        return Response(IntegrationSerializer(self.get_object()).data)

    def _update(self, request: Request, *, partial: bool) -> Response:
        integration = self.get_object()
        data = IntegrationUpdateSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        if not partial and "display_name" not in data.validated_data:
            raise ApplicationError("display_name is required.", code="invalid", fields={"display_name": ["This field is required."]})
        integration = services.integration_update(integration=integration, actor=request.user, request=request, **data.validated_data)
        return Response(IntegrationSerializer(integration).data)

    @extend_schema(request=IntegrationUpdateSerializer, responses=IntegrationSerializer)
    def put(self, request: Request, pk) -> Response:
        return self._update(request, partial=False)

    @extend_schema(request=IntegrationUpdateSerializer, responses=IntegrationSerializer)
    def patch(self, request: Request, pk) -> Response:
        return self._update(request, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk) -> Response:
        services.integration_delete(integration=self.get_object(), actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class IntegrationConfigApi(IntegrationDetailApi):
    """Set workspace/project settings and field mappings per data source."""

    @extend_schema(request=ConfigInputSerializer, responses=IntegrationSerializer)
    def put(self, request: Request, pk) -> Response:
        integration = self.get_object()
        data = ConfigInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        integration = services.integration_config_update(
            integration=integration,
            config=data.validated_data.get("config"),
            data_sources=data.validated_data.get("data_sources"),
            finish=data.validated_data["finish"],
            actor=request.user,
            request=request,
        )
        return Response(IntegrationSerializer(integration).data)


class DisabledRulesPreviewInputSerializer(serializers.Serializer):
    rules = serializers.ListField(child=serializers.DictField(), allow_empty=True)


class DisabledRulePreviewSerializer(serializers.Serializer):
    rule = serializers.DictField()
    label = serializers.CharField()
    excluded = serializers.IntegerField()


class DisabledRulesPreviewSerializer(serializers.Serializer):
    entries = serializers.IntegerField()
    excluded = serializers.IntegerField()
    rules = DisabledRulePreviewSerializer(many=True)


class IntegrationDisabledRulesPreviewApi(IntegrationDetailApi):
    """Directory integrations: how many entries each disabled-account rule would exclude, before the rules are saved."""

    @extend_schema(request=DisabledRulesPreviewInputSerializer, responses=DisabledRulesPreviewSerializer)
    def post(self, request: Request, pk) -> Response:
        integration = self.get_object()  # another organization's integration is a 404 before its input is even read
        data = DisabledRulesPreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preview = services.directory_disabled_rules_preview(integration=integration, rules=data.validated_data["rules"])
        return Response(DisabledRulesPreviewSerializer(preview).data)


class IntegrationTestApi(IntegrationDetailApi):
    """Test the connection now and update health."""

    @extend_schema(request=None, responses=ConnectionTestSerializer)
    def post(self, request: Request, pk) -> Response:
        result = services.integration_test(integration=self.get_object(), actor=request.user, request=request)
        return Response(ConnectionTestSerializer(_test_data(result)).data)


class WebhookRegistrationSerializer(serializers.Serializer):
    url = serializers.URLField()
    vendor_id = serializers.CharField(allow_blank=True)


class IntegrationWebhookApi(IntegrationDetailApi):
    """Register Bastion's webhook at the vendor with a fresh signing secret (connectors that support it; admins)."""

    @extend_schema(request=None, responses=WebhookRegistrationSerializer)
    def post(self, request: Request, pk) -> Response:
        registered = services.integration_webhook_register(integration=self.get_object(), actor=request.user, request=request)
        return Response(WebhookRegistrationSerializer(registered).data)


class IntegrationReconnectApi(IntegrationDetailApi):
    """Restore a broken connection with a new credential (or OAuth again); settings and mappings are kept."""

    @extend_schema(request=ReconnectInputSerializer, responses=ReconnectOutputSerializer)
    def post(self, request: Request, pk) -> Response:
        integration = self.get_object()
        data = ReconnectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        test = authorize_url = None
        if data.validated_data["credential_type"] == CredentialType.OAUTH and not data.validated_data["credentials"]:
            authorize_url = _authorize_url(integration)
        else:
            result = services.integration_reconnect(
                integration=integration,
                credentials=data.validated_data["credentials"],
                credential_type=data.validated_data["credential_type"],
                actor=request.user,
                request=request,
            )
            test = _test_data(result)
        integration.refresh_from_db()
        return Response(ReconnectOutputSerializer({"integration": integration, "test": test, "authorize_url": authorize_url}).data)


class IntegrationDataSourcesApi(OrganizationScopedMixin, generics.GenericAPIView):
    """The data sources (entity streams) of one integration."""

    queryset = Integration.objects.none()
    serializer_class = DataSourceSerializer
    pagination_class = None

    def get_scoped_queryset(self):
        return selectors.integration_list(organization=self.organization)

    @extend_schema(responses=DataSourceSerializer(many=True))
    def get(self, request: Request, pk) -> Response:
        integration = self.get_object()
        return Response(DataSourceSerializer(selectors.data_source_list(organization=self.organization, integration=integration), many=True).data)


class DataSourceBaseApi(OrganizationScopedMixin, generics.GenericAPIView):
    queryset = DataSource.objects.none()
    serializer_class = FieldsOutputSerializer

    def get_scoped_queryset(self):
        return selectors.data_source_list(organization=self.organization)


class DataSourceFieldsApi(DataSourceBaseApi):
    """Discovered fields (kept from the last discovery), the mapping, and mapping suggestions."""

    @extend_schema(responses=FieldsOutputSerializer)
    def get(self, request: Request, pk) -> Response:
        return Response(FieldsOutputSerializer(selectors.data_source_fields(data_source=self.get_object())).data)


class DataSourceDiscoverApi(DataSourceBaseApi):
    """Discover the entity's fields from the live system now."""

    write_role = Role.ADMIN

    @extend_schema(request=None, responses=FieldsOutputSerializer)
    def post(self, request: Request, pk) -> Response:
        data_source = services.data_source_discover(data_source=self.get_object(), actor=request.user, request=request)
        return Response(FieldsOutputSerializer(selectors.data_source_fields(data_source=data_source)).data)


class DataSourceQueryApi(DataSourceBaseApi):
    """Read one page live through the connector (editors; subject to the integration's allowed roles)."""

    serializer_class = QueryInputSerializer
    write_role = Role.EDITOR

    @extend_schema(request=QueryInputSerializer, responses=QueryOutputSerializer)
    def post(self, request: Request, pk) -> Response:
        data_source = self.get_object()  # another organization's data source is 404 before any validation
        data = QueryInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.data_source_query(
            data_source=data_source, membership=self.membership, limit=data.validated_data["limit"], page=data.validated_data["page"], request=request
        )
        return Response(QueryOutputSerializer(result).data)


class DataSourcePushApi(DataSourceBaseApi):
    """Transform a Bastion record and perform one connector action (idempotent per key)."""

    serializer_class = PushInputSerializer
    write_role = Role.EDITOR

    @extend_schema(request=PushInputSerializer, responses=PushOutputSerializer)
    def post(self, request: Request, pk) -> Response:
        data_source = self.get_object()
        data = PushInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.data_source_push(data_source=data_source, membership=self.membership, request=request, **data.validated_data)
        body = {"external_id": result.external_id, "url": result.url, "data": result.data, "created": result.created}
        return Response(PushOutputSerializer(body).data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
