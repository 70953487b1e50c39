"""HubSpot CRM, declared in spec.yaml (hooks.py and reading.py for what the format cannot say): deals, contacts, companies,
owners; search-based incremental sync; notes, tasks and deal updates; v3 webhooks."""

from pathlib import Path

from integrations.connectors.declarative import load_spec_file
from integrations.connectors.hubspot.hooks import sign_v3

CONNECTOR = HubSpotConnector = load_spec_file(Path(__file__).with_name("spec.yaml"))
MANIFEST = CONNECTOR.manifest
EVENT_TYPES = MANIFEST.webhook.event_types

__all__ = ["CONNECTOR", "EVENT_TYPES", "MANIFEST", "HubSpotConnector", "sign_v3"]
