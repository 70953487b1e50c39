"""An integration's data sources: one per entity its connector reads, with the field mapping an admin sets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from accounts.services import audit_record, model_changes, snapshot
from common.errors import ApplicationError
from integrations.models import DataSource, Integration
from integrations.services.catalog import connector_class_for


def data_sources_ensure(*, integration: Integration) -> list[DataSource]:
    """One data source per entity the connector declares, in the manifest's order (existing ones, with their mappings, are kept).

    The sync engine's data_sources_ensure calls this and gives each its schedule.
    """
    manifest = connector_class_for(integration.connector_key).manifest
    existing = {ds.entity_type: ds for ds in integration.data_sources.all()}
    sources = []
    for entity in manifest.entities:
        source = existing.get(entity.key)
        if source is None:
            source, _ = DataSource.objects.get_or_create(integration=integration, entity_type=entity.key, defaults={"organization": integration.organization})
        sources.append(source)
    return sources


def data_source_update(
    *,
    data_source: DataSource,
    field_mapping: Mapping[str, Any] | None = None,
    is_enabled: bool | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> DataSource:
    """Change a data source's field mapping (Bastion field → discovered source field) or enable it."""
    before = snapshot(data_source, ["field_mapping", "is_enabled"])
    if field_mapping is not None:
        if not isinstance(field_mapping, Mapping) or any(not isinstance(v, str) for v in field_mapping.values()):
            raise ApplicationError(
                "field_mapping must map Bastion field names to source field names.", code="invalid", fields={"field_mapping": ["Invalid mapping."]}
            )
        known = {f.get("name") for f in data_source.discovered_fields or []} | {f.get("path") for f in data_source.discovered_fields or []}
        unknown = sorted(v for v in field_mapping.values() if v and known and v not in known)
        if unknown:
            message = f"Not a discovered field of {data_source.entity_type}: {', '.join(unknown)}. Run discovery again if the vendor added fields."
            raise ApplicationError(message, code="invalid", fields={"field_mapping": [message]})
        data_source.field_mapping = {str(k): v for k, v in field_mapping.items() if v}
    if is_enabled is not None:
        data_source.is_enabled = bool(is_enabled)
    data_source.save()
    audit_record(
        action="data_source.update",
        organization=data_source.organization,
        actor=actor,
        target=data_source,
        changes=model_changes(data_source, ["field_mapping", "is_enabled"], before),
        request=request,
    )
    return data_source
