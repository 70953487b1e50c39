"""Creating, editing and deleting integrations, and the wizard's settings step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from accounts.models import Organization
from accounts.services import audit_record, model_changes, snapshot
from common.errors import ApplicationError
from integrations.connectors.base import Capability
from integrations.errors import ApiBadRequest
from integrations.models import Integration
from integrations.services.catalog import connector_class_for, is_sandbox_url
from integrations.services.data_sources import data_source_update, data_sources_ensure
from integrations.services.validation import allowed_roles_validate, base_url_validate, config_validate

AUDITED_FIELDS = ["display_name", "connector_key", "status", "config", "base_url", "allowed_roles"]


@transaction.atomic
def integration_create(
    *,
    organization: Organization,
    connector_key: str,
    display_name: str = "",
    config: Mapping[str, Any] | None = None,
    base_url: str = "",
    allowed_roles: list[str] | None = None,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Create an integration (not yet connected) for a connector in the catalog, with a data source per entity."""
    connector = connector_class_for(connector_key)
    base_url = base_url_validate(base_url)
    config = config_validate(connector.manifest, config)
    if base_url and connector.manifest.oauth and not config.get("oauth_base_url") and is_sandbox_url(base_url):
        # The sandbox serves each vendor's OAuth server at <sandbox>/<vendor>/oauth/…, not at the vendor's real path.
        config["oauth_base_url"] = base_url
    integration = Integration.objects.create(
        organization=organization,
        connector_key=connector_key,
        display_name=display_name or connector.manifest.name,
        config=config,
        base_url=base_url,
        allowed_roles=allowed_roles_validate(allowed_roles),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    data_sources_ensure(integration=integration)
    audit_record(
        action="integration.create",
        organization=organization,
        actor=actor,
        target=integration,
        changes=model_changes(integration, AUDITED_FIELDS),
        request=request,
    )
    return integration


@transaction.atomic
def integration_update(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None, **fields: Any) -> Integration:
    """Update editable fields (display name, config, base URL, allowed roles)."""
    before = snapshot(integration, AUDITED_FIELDS)
    manifest = connector_class_for(integration.connector_key).manifest
    for name, value in fields.items():
        if name not in ("display_name", "config", "base_url", "allowed_roles"):
            raise ApplicationError(f"Field {name} cannot be changed here.", code="not_editable")
        if name == "base_url":
            value = base_url_validate(value)
        elif name == "allowed_roles":
            value = allowed_roles_validate(value)
        elif name == "config":
            value = config_validate(manifest, value)
        elif name == "display_name" and not str(value).strip():
            raise ApplicationError("A name is required.", code="invalid", fields={"display_name": ["This field may not be blank."]})
        setattr(integration, name, value)
    integration.save()
    audit_record(
        action="integration.update",
        organization=integration.organization,
        actor=actor,
        target=integration,
        changes=model_changes(integration, AUDITED_FIELDS, before),
        request=request,
    )
    return integration


@transaction.atomic
def integration_delete(*, integration: Integration, actor: Any = None, request: HttpRequest | None = None) -> None:
    audit_record(
        action="integration.delete",
        organization=integration.organization,
        actor=actor,
        target=integration,
        changes=snapshot(integration, ["display_name", "connector_key"]),
        request=request,
    )
    integration.delete()


@transaction.atomic
def integration_config_update(
    *,
    integration: Integration,
    config: Mapping[str, Any] | None = None,
    data_sources: list[Mapping[str, Any]] | None = None,
    finish: bool = False,
    actor: Any = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Set the workspace/project settings and the field mappings per entity (the wizard's middle steps)."""
    connector_class = connector_class_for(integration.connector_key)
    manifest = connector_class.manifest
    if config is not None:
        merged = {**integration.config, **config_validate(manifest, config)}
        if connector_class.supports(Capability.DISABLED_RULES) and "disabled_rules" in config:
            try:  # a directory's disabled-account rules are checked when saved, not first at the next sync
                connector_class.rules_validate(config["disabled_rules"])
            except ApiBadRequest as error:
                raise ApplicationError(error.message, code="invalid", fields={"disabled_rules": [error.message]}) from error
        config_validate(manifest, merged, partial=not finish)
        integration_update(integration=integration, config=merged, actor=actor, request=request)
    for item in data_sources or []:
        entity = item.get("entity_type")
        data_source = integration.data_sources.filter(entity_type=entity).first()
        if data_source is None:
            raise ApplicationError(
                f"{integration.display_name} has no data source '{entity}'.", code="invalid", fields={"data_sources": [f"Unknown entity {entity!r}."]}
            )
        data_source_update(data_source=data_source, field_mapping=item.get("field_mapping"), is_enabled=item.get("is_enabled"), actor=actor, request=request)
    return integration
