"""Slack: one package for everything Bastion knows about it (the registry reads CONNECTOR)."""

from integrations.connectors.slack.actions import HISTORY_LOOKBACK, INVITE_BATCH, METADATA_EVENT_TYPE
from integrations.connectors.slack.client import classify_slack_response
from integrations.connectors.slack.connector import CONNECTOR, SlackConnector
from integrations.connectors.slack.manifest import OPTIONAL_SCOPE_PURPOSES, SCOPE_PURPOSES
from integrations.connectors.slack.naming import channel_name, rendered_channel_name

__all__ = [
    "CONNECTOR",
    "HISTORY_LOOKBACK",
    "INVITE_BATCH",
    "METADATA_EVENT_TYPE",
    "OPTIONAL_SCOPE_PURPOSES",
    "SCOPE_PURPOSES",
    "SlackConnector",
    "channel_name",
    "classify_slack_response",
    "rendered_channel_name",
]
