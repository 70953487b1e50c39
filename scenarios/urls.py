"""Scenario API routes (forms_engine adds the form-schema, options, validate and page routes)."""

from django.urls import path

from scenarios import apis, apis_documents, apis_listings, listing_views

urlpatterns = [
    path("api/scenarios/", apis.ScenarioListApi.as_view(), name="scenario-list"),
    path("api/scenarios/<uuid:pk>/", apis.ScenarioDetailApi.as_view(), name="scenario-detail"),
    path("api/scenarios/<uuid:pk>/upgrade", apis.ScenarioUpgradeApi.as_view(), name="scenario-upgrade"),
    path("api/scenarios/<uuid:pk>/populate-field", apis.ScenarioPopulateFieldApi.as_view(), name="scenario-populate-field"),
    path("api/scenarios/<uuid:pk>/document-import", apis_documents.ScenarioDocumentImportApi.as_view(), name="scenario-document-import"),
    # Import-only listings (integrations.listings): their templates fill scenario fields, so the import lives here.
    path("api/listings/<slug:key>/import", apis_listings.ListingImportApi.as_view(http_method_names=["post"]), name="api-listing-import"),
    path("integrations/listings/<slug:key>/", listing_views.listing_detail, name="integrations-listing"),
    path("integrations/listings/<slug:key>/templates/<slug:template_key>.csv", listing_views.listing_template_download, name="integrations-listing-template"),
    path("integrations/listings/<slug:key>/import/", listing_views.listing_import, name="integrations-listing-import"),
    path("integrations/listings/<slug:key>/starter/", listing_views.listing_starter, name="integrations-listing-starter"),
]
