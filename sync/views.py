"""Pages: the sync status dashboard, the people directory and person page, the CSV import flow."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.tenancy import organization_page
from common.errors import ApplicationError
from integrations.models import DataSource, Integration
from people import selectors as people_selectors
from sync import charts, selectors, services
from sync.access import people_export_check
from sync.csv_import import BASTION_FIELDS


@organization_page(Role.VIEWER)
def status_dashboard(request: HttpRequest) -> HttpResponse:
    """Health per integration, recent jobs with live progress, the error log, metrics against the targets."""
    organization = request.organization
    context = {
        "integrations": selectors.integration_health(organization=organization).prefetch_related("data_sources"),
        "jobs": selectors.sync_job_list(organization=organization)[:25],
        "errors": selectors.sync_error_log(organization=organization, limit=30),
        "metrics": selectors.sync_metrics(organization=organization),
        "freshness": charts.freshness_chart(organization=organization),
        "rates": charts.rates_chart(organization=organization),
        "records": charts.records_chart(organization=organization),
        "can_refresh": request.membership.has_role(Role.EDITOR),
    }
    return render(request, "sync/status.html", context)


@require_POST
@organization_page(Role.EDITOR)
def refresh_now(request: HttpRequest, pk) -> HttpResponse:
    source = get_object_or_404(DataSource.objects.select_related("integration"), pk=pk, organization=request.organization)
    try:
        job = services.sync_start(data_source=source, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if getattr(job, "already_running", False):
            messages.info(request, f"A sync of {source} is already running.")
        else:
            messages.success(request, f"Sync of {source} started.")
    return redirect("sync-status")


def _local_path(value: str, default: str) -> str:
    """Only a path on this site (never another origin: "//host" or a scheme)."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else default


@require_POST
@organization_page(Role.EDITOR)
def integration_sync_now(request: HttpRequest, pk) -> HttpResponse:
    """Start the syncs of an integration's enabled data sources, then go on (the wizard's last step, "Sync now")."""
    integration = get_object_or_404(Integration, pk=pk, organization=request.organization)
    jobs = services.sync_integration_start(integration=integration, actor=request.user)
    if jobs:
        messages.success(request, f"Syncing {integration.display_name}: {len(jobs)} source{'s' if len(jobs) != 1 else ''}. Progress shows on the status page.")
    else:
        messages.info(request, f"{integration.display_name} has no enabled data source to sync.")
    return redirect(_local_path(request.POST.get("next", ""), f"/integrations/{integration.pk}/"))


@organization_page(Role.VIEWER)
def job_detail(request: HttpRequest, pk) -> HttpResponse:
    job = get_object_or_404(selectors.sync_job_list(organization=request.organization), pk=pk)
    return render(request, "sync/job.html", {"job": job, "log": selectors.sync_job_log_list(job=job).order_by("-id")[:500]})


@organization_page(Role.VIEWER)
def people_directory(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    people = people_selectors.person_list(organization=request.organization, query=query).order_by("-is_active", "display_name")
    imports = selectors.sync_job_list(organization=request.organization).filter(job_type="import")[:5]
    return render(
        request,
        "people/list.html",
        {"people": people[:200], "total": people.count(), "query": query, "imports": imports, "can_import": request.membership.has_role(Role.EDITOR)},
    )


@organization_page(Role.VIEWER)
def person_detail(request: HttpRequest, pk) -> HttpResponse:
    person = people_selectors.person_get(organization=request.organization, person_id=pk)
    if person is None:
        raise Http404("No such person.")
    labels = {
        "email": "Email",
        "display_name": "Name",
        "given_name": "Given name",
        "family_name": "Family name",
        "title": "Title",
        "department": "Department",
        "phone": "Phone",
    }
    fields = [(label, getattr(person, name), (person.provenance or {}).get(name)) for name, label in labels.items()]
    return render(request, "people/detail.html", {"person": person, "fields": fields, "reports": person.reports.all()[:50]})


@organization_page(Role.VIEWER)
def people_export(request: HttpRequest) -> HttpResponse:
    try:
        people_export_check(organization=request.organization, membership=request.membership)
    except ApplicationError as error:
        raise PermissionDenied(error.message) from error
    response = StreamingHttpResponse(services.people_export_rows(organization=request.organization), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="people.csv"'
    return response


@organization_page(Role.EDITOR)
def people_import(request: HttpRequest) -> HttpResponse:
    """Step 1: upload a CSV."""
    if request.method == "POST":
        uploaded = request.FILES.get("file")
        if uploaded is None:
            messages.error(request, "Choose a CSV file to upload.")
        else:
            try:
                upload_id = services.csv_upload_store(organization=request.organization, uploaded=uploaded)
            except ApplicationError as error:
                messages.error(request, error.message)
            else:
                request.session[f"upload:{upload_id}"] = uploaded.name
                return redirect("people-import-mapping", upload_id=upload_id)
    return render(request, "people/import.html", {})


@organization_page(Role.EDITOR)
def people_import_mapping(request: HttpRequest, upload_id) -> HttpResponse:
    """Step 2: preview and map columns; step 3: import (the job's progress shows on the status page)."""
    try:
        preview = services.csv_preview(organization=request.organization, upload_id=str(upload_id))
    except ApplicationError as error:
        if error.status_code == 404:
            raise Http404(error.message)
        messages.error(request, error.message)
        return redirect("people-import")
    mapping = preview["suggested_mapping"]
    problems: dict = {}
    if request.method == "POST":
        mapping = {name: request.POST.get(f"map_{name}", "") for name in BASTION_FIELDS}
        try:
            job = services.csv_import_start(
                organization=request.organization,
                upload_id=str(upload_id),
                mapping=mapping,
                actor=request.user,
                filename=request.session.get(f"upload:{upload_id}", ""),
            )
        except ApplicationError as error:
            problems = error.fields
            messages.error(request, error.message)
        else:
            messages.success(request, "Import started.")
            return redirect("sync-job-detail", pk=job.pk)
    rows = [{"line": r["line"], "values": r["values"]} for r in preview["rows"]]
    field_rows = [(name, label, mapping.get(name, ""), problems.get(name, [])) for name, label in BASTION_FIELDS.items()]
    return render(
        request,
        "people/import_mapping.html",
        {"preview": preview, "rows": rows, "field_rows": field_rows, "mapping_json": json.dumps(mapping), "upload_id": upload_id},
    )
