"""HubSpot CRM: deals, contacts, companies, owners; search-based incremental sync; notes, tasks and deal updates; v3 webhooks."""

from integrations.connectors.hubspot.client import classify_hubspot_response
from integrations.connectors.hubspot.connector import HubSpotConnector
from integrations.connectors.hubspot.manifest import MANIFEST
from integrations.connectors.hubspot.webhooks import EVENT_TYPES, sign_v3

CONNECTOR = HubSpotConnector

__all__ = ["CONNECTOR", "EVENT_TYPES", "MANIFEST", "HubSpotConnector", "classify_hubspot_response", "sign_v3"]
