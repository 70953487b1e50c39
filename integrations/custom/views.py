"""Pages: the organization's custom connectors and the builder (endpoints, auth, YAML, request console, versions, export)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Role
from accounts.tenancy import organization_page
from common.errors import ApplicationError
from integrations import views as integration_views
from integrations.custom import adapter, selectors, services
from integrations.custom.models import CustomConnector, CustomConnectorStatus
from integrations.custom.openapi import MAX_DOCUMENT_BYTES

BUILDER_OPS = ("generate", "save_draft", "save_version", "try", "publish")


def _connector(request: HttpRequest, pk: Any) -> CustomConnector:
    connector = selectors.custom_connector_get(organization=request.organization, pk=pk)
    if connector is None:
        raise Http404("No such custom connector.")
    return connector


def _problems(error: ApplicationError) -> list[dict[str, str]]:
    return [{"path": path, "message": message} for path, messages_ in error.fields.items() for message in messages_]


def _draft_console(text: str) -> tuple[list[tuple[str, str]], list[dict[str, Any]], str]:
    """The requests the console can send for the draft, the credential fields it reads and its base URL (none while invalid)."""
    try:
        doc = services.spec_parse(text)
        if adapter.spec_problems(doc):
            return [], [], ""
    except ApplicationError:
        return [], [], ""
    fields = [f for f in doc.get("credentials") or [] if isinstance(f, dict) and f.get("name")]
    return adapter.spec_request_names(doc), fields, str(doc.get("base_url") or "")


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def custom_connector_list(request: HttpRequest) -> HttpResponse:
    """The organization's custom connectors, and a new one from an OpenAPI document or a blank spec."""
    errors: dict[str, list[str]] = {}
    error = ""
    values = {"name": "", "key": ""}
    if request.method == "POST":
        values = {"name": request.POST.get("name", "").strip(), "key": request.POST.get("key", "").strip()}
        upload = request.FILES.get("openapi")
        try:
            if upload is not None and upload.size > MAX_DOCUMENT_BYTES:
                raise ApplicationError("The OpenAPI document is larger than 4 MB.", fields={"openapi": ["Too large (4 MB at most)."]})
            connector = services.custom_connector_create(
                organization=request.organization,
                name=values["name"],
                key=values["key"],
                openapi=upload.read() if upload is not None else None,
                actor=request.user,
                request=request,
            )
        except ApplicationError as exc:
            error, errors = exc.message, exc.fields
        else:
            return redirect(f"/integrations/custom/{connector.pk}/")
    return render(
        request,
        "integrations/custom/list.html",
        {"connectors": selectors.custom_connectors(organization=request.organization), "errors": errors, "error": error, "values": values},
        status=400 if error else 200,
    )


def _builder_context(request: HttpRequest, connector: CustomConnector, **extra: Any) -> dict[str, Any]:
    summary = connector.openapi or {}
    text = extra.pop("text", connector.draft)
    try_requests, credential_fields, base_url = _draft_console(text)
    return {
        "connector": connector,
        "summary": summary,
        "operations": summary.get("operations", []),
        "servers": summary.get("servers", []),
        "auth_schemes": summary.get("auth", []),
        "text": text,
        "versions": selectors.custom_connector_versions(connector=connector)[:20],
        "credential_fields": credential_fields,
        "try_requests": try_requests,
        "try_values": extra.pop("try_values", {"base_url": base_url or (summary.get("servers") or [""])[0], "params": "{}"}),
        "problems": extra.pop("problems", []),
        "error": extra.pop("error", ""),
        "result": extra.pop("result", None),
        "published": connector.status == CustomConnectorStatus.PUBLISHED,
        **extra,
    }


def _picks(request: HttpRequest, operations: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    picks = {}
    for index, operation in enumerate(operations):
        use = request.POST.get(f"use_{index}", "")
        if use in ("entity", "action"):
            picks[operation["id"]] = {"as": use, "name": request.POST.get(f"name_{index}", "").strip()[:60]}
    return picks


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def custom_connector_builder(request: HttpRequest, pk: Any) -> HttpResponse:
    """The builder: pick endpoints → draft, fill auth, edit the YAML, try a request live, save a version, publish."""
    connector = _connector(request, pk)
    if request.method == "GET":
        return render(request, "integrations/custom/builder.html", _builder_context(request, connector))
    op = request.POST.get("op", "")
    if op not in BUILDER_OPS:
        return render(request, "integrations/custom/builder.html", _builder_context(request, connector, error="Unknown action."), status=400)
    text = request.POST.get("spec", connector.draft)
    try:
        if op == "generate":
            auth = {k: request.POST.get(f"auth_{k}", "").strip()[:100] for k in ("kind", "param", "prefix")}
            services.custom_connector_draft_generate(
                connector=connector, picks=_picks(request, connector.openapi and connector.openapi.get("operations") or []), auth=auth
            )
            messages.success(request, "Draft generated from the endpoints you picked. Review the YAML, try a request, then save a version.")
            return redirect(f"/integrations/custom/{connector.pk}/#spec-section")
        if op == "save_draft":
            services.custom_connector_draft_update(connector=connector, text=text)
            messages.success(request, "Draft saved.")
            return redirect(f"/integrations/custom/{connector.pk}/#spec-section")
        if op == "save_version":
            version = services.custom_connector_version_save(
                connector=connector, text=text, notes=request.POST.get("notes", ""), actor=request.user, request=request
            )
            messages.success(request, f"Version {version.number} saved.")
            return redirect(f"/integrations/custom/{connector.pk}/#versions")
        if op == "publish":
            services.custom_connector_publish(connector=connector, actor=request.user, request=request)
            messages.success(request, f"Version {connector.versions.order_by('-number').first().number} published: integrations can connect to it.")
            return redirect(f"/integrations/custom/{connector.pk}/#versions")
        return _try(request, connector, text)
    except ApplicationError as error:
        context = _builder_context(request, connector, text=text, error=error.message, problems=_problems(error))
        return render(request, "integrations/custom/builder.html", context, status=error.status_code)


def _try(request: HttpRequest, connector: CustomConnector, text: str) -> HttpResponse:
    """The request console: one live request of the draft; credentials typed here are used once and never kept or shown."""
    services.custom_connector_draft_update(connector=connector, text=text)
    values = {
        "base_url": request.POST.get("base_url", "").strip(),
        "request_name": request.POST.get("request_name", ""),
        "params": request.POST.get("params", "{}"),
    }
    try:
        params = json.loads(values["params"] or "{}")
        config = json.loads(request.POST.get("config", "") or "{}")
    except ValueError:
        raise ApplicationError('Parameters and settings are JSON objects, e.g. {"project": "123"}.', fields={"params": ["Not JSON."]})
    if not isinstance(params, dict) or not isinstance(config, dict):
        raise ApplicationError("Parameters and settings are JSON objects.", fields={"params": ["Not an object."]})
    credentials = {key[len("credential_") :]: value for key, value in request.POST.items() if key.startswith("credential_") and value}
    result = services.custom_connector_try(
        connector=connector,
        text=text,
        base_url=values["base_url"],
        credentials=credentials,
        config=config,
        request_name=values["request_name"],
        params=params,
        actor=request.user,
        request=request,
    )
    result["records_json"] = json.dumps(result.get("records", []), indent=2, ensure_ascii=False, default=str)
    context = _builder_context(request, connector, text=text, result=result, try_values={**values, "config": request.POST.get("config", "")})
    return render(request, "integrations/custom/builder.html", context)


@organization_page(Role.ADMIN)
@require_GET
def custom_connector_export(request: HttpRequest, pk: Any) -> HttpResponse:
    """The spec file of the published (else latest) version, or ?version=N, as a download."""
    connector = _connector(request, pk)
    version = None
    if request.GET.get("version"):
        version = connector.versions.filter(number=request.GET["version"] if request.GET["version"].isdigit() else -1).first()
        if version is None:
            raise Http404("No such version.")
    try:
        filename, text = services.custom_connector_export(connector=connector, version=version)
    except ApplicationError as error:
        raise Http404(error.message)
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def custom_connector_connect(request: HttpRequest, pk: Any) -> HttpResponse:
    """Connect an integration to the published version: the same wizard, credentials handling and tests as a shipped connector."""
    connector = _connector(request, pk)
    if connector.status != CustomConnectorStatus.PUBLISHED:
        messages.warning(request, "Publish a version before connecting an integration to it.")
        return redirect(f"/integrations/custom/{connector.pk}/")
    return integration_views.connect(request, connector_key=connector.connector_key)
