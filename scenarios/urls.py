"""Scenario API routes (forms_engine adds the form-schema, options, validate and page routes)."""

from django.urls import path

from scenarios import apis, apis_documents

urlpatterns = [
    path("api/scenarios/", apis.ScenarioListApi.as_view(), name="scenario-list"),
    path("api/scenarios/<uuid:pk>/", apis.ScenarioDetailApi.as_view(), name="scenario-detail"),
    path("api/scenarios/<uuid:pk>/upgrade", apis.ScenarioUpgradeApi.as_view(), name="scenario-upgrade"),
    path("api/scenarios/<uuid:pk>/populate-field", apis.ScenarioPopulateFieldApi.as_view(), name="scenario-populate-field"),
    path("api/scenarios/<uuid:pk>/document-import", apis_documents.ScenarioDocumentImportApi.as_view(), name="scenario-document-import"),
]
