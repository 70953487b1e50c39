"""Google Calendar: one package for everything Bastion knows about it (the registry reads CONNECTOR)."""

from integrations.connectors.google_calendar.connector import *  # noqa: F403 - transition: the package re-exports the connector module
from integrations.connectors.google_calendar.connector import CONNECTOR, GoogleCalendarConnector  # noqa: F401
