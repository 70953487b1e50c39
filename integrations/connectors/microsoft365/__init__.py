"""Microsoft 365: Teams, Outlook calendar, SharePoint/OneDrive and Excel through Microsoft Graph (the registry reads CONNECTOR)."""

from integrations.connectors.microsoft365.cards import adaptive_card
from integrations.connectors.microsoft365.client import classify_graph_response
from integrations.connectors.microsoft365.connector import CONNECTOR, Microsoft365Connector
from integrations.connectors.microsoft365.manifest import FEATURE_PERMISSIONS, MANIFEST, SCOPE_PURPOSES

__all__ = ["CONNECTOR", "FEATURE_PERMISSIONS", "MANIFEST", "SCOPE_PURPOSES", "Microsoft365Connector", "adaptive_card", "classify_graph_response"]
