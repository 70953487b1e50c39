"""Microsoft Entra ID: users, groups and managers through Microsoft Graph, kept current with delta queries."""

from integrations.connectors.entra.client import ClientCredentialsAuth, classify_graph_response
from integrations.connectors.entra.connector import EntraConnector
from integrations.connectors.entra.manifest import MANIFEST

CONNECTOR = EntraConnector

__all__ = ["CONNECTOR", "MANIFEST", "ClientCredentialsAuth", "EntraConnector", "classify_graph_response"]
