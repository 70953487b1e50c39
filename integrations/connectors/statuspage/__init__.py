"""Atlassian Statuspage: read incidents and components; create and update public incidents exactly once."""

from integrations.connectors.statuspage.client import StatuspageKeyAuth, classify_statuspage_response
from integrations.connectors.statuspage.connector import StatuspageConnector
from integrations.connectors.statuspage.manifest import MANIFEST

CONNECTOR = StatuspageConnector

__all__ = ["CONNECTOR", "MANIFEST", "StatuspageConnector", "StatuspageKeyAuth", "classify_statuspage_response"]
