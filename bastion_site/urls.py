"""Root URLs: each app brings its own API and page routes."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from bastion_site.monitoring import metrics_view
from common import views as common_views
from playbooks.dashboard import dashboard
from sync.urls import webhook_urlpatterns

urlpatterns = [
    *webhook_urlpatterns,
    path("", dashboard, name="dashboard"),
    path("healthz", common_views.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),  # its init script is a file (CSP)
    path("", include("accounts.urls")),
    path("", include("integrations.urls")),
    path("", include("sync.urls")),
    path("", include("scenarios.urls")),
    path("", include("forms_engine.urls")),
    path("", include("playbooks.urls")),
    path("", include("data_rights.urls")),
]

handler500 = "common.error_pages.server_error"

admin.site.site_header = "Bastion administration"
admin.site.site_title = "Bastion admin"
admin.site.index_title = "Integrations, scenarios and playbooks"
