"""PagerDuty, declared in spec.yaml (hooks.py for what the format cannot say): REST API v2 (services, incidents, on-calls,
incident actions) and v3 webhook signatures."""

from pathlib import Path

from integrations.connectors.declarative import load_spec_file

CONNECTOR = PagerDutyConnector = load_spec_file(Path(__file__).with_name("spec.yaml"))
MANIFEST = CONNECTOR.manifest
ACCEPT = CONNECTOR.spec["default_headers"]["Accept"]
EVENT_TYPES = MANIFEST.webhook.event_types
STATUS_EVENTS = dict(CONNECTOR.spec["constants"]["status_events"])

__all__ = ["ACCEPT", "CONNECTOR", "EVENT_TYPES", "MANIFEST", "STATUS_EVENTS", "PagerDutyConnector"]
