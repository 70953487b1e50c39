"""Vendor calls made side by side (kit.concurrent.map_concurrently) by a connector built for an integration: every call is
recorded through the calling thread's database connection (inside its transaction), and the pool's threads leave no
database session behind."""

from __future__ import annotations

import gc

import pytest
import requests
from django.db import connection

from integrations.connectors import slack as slack_module
from integrations.models import CredentialType, IntegrationCall
from integrations.services import integration_connect
from integrations.services.connection import build_connector

PEOPLE = ["ava.chen@acme.example", "marcus.okafor@acme.example", "priya.raman@acme.example", "liam.novak@acme.example", "emma.rossi@acme.example"]


def database_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.fixture
def slack(organization, sandbox):
    scopes = list(slack_module.SCOPE_PURPOSES) + list(slack_module.OPTIONAL_SCOPE_PURPOSES)
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "slack", "scopes": scopes}, timeout=5).json()["token"]
    integration = integration_connect(
        organization=organization,
        connector_key="slack",
        credentials={"access_token": token},
        credential_type=CredentialType.OAUTH,
        base_url=f"{sandbox}/slack/api",
    )
    return integration, build_connector(integration)


def invite_each(connector, channel: str) -> list:
    payloads = [{"channel": channel, "emails": [email]} for email in PEOPLE]
    return connector.perform_bulk("invite_users", payloads, idempotency_keys=[f"run-1:invite:{i}" for i in range(len(PEOPLE))])


def test_side_by_side_lookups_are_each_recorded_in_the_callers_transaction(slack):
    # The test's transaction is never committed: rows written from another connection would not see the integration.
    integration, connector = slack
    channel = connector.perform("create_channel", {"name": "recorded"}, idempotency_key="c").external_id
    invite_each(connector, channel)
    calls = IntegrationCall.objects.filter(integration=integration)
    assert calls.filter(path__endswith="users.lookupByEmail").count() == len(PEOPLE)
    assert calls.filter(path__endswith="conversations.invite").count() == 1


def test_side_by_side_calls_leave_no_database_session_open(slack):
    _integration, connector = slack
    channel = connector.perform("create_channel", {"name": "sessions"}, idempotency_key="c").external_id
    before = database_sessions()
    # What a worker sees between two garbage collections: an orphaned connection would stay open until the next one.
    gc.disable()
    try:
        invite_each(connector, channel)
        after = database_sessions()
    finally:
        gc.enable()
        gc.collect()
    assert after == before
