"""Reads for integrations: the catalog with per-organization status, scoped lists, health and mapping suggestions."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from functools import lru_cache
from typing import Any

from django.db.models import QuerySet

from accounts.models import Organization
from integrations.connectors.base import ConnectorManifest
from integrations.models import DataSource, Integration, IntegrationCall, IntegrationStatus
from integrations.registry import UnknownConnector, connector_classes, get_connector_class, manifests

NEEDS_ATTENTION = (IntegrationStatus.AUTH_FAILED, IntegrationStatus.DEGRADED)
CATEGORY_LABELS = {
    "collaboration": "Collaboration",
    "ticketing": "Ticketing & projects",
    "calendar": "Calendar",
    "incident": "Incident response",
    "directory": "Directory & identity",
    "crm": "CRM",
    "messaging": "Messaging",
    "files": "Files",
}

# Bastion's own fields per entity type (docs/contracts.md) with their types, the targets of field mapping.
BASTION_FIELDS: dict[str, dict[str, str]] = {
    "person": {
        "external_id": "string",
        "email": "email",
        "name": "string",
        "given_name": "string",
        "family_name": "string",
        "title": "string",
        "department": "string",
        "phone": "string",
        "manager_external_id": "user",
        "groups": "array",
        "is_active": "boolean",
        "username": "string",
    },
    "channel": {"external_id": "string", "name": "string", "is_private": "boolean", "is_archived": "boolean", "member_count": "number", "topic": "string"},
    "deal": {
        "external_id": "string",
        "dealName": "string",
        "value": "number",
        "currency": "string",
        "closeDate": "date",
        "stage": "string",
        "owner_email": "email",
        "stakeholders": "array",
    },
    "incident": {
        "external_id": "string",
        "title": "string",
        "status": "string",
        "urgency": "string",
        "service": "string",
        "created_at": "datetime",
        "url": "string",
    },
    "project": {
        "external_id": "string",
        "key": "string",
        "title": "string",
        "description": "string",
        "status": "string",
        "lead_email": "email",
        "due_date": "date",
    },
    "task": {
        "external_id": "string",
        "key": "string",
        "summary": "string",
        "status": "string",
        "status_category": "string",
        "assignee_email": "email",
        "due_date": "date",
        "url": "string",
    },
    "event": {"external_id": "string", "summary": "string", "start": "datetime", "end": "datetime", "attendees": "array", "url": "string"},
    "group": {"external_id": "string", "name": "string", "members": "array"},
}
# Names vendors use for the same thing; name similarity alone does not see these.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "external_id": ("id", "uid", "guid", "objectid", "key"),
    "given_name": ("first_name", "firstname", "givenname", "first"),
    "family_name": ("last_name", "lastname", "surname", "sn", "last"),
    "title": ("job_title", "jobtitle", "position", "role", "name", "summary"),
    "manager_external_id": ("manager_id", "manager", "managerid", "reports_to"),
    "is_active": ("active", "enabled", "status", "deleted"),
    "phone": ("phone_number", "mobile", "mobile_phone", "telephone", "telephonenumber"),
    "email": ("mail", "email_address", "primary_email", "work_email"),
    "name": ("display_name", "full_name", "real_name", "displayname", "cn"),
    "username": ("login", "user_name", "handle", "samaccountname"),
    "dealName": ("dealname", "opportunity_name", "name"),
    "value": ("amount", "deal_value"),
    "closeDate": ("closedate", "close_date"),
}
COMPATIBLE_TYPES = {
    "string": {"string", "email", "user", "date", "datetime", "number"},
    "email": {"email", "string"},
    "user": {"user", "string"},
    "number": {"number", "string"},
    "boolean": {"boolean"},
    "date": {"date", "datetime", "string"},
    "datetime": {"datetime", "date", "string"},
    "array": {"array"},
}
SUGGESTION_THRESHOLD = 0.6


def _normalise(name: str) -> str:
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()  # camelCase → snake_case
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_")


def _name_score(bastion_field: str, source_field: str) -> tuple[float, str]:
    target, source = _normalise(bastion_field), _normalise(source_field.split(".")[-1].lstrip("$"))
    if target == source:
        return 1.0, "same name"
    if source in SYNONYMS.get(bastion_field, ()) or source.replace("_", "") in SYNONYMS.get(bastion_field, ()):
        return 0.9, "known synonym"
    return difflib.SequenceMatcher(None, target, source).ratio(), "similar name"


def mapping_suggestions(*, bastion_type: str, fields: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Suggest a source field for each Bastion field by name similarity (difflib + synonyms) and type compatibility."""
    targets = BASTION_FIELDS.get(bastion_type, {})
    candidates: list[tuple[float, str, str, str]] = []
    fields = list(fields)
    for bastion_field, bastion_kind in targets.items():
        for field in fields:
            score, reason = _name_score(bastion_field, str(field.get("name", "")))
            source_kind = str(field.get("type") or "string")
            if source_kind in COMPATIBLE_TYPES.get(bastion_kind, {bastion_kind}):
                score = min(1.0, score + (0.1 if source_kind == bastion_kind else 0.0))
                reason += f", {source_kind} fits {bastion_kind}"
            else:
                score -= 0.3
                reason += f", but {source_kind} is not {bastion_kind}"
            if score >= SUGGESTION_THRESHOLD:
                candidates.append((score, bastion_field, str(field.get("name")), reason))
    # Greedy one-to-one assignment, best matches first.
    used_targets: set[str] = set()
    used_sources: set[str] = set()
    suggestions: list[dict[str, Any]] = []
    for score, bastion_field, source, reason in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if bastion_field in used_targets or source in used_sources:
            continue
        used_targets.add(bastion_field)
        used_sources.add(source)
        suggestions.append({"bastion_field": bastion_field, "source_field": source, "score": round(score, 2), "reason": reason})
    order = list(targets)
    return sorted(suggestions, key=lambda s: order.index(s["bastion_field"]))


def integration_list(*, organization: Organization) -> QuerySet[Integration]:
    return Integration.objects.filter(organization=organization).order_by("display_name", "created_at")


def integration_get(*, organization: Organization, integration_id: Any) -> Integration | None:
    return integration_list(organization=organization).filter(pk=integration_id).first()


def data_source_list(*, organization: Organization, integration: Integration | None = None) -> QuerySet[DataSource]:
    qs = DataSource.objects.filter(organization=organization).select_related("integration")
    return qs.filter(integration=integration) if integration is not None else qs


def connection_status(integrations: Iterable[Integration]) -> str:
    """not_connected | connected | needs_attention for one connector in one organization."""
    statuses = {i.status for i in integrations}
    if statuses & set(NEEDS_ATTENTION):
        return "needs_attention"
    if IntegrationStatus.CONNECTED in statuses:
        return "connected"
    return "not_connected"


@lru_cache(maxsize=256)
def logo_url(logo: str) -> str:
    """The static URL of a connector logo, or the generic one when the file is not shipped (partner packages)."""
    from django.contrib.staticfiles import finders
    from django.templatetags.static import static

    return static(logo if logo and finders.find(logo) else "connectors/generic.svg")


def manifest_as_dict(manifest: ConnectorManifest) -> dict[str, Any]:
    data = asdict(manifest)
    data["scopes"] = [{"scope": s, "purpose": manifest.oauth.scope_purposes.get(s, "")} for s in manifest.oauth.scopes] if manifest.oauth else []
    data.pop("oauth", None)
    webhook = data.pop("webhook", None)
    data["supports_webhooks"] = webhook is not None
    data["webhook_signature"] = webhook["signature"] if webhook else ""
    for action in data["actions"]:
        action.pop("fields", None)  # the renderer's rules (some are functions): nothing a client reads
    data["logo_url"] = logo_url(manifest.logo or f"connectors/{manifest.key}.svg")  # a shipped file named after the key needs no declaration
    data["category_label"] = CATEGORY_LABELS.get(manifest.category, manifest.category.title())
    data["rate_limit"] = asdict(manifest.rate_limit) if manifest.rate_limit else None
    return data


def connector_catalog(*, organization: Organization) -> list[dict[str, Any]]:
    """Every installed connector (built in or via the `bastion.connectors` entry point) with this organization's status."""
    by_key: dict[str, list[Integration]] = {}
    for integration in integration_list(organization=organization):
        by_key.setdefault(integration.connector_key, []).append(integration)
    catalog = []
    for manifest in manifests():
        integrations = by_key.get(manifest.key, [])
        entry = manifest_as_dict(manifest)
        entry["connection_status"] = connection_status(integrations)
        entry["integrations"] = [{"id": str(i.pk), "display_name": i.display_name, "status": i.status} for i in integrations]
        entry["source"] = "builtin" if connector_classes()[manifest.key].__module__.startswith("integrations.connectors.") else "entry_point"
        catalog.append(entry)
    return catalog


def listing_catalog() -> list[dict[str, Any]]:
    """Systems Bastion does not connect to (no usable public API), as marketplace cards with their import path."""
    from integrations.listings.catalogue import listings

    return [
        {
            "key": listing.key,
            "name": listing.name,
            "category": listing.category,
            "category_label": listing.category_label,
            "description": listing.summary,
            "logo_url": logo_url(listing.logo),
            "kind": "listing",
            "availability": listing.availability,
            "availability_label": listing.availability_label,
            "detail_url": f"/integrations/listings/{listing.key}/",
            "search_terms": f"import only {listing.availability_label}",
        }
        for listing in listings()
    ]


def integration_error_rate(integration: Integration) -> float:
    return round(integration.failures_24h / integration.calls_24h, 4) if integration.calls_24h else 0.0


def integration_recent_calls(*, integration: Integration, limit: int = 20, failures_only: bool = False) -> QuerySet[IntegrationCall]:
    qs = integration.calls.all()
    if failures_only:
        qs = qs.filter(is_ok=False)
    return qs.order_by("-created_at")[:limit]


def data_source_fields(*, data_source: DataSource) -> dict[str, Any]:
    """Discovered fields of a data source, its mapping and suggestions for unmapped Bastion fields."""
    try:  # the registry also resolves an organization's custom connectors ("custom.<id>"), which the catalog does not list
        connector = get_connector_class(data_source.integration.connector_key)
    except UnknownConnector:
        connector = None
    bastion_type = ""
    if connector is not None:
        try:
            bastion_type = connector.manifest.entity(data_source.entity_type).bastion_type
        except KeyError:
            bastion_type = ""
    targets = BASTION_FIELDS.get(bastion_type, {})
    return {
        "data_source_id": str(data_source.pk),
        "entity_type": data_source.entity_type,
        "bastion_type": bastion_type,
        "discovered_at": data_source.discovered_at,
        "fields": data_source.discovered_fields or [],
        "bastion_fields": [{"name": name, "type": kind} for name, kind in targets.items()],
        "field_mapping": data_source.field_mapping or {},
        "suggestions": mapping_suggestions(bastion_type=bastion_type, fields=data_source.discovered_fields or []),
    }
