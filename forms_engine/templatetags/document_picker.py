"""Template helpers for the document field: the organization's connected documents tools, a workbook import's origin in words."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def document_integrations(context: template.Context) -> list[dict[str, str]]:
    """The integrations the member may browse documents in (Capability.DOCUMENTS), for the picker's tool choice."""
    from integrations.access import restricted_integration_ids
    from integrations.connectors.base import Capability
    from integrations.models import IntegrationStatus
    from integrations.registry import UnknownConnector, get_connector_class
    from integrations.selectors import integration_list

    request = context.get("request")
    organization = getattr(request, "organization", None)
    if organization is None:
        return []
    restricted = restricted_integration_ids(organization=organization, membership=getattr(request, "membership", None))
    found = []
    for integration in integration_list(organization=organization).exclude(status=IntegrationStatus.DISCONNECTED):
        try:
            supports = get_connector_class(integration.connector_key).supports(Capability.DOCUMENTS)
        except UnknownConnector:
            continue
        if supports and integration.pk not in restricted:
            found.append({"id": str(integration.pk), "name": integration.display_name})
    return found


@register.filter
def as_json(value: Any) -> str:
    """A value as JSON for a data attribute (the template's autoescape makes it attribute-safe)."""
    return json.dumps(value if value is not None else {})


@register.filter
def workbook_origin(items: list[dict[str, Any]] | None) -> str:
    """Provenance items of a workbook import → "from Project Falcon model.xlsx (DealValue)"; "" for other origins."""
    ranges: dict[str, list[str]] = {}
    for item in items or []:
        if isinstance(item, dict) and item.get("document"):
            ranges.setdefault(str(item["document"]), [])
            if item.get("range") and item["range"] not in ranges[str(item["document"])]:
                ranges[str(item["document"])].append(str(item["range"]))
    return "; ".join(f"from {name} ({', '.join(found)})" if found else f"from {name}" for name, found in ranges.items())


@register.filter
def split_parts(value: str) -> list[str]:
    return [part for part in str(value).split(",") if part]


@register.filter
def get_part(document: Any, part: str) -> str:
    return str(document.get(part) or "") if isinstance(document, dict) else ""
