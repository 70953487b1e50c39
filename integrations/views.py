"""Pages: the integration marketplace, the connection wizard, the OAuth callback and an integration's detail page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from accounts.tenancy import organization_page, resolve_membership
from common.errors import ApplicationError
from integrations import selectors, services
from integrations.connectors.base import Capability
from integrations.errors import ApiError
from integrations.models import CredentialType, Integration, IntegrationStatus
from integrations.oauth import oauth_begin, scopes_with_purposes

WIZARD_STEPS = ["Connect", "Settings", "Map fields", "Test", "Done"]


def _integration(request: HttpRequest, pk: Any) -> Integration:
    integration = selectors.integration_get(organization=request.organization, integration_id=pk)
    if integration is None:
        raise Http404("No such integration.")
    return integration


def _manifest(connector_key: str):
    try:
        return services.connector_class_for(connector_key).manifest
    except ApplicationError:
        raise Http404("No such connector.")


def _default_base_url(manifest) -> str:
    """In development the wizard points new integrations at the vendor sandbox."""
    if settings.IS_PRODUCTION or manifest.key.startswith("custom."):  # a custom connector's spec names its own vendor
        return manifest.default_base_url
    return services.sandbox_base_url(manifest.key)


def _steps(current: int, integration: Integration | None = None) -> list[dict[str, Any]]:
    """The wizard's steps; those already done link back (once the integration exists)."""
    urls = {2: "setup/", 3: "map/", 4: "finish/"}
    return [
        {
            "number": i + 1,
            "label": label,
            "state": "done" if i + 1 < current else "current" if i + 1 == current else "todo",
            "url": f"/integrations/{integration.pk}/{urls[i + 1]}" if integration is not None and i + 1 < current and i + 1 in urls else "",
        }
        for i, label in enumerate(WIZARD_STEPS)
    ]


def _registers_webhook_itself(integration: Integration) -> bool:
    """Signed in through OAuth with a connector that registers its own webhook: no secret to paste."""
    return (
        services.connector_class_for(integration.connector_key).supports(Capability.WEBHOOK_REGISTRATION)
        and integration.credentials.filter(credential_type=CredentialType.OAUTH).exists()
    )


@organization_page(Role.VIEWER)
def marketplace(request: HttpRequest) -> HttpResponse:
    """One card per tool: search (?q=), category chips (?category=), Connect / Manage / Fix."""
    category = request.GET.get("category", "")
    query = request.GET.get("q", "").strip()[:100]
    catalog = selectors.connector_catalog(organization=request.organization) + selectors.listing_catalog()  # listings: import-only cards
    categories = sorted({(e["category"], e["category_label"]) for e in catalog}, key=lambda c: c[1])
    words = query.lower().split()
    connectors = []
    for entry in sorted(catalog, key=lambda e: (e["category_label"], e["name"].lower())):
        text = f"{entry['name']} {entry['key']} {entry['category_label']} {entry['description']} {entry.get('search_terms', '')}".lower()
        if (category and entry["category"] != category) or not all(word in text for word in words):
            continue
        if entry.get("kind") == "listing":
            connectors.append(entry)
            continue
        attention = [i for i in entry["integrations"] if i["status"] in selectors.NEEDS_ATTENTION]
        connected = [i for i in entry["integrations"] if i["status"] == IntegrationStatus.CONNECTED]
        entry["manage_id"] = (attention or connected or entry["integrations"] or [{"id": ""}])[0]["id"]
        connectors.append(entry)
    return render(
        request,
        "integrations/marketplace.html",
        {"connectors": connectors, "categories": categories, "category": category, "query": query, "can_connect": request.membership.has_role(Role.ADMIN)},
    )


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def connect(request: HttpRequest, connector_key: str) -> HttpResponse:
    """Wizard step 1: OAuth (scopes shown first) or a credential form."""
    manifest = _manifest(connector_key)
    context: dict[str, Any] = {
        "manifest": manifest,
        "scopes": scopes_with_purposes(manifest.oauth) if manifest.oauth else [],
        "steps": _steps(1),
        "auth_methods": sorted(manifest.auth_methods, key=lambda method: method != "oauth2"),  # signing in is the easy path
        "values": {"display_name": manifest.name, "base_url": _default_base_url(manifest)},
        "errors": {},
        "error": "",
    }
    if request.method == "GET":
        return render(request, "integrations/connect.html", context)
    values = {k: request.POST.get(k, "").strip() for k in ("display_name", "base_url", "auth_method")}
    context["values"] = values
    common = {
        "organization": request.organization,
        "connector_key": manifest.key,
        "display_name": values["display_name"],
        "base_url": values["base_url"],
        "actor": request.user,
        "request": request,
    }
    try:
        if values["auth_method"] == "oauth2" and manifest.oauth:
            # An earlier sign-in that was abandoned at the vendor left a never-connected twin: it goes before the new attempt.
            abandoned = Integration.objects.filter(
                organization=request.organization,
                connector_key=manifest.key,
                status=IntegrationStatus.DISCONNECTED,
                last_success_at__isnull=True,
            ).exclude(credentials__credential_type__in=[CredentialType.OAUTH, CredentialType.API_KEY, CredentialType.SERVICE_ACCOUNT])
            for twin in abandoned:
                services.integration_delete(integration=twin, actor=request.user, request=request)
            integration = services.integration_create(**common)
            return redirect(
                oauth_begin(
                    request=request,
                    integration=integration,
                    spec=manifest.oauth,
                    default_base_url=manifest.default_base_url,
                    next_url=f"/integrations/{integration.pk}/setup/",
                )
            )
        credential_type = CredentialType.SERVICE_ACCOUNT if values["auth_method"] in ("service_account", "ldap_bind") else CredentialType.API_KEY
        credentials = {f.name: request.POST.get(f"credential_{f.name}", "") for f in manifest.credential_fields}
        integration = services.integration_connect(**common, credentials=credentials, credential_type=credential_type)
    except ApplicationError as error:
        context["error"] = error.message
        context["errors"] = error.fields
        return render(request, "integrations/connect.html", context, status=400)
    if integration.status != IntegrationStatus.CONNECTED:
        messages.warning(request, f"Saved, but the connection test failed: {integration.last_error}. Check the credential and test again.")
    return redirect(f"/integrations/{integration.pk}/setup/")


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest, pk: Any) -> HttpResponse:
    """Show the scopes and their purposes, then send the browser to the vendor's consent page."""
    integration = _integration(request, pk)
    manifest = _manifest(integration.connector_key)
    if manifest.oauth is None:
        raise Http404("This connector does not use OAuth.")
    if request.method == "POST":
        first_time = integration.last_success_at is None
        next_url = f"/integrations/{integration.pk}/setup/" if first_time else f"/integrations/{integration.pk}/"
        return redirect(
            oauth_begin(request=request, integration=integration, spec=manifest.oauth, default_base_url=manifest.default_base_url, next_url=next_url)
        )
    return render(request, "integrations/authorize.html", {"integration": integration, "manifest": manifest, "scopes": scopes_with_purposes(manifest.oauth)})


@login_required
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """The vendor sends the browser back here with ?code&state (or ?error)."""
    if resolve_membership(request) is None:
        raise Http404("You are not a member of any organization.")
    try:
        integration, result, next_url = services.integration_oauth_complete(
            request=request,
            state=request.GET.get("state", ""),
            code=request.GET.get("code", ""),
            error=request.GET.get("error", ""),
            error_description=request.GET.get("error_description", ""),
        )
    except ApplicationError as error:
        return render(request, "integrations/oauth_error.html", {"error": error}, status=400)
    if result.ok:
        messages.success(request, f"Connected to {integration.display_name} as {result.identity}.")
    else:
        messages.warning(request, f"Authorized, but the connection test failed: {result.detail.get('error', 'unknown error')}.")
    return redirect(next_url or f"/integrations/{integration.pk}/")


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest, pk: Any) -> HttpResponse:
    """Wizard step 2: choose the workspace/project (config fields, with live choices when the connector offers them)."""
    integration = _integration(request, pk)
    manifest = _manifest(integration.connector_key)
    errors: dict[str, Any] = {}
    rules_preview = None
    if request.method == "POST":
        config = {f.name: request.POST.get(f"config_{f.name}", "").strip() for f in manifest.config_fields}
        for field in manifest.config_fields:
            if len(request.POST.getlist(f"config_{field.name}")) > 1:  # a multiple choice (project keys) arrives as a list
                config[field.name] = ",".join(v.strip() for v in request.POST.getlist(f"config_{field.name}") if v.strip())
        errors = _unknown_choices(integration, manifest, config)
        if "preview_disabled_rules" in request.POST and not errors:
            # Before saving: how many directory entries each rule would exclude (nothing is stored).
            try:
                rules_preview = services.directory_disabled_rules_preview(integration=integration, rules=config.get("disabled_rules") or "")
            except ApplicationError as error:
                errors = {"disabled_rules": (error.fields or {}).get("rules") or [error.message]}
        elif not errors:
            try:
                services.integration_config_update(integration=integration, config=config, finish=True, actor=request.user, request=request)
            except ApplicationError as error:
                errors = error.fields or {"__all__": [error.message]}
        if not errors and rules_preview is None:
            if _registers_webhook_itself(integration):
                try:
                    services.integration_webhook_register(integration=integration, actor=request.user, request=request)
                    messages.success(request, f"{integration.display_name} now sends its changes to Bastion (webhook registered and signed).")
                except ApplicationError as error:
                    messages.warning(request, f"The webhook could not be registered: {error.message} Register it later from the connection page.")
            return redirect(f"/integrations/{integration.pk}/map/")
    fields = []
    choices_error = ""
    connector = None
    connector_class = services.connector_class_for(integration.connector_key)
    for field in manifest.config_fields:
        choices: list[tuple[str, str]] = []
        if connector_class.supports(Capability.CONFIG_CHOICES) and integration.status == IntegrationStatus.CONNECTED:
            try:
                connector = connector or services.build_connector(integration)
                choices = connector.config_choices(field.name)
            except ApiError as error:
                choices_error = f"Could not list choices from {integration.display_name}: {error.message}"
        value = connector_class.config_display(field.name, integration.config.get(field.name))
        if request.method == "POST" and len(request.POST.getlist(f"config_{field.name}")) == 1:
            value = request.POST[f"config_{field.name}"]  # a preview (or a refused save) keeps what the person typed
        fields.append(
            {
                "spec": field,
                "choices": choices,
                "value": value,
                "values": [v.strip() for v in value.split(",") if v.strip()],
                "is_multiple": field.name.endswith("_keys") or field.name.endswith("_ids"),
                "errors": errors.get(field.name, []),
            }
        )
    registers_itself = _registers_webhook_itself(integration)
    webhook_secret = None if registers_itself else services.webhook_secret_reveal(integration=integration, actor=request.user, request=request)
    context = {
        "integration": integration,
        "manifest": manifest,
        "fields": fields,
        "choices_error": choices_error,
        "errors": errors,
        "general_errors": errors.get("__all__", []),
        "webhook_secret": webhook_secret,
        "registers_webhook_itself": registers_itself,
        "webhook_url": f"{settings.BASTION_PUBLIC_URL.rstrip('/')}/api/webhooks/{integration.pk}",
        "steps": _steps(2, integration),
        "rules_preview": rules_preview,
        "previews_disabled_rules": manifest.supports(Capability.DISABLED_RULES),
    }
    return render(request, "integrations/setup.html", context, status=400 if errors else 200)


def _unknown_choices(integration: Integration, manifest, config: dict[str, str]) -> dict[str, list[str]]:
    """Refuse values the vendor does not list (a typed "XYZ" project), here, before the next step fails on them."""
    if integration.status != IntegrationStatus.CONNECTED or not services.connector_class_for(integration.connector_key).supports(Capability.CONFIG_CHOICES):
        return {}
    errors: dict[str, list[str]] = {}
    connector = None
    for field in manifest.config_fields:
        chosen = [v.strip() for v in str(config.get(field.name) or "").split(",") if v.strip()]
        if not chosen:
            continue
        try:
            connector = connector or services.build_connector(integration)
            known = {value for value, _ in connector.config_choices(field.name)}
        except ApiError:
            continue  # the vendor cannot list them now: the config service still validates the shape
        unknown = [v for v in chosen if known and v not in known]
        if unknown:
            errors[field.name] = [f"{', '.join(unknown)}: not found in {integration.display_name}. Choose from the list."]
    return errors


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def map_fields(request: HttpRequest, pk: Any) -> HttpResponse:
    """Wizard step 3: map Bastion fields to the discovered fields (suggestions preselected)."""
    integration = _integration(request, pk)
    manifest = _manifest(integration.connector_key)
    data_sources = list(selectors.data_source_list(organization=request.organization, integration=integration))
    error = ""
    if request.method == "POST":
        if request.POST.get("rediscover"):
            data_sources = [ds for ds in data_sources if ds.entity_type == request.POST["rediscover"]]
            for ds in data_sources:
                try:
                    services.data_source_discover(data_source=ds, actor=request.user, request=request)
                except ApplicationError as exc:
                    messages.error(request, exc.message)
            return redirect(f"/integrations/{integration.pk}/map/")
        payload = []
        for ds in data_sources:
            bastion_fields = selectors.data_source_fields(data_source=ds)["bastion_fields"]
            mapping = {f["name"]: request.POST.get(f"map_{ds.entity_type}_{f['name']}", "") for f in bastion_fields}
            payload.append({"entity_type": ds.entity_type, "field_mapping": mapping, "is_enabled": request.POST.get(f"enabled_{ds.entity_type}") == "on"})
        try:
            services.integration_config_update(integration=integration, data_sources=payload, actor=request.user, request=request)
            return redirect(f"/integrations/{integration.pk}/finish/")
        except ApplicationError as exc:
            error = exc.message
    sources = []
    for ds in data_sources:
        if ds.discovered_at is None and integration.status == IntegrationStatus.CONNECTED:
            try:
                services.data_source_discover(data_source=ds, actor=request.user, request=request)
            except ApplicationError as exc:
                error = exc.message
        info = selectors.data_source_fields(data_source=ds)
        suggested = {s["bastion_field"]: s for s in info["suggestions"]}
        rows = [
            {
                "name": f["name"],
                "type": f["type"],
                "selected": info["field_mapping"].get(f["name"]) or suggested.get(f["name"], {}).get("source_field", ""),
                "suggestion": suggested.get(f["name"]),
            }
            for f in info["bastion_fields"]
        ]
        try:
            entity_name = manifest.entity(ds.entity_type).name
        except KeyError:
            entity_name = ds.entity_type.replace("_", " ").capitalize()
        groups = [
            {"rows": [r for r in rows if r["selected"]], "folded": False},
            {"rows": [r for r in rows if not r["selected"]], "folded": True},  # nothing matched them: out of the way
        ]
        sources.append({"data_source": ds, "info": info, "rows": rows, "groups": groups, "name": entity_name})
    outbound = [
        {
            "name": action.name,
            "description": action.description,
            "fields": [str(k).replace("_", " ") for k in (action.input_schema or {}).get("properties", {})][:8],
        }
        for action in manifest.actions
    ]
    return render(
        request,
        "integrations/map.html",
        {
            "integration": integration,
            "manifest": manifest,
            "sources": [s for s in sources if s["rows"]],
            "other_sources": [s for s in sources if not s["rows"]],  # nothing of Bastion's maps onto them: folded away
            "outbound": outbound,
            "error": error,
            "steps": _steps(3, integration),
        },
        status=400 if error and request.method == "POST" else 200,
    )


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def finish(request: HttpRequest, pk: Any) -> HttpResponse:
    """Wizard steps 4 and 5: test the connection, then done."""
    integration = _integration(request, pk)
    result = None
    sample = None
    if request.method == "POST":
        result = services.integration_test(integration=integration, actor=request.user, request=request)
        integration.refresh_from_db()
        if result.ok:
            sample = _sample_record(request, integration)
    done = bool(result and result.ok)
    return render(
        request,
        "integrations/finish.html",
        {"integration": integration, "result": result, "sample": sample, "done": done, "steps": _steps(5 if done else 4, integration)},
    )


def _sample_record(request: HttpRequest, integration: Integration) -> dict[str, Any] | None:
    """One record read live through the mapping, so the person sees real data arrive (not only who signed in)."""
    sources = [ds for ds in selectors.data_source_list(organization=request.organization, integration=integration) if ds.is_enabled]
    manifest = _manifest(integration.connector_key)
    for ds in sorted(sources, key=lambda d: (not d.field_mapping, d.entity_type)):
        try:
            answer = services.data_source_query(data_source=ds, membership=request.membership, limit=1, request=request)
        except ApplicationError:
            continue
        if not answer["bastion"]:
            continue
        simple = [
            (name.replace("_", " ").capitalize(), value)
            for name, value in answer["bastion"][0].items()
            if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "" and not name.endswith("id") and "url" not in name
        ]
        try:
            entity_name = manifest.entity(ds.entity_type).name
        except KeyError:
            entity_name = ds.entity_type.replace("_", " ").capitalize()
        return {"entity": entity_name, "fields": simple[:6]}
    return None


@organization_page(Role.VIEWER)
def detail(request: HttpRequest, pk: Any) -> HttpResponse:
    integration = _integration(request, pk)
    manifest = _manifest(integration.connector_key)
    context = {
        "integration": integration,
        "manifest": manifest,
        "logo_url": selectors.logo_url(manifest.logo or f"connectors/{manifest.key}.svg"),
        "error_rate": selectors.integration_error_rate(integration),
        "data_sources": selectors.data_source_list(organization=request.organization, integration=integration),
        "recent_calls": selectors.integration_recent_calls(integration=integration, limit=15),
        "can_manage": request.membership.has_role(Role.ADMIN),
        "credential_types": sorted(integration.credentials.values_list("credential_type", flat=True)),
        "can_register_webhook": services.connector_class_for(integration.connector_key).supports(Capability.WEBHOOK_REGISTRATION),
        "webhook_url": services.integration_webhook_url(integration),
    }
    return render(request, "integrations/detail.html", context)


@organization_page(Role.ADMIN)
@require_http_methods(["POST"])
def detail_action(request: HttpRequest, pk: Any) -> HttpResponse:
    """Test or disconnect from the detail page."""
    integration = _integration(request, pk)
    action = request.POST.get("action")
    if action == "test":
        result = services.integration_test(integration=integration, actor=request.user, request=request)
        if result.ok:
            messages.success(request, f"Connection works ({result.identity}).")
        else:
            messages.error(request, f"Connection test failed: {result.detail.get('error', 'unknown error')}")
    elif action == "register_webhook":
        try:
            registered = services.integration_webhook_register(integration=integration, actor=request.user, request=request)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{integration.display_name} now sends its changes to {registered['url']}, signed with a new secret.")
    elif action == "disconnect":
        services.integration_disconnect(integration=integration, actor=request.user, request=request)
        messages.success(request, f"{integration.display_name} is disconnected. Its settings and mappings are kept; reconnect any time.")
    else:
        raise Http404("Unknown action.")
    return redirect(f"/integrations/{integration.pk}/")


@organization_page(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def reconnect(request: HttpRequest, pk: Any) -> HttpResponse:
    """Restore a broken or disconnected integration: OAuth again or a new credential; mappings are kept."""
    integration = _integration(request, pk)
    manifest = _manifest(integration.connector_key)
    errors: dict[str, Any] = {}
    error = ""
    if request.method == "POST":
        credential_type = CredentialType.SERVICE_ACCOUNT if request.POST.get("auth_method") in ("service_account", "ldap_bind") else CredentialType.API_KEY
        credentials = {f.name: request.POST.get(f"credential_{f.name}", "") for f in manifest.credential_fields}
        try:
            result = services.integration_reconnect(
                integration=integration, credentials=credentials, credential_type=credential_type, actor=request.user, request=request
            )
        except ApplicationError as exc:
            error, errors = exc.message, exc.fields
        else:
            if result.ok:
                messages.success(request, f"{integration.display_name} is connected again.")
            else:
                messages.error(request, f"The new credential did not work: {result.detail.get('error', 'unknown error')}")
            return redirect(f"/integrations/{integration.pk}/")
    context = {
        "integration": integration,
        "manifest": manifest,
        "scopes": scopes_with_purposes(manifest.oauth) if manifest.oauth else [],
        "error": error,
        "errors": errors,
    }
    return render(request, "integrations/reconnect.html", context, status=400 if error else 200)
