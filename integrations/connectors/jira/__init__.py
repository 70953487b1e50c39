"""Jira Cloud: one package for everything Bastion knows about it (the registry reads CONNECTOR; Jira Data Center builds on it)."""

from integrations.connectors.jira.client import (
    JiraClient,
    adf,
    adf_text,
    atlassian_gateway,
    classify_jira_response,
    idempotency_label,
    jira_error_message,
    parse_jira_time,
    site_key,
)
from integrations.connectors.jira.connector import CONNECTOR, JiraConnector
from integrations.connectors.jira.manifest import (
    ADD_COMMENT_FIELDS,
    API,
    ASSIGN_ISSUE_FIELDS,
    CREATE_ISSUE_FIELDS,
    PERMISSIONS,
    REPLAY_WINDOW_MS,
    TRACKS_ISSUE,
    WEBHOOK_EVENTS,
    WEBHOOKS,
    issue_labels,
)
from integrations.connectors.jira.tracking import DONE_STATUSES, issue_state

__all__ = [
    "ADD_COMMENT_FIELDS",
    "API",
    "ASSIGN_ISSUE_FIELDS",
    "CONNECTOR",
    "CREATE_ISSUE_FIELDS",
    "DONE_STATUSES",
    "PERMISSIONS",
    "REPLAY_WINDOW_MS",
    "TRACKS_ISSUE",
    "WEBHOOKS",
    "WEBHOOK_EVENTS",
    "JiraClient",
    "JiraConnector",
    "adf",
    "adf_text",
    "atlassian_gateway",
    "classify_jira_response",
    "idempotency_label",
    "issue_labels",
    "issue_state",
    "jira_error_message",
    "parse_jira_time",
    "site_key",
]
