"""Routes of the custom connector builder (included from integrations/urls.py)."""

from django.urls import path

from integrations.custom import apis, views

urlpatterns = [
    path("integrations/custom/", views.custom_connector_list, name="custom-connectors"),
    path("integrations/custom/<uuid:pk>/", views.custom_connector_builder, name="custom-connector-builder"),
    path("integrations/custom/<uuid:pk>/export/", views.custom_connector_export, name="custom-connector-export"),
    path("integrations/custom/<uuid:pk>/connect/", views.custom_connector_connect, name="custom-connector-connect"),
    path("api/custom-connectors", apis.CustomConnectorListApi.as_view(), name="api-custom-connectors"),
    path("api/custom-connectors/<uuid:pk>/versions", apis.CustomConnectorVersionsApi.as_view(), name="api-custom-connector-versions"),
]
