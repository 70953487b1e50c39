"""Reads for custom connectors: an organization's connectors, and the compiled class an integration's key resolves to."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from django.db.models import QuerySet

from accounts.models import Organization
from integrations.connectors.base import BaseConnector
from integrations.custom import adapter
from integrations.custom.models import CUSTOM_KEY_PREFIX, CustomConnector, CustomConnectorStatus, CustomConnectorVersion

_compiled: dict[uuid.UUID, type[BaseConnector]] = {}  # version id → class: versions never change once saved
_compiled_guard = threading.Lock()


def custom_connectors(*, organization: Organization) -> QuerySet[CustomConnector]:
    return CustomConnector.objects.filter(organization=organization).select_related("current_version").order_by("name")


def custom_connector_get(*, organization: Organization, pk: Any) -> CustomConnector | None:
    """The organization's connector, or None (another organization's connector is as absent as a missing one)."""
    try:
        return custom_connectors(organization=organization).get(pk=pk)
    except (CustomConnector.DoesNotExist, ValueError):
        return None


def custom_connector_versions(*, connector: CustomConnector) -> QuerySet[CustomConnectorVersion]:
    return connector.versions.select_related("created_by").order_by("-number")


def custom_connector_id(key: str) -> uuid.UUID | None:
    """The connector id in a "custom.<id>" key, or None when the key names no custom connector."""
    if not key.startswith(CUSTOM_KEY_PREFIX):
        return None
    try:
        return uuid.UUID(key[len(CUSTOM_KEY_PREFIX) :])
    except ValueError:
        return None


def custom_connector_for_key(key: str) -> CustomConnector | None:
    connector_id = custom_connector_id(key)
    if connector_id is None:
        return None
    return CustomConnector.objects.select_related("current_version").filter(pk=connector_id).first()


def compiled_version(version: CustomConnectorVersion, connector: CustomConnector) -> type[BaseConnector]:
    """The connector class of a saved version (compiled once per process; hooks never allowed)."""
    with _compiled_guard:
        cached = _compiled.get(version.pk)
    if cached is None:
        cached = adapter.spec_compile(version.spec, key=connector.connector_key, name=connector.name)
        with _compiled_guard:
            _compiled[version.pk] = cached
    return cached


def custom_connector_class(key: str) -> type[BaseConnector] | None:
    """The published version's class for "custom.<id>", or None (unknown, or nothing published yet)."""
    connector = custom_connector_for_key(key)
    if connector is None or connector.status != CustomConnectorStatus.PUBLISHED or connector.current_version is None:
        return None
    return compiled_version(connector.current_version, connector)
