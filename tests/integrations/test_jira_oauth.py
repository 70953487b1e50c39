"""Jira Cloud over OAuth 2.0 (3LO) as Atlassian serves it: the code exchange, accessible-resources, then every call at
{gateway}/ex/jira/{cloudId}; one site is taken, several are the person's choice, none is a clear refusal."""

from __future__ import annotations

import pytest
import requests
from django.core import mail
from django.test import Client

from accounts.models import Role
from integrations.connectors.jira import JiraConnector
from integrations.errors import ApiBadRequest, ApiNotFound
from integrations.http import BasicAuth, BearerAuth, HttpClient
from integrations.models import CredentialType, Integration, IntegrationCredential, IntegrationStatus
from integrations.services import build_connector, integration_config_update, integration_test
from tests.integrations.oauth_helpers import consent, local

CLOUD_ID = "11223344-a1b2-3b33-c444-def123456789"  # the sandbox's Acme site
BETA_ID = "99887766-a1b2-3b33-c444-def123456789"
SCOPES = ["read:jira-work", "write:jira-work", "read:jira-user", "offline_access"]


@pytest.fixture
def admin_client(users_by_role, sandbox, settings) -> Client:
    settings.BASTION_SANDBOX_URL = sandbox  # Jira's OAuth server is then the sandbox's, like the demo
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    return client


def set_sites(sandbox: str, sites: list[dict] | None) -> None:
    requests.put(f"{sandbox}/jira/_sandbox/knobs", json={"sites": sites}, timeout=5).raise_for_status()


def jira_log(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": "jira"}, timeout=5).json()


def connect_jira(client: Client, sandbox: str):
    """The wizard's OAuth path for Jira: Bastion → sandbox consent (Allow) → Bastion's callback; returns the callback response."""
    start = client.post("/integrations/connect/jira/", {"display_name": "Jira", "base_url": f"{sandbox}/jira", "auth_method": "oauth2"})
    assert start.status_code == 302 and start["Location"].startswith(f"{sandbox}/jira/oauth/authorize?")
    return client.get(local(consent(start["Location"])))


def oauth_token(sandbox: str, scopes: list[str] = SCOPES) -> str:
    """An access token issued by the sandbox's Jira OAuth server through the real code flow."""
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": "jira", "scopes": scopes}, timeout=5).json()["token"]


# ---- through the real redirect --------------------------------------------------------------------------------


def test_one_site_is_resolved_after_the_exchange_and_every_call_goes_through_the_gateway(admin_client, sandbox):
    response = connect_jira(admin_client, sandbox)
    integration = Integration.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/integrations/{integration.pk}/setup/"
    assert integration.status == IntegrationStatus.CONNECTED
    assert integration.config["cloud_id"] == CLOUD_ID
    assert integration.config["site_url"] == f"{sandbox}/jira" and integration.config["site_name"] == "acme"
    assert integration.config["jira_sites"] == [{"id": CLOUD_ID, "url": f"{sandbox}/jira", "name": "acme"}]
    assert integration.external_account_id == CLOUD_ID  # webhooks are routed by cloudId
    assert integration.base_url == f"{sandbox}/jira"  # the integration keeps what the person entered; the connector derives the API root

    connector = build_connector(integration)
    assert connector.client.base_url == f"{sandbox}/jira/ex/jira/{CLOUD_ID}/"
    projects = connector.read("projects")
    assert [p["key"] for p in projects.records] == ["LAUNCH", "MNA", "OPS"]
    assert connector._browse_url("OPS-1") == f"{sandbox}/jira/browse/OPS-1"  # links point at the site, not the gateway

    log = jira_log(sandbox)
    paths = [r["path"] for r in log]
    assert paths.index("/jira/oauth/token") < paths.index("/jira/oauth/token/accessible-resources")
    api_calls = [r for r in log if "/rest/api/3/" in r["path"]]
    assert api_calls and all(r["path"].startswith(f"/jira/ex/jira/{CLOUD_ID}/rest/api/3/") for r in api_calls)
    assert all(r["status"] == 200 for r in api_calls)


def test_with_several_sites_the_person_chooses_and_is_told_which_exist(admin_client, sandbox):
    set_sites(sandbox, [{"id": CLOUD_ID, "name": "acme"}, {"id": BETA_ID, "name": "beta", "url": "https://beta.atlassian.net"}])
    response = connect_jira(admin_client, sandbox)
    integration = Integration.objects.get()
    assert response.status_code == 302
    assert integration.status != IntegrationStatus.CONNECTED and integration.status != IntegrationStatus.AUTH_FAILED
    assert integration.config["cloud_id"] == "" and [s["id"] for s in integration.config["jira_sites"]] == [CLOUD_ID, BETA_ID]
    # The person sees the choice where they land, and on the integration page and API (last_error).
    shown = admin_client.get(response["Location"]).content.decode()
    for text in ("several Jira sites", f"{sandbox}/jira (acme)", "https://beta.atlassian.net (beta)", "site_url"):
        assert text in shown and text in integration.last_error
    assert IntegrationCredential.objects.filter(integration=integration, credential_type=CredentialType.OAUTH).exists()
    api = admin_client.get(f"/api/integrations/{integration.pk}")
    assert api.status_code == 200 and "https://beta.atlassian.net (beta)" in api.json()["last_error"]
    assert [s["name"] for s in api.json()["config"]["jira_sites"]] == ["acme", "beta"]
    assert not [r for r in jira_log(sandbox) if "/rest/api/3/" in r["path"]]  # nothing was called on a guessed site

    # The person picks the site (setup page or API): the connection works, through that site's cloudId.
    integration_config_update(integration=integration, config={"site_url": f"{sandbox}/jira/"})
    result = integration_test(integration=integration)
    integration.refresh_from_db()
    assert result.ok and result.account_id == CLOUD_ID and integration.status == IntegrationStatus.CONNECTED
    assert build_connector(integration).client.base_url == f"{sandbox}/jira/ex/jira/{CLOUD_ID}/"


def test_an_account_that_reaches_no_jira_site_is_refused_clearly_and_nothing_is_stored(admin_client, sandbox):
    set_sites(sandbox, [])
    response = connect_jira(admin_client, sandbox)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Signed in to Jira, but the Atlassian account you signed in with gave Bastion access to no Jira Cloud site" in page
    integration = Integration.objects.get()
    assert integration.status == IntegrationStatus.DISCONNECTED and "cloud_id" not in integration.config
    assert not IntegrationCredential.objects.filter(integration=integration, credential_type=CredentialType.OAUTH).exists()
    assert mail.outbox == []


# ---- the connector ----------------------------------------------------------------------------------------------


def test_post_authorize_picks_the_named_site_and_ignores_other_products(sandbox):
    set_sites(
        sandbox,
        [
            {"id": CLOUD_ID, "name": "acme"},
            {"id": BETA_ID, "name": "beta", "url": "https://beta.atlassian.net"},
            {"id": "55555555-a1b2-3b33-c444-def123456789", "name": "wiki", "url": "https://wiki.atlassian.net", "scopes": ["read:confluence-content.all"]},
        ],
    )
    token = oauth_token(sandbox)
    connector = JiraConnector(client=HttpClient(f"{sandbox}/jira", auth=BearerAuth(token)), config={"site_url": "https://BETA.atlassian.net/"})
    updates = connector.post_authorize({"access_token": token})
    assert updates["cloud_id"] == BETA_ID and updates["site_url"] == "https://beta.atlassian.net" and updates["site_name"] == "beta"
    assert [s["name"] for s in updates["jira_sites"]] == ["acme", "beta"]  # the Confluence-only site is not a Jira site
    # On a reconnect the previous choice stands while the grant still reaches it.
    again = JiraConnector(client=HttpClient(f"{sandbox}/jira", auth=BearerAuth(token)), config={"cloud_id": CLOUD_ID})
    assert again.client.base_url == f"{sandbox}/jira/ex/jira/{CLOUD_ID}/"
    assert again.post_authorize({"access_token": token})["cloud_id"] == CLOUD_ID
    # Nobody chose: no cloudId, and the list to choose from.
    unsure = JiraConnector(client=HttpClient(f"{sandbox}/jira", auth=BearerAuth(token)))
    assert unsure.post_authorize({"access_token": token}) == {
        "cloud_id": "",
        "jira_sites": [{"id": CLOUD_ID, "url": f"{sandbox}/jira", "name": "acme"}, {"id": BETA_ID, "url": "https://beta.atlassian.net", "name": "beta"}],
    }


def test_the_gateway_refuses_an_unknown_cloud_id_and_the_site_refuses_a_bearer_token(sandbox):
    token = oauth_token(sandbox)
    stranger = JiraConnector(client=HttpClient(f"{sandbox}/jira", auth=BearerAuth(token)), config={"cloud_id": BETA_ID})
    with pytest.raises(ApiNotFound, match=BETA_ID):
        stranger.test_connection()
    # As at Atlassian, a 3LO token is no good on the site URL.
    site = requests.get(f"{sandbox}/jira/rest/api/3/myself", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert site.status_code == 401
    gateway = requests.get(f"{sandbox}/jira/ex/jira/{CLOUD_ID}/rest/api/3/myself", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert gateway.status_code == 200 and gateway.json()["self"].startswith(f"{sandbox}/jira/ex/jira/{CLOUD_ID}/rest/api/3/")


def test_without_a_known_site_or_with_an_api_token_on_the_gateway_the_error_says_what_to_do(sandbox):
    before = len(jira_log(sandbox))
    legacy = JiraConnector(client=HttpClient(f"{sandbox}/jira", auth=BearerAuth(oauth_token(sandbox))))
    with pytest.raises(ApiBadRequest, match="authorize Jira again") as unknown:
        legacy.test_connection()
    assert unknown.value.vendor_code == "jira_site_unknown"
    basic = JiraConnector(client=HttpClient("https://api.atlassian.com", auth=BasicAuth("a@acme.example", "t")))
    with pytest.raises(ApiBadRequest, match=r"https://<your-site>\.atlassian\.net") as gateway:
        basic.test_connection()
    assert gateway.value.vendor_code == "jira_site_url_required"
    assert len(jira_log(sandbox)) == before  # both refused before any call


def test_a_jira_style_429_from_the_token_endpoint_is_waited_out_not_stored_as_a_token(admin_client, sandbox, sleeps):
    """Atlassian's 429 body has no OAuth `error` member; read as a token it would replace the credential with garbage."""
    from integrations.services import oauth_refresh

    connect_jira(admin_client, sandbox)
    integration = Integration.objects.get()
    before = IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH).data
    requests.put(f"{sandbox}/_control/faults/jira", json={"rate_limit_next": 1, "retry_after": 1}, timeout=5).raise_for_status()
    after = oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)
    assert sleeps.waits == [1.0]
    assert after["access_token"].startswith("sbx-at-jira-") and after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"] and "errorMessages" not in after  # rotated, and nothing of the 429 kept
    assert build_connector(integration).test_connection().ok
