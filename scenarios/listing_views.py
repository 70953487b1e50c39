"""Pages for a listing: what Bastion can and cannot do with the system, its import templates, the import and the starter spec."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from accounts.tenancy import organization_page
from common.errors import ApplicationError
from integrations.listings.catalogue import Listing, listing_get
from scenarios import listing_imports as imports


def _listing(key: str) -> Listing:
    listing = listing_get(key)
    if listing is None:
        raise Http404("No such listing.")
    return listing


def _page(request: HttpRequest, listing: Listing, *, status: int = 200, **extra: Any) -> HttpResponse:
    context = {
        "listing": listing,
        "templates": imports.template_targets(organization=request.organization, listing=listing),
        "can_import": request.membership.has_role(Role.EDITOR),
        "can_start": request.membership.has_role(Role.ADMIN) and bool(listing.starter),
        "values": {},
        "result": None,
        "error": "",
        **extra,
    }
    return render(request, "integrations/listing.html", context, status=status)


@organization_page(Role.VIEWER)
def listing_detail(request: HttpRequest, key: str) -> HttpResponse:
    """The listing explained plainly: what works, what does not and why, the templates to download and the import."""
    return _page(request, _listing(key))


@organization_page(Role.VIEWER)
def listing_template_download(request: HttpRequest, key: str, template_key: str) -> HttpResponse:
    """A blank import template (header in the vendor's column names, sample rows), with a BOM so spreadsheets read UTF-8."""
    template = _listing(key).template(template_key)
    if template is None:
        raise Http404("No such template.")
    response = HttpResponse("\ufeff" + template.csv_text(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="bastion-{template.key}.csv"'
    return response


@organization_page(Role.EDITOR)
@require_http_methods(["POST"])
def listing_import(request: HttpRequest, key: str) -> HttpResponse:
    """Import an export through one of the listing's templates into a scenario field; bad rows are listed by line."""
    listing = _listing(key)
    values = {name: request.POST.get(name, "").strip() for name in ("template", "scenario", "mode")}
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ApplicationError("Choose the exported file to import.", fields={"file": ["Required."]})
        if upload.size > imports.MAX_UPLOAD_BYTES:
            raise ApplicationError(f"The file is larger than {imports.MAX_UPLOAD_BYTES // 1000} kB.", code="csv_too_large", fields={"file": ["Too large."]})
        result = imports.listing_import(
            organization=request.organization,
            listing=listing,
            template_key=values["template"],
            scenario_id=values["scenario"],
            content=upload.read(),
            filename=upload.name or "upload.csv",
            mode=values["mode"] or "append",
            actor=request.user,
            request=request,
        )
    except ApplicationError as error:
        return _page(request, listing, status=error.status_code, values=values, error=error.message)
    return _page(request, listing, values=values, result=result)


@organization_page(Role.ADMIN)
@require_http_methods(["POST"])
def listing_starter(request: HttpRequest, key: str) -> HttpResponse:
    """Start a custom connector from the listing's starter spec, to be completed with the organization's own credentials."""
    listing = _listing(key)
    if not listing.starter:
        raise Http404("This listing has no starter spec.")
    connector, created = imports.starter_connector(organization=request.organization, listing=listing, actor=request.user, request=request)
    if not created:
        messages.info(request, f"Your organization already started a {listing.name} connector: here it is.")
    return redirect(f"/integrations/custom/{connector.pk}/")
