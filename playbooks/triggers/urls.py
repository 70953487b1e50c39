"""Routes for trigger rules, the generic inbound webhook and run reports (added to playbooks/urls.py)."""

from django.urls import path

from playbooks import report_views
from playbooks.as_code import urls as as_code_urls
from playbooks.triggers import apis

urlpatterns = [
    path("api/inbound/<str:endpoint_id>", apis.inbound_intake, name="inbound-intake"),
    path("api/run-insights/", report_views.RunInsightsView.as_view(), name="run-insights"),
    path("playbook-runs/<uuid:run_id>/report.md", report_views.run_report_download, name="run-report"),
    path("playbook-runs/<uuid:run_id>/report.pdf", report_views.run_report_pdf_download, name="run-report-pdf"),
]
urlpatterns += as_code_urls.urlpatterns
