"""Reads for forms: connected sources, smart-dropdown options from the records store (people typeahead: people.selectors). Never a vendor call."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from django.db.models import Q, TextField
from django.db.models.functions import Cast

from accounts.models import Organization
from integrations.models import Integration, IntegrationStatus
from scenarios.spec import jsonpath_first
from sync.models import SyncRecord

MAX_LIMIT = 50


def connected_integrations(*, organization: Organization, connector_keys: list[str]) -> dict[str, list[str]]:
    """Connector key → ids of the organization's connected integrations of it."""
    found: dict[str, list[str]] = {}
    for integration_id, key in Integration.objects.filter(
        organization=organization, connector_key__in=connector_keys, status=IntegrationStatus.CONNECTED
    ).values_list("pk", "connector_key"):
        found.setdefault(key, []).append(str(integration_id))
    return found


def record_options(
    *,
    organization: Organization,
    sources: list[tuple[str, str]],
    query: str = "",
    limit: int = 20,
    label_path: str = "$.name",
    value_path: str = "$.external_id",
    excluded_integration_ids: Collection[Any] = (),
    paths: Mapping[str, tuple[str, ...]] | None = None,
) -> list[dict[str, Any]]:
    """Options from synced records of the given (connector, entity) pairs, leaving out excluded integrations (allowed_roles).

    paths: a connector's own (label, value) JSONPaths where its records differ from the field's (scenarios.spec.source_paths).
    """
    if not sources:
        return []
    records = (
        SyncRecord.objects.filter(organization=organization, is_deleted=False)
        .exclude(integration_id__in=list(excluded_integration_ids))
        .filter(Q(*[Q(integration__connector_key=c, entity_type=e) for c, e in sources], _connector=Q.OR))
    )
    for term in query.strip().lower().split()[:5]:
        records = records.annotate(_text=Cast("data", TextField())).filter(Q(_text__icontains=term) | Q(external_id__icontains=term))
    options = []
    for record in records.select_related("integration").order_by("external_id")[: max(1, min(limit, MAX_LIMIT))]:
        own_label, own_value = (paths or {}).get(record.integration.connector_key, (label_path, value_path))[:2]
        label = jsonpath_first(own_label, record.data) if own_label else None
        value = jsonpath_first(own_value, record.data) if own_value else None
        options.append(
            {
                "value": str(value if value not in (None, "") else record.external_id),
                "label": str(label or record.external_id),
                "description": record.integration.display_name,
                "data": {"external_id": record.external_id, "name": str(label or record.external_id), "integration_id": str(record.integration_id)},
                "provenance": {
                    "source": record.integration.connector_key,
                    "integration_id": str(record.integration_id),
                    "entity": record.entity_type,
                    "external_id": record.external_id,
                },
            }
        )
    return options
