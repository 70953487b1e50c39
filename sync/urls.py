"""Sync engine routes: API under /api/, pages under /integrations/status/ and /people/."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from sync import apis, views

router = SimpleRouter()
router.register("sync-jobs", apis.SyncJobViewSet, basename="sync-job")
router.register("people", apis.PersonViewSet, basename="person")
router.register("webhook-deliveries", apis.WebhookDeliveryViewSet, basename="webhook-delivery")

# Listed first in the root URLconf (bastion_site/urls.py): vendors post here at machine rates, so their URL is matched
# before the pages' and the API's dozens of patterns are tried.
webhook_urlpatterns = [
    path("api/webhooks/by-account/<str:connector_key>", apis.webhook_intake_by_account, name="webhook-intake-by-account"),
    path("api/webhooks/<str:integration_id>", apis.webhook_intake, name="webhook-intake"),
]

urlpatterns = [
    path("api/integrations/<uuid:pk>/sync", apis.IntegrationSyncApi.as_view(), name="integration-sync"),
    path("api/data-sources/<uuid:pk>/sync", apis.DataSourceSyncApi.as_view(), name="data-source-sync"),
    path("api/data-sources/<uuid:pk>/schedule", apis.DataSourceScheduleApi.as_view(), name="data-source-schedule"),
    path("api/people/export.csv", apis.PeopleExportApi.as_view(), name="people-export-api"),
    path("api/people-settings", apis.PeopleSettingsApi.as_view(), name="people-settings"),
    path("api/imports/csv/preview", apis.CsvPreviewApi.as_view(), name="csv-preview"),
    path("api/imports/csv", apis.CsvImportApi.as_view(), name="csv-import"),
    path("api/sync-metrics/", apis.SyncMetricsApi.as_view(), name="sync-metrics"),
    path("api/", include(router.urls)),
    path("integrations/status/", views.status_dashboard, name="sync-status"),
    path("integrations/status/refresh/<uuid:pk>", views.refresh_now, name="sync-refresh"),
    path("integrations/status/sync-integration/<uuid:pk>", views.integration_sync_now, name="sync-integration-now"),
    path("integrations/status/jobs/<uuid:pk>/", views.job_detail, name="sync-job-detail"),
    path("people/", views.people_directory, name="people"),
    path("people/export.csv", views.people_export, name="people-export"),
    path("people/import/", views.people_import, name="people-import"),
    path("people/import/<uuid:upload_id>/", views.people_import_mapping, name="people-import-mapping"),
    path("people/<uuid:pk>/", views.person_detail, name="person-detail"),
]
