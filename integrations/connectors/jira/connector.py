"""Jira Cloud connector (REST v3): projects, issues, users, fields and create metadata in; issues, assignments, transitions, comments out."""

from __future__ import annotations

from integrations.connectors.jira.manifest import MANIFEST
from integrations.connectors.jira.tracking import JiraTracking
from integrations.connectors.jira.webhooks import JiraWebhooks


class JiraConnector(JiraWebhooks, JiraTracking):
    """Jira Cloud platform REST v3 over Basic (email + API token) or OAuth 2.0 (3LO) bearer tokens."""

    manifest = MANIFEST


CONNECTOR = JiraConnector
