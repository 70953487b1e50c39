"""Slack connector: members and channels in; channels, invites, messages and DMs out; Events API webhooks."""

from __future__ import annotations

from integrations.connectors.slack.actions import SlackActions
from integrations.connectors.slack.decisions import SlackDecisions
from integrations.connectors.slack.manifest import MANIFEST
from integrations.connectors.slack.webhooks import SlackWebhooks


class SlackConnector(SlackWebhooks, SlackDecisions, SlackActions):
    """Slack Web API (bot token). Method errors arrive as HTTP 200 `ok:false`; classify_response maps them."""

    manifest = MANIFEST


CONNECTOR = SlackConnector
