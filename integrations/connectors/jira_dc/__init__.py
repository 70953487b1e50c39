"""Jira Data Center: the Jira Cloud connector's logic over REST v2 and a personal access token (the registry reads CONNECTOR)."""

from integrations.connectors.jira_dc.connector import CONNECTOR, JiraDataCenterConnector, description_text, webhook_id, wiki_escape

__all__ = ["CONNECTOR", "JiraDataCenterConnector", "description_text", "webhook_id", "wiki_escape"]
