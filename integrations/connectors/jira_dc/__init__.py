"""Jira Data Center: one package for everything Bastion knows about it (the registry reads CONNECTOR)."""

from integrations.connectors.jira_dc.connector import *  # noqa: F403 - transition: the package re-exports the connector module
from integrations.connectors.jira_dc.connector import CONNECTOR, JiraDataCenterConnector  # noqa: F401
