"""The OAuth code exchange and token refresh go through the SSRF guard's pinned transport, like every other vendor call.

Real servers (the sandbox's OAuth server, a bare listening socket) and a scripted getaddrinfo at the DNS boundary only.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Role
from integrations.errors import ApiHostError, UnsafeBaseUrl
from integrations.http import PinnedAdapter
from integrations.models import CredentialType, Integration, IntegrationCredential, IntegrationStatus
from integrations.oauth import _session
from integrations.registry import get_connector_class
from integrations.services import integration_update, oauth_refresh
from integrations.ssrf import url_guard
from tests.integrations.dns_outage import OutageDns
from tests.integrations.oauth_helpers import consent, local, oauth_connect, start_connect, token_calls

TOKEN_HOST = "login.vendor.test"


@pytest.fixture
def dns(monkeypatch) -> OutageDns:
    fake = OutageDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def admin_client(users_by_role) -> Client:
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    return client


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A bare listening socket on loopback: `accept()` raising BlockingIOError proves nobody ever connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def never_connected(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def oauth_data(integration: Integration) -> dict:
    return IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH).data


def token_server_at(integration: Integration, port: int) -> None:
    """Point the integration's OAuth server at TOKEN_HOST:port (validated by the service while private targets are allowed)."""
    integration_update(integration=integration, config={**integration.config, "oauth_base_url": f"http://{TOKEN_HOST}:{port}/demo"})


def test_oauth_sessions_use_the_pinned_transport_for_both_schemes():
    spec = get_connector_class("demo").manifest.oauth
    session = _session("demo", spec)
    for url in ("https://login.vendor.test/oauth/token", "http://login.vendor.test/oauth/token"):
        adapter = session.get_adapter(url)
        assert isinstance(adapter, PinnedAdapter) and adapter.guard is url_guard


def test_a_refresh_never_connects_to_a_token_host_that_resolves_to_a_refused_address(settings, dns, admin_client, sandbox, listener, sleeps):
    assert oauth_connect(admin_client, sandbox).status_code == 302
    integration = Integration.objects.get()
    dns.answer(TOKEN_HOST, ["127.0.0.1"])
    token_server_at(integration, listener.getsockname()[1])
    before = oauth_data(integration)
    lookups = dns.count(TOKEN_HOST)

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False  # a name resolving to loopback is now a refused address
    with pytest.raises(UnsafeBaseUrl, match=f"{TOKEN_HOST} resolves to a private"):
        oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)
    assert never_connected(listener)
    assert dns.count(TOKEN_HOST) == lookups + 1 and sleeps.waits == []  # vetted once, refused, not retried
    assert oauth_data(integration) == before  # the rotating refresh token was never sent anywhere
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.auth_failed_at is None and mail.outbox == []
    assert "private" in integration.last_error and "will be retried" not in integration.last_error


def test_a_refresh_through_a_vetted_name_reaches_the_token_endpoint(settings, dns, admin_client, sandbox, sleeps):
    assert oauth_connect(admin_client, sandbox).status_code == 302
    integration = Integration.objects.get()
    dns.answer(TOKEN_HOST, ["127.0.0.1"])
    token_server_at(integration, urlsplit(sandbox).port)
    before, calls, lookups = oauth_data(integration), token_calls(sandbox), dns.count(TOKEN_HOST)

    after = oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)

    assert after["access_token"] != before["access_token"] and after["refresh_token"] != before["refresh_token"]
    assert token_calls(sandbox) == calls + 1 and dns.count(TOKEN_HOST) == lookups + 1  # the pinned connection did the lookup


def test_the_code_exchange_never_connects_to_a_refused_address_and_works_through_a_vetted_one(settings, dns, admin_client, sandbox, listener):
    dns.answer(TOKEN_HOST, ["127.0.0.1"])
    authorize_url = start_connect(admin_client, sandbox)
    integration = Integration.objects.get()
    token_server_at(integration, listener.getsockname()[1])
    callback = local(consent(authorize_url))
    calls = token_calls(sandbox)

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    response = admin_client.get(callback)
    page = response.content.decode()
    assert response.status_code == 400 and f"{TOKEN_HOST} resolves to a private" in page and "Try again" not in page
    assert never_connected(listener) and token_calls(sandbox) == calls
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.DISCONNECTED and not integration.credentials.exists()

    # Allowed by the operator, the same name is vetted, pinned and used (Host and the URL keep the name).
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    authorize_url = start_connect(admin_client, sandbox, display_name="Demo 2")
    second = Integration.objects.get(display_name="Demo 2")
    token_server_at(second, urlsplit(sandbox).port)
    lookups = dns.count(TOKEN_HOST)
    response = admin_client.get(local(consent(authorize_url)))
    second.refresh_from_db()
    assert response.status_code == 302 and second.status == IntegrationStatus.CONNECTED
    assert oauth_data(second)["access_token"].startswith("sbx-at-demo-")
    assert token_calls(sandbox) == calls + 1 and dns.count(TOKEN_HOST) == lookups + 1


def test_a_token_host_that_does_not_resolve_is_retried_and_reported_as_transient(dns, admin_client, sandbox, sleeps):
    assert oauth_connect(admin_client, sandbox).status_code == 302
    integration = Integration.objects.get()
    dns.answer(TOKEN_HOST, ["127.0.0.1"])
    token_server_at(integration, urlsplit(sandbox).port)
    before, calls, lookups = oauth_data(integration), token_calls(sandbox), dns.count(TOKEN_HOST)

    dns.fail(TOKEN_HOST, socket.EAI_AGAIN)
    with pytest.raises(ApiHostError) as raised:
        oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)
    error = raised.value
    assert not isinstance(error, UnsafeBaseUrl) and error.retryable and error.vendor_code == "dns_resolution_failed"
    assert f"The token endpoint is unreachable: Cannot resolve the host name {TOKEN_HOST} (Temporary failure in name resolution)" in error.message
    assert error.message.endswith("The refresh will be retried.")
    assert dns.count(TOKEN_HOST) == lookups + 3 and len(sleeps.waits) == 2  # every attempt, with the usual backoff between them
    assert token_calls(sandbox) == calls and oauth_data(integration) == before
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.auth_failed_at is None and integration.error_count == 1
    assert mail.outbox == []

    dns.answer(TOKEN_HOST, ["127.0.0.1"])  # the resolver is back
    assert oauth_refresh(integration_id=integration.pk, force=True, sleep=sleeps)["access_token"] != before["access_token"]


def test_token_sessions_never_follow_a_redirect_with_the_client_secret(settings):
    """A token endpoint answering 307 would have the body (client_secret included) resent to the Location: the session stops instead."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import requests

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    hits: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            hits.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirecting(Elsewhere):
        def do_POST(self):  # noqa: N802
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{elsewhere.server_port}/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()

    token = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (elsewhere, token):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = _session("demo", get_connector_class("demo").manifest.oauth)
        with pytest.raises(requests.TooManyRedirects):
            session.post(f"http://127.0.0.1:{token.server_port}/oauth/token", data={"client_secret": "s3cret"}, withhold_token=True)
        assert hits == []
    finally:
        for server in (elsewhere, token):
            server.shutdown()
            server.server_close()
