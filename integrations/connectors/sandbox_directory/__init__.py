"""Sandbox Directory: the sandbox's people and groups directory (a stand-in, loaded only where the sandbox is configured)."""

from integrations.connectors.sandbox_directory.connector import SandboxDirectoryConnector
from integrations.connectors.sandbox_directory.manifest import MANIFEST
from integrations.connectors.sandbox_directory.webhooks import webhook_signature

CONNECTOR = SandboxDirectoryConnector

__all__ = ["CONNECTOR", "MANIFEST", "SandboxDirectoryConnector", "webhook_signature"]
