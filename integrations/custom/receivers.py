"""Org isolation at the one place every integration is written: a custom connector key only within its own organization."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import pre_save
from django.dispatch import receiver

from common.errors import ApplicationError
from integrations.custom.models import CUSTOM_KEY_PREFIX


def custom_connector_organization_check(connector_key: str, organization_id: Any) -> None:
    """ApplicationError unless a "custom.<id>" key names a connector of this organization (other keys pass)."""
    if not connector_key.startswith(CUSTOM_KEY_PREFIX):
        return
    from integrations.custom.selectors import custom_connector_for_key

    connector = custom_connector_for_key(connector_key)
    if connector is None or connector.organization_id != organization_id:
        message = f"No connector '{connector_key}' is installed."
        raise ApplicationError(message, code="unknown_connector", fields={"connector_key": [message]})


@receiver(pre_save, sender="integrations.Integration", dispatch_uid="custom_connector_same_organization")
def integration_custom_connector_guard(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Refuse an integration naming another organization's custom connector (API, admin, wizard alike)."""
    custom_connector_organization_check(instance.connector_key, instance.organization_id)
