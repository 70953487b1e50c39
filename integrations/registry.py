"""The connector catalog: built-in connectors plus any installed under the `bastion.connectors` entry point."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

from django.conf import settings

from integrations import connectors as builtin_package
from integrations.connectors.base import BaseConnector, ConnectorManifest

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "bastion.connectors"
NOT_VENDORS = ("base", "entities", "kit", "declarative")  # modules of the connector SDK, not vendors


class UnknownConnector(KeyError):
    pass


def _builtin_connectors() -> list[type[BaseConnector]]:
    found: list[type[BaseConnector]] = []
    for module_info in pkgutil.iter_modules(builtin_package.__path__):
        if module_info.name in NOT_VENDORS or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{builtin_package.__name__}.{module_info.name}")
        connector = getattr(module, "CONNECTOR", None)
        if connector is not None:
            found.append(connector)
    found.extend(_spec_only_connectors())
    return found


def _spec_only_connectors() -> list[type[BaseConnector]]:
    """Vendor folders holding only a spec.yaml (no Python package): compiled from the spec (docs/connectors.md)."""
    from integrations.connectors.declarative import load_spec_file

    found: list[type[BaseConnector]] = []
    for folder in sorted(Path(builtin_package.__path__[0]).iterdir()):
        if (folder / "spec.yaml").is_file() and not (folder / "__init__.py").exists() and not folder.name.startswith(("_", ".")):
            try:
                found.append(load_spec_file(folder / "spec.yaml"))
            except Exception:  # noqa: BLE001 - a broken spec must not take the catalog down (its test names each problem)
                logger.exception("connectors.spec_failed", extra={"folder": folder.name})
    return found


def _entry_point_connectors() -> list[type[BaseConnector]]:
    found: list[type[BaseConnector]] = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            connector = entry_point.load()
        except Exception:  # noqa: BLE001 - a broken partner package must not take the catalog down
            logger.exception("connectors.entry_point_failed", extra={"entry_point": entry_point.name})
            continue
        if isinstance(connector, type) and issubclass(connector, BaseConnector):
            found.append(connector)
        else:
            logger.error("connectors.entry_point_invalid", extra={"entry_point": entry_point.name})
    return found


def sandbox_connectors_enabled() -> bool:
    """Whether stand-ins for the vendor sandbox (ConnectorManifest.sandbox_only) are offered: settings.BASTION_SANDBOX_CONNECTORS."""
    return bool(settings.BASTION_SANDBOX_CONNECTORS)


@lru_cache(maxsize=1)
def _catalog() -> dict[str, type[BaseConnector]]:
    catalog: dict[str, type[BaseConnector]] = {}
    with_sandbox = sandbox_connectors_enabled()
    for connector in _builtin_connectors() + _entry_point_connectors():
        key = connector.manifest.key
        if connector.manifest.sandbox_only and not with_sandbox:
            continue  # a stand-in that talks only to Bastion's vendor sandbox: never in a production catalogue
        if key in catalog:
            logger.warning("connectors.duplicate_key", extra={"key": key})
            continue
        catalog[key] = connector
    return catalog


def reload_catalog() -> None:
    _catalog.cache_clear()


def connector_classes() -> dict[str, type[BaseConnector]]:
    return dict(_catalog())


def get_connector_class(key: str) -> type[BaseConnector]:
    try:
        return _catalog()[key]
    except KeyError as exc:
        if key.startswith("custom."):  # an organization's own connector: the compiled class of its published version
            from integrations.custom.selectors import custom_connector_class

            custom = custom_connector_class(key)
            if custom is not None:
                return custom
        raise UnknownConnector(f"No connector '{key}' is installed.") from exc


def manifests() -> list[ConnectorManifest]:
    return sorted((c.manifest for c in _catalog().values()), key=lambda m: (m.category, m.name))


def connectors_playing(role: str) -> list[str]:
    """Keys of the installed vendor connectors that can play a playbook role (ConnectorManifest.roles).

    Stand-ins for the vendor sandbox are left out: they play a role only where a playbook binds one explicitly."""
    return sorted(key for key, connector in _catalog().items() if role in connector.manifest.roles and not connector.manifest.sandbox_only)
