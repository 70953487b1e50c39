"""PagerDuty: REST API v2 (services, incidents, on-calls, incident actions) and v3 webhook signatures."""

from integrations.connectors.pagerduty.client import ACCEPT, PagerDutyTokenAuth, classify_pagerduty_response
from integrations.connectors.pagerduty.connector import PagerDutyConnector
from integrations.connectors.pagerduty.manifest import MANIFEST
from integrations.connectors.pagerduty.webhooks import EVENT_TYPES, STATUS_EVENTS

CONNECTOR = PagerDutyConnector

__all__ = ["ACCEPT", "CONNECTOR", "EVENT_TYPES", "MANIFEST", "STATUS_EVENTS", "PagerDutyConnector", "PagerDutyTokenAuth", "classify_pagerduty_response"]
