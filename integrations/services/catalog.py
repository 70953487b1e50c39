"""Which connector class an integration uses, and where the demo sandbox serves a vendor."""

from __future__ import annotations

from django.conf import settings

from common.errors import ApplicationError
from integrations.connectors.base import BaseConnector
from integrations.registry import UnknownConnector, get_connector_class


def connector_class_for(key: str) -> type[BaseConnector]:
    """The installed connector class for a key (ApplicationError when unknown)."""
    try:
        return get_connector_class(key)
    except UnknownConnector as exc:
        raise ApplicationError(str(exc), code="unknown_connector", fields={"connector_key": [str(exc)]})


def is_sandbox_url(url: str) -> bool:
    """Whether a base URL points at the demo sandbox."""
    sandbox = settings.BASTION_SANDBOX_URL.rstrip("/")
    return bool(sandbox) and (url == sandbox or url.startswith(sandbox + "/"))


def sandbox_base_url(connector_key: str) -> str:
    """Where the demo sandbox serves a vendor (used to prefill base URLs in the demo)."""
    return f"{settings.BASTION_SANDBOX_URL.rstrip('/')}/{connector_key}"
