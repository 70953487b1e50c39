"""Demo Workspace: the sandbox's generic "demo" vendor (a stand-in, loaded only where the sandbox is configured)."""

from integrations.connectors.demo.connector import DemoConnector
from integrations.connectors.demo.manifest import MANIFEST

CONNECTOR = DemoConnector

__all__ = ["CONNECTOR", "MANIFEST", "DemoConnector"]
