"""Using an integration's data from the API: discovery, a live read, a push, a directory's rules preview; each checked and audited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Membership
from accounts.services import audit_record
from common.errors import ApplicationError
from common.url_safety import link_fields_sanitized
from integrations.connectors.base import ActionResult, Capability, FieldInfo, Page
from integrations.errors import ApiBadRequest, ApiError
from integrations.models import DataSource, Integration, IntegrationStatus
from integrations.services.catalog import connector_class_for
from integrations.services.connection import build_connector
from integrations.services.health import vendor_error

QUERY_MAX_LIMIT = 200


def integration_use_check(*, integration: Integration, membership: Membership) -> None:
    """Enforce the permission mapping: when allowed_roles is set only those roles (and admins) use the data and actions."""
    if integration.status == IntegrationStatus.DISCONNECTED:
        raise ApplicationError(f"{integration.display_name} is not connected.", code="integration_disconnected", status_code=409)
    from integrations.access import integration_access_check

    integration_access_check(integration=integration, membership=membership)


def data_source_discover(*, data_source: DataSource, actor: Any = None, request: HttpRequest | None = None) -> DataSource:
    """Ask the live system for the entity's fields and keep them (with discovered_at) for the mapping UI."""
    integration = data_source.integration
    connector = build_connector(integration)
    try:
        fields: list[FieldInfo] = connector.discover_fields(data_source.entity_type)
    except ApiError as error:
        raise vendor_error(integration, error)
    except NotImplementedError:
        raise ApplicationError(f"{integration.display_name} cannot discover fields.", code="unsupported", status_code=409)
    data_source.discovered_fields = [
        {"name": f.name, "label": f.label, "type": f.type, "path": f.path, "is_required": f.is_required, "is_custom": f.is_custom} for f in fields
    ]
    data_source.discovered_at = timezone.now()
    data_source.save(update_fields=["discovered_fields", "discovered_at", "updated_at"])
    audit_record(
        action="data_source.discover", organization=data_source.organization, actor=actor, target=data_source, changes={"fields": len(fields)}, request=request
    )
    return data_source


def data_source_query(
    *, data_source: DataSource, membership: Membership, limit: int = 20, page: Any = None, request: HttpRequest | None = None
) -> dict[str, Any]:
    """Read one page live through the connector (no storage), transformed to Bastion's shape."""
    integration = data_source.integration
    integration_use_check(integration=integration, membership=membership)
    limit = max(1, min(int(limit), QUERY_MAX_LIMIT))
    connector = build_connector(integration)
    try:
        result: Page = connector.read(data_source.entity_type, page=page)
        records = result.records[:limit]
        transformed = [link_fields_sanitized(connector.to_bastion(data_source.entity_type, r)) for r in records]
    except ApiError as error:
        raise vendor_error(integration, error)
    audit_record(
        action="data_source.query",
        organization=data_source.organization,
        actor=membership.user,
        target=data_source,
        changes={"records": len(records), "limit": limit},
        request=request,
    )
    return {
        "entity_type": data_source.entity_type,
        "records": records,
        "bastion": transformed,
        "next_page": result.next_page if len(result.records) <= limit else None,
        "truncated": len(result.records) > limit,
    }


def data_source_push(
    *,
    data_source: DataSource,
    membership: Membership,
    action: str,
    record: Mapping[str, Any],
    idempotency_key: str,
    request: HttpRequest | None = None,
) -> ActionResult:
    """Transform a Bastion record with from_bastion and perform one connector action (idempotent for the key)."""
    integration = data_source.integration
    integration_use_check(integration=integration, membership=membership)
    connector_class = connector_class_for(integration.connector_key)
    try:
        connector_class.manifest.action(action)
    except KeyError:
        actions = ", ".join(a.key for a in connector_class.manifest.actions) or "none"
        raise ApplicationError(
            f"{connector_class.manifest.name} has no action {action!r} (available: {actions}).", code="invalid", fields={"action": ["Unknown action."]}
        )
    connector = build_connector(integration)
    payload = connector.from_bastion(data_source.entity_type, record)
    try:
        result = connector.perform(action, payload, idempotency_key=idempotency_key)
    except ApiError as error:
        raise vendor_error(integration, error)
    audit_record(
        action="data_source.push",
        organization=data_source.organization,
        actor=membership.user,
        target=data_source,
        changes={"action": action, "idempotency_key": idempotency_key, "external_id": result.external_id, "created": result.created},
        request=request,
    )
    return result


def directory_disabled_rules_preview(*, integration: Integration, rules: Any) -> dict[str, Any]:
    """How many directory entries each disabled-account rule would exclude, read before the rules are saved."""
    if not connector_class_for(integration.connector_key).supports(Capability.DISABLED_RULES):
        raise ApplicationError(f"{integration.display_name} has no disabled-account rules.", code="not_supported", status_code=404)
    connector = build_connector(integration)
    try:
        return connector.disabled_rules_preview(rules)
    except ApiBadRequest as error:
        raise ApplicationError(error.message, code="invalid", fields={"rules": [error.message]}) from error
    except ApiError as error:
        raise vendor_error(integration, error) from error
    finally:
        connector.close()
