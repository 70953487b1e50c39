"""Bastion registers its own signed webhook at vendors that allow it (Jira admin webhooks)."""

import requests

from accounts.models import AuditEvent, Role
from integrations.models import CredentialType
from integrations.services import integration_connect


def connect_jira(organization, sandbox):
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "jira", "subject": "jira.admin@acme.example"}, timeout=5).json()["token"]
    integration = integration_connect(
        organization=organization, connector_key="jira", credentials={"email": "jira.admin@acme.example", "api_token": token}, base_url=f"{sandbox}/jira"
    )
    return integration, token


def registered_hooks(sandbox, token):
    response = requests.get(f"{sandbox}/jira/rest/webhooks/1.0/webhook", auth=("jira.admin@acme.example", token), timeout=5)
    return response.json()


def test_admin_registers_the_jira_webhook_once_with_a_fresh_secret(api_for, users_by_role, organization, sandbox, settings):
    settings.BASTION_PUBLIC_URL = "https://bastion.example"
    integration, token = connect_jira(organization, sandbox)
    admin = api_for(users_by_role[Role.ADMIN])
    first = admin.post(f"/api/integrations/{integration.pk}/webhook")
    assert first.status_code == 200
    assert first.json()["url"] == f"https://bastion.example/api/webhooks/{integration.pk}"
    secret_before = integration.credentials.get(credential_type=CredentialType.WEBHOOK_SECRET).data["secret"]
    # Registering again replaces the hook (new secret), never adds a second one.
    assert admin.post(f"/api/integrations/{integration.pk}/webhook").status_code == 200
    hooks = registered_hooks(sandbox, token)
    assert [h["url"] for h in hooks] == [f"https://bastion.example/api/webhooks/{integration.pk}"]
    assert integration.credentials.get(credential_type=CredentialType.WEBHOOK_SECRET).data["secret"] != secret_before
    assert AuditEvent.objects.filter(action="integration.webhook_register", target_id=str(integration.pk)).count() == 2
    assert "secret" not in first.json()


def test_editors_cannot_register_and_other_vendors_say_why(api_for, users_by_role, organization, sandbox):
    integration, token = connect_jira(organization, sandbox)
    assert api_for(users_by_role[Role.EDITOR]).post(f"/api/integrations/{integration.pk}/webhook").status_code == 403
    assert registered_hooks(sandbox, token) == []
    okta_token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "okta"}, timeout=5).json()["token"]
    okta = integration_connect(organization=organization, connector_key="okta", credentials={"api_token": okta_token}, base_url=f"{sandbox}/okta")
    response = api_for(users_by_role[Role.ADMIN]).post(f"/api/integrations/{okta.pk}/webhook")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "webhook_registration_unsupported"


def test_a_vendor_that_issues_its_own_signing_secret_has_it_stored_and_deliveries_verify(api_for, users_by_role, organization, sandbox, settings):
    """PagerDuty makes the secret itself and shows it once, in the registration answer: Bastion keeps that one."""
    from datetime import UTC, datetime

    from integrations.connectors.base import WebhookRequest
    from integrations.connectors.pagerduty import PagerDutyConnector
    from tests.integrations.connectors.test_pagerduty import Receiver

    receiver = Receiver()
    try:
        settings.BASTION_PUBLIC_URL = receiver.url.rsplit("/hooks/", 1)[0]
        token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "pagerduty", "subject": "yuki.tanaka@acme.example"}, timeout=5).json()["token"]
        integration = integration_connect(
            organization=organization,
            connector_key="pagerduty",
            credentials={"api_key": token},
            config={"from_email": "yuki.tanaka@acme.example"},
            base_url=f"{sandbox}/pagerduty",
        )
        response = api_for(users_by_role[Role.ADMIN]).post(f"/api/integrations/{integration.pk}/webhook")
        assert response.status_code == 200, response.content
        assert "secret" not in response.json()
        stored = integration.credentials.get(credential_type=CredentialType.WEBHOOK_SECRET).data["secret"]
        incidents = requests.get(
            f"{sandbox}/pagerduty/incidents",
            params={"statuses[]": "triggered", "date_range": "all"},
            headers={"Authorization": f"Token token={token}"},
            timeout=5,
        ).json()["incidents"]
        requests.post(f"{sandbox}/pagerduty/_sandbox/incidents/{incidents[0]['id']}/status", json={"status": "acknowledged"}, timeout=10)
        delivered = receiver.requests[-1]
        assert delivered["path"] == f"/api/webhooks/{integration.pk}"
        PagerDutyConnector.verify_webhook(WebhookRequest("POST", receiver.url, delivered["headers"], delivered["body"], datetime.now(UTC)), secret=stored)
    finally:
        receiver.server.shutdown()
