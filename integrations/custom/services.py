"""Writes for custom connectors: create, edit the draft, save a validated version, publish, export, try a request."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from django.core.cache import cache
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils.text import slugify

from accounts.models import Organization
from accounts.services import audit_record
from common.errors import ApplicationError
from integrations.custom import adapter, drafts
from integrations.custom.models import CustomConnector, CustomConnectorStatus, CustomConnectorVersion
from integrations.custom.openapi import openapi_parse, openapi_summary
from integrations.errors import ApiError, UnsafeBaseUrl

MAX_SPEC_BYTES = 256 * 1024
MAX_BODY_SHOWN = 16 * 1024  # characters of a vendor's answer shown in the console
MAX_RECORDS_SHOWN = 20
TRIES_PER_MINUTE = 30  # the console calls a vendor live: a budget per connector keeps it from becoming a request cannon
# Headers the console never shows back: they can carry session or auth material the vendor set.
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,20}://")  # anchored, bounded: no backtracking on user text
SECRET_AUTH_KEYS = ("token", "value", "password", "client_secret")
SECRET_HEADER = re.compile(r"auth|token|key|secret", re.IGNORECASE)
HIDDEN_HEADERS = frozenset({"set-cookie", "authorization", "proxy-authorization", "www-authenticate", "x-hook-secret"})


def spec_parse(text: str) -> dict[str, Any]:
    """The spec document from YAML/JSON text (safe loader, size-capped, no aliases); ApplicationError with where it broke."""
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise ApplicationError(f"The spec is larger than {MAX_SPEC_BYTES // 1024} KB.", code="spec_invalid", fields={"spec": ["Too large."]})
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=loader)):
            raise ApplicationError("YAML anchors and aliases are not accepted in a spec.", code="spec_invalid", fields={"spec": ["Aliases."]})
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "the text"
        message = f"The spec is not valid YAML ({where}: {getattr(exc, 'problem', None) or 'syntax error'})."
        raise ApplicationError(message, code="spec_invalid", fields={"spec": [message]}) from exc
    except RecursionError as exc:
        raise ApplicationError("The spec is nested too deeply.", code="spec_invalid", fields={"spec": ["Nested too deeply."]}) from exc
    if not isinstance(doc, dict):
        raise ApplicationError("A spec is a YAML mapping (keys at the top level).", code="spec_invalid", fields={"spec": ["Not a mapping."]})
    return doc


def _url_problems(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every absolute URL in a spec must be http(s) and a host the SSRF guard accepts (no DNS here; each call vets its own)."""
    from integrations.ssrf import check_url_target

    problems: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            problems += _url_problems(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            problems += _url_problems(value, f"{path}[{index}]")
    elif isinstance(node, str) and _URL_START.match(node.strip()) and "{" not in node.split("://", 1)[1].split("/", 1)[0]:
        try:
            check_url_target(node.strip())
        except UnsafeBaseUrl as exc:
            problems.append((path, exc.message))
    return problems


def _secret_problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """A secret written into the spec would be stored, shown and exported in clear: it belongs in a credential field."""
    problems: list[tuple[str, str]] = []
    auth = doc.get("auth") if isinstance(doc.get("auth"), dict) else {}
    for key in SECRET_AUTH_KEYS:
        value = auth.get(key)
        if isinstance(value, str) and value.strip() and "{{" not in value:
            problems.append((f"auth.{key}", "write the secret as a credential field and name it here ({{ credentials.<name> }}), never the secret itself"))
    headers = doc.get("default_headers") if isinstance(doc.get("default_headers"), dict) else {}
    for name, value in headers.items():
        if SECRET_HEADER.search(str(name)) and isinstance(value, str) and "{{" not in value:
            problems.append((f"default_headers.{name}", "a secret header takes its value from a credential ({{ credentials.<name> }})"))
    return problems


def spec_check(doc: dict[str, Any]) -> None:
    """Raise ApplicationError listing every problem with its precise path (schema, semantics, hooks, URLs, secrets)."""
    problems = _url_problems(doc) + _secret_problems(doc) + adapter.spec_problems(doc)
    if problems:
        fields: dict[str, list[str]] = {}
        for path, message in problems:
            fields.setdefault(path or "(spec)", []).append(message)
        count = len(problems)
        raise ApplicationError(f"The spec has {count} problem{'s' if count != 1 else ''}.", code="spec_invalid", fields=fields)


@transaction.atomic
def custom_connector_create(
    *, organization: Organization, name: str, key: str = "", openapi: bytes | None = None, actor: Any = None, request: HttpRequest | None = None
) -> CustomConnector:
    """A new draft connector, blank or started from a vendor's OpenAPI document (parsed safely, kept as a summary)."""
    name = (name or "").strip()[:200]
    summary = openapi_summary(openapi_parse(openapi)) if openapi else None
    if not name and summary:
        name = summary["title"] or ""
    if not name:
        raise ApplicationError("Give the connector a name.", fields={"name": ["Required."]})
    key = slugify(key or name)[:60] or "connector"
    if CustomConnector.objects.filter(organization=organization, key=key).exists():
        raise ApplicationError(f"Your organization already has a custom connector named {key!r}.", fields={"key": ["Already used."]})
    connector = CustomConnector.objects.create(
        organization=organization,
        key=key,
        name=name,
        openapi=summary,
        draft=drafts.draft_start(key=key, name=name, summary=summary),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        action="custom_connector.create",
        organization=organization,
        actor=actor,
        target=connector,
        changes={"name": name, "key": key, "from_openapi": bool(summary)},
        request=request,
    )
    return connector


def custom_connector_draft_update(*, connector: CustomConnector, text: str) -> CustomConnector:
    """Keep the edited spec text (not validated yet: a draft may be half-written)."""
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise ApplicationError(f"The spec is larger than {MAX_SPEC_BYTES // 1024} KB.", fields={"spec": ["Too large."]})
    connector.draft = text
    connector.save(update_fields=["draft", "updated_at"])
    return connector


def custom_connector_draft_generate(*, connector: CustomConnector, picks: dict[str, dict[str, str]], auth: dict[str, str]) -> CustomConnector:
    """Rebuild the draft from the endpoints picked in the OpenAPI summary (entities and actions) and the auth chosen."""
    text = drafts.draft_from_picks(key=connector.key, name=connector.name, summary=connector.openapi or {}, picks=picks, auth=auth)
    return custom_connector_draft_update(connector=connector, text=text)


@transaction.atomic
def custom_connector_version_save(
    *, connector: CustomConnector, text: str, notes: str = "", actor: Any = None, request: HttpRequest | None = None
) -> CustomConnectorVersion:
    """Save the spec as the next version; refused with the path of each problem when it is not valid."""
    connector = CustomConnector.objects.select_for_update().get(pk=connector.pk)
    doc = spec_parse(text)
    spec_check(doc)
    number = (connector.versions.aggregate(last=Max("number"))["last"] or 0) + 1
    version = CustomConnectorVersion.objects.create(
        connector=connector,
        number=number,
        spec=doc,
        notes=(notes or "").strip()[:500],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    connector.draft = text
    connector.save(update_fields=["draft", "updated_at"])
    audit_record(
        action="custom_connector.version_save",
        organization=connector.organization,
        actor=actor,
        target=connector,
        changes={"version": number},
        request=request,
    )
    return version


@transaction.atomic
def custom_connector_publish(
    *, connector: CustomConnector, version: CustomConnectorVersion | None = None, actor: Any = None, request: HttpRequest | None = None
) -> CustomConnector:
    """Make a saved version (the latest by default) the one integrations run."""
    connector = CustomConnector.objects.select_for_update().get(pk=connector.pk)
    version = version or connector.versions.order_by("-number").first()
    if version is None or version.connector_id != connector.pk:
        raise ApplicationError("Save a version before publishing.", code="no_version")
    adapter.spec_compile(version.spec, key=connector.connector_key, name=connector.name)  # proves it still compiles
    before = connector.current_version.number if connector.current_version else None
    connector.current_version = version
    connector.status = CustomConnectorStatus.PUBLISHED
    connector.save(update_fields=["current_version", "status", "updated_at"])
    audit_record(
        action="custom_connector.publish",
        organization=connector.organization,
        actor=actor,
        target=connector,
        changes={"version": [before, version.number]},
        request=request,
    )
    return connector


def custom_connector_export(*, connector: CustomConnector, version: CustomConnectorVersion | None = None) -> tuple[str, str]:
    """(file name, YAML text) of a saved version: the published one, else the latest."""
    version = version or connector.current_version or connector.versions.order_by("-number").first()
    if version is None:
        raise ApplicationError("Nothing to export: save a version first.", code="no_version", status_code=404)
    text = yaml.safe_dump(version.spec, sort_keys=False, allow_unicode=True, width=120)
    header = f"# {connector.name}: custom connector spec, version {version.number} (exported from Bastion)\n"
    return f"{connector.key}-v{version.number}.yaml", header + text


def _shown_body(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_BODY_SHOWN:
        return text[:MAX_BODY_SHOWN] + f"\n… ({len(text) - MAX_BODY_SHOWN} more characters not shown)"
    return text


def custom_connector_try(
    *,
    connector: CustomConnector,
    text: str,
    base_url: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    request_name: str,
    params: dict[str, Any],
    actor: Any = None,
    request: HttpRequest | None = None,
) -> dict[str, Any]:
    """Run one request of the draft live against the vendor; the raw answer (truncated, secrets kept out) and its records."""
    from integrations.services import base_url_validate

    doc = spec_parse(text)
    spec_check(doc)
    base_url = base_url_validate(base_url) or str(doc.get("base_url") or "")  # http(s), and a host the SSRF guard allows
    budget_key = f"custom-connector-try:{connector.pk}"
    cache.add(budget_key, 0, timeout=60)
    if cache.incr(budget_key) > TRIES_PER_MINUTE:
        raise ApplicationError(f"At most {TRIES_PER_MINUTE} tries a minute per connector; wait a moment.", code="rate_limited", status_code=429)
    if request_name not in {name for name, _ in adapter.spec_request_names(doc)}:
        raise ApplicationError(f"The spec has no request {request_name!r} to try.", fields={"request_name": ["Unknown request."]})
    try:
        answer = adapter.spec_try(doc, base_url=base_url, config=config, credentials=credentials, request_name=request_name, params=params)
    except ApiError as error:  # refused before any answer (the SSRF guard, an unreachable host)
        answer = {"error": str(error), "status": None}
    error = answer.get("error") or answer.get("classified_error") or ""
    records = list(answer.get("records") or [])
    result = {
        "ok": not error,
        "status": answer.get("status"),
        "url": answer.get("url", ""),
        "headers": {k: v for k, v in (answer.get("headers") or {}).items() if k.lower() not in HIDDEN_HEADERS},
        "body": _shown_body(answer.get("body")) if answer.get("body") not in (None, "") else "",
        "error": str(error)[:500],
        "records": records[:MAX_RECORDS_SHOWN],
        "record_count": answer.get("record_count", len(records)),
    }
    secrets = [value for value in credentials.values() if isinstance(value, str) and len(value) >= 4]
    for name in ("body", "error", "url"):  # a vendor echoing the token back must not show it on the page
        for secret in secrets:
            if isinstance(result.get(name), str):
                result[name] = result[name].replace(secret, "••••••")
    audit_record(
        action="custom_connector.try_request",
        organization=connector.organization,
        actor=actor,
        target=connector,
        changes={"request": request_name, "status": result.get("status")},
        request=request,
    )
    return result
