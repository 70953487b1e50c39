"""The vendor account an integration reaches (external_account_id, used to route webhooks) follows a reconnect, audited."""

from __future__ import annotations

import pytest
import requests
from django.test import Client

from accounts.models import AuditEvent, Role
from integrations.models import Integration, IntegrationStatus
from integrations.services import build_connector, integration_test
from tests.integrations.oauth_helpers import consent, local
from tests.integrations.test_jira_oauth import BETA_ID, CLOUD_ID, connect_jira, set_sites


@pytest.fixture
def admin(users_by_role):
    return users_by_role[Role.ADMIN]


@pytest.fixture
def admin_client(admin, sandbox, settings) -> Client:
    settings.BASTION_SANDBOX_URL = sandbox  # Jira's OAuth server is then the sandbox's
    client = Client()
    client.force_login(admin)
    return client


def account_changes(integration: Integration) -> list[tuple[list[str], str]]:
    events = AuditEvent.objects.filter(action="integration.account_changed", target_id=str(integration.pk)).order_by("created_at")
    return [(event.changes["external_account_id"], event.actor_label) for event in events]


def reauthorize(client: Client, integration: Integration):
    start = client.post(f"/integrations/{integration.pk}/authorize/")
    assert start.status_code == 302
    return client.get(local(consent(start["Location"])))


def test_reconnecting_jira_to_another_site_moves_the_account_id_and_audits_it(admin_client, admin, sandbox):
    assert connect_jira(admin_client, sandbox).status_code == 302
    integration = Integration.objects.get()
    assert integration.external_account_id == CLOUD_ID
    assert account_changes(integration) == [(["", CLOUD_ID], admin.get_username())]

    # The person signs in again with an Atlassian account that reaches only the Beta site.
    set_sites(sandbox, [{"id": BETA_ID, "name": "beta"}])
    done = reauthorize(admin_client, integration)
    assert done.status_code == 302 and done["Location"] == f"/integrations/{integration.pk}/"
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.config["cloud_id"] == BETA_ID
    assert integration.external_account_id == BETA_ID  # webhooks from the Beta site now route here; the old site's no longer do
    assert account_changes(integration) == [(["", CLOUD_ID], admin.get_username()), ([CLOUD_ID, BETA_ID], admin.get_username())]
    assert build_connector(integration).client.base_url.endswith(f"/ex/jira/{BETA_ID}/")

    # Testing again against the same site changes nothing and audits nothing more.
    assert integration_test(integration=integration).ok
    integration.refresh_from_db()
    assert integration.external_account_id == BETA_ID and len(account_changes(integration)) == 2


def test_a_failed_connection_test_leaves_the_account_id_alone(admin_client, sandbox):
    assert connect_jira(admin_client, sandbox).status_code == 302
    integration = Integration.objects.get()
    requests.put(f"{sandbox}/_control/faults/jira", json={"error_next": 10, "error_status": 400}, timeout=5).raise_for_status()
    result = integration_test(integration=integration)
    assert result.ok is False and result.detail["category"] == "configuration"
    integration.refresh_from_db()
    assert integration.external_account_id == CLOUD_ID and len(account_changes(integration)) == 1
