"""Sandbox actions: the sandbox's generic action target (a stand-in for every vendor's actions, loaded only with the sandbox)."""

from integrations.connectors.sandbox_actions.connector import SandboxActionsConnector, marker_for
from integrations.connectors.sandbox_actions.manifest import ALIASES, MANIFEST

CONNECTOR = SandboxActionsConnector

__all__ = ["ALIASES", "CONNECTOR", "MANIFEST", "SandboxActionsConnector", "marker_for"]
