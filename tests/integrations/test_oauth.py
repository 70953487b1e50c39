"""OAuth 2.0: authorization code + PKCE with a session-bound state, encrypted tokens, single-flight refresh, failure and reconnect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, Role
from integrations.errors import ApiHostError, AuthRefreshFailed
from integrations.models import CredentialType, Integration, IntegrationCredential, IntegrationStatus
from integrations.services import build_connector, integration_config_update
from tests.integrations.oauth_helpers import consent, local, oauth_connect, start_connect, token_calls

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin_client(users_by_role) -> Client:
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    return client


@pytest.fixture(autouse=True)
def _fast_refresh_retries(monkeypatch):
    monkeypatch.setattr("integrations.oauth.REFRESH_RETRY_WAITS", (0.0, 0.0))


def connected(admin_client, sandbox) -> Integration:
    response = oauth_connect(admin_client, sandbox)
    assert response.status_code == 302
    integration = Integration.objects.get()
    assert response["Location"] == f"/integrations/{integration.pk}/setup/"
    return integration


def oauth_data(integration: Integration) -> dict:
    return IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH).data


def expire_soon(integration: Integration, minutes: int = 2) -> None:
    """Make Bastion believe the access token expires in `minutes` (inside the 5-minute early-refresh window)."""
    credential = IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH)
    when = timezone.now() + timedelta(minutes=minutes)
    credential.data = {**credential.data, "expires_at": when.isoformat()}
    credential.expires_at = when
    credential.save()


def test_connect_through_the_real_redirect_stores_encrypted_tokens(admin_client, sandbox):
    authorize_url = start_connect(admin_client, sandbox)
    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(f"{sandbox}/demo/oauth/authorize?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["scope"] == ["people:read projects:read people:write"] and query["client_id"] == ["bastion-demo"]
    assert len(query["state"][0]) >= 32
    response = admin_client.get(local(consent(authorize_url)))
    integration = Integration.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/integrations/{integration.pk}/setup/"
    assert integration.status == IntegrationStatus.CONNECTED and integration.external_account_id == "demo-acct-0001"
    data = oauth_data(integration)
    assert data["access_token"].startswith("sbx-at-demo-") and data["refresh_token"].startswith("sbx-rt-demo-")
    assert data["scope"] == "people:read projects:read people:write" and data["expires_at"]
    credential = IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH)
    assert credential.scopes == ["people:read", "projects:read", "people:write"] and credential.expires_at > timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM integrations_integrationcredential WHERE id = %s", [credential.pk])
        stored = cursor.fetchone()[0]
    assert data["access_token"] not in stored and data["refresh_token"] not in stored
    audit = json.dumps(list(AuditEvent.objects.values("action", "changes")))
    assert data["access_token"] not in audit and data["refresh_token"] not in audit and "credential.oauth_authorized" in audit


def test_scopes_and_purposes_are_shown_before_consent(admin_client, sandbox):
    page = admin_client.get("/integrations/connect/demo/").content.decode()
    for scope, purpose in [("people:read", "pre-fill stakeholders"), ("projects:read", "choose where Bastion files work"), ("people:write", "Add people")]:
        assert scope in page and purpose in page


def test_state_from_another_session_is_refused(admin_client, sandbox, users_by_role):
    callback = consent(start_connect(admin_client, sandbox))
    intruder = Client()
    intruder.force_login(users_by_role[Role.OWNER])
    response = intruder.get(local(callback))
    assert response.status_code == 400 and b"does not match a connection you started" in response.content
    assert not IntegrationCredential.objects.exists()
    assert Integration.objects.get().status == IntegrationStatus.DISCONNECTED


def test_a_callback_cannot_be_replayed(admin_client, sandbox):
    callback = local(consent(start_connect(admin_client, sandbox)))
    assert admin_client.get(callback).status_code == 302
    assert admin_client.get(callback).status_code == 400


def test_denied_consent_stores_nothing(admin_client, sandbox):
    response = admin_client.get(local(consent(start_connect(admin_client, sandbox), decision="deny")))
    assert response.status_code == 400 and b"access_denied" in response.content
    assert not IntegrationCredential.objects.exists()


def test_token_is_refreshed_before_it_expires_and_rotation_is_saved(admin_client, sandbox):
    integration = connected(admin_client, sandbox)
    before = oauth_data(integration)
    expire_soon(integration)
    calls = token_calls(sandbox)
    assert build_connector(integration).test_connection().ok
    after = oauth_data(integration)
    assert token_calls(sandbox) == calls + 1
    assert after["access_token"] != before["access_token"] and after["refresh_token"] != before["refresh_token"]
    # The old refresh token is spent at the vendor: using it again would be invalid_grant.
    spent = requests.post(
        f"{sandbox}/demo/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": before["refresh_token"], "client_id": "bastion-demo", "client_secret": "bastion-demo-secret"},
        timeout=5,
    )
    assert spent.json()["error"] == "invalid_grant"
    assert build_connector(integration).test_connection().ok
    assert token_calls(sandbox) == calls + 2  # ours plus the spent-token probe above: a fresh token needs no refresh


def test_a_401_refreshes_once_and_retries(admin_client, sandbox):
    integration = connected(admin_client, sandbox)
    credential = IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH)
    credential.data = {**credential.data, "access_token": "sbx-at-demo-revoked-by-vendor"}
    credential.save()
    calls = token_calls(sandbox)
    assert build_connector(integration).test_connection().ok
    assert token_calls(sandbox) == calls + 1
    statuses = list(integration.calls.order_by("created_at").values_list("path", "status"))
    assert statuses[-2:] == [("/demo/api/me", 401), ("/demo/api/me", 200)]


@pytest.mark.django_db(transaction=True)
def test_parallel_worker_processes_refresh_exactly_once(users_by_role, sandbox):
    admin = Client()
    admin.force_login(users_by_role[Role.ADMIN])
    integration = connected(admin, sandbox)
    expire_soon(integration)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "PYTHONPATH": str(ROOT),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "tests/integrations/refresh_worker.py"), str(integration.pk)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        calls = token_calls(sandbox)
        for worker in workers:  # release them together
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=60)
            assert worker.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert token_calls(sandbox) == calls + 1
    assert all(r["ok"] for r in results) and len({r["token"] for r in results}) == 1
    assert build_connector(Integration.objects.get(pk=integration.pk)).test_connection().ok  # the rotated refresh token is intact
    expire_soon(integration)
    assert build_connector(Integration.objects.get(pk=integration.pk)).test_connection().ok
    assert token_calls(sandbox) == calls + 2


def test_invalid_grant_marks_auth_failed_alerts_admins_keeps_settings_and_reconnect_restores(admin_client, sandbox, users_by_role):
    integration = connected(admin_client, sandbox)
    integration_config_update(
        integration=integration, config={"project": "OPS"}, data_sources=[{"entity_type": "people", "field_mapping": {"email": "email"}, "is_enabled": True}]
    )
    requests.put(f"{sandbox}/_control/faults/demo", json={"revoked": True}, timeout=5).raise_for_status()
    expire_soon(integration)
    with pytest.raises(AuthRefreshFailed):
        build_connector(integration).test_connection()
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.AUTH_FAILED and "invalid_grant" in integration.last_error and integration.auth_failed_at
    assert len(mail.outbox) == 1
    alert = mail.outbox[0]
    assert sorted(alert.to) == sorted([users_by_role[Role.ADMIN].email, users_by_role[Role.OWNER].email])
    assert "needs reconnecting" in alert.subject and f"/integrations/{integration.pk}/" in alert.body
    assert "sbx-" not in alert.body
    banner = admin_client.get("/integrations/").content.decode()
    assert "Demo needs reconnecting" in banner
    # A second failure does not alert again.
    with pytest.raises(AuthRefreshFailed):
        build_connector(integration).test_connection()
    assert len(mail.outbox) == 1
    # Everything the admin configured is still there.
    integration.refresh_from_db()
    assert integration.config["project"] == "OPS"
    assert integration.data_sources.get(entity_type="people").field_mapping == {"email": "email"}
    # Reconnect: OAuth again from the detail page.
    requests.put(f"{sandbox}/_control/faults/demo", json={"revoked": False}, timeout=5).raise_for_status()
    assert b"Sign in with Demo Workspace again" in admin_client.get(f"/integrations/{integration.pk}/reconnect/").content
    start = admin_client.post(f"/integrations/{integration.pk}/authorize/")
    done = admin_client.get(local(consent(start["Location"])))
    assert done.status_code == 302 and done["Location"] == f"/integrations/{integration.pk}/"
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.auth_failed_at is None
    assert integration.config["project"] == "OPS" and integration.data_sources.get(entity_type="people").field_mapping == {"email": "email"}
    assert Integration.objects.count() == 1
    assert AuditEvent.objects.filter(action="integration.recovered", target_id=str(integration.pk)).count() == 1
    assert "needs reconnecting" not in admin_client.get("/integrations/").content.decode()


def test_transient_token_endpoint_failures_are_retried_not_fatal(admin_client, sandbox):
    integration = connected(admin_client, sandbox)
    expire_soon(integration)
    requests.put(f"{sandbox}/_control/faults/demo", json={"error_next": 2, "error_status": 503}, timeout=5).raise_for_status()
    assert build_connector(integration).test_connection().ok  # two 503s from the token endpoint, then success
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED
    # A token endpoint that stays down: the call fails transiently, the integration is NOT marked auth_failed.
    expire_soon(integration, minutes=-1)
    requests.put(f"{sandbox}/_control/faults/demo", json={"error_next": 10, "error_status": 503}, timeout=5).raise_for_status()
    with pytest.raises(ApiHostError):
        build_connector(integration).test_connection()
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.error_count == 1
    assert mail.outbox == []
    requests.put(f"{sandbox}/_control/faults/demo", json={"error_next": 0}, timeout=5).raise_for_status()
    assert build_connector(integration).test_connection().ok


def test_a_rate_limited_token_endpoint_is_retried(admin_client, sandbox):
    integration = connected(admin_client, sandbox)
    expire_soon(integration)
    requests.put(f"{sandbox}/_control/faults/demo", json={"rate_limit_next": 1, "retry_after": 1}, timeout=5).raise_for_status()
    calls = token_calls(sandbox)
    assert build_connector(integration).test_connection().ok
    assert token_calls(sandbox) == calls + 2  # 429 first, then the refresh
    assert Integration.objects.get(pk=integration.pk).status == IntegrationStatus.CONNECTED


def test_a_token_still_valid_is_used_when_the_early_refresh_fails_transiently(admin_client, sandbox):
    integration = connected(admin_client, sandbox)
    expire_soon(integration, minutes=3)
    requests.put(f"{sandbox}/_control/faults/demo", json={"error_next": 3, "error_status": 502}, timeout=5).raise_for_status()
    assert build_connector(integration).test_connection().ok


def test_token_response_extras_are_kept_and_a_non_rotating_refresh_keeps_the_refresh_token():
    from integrations.oauth import token_to_credential

    first, expires_at, scopes = token_to_credential(
        {"access_token": "a1", "refresh_token": "r1", "expires_in": 7200, "scope": "api refresh_token", "instance_url": "https://acme.my.salesforce.com"}
    )
    assert first["instance_url"] == "https://acme.my.salesforce.com" and scopes == ["api", "refresh_token"]
    assert expires_at > timezone.now() + timedelta(minutes=119)
    refreshed, _, _ = token_to_credential({"access_token": "a2", "token_type": "Bearer"}, previous=first)
    assert refreshed["access_token"] == "a2" and refreshed["refresh_token"] == "r1"
    assert refreshed["instance_url"] == "https://acme.my.salesforce.com" and refreshed["scope"] == "api refresh_token"


def test_oauth_client_comes_from_settings_with_development_defaults(settings):
    from common.errors import ApplicationError
    from integrations.oauth import oauth_client

    assert oauth_client("demo").client_id == "bastion-demo"
    settings.BASTION_OAUTH_CLIENTS = {"demo": {"client_id": "prod-id", "client_secret": "prod-secret"}}
    assert oauth_client("demo").client_secret == "prod-secret"
    settings.BASTION_OAUTH_CLIENTS = {}
    settings.IS_PRODUCTION = True
    with pytest.raises(ApplicationError, match="BASTION_OAUTH_CLIENTS"):
        oauth_client("demo")


def test_without_redis_the_refresh_serialises_on_the_credential_row(admin_client, sandbox, settings):
    """The embedded demo runs without Redis: the refresh lock falls back to SELECT … FOR UPDATE on the credential."""
    integration = connected(admin_client, sandbox)
    settings.REDIS_URL = ""
    expire_soon(integration)
    calls = token_calls(sandbox)
    connector = build_connector(integration)
    assert connector.client.limiter is None  # no shared limiter without Redis
    assert connector.test_connection().ok
    assert token_calls(sandbox) == calls + 1


def test_a_401_whose_refresh_is_refused_marks_auth_failed(admin_client, sandbox):
    """The vendor revokes the grant: the 401 triggers one refresh, invalid_grant ends it, the test reports an auth failure."""
    from integrations.services import integration_test

    integration = connected(admin_client, sandbox)
    requests.put(f"{sandbox}/_control/faults/demo", json={"revoked": True}, timeout=5).raise_for_status()
    calls = token_calls(sandbox)
    result = integration_test(integration=integration)
    assert result.ok is False and result.detail["category"] == "auth"
    assert token_calls(sandbox) == calls + 1
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.AUTH_FAILED and len(mail.outbox) == 1
    assert list(integration.calls.order_by("created_at").values_list("status", flat=True))[-1] == 401


# ---- token endpoint 429 / 503 with Retry-After ------------------------------------------------------------------


def faults(sandbox: str, **knobs) -> None:
    requests.put(f"{sandbox}/_control/faults/demo", json=knobs, timeout=5).raise_for_status()


def test_a_rate_limited_refresh_waits_the_retry_after_it_names(admin_client, sandbox, sleeps):
    from integrations.services import oauth_refresh

    integration = connected(admin_client, sandbox)
    before = oauth_data(integration)
    faults(sandbox, rate_limit_next=2, retry_after=2)
    calls = token_calls(sandbox)
    after = oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)
    assert sleeps.waits == [2.0, 2.0]  # the vendor's Retry-After, not our own backoff
    assert token_calls(sandbox) == calls + 3
    assert after["access_token"] != before["access_token"] and oauth_data(integration)["access_token"] == after["access_token"]
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.error_count == 0


def test_a_retry_after_beyond_the_wait_budget_fails_now_and_leaves_the_integration_connected(admin_client, sandbox, sleeps):
    from integrations.errors import ApiRateLimited
    from integrations.services import oauth_refresh

    integration = connected(admin_client, sandbox)
    before = oauth_data(integration)
    faults(sandbox, rate_limit_next=1, retry_after=120)
    calls = token_calls(sandbox)
    with pytest.raises(ApiRateLimited) as raised:
        oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)
    assert raised.value.retry_after == 120 and "asked to wait 120 s" in str(raised.value)
    assert sleeps.waits == [] and token_calls(sandbox) == calls + 1  # no worker held for two minutes, no second try
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.auth_failed_at is None
    assert integration.error_count == 1 and "rate limiting" in integration.last_error
    assert mail.outbox == [] and oauth_data(integration) == before  # the rotating refresh token was not spent
    # A connector call while the token is still valid for a few minutes uses it; the refresh is tried again later.
    expire_soon(integration, minutes=3)
    faults(sandbox, rate_limit_next=1, retry_after=120)
    assert build_connector(integration).test_connection().ok
    assert oauth_data(integration)["refresh_token"] == before["refresh_token"]
    # Once the vendor lets us, the same refresh token works.
    after = oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)
    assert after["access_token"] != before["access_token"] and sleeps.waits == []


def test_a_503_with_retry_after_is_waited_out_then_reported_as_transient(admin_client, sandbox, sleeps):
    from integrations.services import oauth_refresh

    integration = connected(admin_client, sandbox)
    faults(sandbox, error_next=1, error_status=503, error_retry_after=3)
    calls = token_calls(sandbox)
    oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)
    assert sleeps.waits == [3.0] and token_calls(sandbox) == calls + 2
    # Still unavailable after the bounded attempts: a transient error carrying the wait, never auth_failed.
    faults(sandbox, error_next=5, error_status=503, error_retry_after=4)
    with pytest.raises(ApiHostError) as raised:
        oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)
    assert raised.value.retry_after == 4 and raised.value.status == 503
    assert sleeps.waits == [3.0, 4.0, 4.0] and token_calls(sandbox) == calls + 5
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.auth_failed_at is None and mail.outbox == []


def test_the_code_exchange_honours_retry_after_and_fails_clearly_when_it_is_too_long(admin_client, sandbox):
    # A short Retry-After is waited out: the person lands connected.
    callback = local(consent(start_connect(admin_client, sandbox)))
    faults(sandbox, rate_limit_next=1, retry_after=1)
    calls = token_calls(sandbox)
    response = admin_client.get(callback)
    integration = Integration.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/integrations/{integration.pk}/setup/"
    assert token_calls(sandbox) == calls + 2 and integration.status == IntegrationStatus.CONNECTED
    # A long one is not: a clear message, nothing stored, the integration untouched.
    callback = local(consent(start_connect(admin_client, sandbox, display_name="Demo 2")))
    faults(sandbox, rate_limit_next=1, retry_after=600)
    calls = token_calls(sandbox)
    response = admin_client.get(callback)
    page = response.content.decode()
    assert response.status_code == 400 and "rate limiting Bastion; it asked to wait 600 s" in page and "Start the connection again" in page
    assert token_calls(sandbox) == calls + 1
    second = Integration.objects.get(display_name="Demo 2")
    assert second.status == IntegrationStatus.DISCONNECTED and not second.credentials.exists()
