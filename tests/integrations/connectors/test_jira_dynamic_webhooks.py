"""Jira Cloud over OAuth 2.0 registers dynamic webhooks (/rest/api/3/webhook, v3 spec): JWT-signed deliveries, 30-day life, refresh.

The admin endpoint stays for API-token connections; the sandbox refuses each where Atlassian does.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from integrations.connectors.base import WebhookRequest
from integrations.connectors.jira import JiraConnector
from integrations.errors import WebhookRejected
from integrations.http import BearerAuth, HttpClient
from tests.conftest import wait_for
from tests.integrations.connectors.test_jira import ADMIN, issue_token, make_connector, receiver  # noqa: F401 - receiver: a fixture
from tests.integrations.test_jira_oauth import CLOUD_ID

APP_SECRET = "bastion-demo-secret"  # the development OAuth client's secret, which the sandbox signs with by default
SCOPES = ["read:jira-work", "write:jira-work", "manage:jira-webhook", "offline_access"]


def oauth_connector(sandbox: str) -> JiraConnector:
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "jira", "scopes": SCOPES, "subject": ADMIN}, timeout=5).json()["token"]
    return JiraConnector(client=HttpClient(f"{sandbox}/jira", auth=BearerAuth(token), backoff_base=0.01), config={"cloud_id": CLOUD_ID})


def calls(sandbox: str, fragment: str) -> list[dict]:
    return [r for r in requests.get(f"{sandbox}/_control/requests", params={"vendor": "jira"}, timeout=5).json() if fragment in r["path"]]


def test_an_oauth_connection_registers_a_dynamic_webhook_that_expires_in_30_days(sandbox, receiver):  # noqa: F811
    url, _ = receiver
    connector = oauth_connector(sandbox)
    first = connector.register_webhook(url=url, secret="not-used-under-oauth")
    again = connector.register_webhook(url=url, secret="not-used-under-oauth")  # re-registering replaces, never piles up

    listed = connector.client.get("rest/api/3/webhook").json()
    assert [h["id"] for h in listed["values"]] == again["webhook_ids"] and first["id"] != again["id"]
    assert listed["values"][0]["jqlFilter"] == "project in (LAUNCH, MNA, OPS)" and "user_created" not in listed["values"][0]["events"]
    expiry = datetime.fromisoformat(again["expires_at"])
    assert timedelta(days=29, hours=23) < expiry - datetime.now(UTC) <= timedelta(days=30)
    assert calls(sandbox, "/rest/webhooks/1.0/webhook") == []  # the admin endpoint is never tried under OAuth
    assert all(c["path"].startswith(f"/jira/ex/jira/{CLOUD_ID}/") for c in calls(sandbox, "/rest/api/3/webhook"))

    refreshed = connector.refresh_webhooks(again["webhook_ids"])
    assert refreshed >= expiry


def test_the_sandbox_refuses_each_endpoint_where_atlassian_does(sandbox):
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "jira", "scopes": SCOPES}, timeout=5).json()["token"]
    admin_via_gateway = requests.get(f"{sandbox}/jira/ex/jira/{CLOUD_ID}/rest/webhooks/1.0/webhook", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert admin_via_gateway.status_code == 401 and admin_via_gateway.json() == {"code": 401, "message": "Unauthorized; scope does not match"}
    dynamic_with_api_token = requests.get(f"{sandbox}/jira/rest/api/3/webhook", auth=(ADMIN, issue_token(sandbox)), timeout=5)
    assert dynamic_with_api_token.status_code == 403
    assert dynamic_with_api_token.json() == {"errorMessages": ["Only Connect and OAuth 2.0 apps can use this operation."], "errors": {}}
    # An API-token connection keeps the admin endpoint.
    api_token_hook = make_connector(sandbox).register_webhook(url="https://bastion.example/api/webhooks/x", secret="s3cret-value")
    assert api_token_hook["url"] == "https://bastion.example/api/webhooks/x" and "expires_at" not in api_token_hook


def test_a_dynamic_webhook_delivery_carries_a_jwt_under_the_apps_secret(sandbox, receiver):  # noqa: F811
    url, received = receiver
    connector = oauth_connector(sandbox)
    connector.register_webhook(url=url, secret="unused")
    key = make_connector(sandbox).perform("create_issue", {"project_key": "OPS", "summary": "Watch me"}, idempotency_key="dyn").data["key"]
    assert requests.post(f"{sandbox}/jira/_sandbox/transition", json={"issue_key": key, "status": "Done"}, timeout=5).json()["webhooks"] >= 1
    wait_for(lambda: any(b'"jira:issue_updated"' in b for _, b in received), timeout=10, message="the dynamic webhook delivery")
    headers, body = next((h, b) for h, b in received if b'"jira:issue_updated"' in b)
    assert "X-Hub-Signature" not in headers and headers["Authorization"].startswith("Bearer ")

    request = WebhookRequest("POST", url, headers, body, datetime.now(UTC))
    JiraConnector.verify_webhook(request, secret=APP_SECRET)
    assert any(e.action == "status" and e.record["status"] == "Done" for e in JiraConnector.parse_webhook(request))
    with pytest.raises(WebhookRejected) as wrong:
        JiraConnector.verify_webhook(request, secret="another-apps-secret")
    assert wrong.value.status == 401
    later = WebhookRequest("POST", url, headers, body, datetime.now(UTC) + timedelta(minutes=10))
    with pytest.raises(WebhookRejected) as expired:
        JiraConnector.verify_webhook(later, secret=APP_SECRET)
    assert expired.value.status == 401 and "exp" in expired.value.message


@pytest.mark.django_db
def test_registration_is_stored_refreshed_before_expiry_and_deliveries_verified_with_the_client_secret(
    sandbox, organization, settings, client, django_capture_on_commit_callbacks
):
    from integrations.models import CredentialType, IntegrationStatus
    from integrations.services import integration_connect, integration_webhook_register, integration_webhooks_refresh
    from sync.models import WebhookDelivery

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "jira", "scopes": SCOPES, "subject": ADMIN}, timeout=5).json()["token"]
    integration = integration_connect(
        organization=organization,
        connector_key="jira",
        credential_type=CredentialType.OAUTH,
        credentials={"access_token": token, "refresh_token": "", "token_type": "Bearer"},
        base_url=f"{sandbox}/jira",
        config={"cloud_id": CLOUD_ID, "project_keys": "OPS"},
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    assert integration.status == IntegrationStatus.CONNECTED
    integration_webhook_register(integration=integration)
    integration.refresh_from_db()
    registration = integration.config["webhook_registration"]
    expiry = datetime.fromisoformat(registration["expires_at"])

    assert integration_webhooks_refresh(now=expiry - timedelta(days=8)) == 0  # not due yet: nothing sent
    before = len(calls(sandbox, "/rest/api/3/webhook/refresh"))
    assert integration_webhooks_refresh(now=expiry - timedelta(days=6)) == 1
    assert len(calls(sandbox, "/rest/api/3/webhook/refresh")) == before + 1
    integration.refresh_from_db()
    assert datetime.fromisoformat(integration.config["webhook_registration"]["expires_at"]) >= expiry

    from joserfc import jwt
    from joserfc.jwk import OctKey

    body = json.dumps({"timestamp": int(time.time() * 1000), "webhookEvent": "jira:issue_deleted", "issue": {"id": "10001"}}).encode()
    signed = jwt.encode({"alg": "HS256"}, {"iss": "bastion-demo", "exp": int(time.time()) + 120}, OctKey.import_key(APP_SECRET.encode()))
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client.post(
            f"/api/webhooks/{integration.pk}",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {signed}",
            HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER="dyn-1",
        )
    assert accepted.status_code == 202, accepted.content
    assert WebhookDelivery.objects.get(integration=integration).event_types == ["jira:issue_deleted"]
    forged = jwt.encode({"alg": "HS256"}, {"iss": "x", "exp": int(time.time()) + 120}, OctKey.import_key(b"not-the-app-secret-at-all"))
    refused = client.post(f"/api/webhooks/{integration.pk}", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert refused.status_code == 401 and WebhookDelivery.objects.count() == 1
