"""OAuth refreshes are visible at /metrics: successes, and failures by reason (a refused grant needs a reconnect)."""
# ruff: noqa: F811 - fixtures imported from the OAuth suite are parameters here

from __future__ import annotations

import pytest
import requests

from integrations.errors import AuthRefreshFailed
from integrations.models import IntegrationStatus
from integrations.services import build_connector
from tests.common.metrics_scrape import METRICS_TOKEN, delta, scrape, value
from tests.integrations.test_oauth import _fast_refresh_retries, admin_client, connected, expire_soon  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.BASTION_METRICS_TOKEN = METRICS_TOKEN


def test_a_refresh_and_a_refused_refresh_are_counted(admin_client, sandbox, client):
    integration = connected(admin_client, sandbox)
    before = scrape(client)
    expire_soon(integration)
    build_connector(integration).test_connection()
    refreshed = scrape(client)
    assert delta(before, refreshed, "bastion_oauth_refreshes_total", connector="demo") == 1
    assert delta(before, refreshed, "bastion_oauth_refresh_failures_total", connector="demo") == 0

    requests.put(f"{sandbox}/_control/faults/demo", json={"revoked": True}, timeout=5).raise_for_status()
    expire_soon(integration)
    with pytest.raises(AuthRefreshFailed):
        build_connector(integration).test_connection()
    after = scrape(client)
    assert delta(refreshed, after, "bastion_oauth_refresh_failures_total", connector="demo", reason="refused") == 1
    assert delta(refreshed, after, "bastion_oauth_refreshes_total", connector="demo") == 0
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.AUTH_FAILED
    assert value(after, "bastion_integrations", connector="demo", status="auth_failed") == 1
