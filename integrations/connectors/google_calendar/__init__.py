"""Google Calendar: one package for everything Bastion knows about it (the registry reads CONNECTOR)."""

from integrations.connectors.google_calendar.auth import ServiceAccountAuth
from integrations.connectors.google_calendar.client import classify_google_response
from integrations.connectors.google_calendar.connector import CONNECTOR, GoogleCalendarConnector, event_id_for, meeting_link_text
from integrations.connectors.google_calendar.manifest import SCOPE_PURPOSES, SCOPES

__all__ = [
    "CONNECTOR",
    "SCOPES",
    "SCOPE_PURPOSES",
    "GoogleCalendarConnector",
    "ServiceAccountAuth",
    "classify_google_response",
    "event_id_for",
    "meeting_link_text",
]
