"""The dashboard: where the organization stands across integrations, people, scenarios and playbook runs.

It lives in the top layer because it reads every app; the apps below never import it.
"""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import Role
from accounts.tenancy import organization_page
from integrations.models import Integration
from people.models import Person
from playbooks import selectors as playbook_selectors
from scenarios.models import Scenario
from sync.models import DataSyncJob


@organization_page(Role.VIEWER)
def dashboard(request: HttpRequest) -> HttpResponse:
    organization = request.organization
    integrations = list(Integration.objects.filter(organization=organization).order_by("display_name"))
    status_counts = dict(Integration.objects.filter(organization=organization).values_list("status").annotate(n=Count("id")))
    runs = list(playbook_selectors.playbook_run_list(organization=organization).order_by("-created_at")[:5])
    finished = [run for run in playbook_selectors.playbook_run_list(organization=organization).filter(status="succeeded", duration_ms__isnull=False)]
    saved_minutes = sum(playbook_selectors.time_saved(run)["saved_minutes"] or 0 for run in finished)
    context = {
        "organization": organization,
        "integrations": integrations,
        "connected_count": status_counts.get("connected", 0),
        "attention_count": status_counts.get("auth_failed", 0) + status_counts.get("degraded", 0),
        "people_count": Person.objects.filter(organization=organization, is_active=True).count(),
        "scenario_count": Scenario.objects.filter(organization=organization).count(),
        "recent_jobs": DataSyncJob.objects.filter(organization=organization).select_related("integration", "data_source").order_by("-created_at")[:5],
        "recent_runs": [(run, playbook_selectors.time_saved(run)) for run in runs],
        "saved_hours": round(saved_minutes / 60, 1),
        "finished_runs": len(finished),
    }
    return render(request, "dashboard.html", context)
