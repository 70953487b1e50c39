"""Credential types: API keys, service accounts (LDAP bind DN + password, Google key JSON), per-integration webhook secrets."""

from __future__ import annotations

import json

import pytest

from accounts.models import AuditEvent
from common.errors import ApplicationError
from integrations.models import CredentialType, Integration, IntegrationCredential
from integrations.services import build_connector, credentials_validate, integration_connect, webhook_secret_generate, webhook_secret_reveal

GOOGLE_KEY = {
    "type": "service_account",
    "project_id": "acme",
    "private_key_id": "abc",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    "client_email": "bastion@acme.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
}
LDAP = {
    "bind_dn": "CN=svc-bastion,OU=Service,DC=corp,DC=example",
    "bind_password": "S3rvice-pass!",
    "server_url": "ldap://127.0.0.1:389",
    "base_dn": "DC=corp,DC=example",
}


def manifest(key: str):
    from integrations.registry import get_connector_class

    return get_connector_class(key).manifest


def test_ldap_service_account_needs_bind_dn_and_password():
    with pytest.raises(ApplicationError) as raised:
        credentials_validate(manifest("ldap"), CredentialType.SERVICE_ACCOUNT, {"bind_dn": "CN=x", "server_url": "ldap://h", "base_dn": "DC=x"})
    assert raised.value.fields == {"credentials.bind_password": ["This field is required."]}
    assert (
        credentials_validate(manifest("ldap"), CredentialType.SERVICE_ACCOUNT, {**LDAP, "bind_dn": "  " + LDAP["bind_dn"] + " "})["bind_dn"] == LDAP["bind_dn"]
    )
    with pytest.raises(ApplicationError):  # LDAP does not take an API key
        credentials_validate(manifest("ldap"), CredentialType.API_KEY, LDAP)


def test_google_service_account_key_json_is_parsed_and_checked():
    parsed = credentials_validate(manifest("google_calendar"), CredentialType.SERVICE_ACCOUNT, {"service_account_key": json.dumps(GOOGLE_KEY)})
    assert parsed["service_account_key"]["client_email"] == GOOGLE_KEY["client_email"]
    with pytest.raises(ApplicationError, match="not valid JSON"):
        credentials_validate(manifest("google_calendar"), CredentialType.SERVICE_ACCOUNT, {"service_account_key": "{not json"})
    with pytest.raises(ApplicationError) as raised:
        credentials_validate(manifest("google_calendar"), CredentialType.SERVICE_ACCOUNT, {"service_account_key": json.dumps({"type": "authorized_user"})})
    assert "not a service-account key" in raised.value.message and "BEGIN PRIVATE KEY" not in raised.value.message


def test_service_account_is_stored_encrypted_and_reaches_the_connector(organization):
    integration = integration_connect(
        organization=organization, connector_key="ldap", credentials=LDAP, credential_type=CredentialType.SERVICE_ACCOUNT, test=False
    )
    credential = IntegrationCredential.objects.get(integration=integration)
    assert credential.credential_type == "service_account" and credential.data == LDAP
    raw = IntegrationCredential.objects.filter(pk=credential.pk).values_list("data", flat=True).get()
    assert "S3rvice-pass!" not in raw and "svc-bastion" not in raw
    assert build_connector(integration).credentials["bind_password"] == "S3rvice-pass!"
    changes = json.dumps(list(AuditEvent.objects.values("changes")))
    assert "S3rvice-pass!" not in changes


def test_api_key_for_the_demo_connector_is_applied_as_a_bearer_token(organization, sandbox, demo_token):
    integration = integration_connect(organization=organization, connector_key="demo", credentials={"api_key": demo_token}, base_url=f"{sandbox}/demo")
    assert integration.status == "connected"
    assert build_connector(integration).test_connection().identity == "sandbox-admin @ Demo Workspace"


def test_webhook_secret_is_generated_on_connect_revealed_once_and_rotatable(organization, sandbox, demo_token):
    integration = integration_connect(
        organization=organization, connector_key="demo", credentials={"api_key": demo_token}, base_url=f"{sandbox}/demo", test=False
    )
    first = webhook_secret_reveal(integration=integration)
    assert first and len(first) >= 40
    assert webhook_secret_reveal(integration=integration) is None
    assert build_connector(integration).credentials["webhook_secret"] == first
    rotated = webhook_secret_generate(integration=integration)
    assert rotated != first and webhook_secret_reveal(integration=integration) == rotated
    assert webhook_secret_reveal(integration=integration) is None
    assert json.dumps(list(AuditEvent.objects.values("changes"))).count(first) == 0
    assert AuditEvent.objects.filter(action="webhook_secret.reveal").count() == 2


def test_connectors_without_webhooks_get_no_secret(organization):
    integration = integration_connect(
        organization=organization, connector_key="ldap", credentials=LDAP, credential_type=CredentialType.SERVICE_ACCOUNT, test=False
    )
    assert not Integration.objects.get(pk=integration.pk).credentials.filter(credential_type=CredentialType.WEBHOOK_SECRET).exists()
