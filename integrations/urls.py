"""Integration routes: the Data Source Registry API and the marketplace, wizard and detail pages."""

from django.urls import include, path

from integrations import apis, documents, views
from integrations.listings import apis as listing_apis
from integrations.spec_schema_view import connector_spec_schema

urlpatterns = [
    path("api/schema/connector-spec.json", connector_spec_schema, name="api-connector-spec-schema"),
    path("api/connectors", apis.ConnectorCatalogApi.as_view(), name="api-connectors"),
    path("api/listings", listing_apis.ListingsApi.as_view(), name="api-listings"),
    path("api/listings/<slug:key>", listing_apis.ListingDetailApi.as_view(), name="api-listing-detail"),
    path("api/integrations", apis.IntegrationListApi.as_view(), name="api-integrations"),
    path("api/integrations/connect", apis.IntegrationConnectApi.as_view(), name="api-integration-connect"),
    path("api/integrations/<uuid:pk>", apis.IntegrationDetailApi.as_view(), name="api-integration-detail"),
    path("api/integrations/<uuid:pk>/config", apis.IntegrationConfigApi.as_view(http_method_names=["put"]), name="api-integration-config"),
    path(
        "api/integrations/<uuid:pk>/disabled-rules/preview",
        apis.IntegrationDisabledRulesPreviewApi.as_view(http_method_names=["post"]),
        name="api-integration-disabled-rules-preview",
    ),
    path("api/integrations/<uuid:pk>/test", apis.IntegrationTestApi.as_view(http_method_names=["post"]), name="api-integration-test"),
    path("api/integrations/<uuid:pk>/webhook", apis.IntegrationWebhookApi.as_view(http_method_names=["post"]), name="api-integration-webhook"),
    path("api/integrations/<uuid:pk>/reconnect", apis.IntegrationReconnectApi.as_view(http_method_names=["post"]), name="api-integration-reconnect"),
    path("api/integrations/<uuid:pk>/documents", documents.IntegrationDocumentsApi.as_view(), name="api-integration-documents"),
    path("api/integrations/<uuid:pk>/data-sources", apis.IntegrationDataSourcesApi.as_view(), name="api-integration-data-sources"),
    path("api/data-sources/<uuid:pk>/fields", apis.DataSourceFieldsApi.as_view(), name="api-data-source-fields"),
    path("api/data-sources/<uuid:pk>/discover", apis.DataSourceDiscoverApi.as_view(), name="api-data-source-discover"),
    path("api/data-sources/<uuid:pk>/query", apis.DataSourceQueryApi.as_view(), name="api-data-source-query"),
    path("api/data-sources/<uuid:pk>/push", apis.DataSourcePushApi.as_view(), name="api-data-source-push"),
    # Pages
    path("integrations/", views.marketplace, name="integrations-marketplace"),
    path("integrations/connect/<slug:connector_key>/", views.connect, name="integrations-connect"),
    path("integrations/oauth/callback", views.oauth_callback, name="integrations-oauth-callback"),
    path("integrations/<uuid:pk>/", views.detail, name="integrations-detail"),
    path("integrations/<uuid:pk>/authorize/", views.authorize, name="integrations-authorize"),
    path("integrations/<uuid:pk>/reconnect/", views.reconnect, name="integrations-reconnect"),
    path("integrations/<uuid:pk>/setup/", views.setup, name="integrations-setup"),
    path("integrations/<uuid:pk>/map/", views.map_fields, name="integrations-map"),
    path("integrations/<uuid:pk>/finish/", views.finish, name="integrations-finish"),
    path("integrations/<uuid:pk>/actions/", views.detail_action, name="integrations-detail-action"),
    path("", include("integrations.custom.urls")),  # custom connectors: builder pages and API
]
