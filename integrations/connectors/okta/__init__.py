"""Okta: users, groups and app assignments over the Management API, kept current by event hooks."""

from integrations.connectors.okta.client import classify_okta_response
from integrations.connectors.okta.connector import OktaConnector
from integrations.connectors.okta.manifest import MANIFEST
from integrations.connectors.okta.webhooks import CHANGE_EVENTS, DELETE_EVENTS

CONNECTOR = OktaConnector

__all__ = ["CHANGE_EVENTS", "CONNECTOR", "DELETE_EVENTS", "MANIFEST", "OktaConnector", "classify_okta_response"]
