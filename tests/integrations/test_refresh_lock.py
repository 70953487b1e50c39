"""The Redis refresh lock against the real Redis: its TTL covers the slowest refresh, it is renewed while a refresh runs
longer, and waiters give up after a bounded wait, so two workers never spend one rotating refresh token."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from integrations import oauth, services
from integrations.errors import ApiHostError
from integrations.models import CredentialType, Integration, IntegrationCredential, IntegrationStatus
from integrations.ratelimit import redis_client
from integrations.services import credential_store
from tests.conftest import wait_for


class TokenServer:
    """A real OAuth token endpoint on loopback that rotates tokens and holds each answer until `release` is set."""

    def __init__(self) -> None:
        self.refresh_tokens: list[str] = []
        self.release = threading.Event()
        holder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                holder.refresh_tokens.append(dict(pair.split("=", 1) for pair in body.split("&")).get("refresh_token", ""))
                number = len(holder.refresh_tokens)
                holder.release.wait(30)
                answer = json.dumps({"access_token": f"at-{number}", "refresh_token": f"rt-{number}", "token_type": "Bearer", "expires_in": 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer()
    yield server
    server.stop()


@pytest.fixture
def redis_db():
    assert settings.REDIS_URL, "these tests need the real Redis (REDIS_URL)"
    return redis_client(settings.REDIS_URL)


def expiring_integration(organization, token_server: TokenServer) -> Integration:
    """A demo integration whose access token expires in two minutes and whose OAuth server is `token_server`."""
    integration = Integration.objects.create(
        organization=organization,
        connector_key="demo",
        display_name="Demo",
        base_url=f"{token_server.url}/demo",
        config={"oauth_base_url": f"{token_server.url}/demo"},
        status=IntegrationStatus.CONNECTED,
    )
    expires_at = timezone.now() + timedelta(minutes=2)
    credential_store(
        integration=integration,
        credential_type=CredentialType.OAUTH,
        data={"access_token": "at-0", "refresh_token": "rt-0", "token_type": "Bearer", "expires_at": expires_at.isoformat()},
        expires_at=expires_at,
    )
    return integration


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `target` as another worker would (its own database connection); the outcome lands in the returned dict."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except Exception as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_the_lock_ttl_covers_the_slowest_refresh(redis_db):
    """Every wait the budget allows plus each attempt's connect and read timeouts fit in the lock's TTL."""
    slowest = oauth.TOKEN_WAIT_BUDGET + oauth.TOKEN_ATTEMPTS * (oauth.TOKEN_TIMEOUT[0] + oauth.TOKEN_TIMEOUT[1])
    integration_id = uuid.uuid4()
    with oauth.refresh_lock(integration_id):
        ttl = redis_db.pttl(oauth.refresh_lock_key(integration_id)) / 1000
    assert slowest == 85.0 and oauth.REFRESH_LOCK_TIMEOUT >= slowest
    # Read back from Redis a moment after it was set: the lock carries that TTL (less the moment, never more).
    assert oauth.REFRESH_LOCK_TIMEOUT - 5 <= ttl <= oauth.REFRESH_LOCK_TIMEOUT
    assert oauth.REFRESH_LOCK_WAIT >= slowest  # a waiter outwaits a healthy refresh
    assert redis_db.exists(oauth.refresh_lock_key(integration_id)) == 0  # released


@pytest.mark.django_db(transaction=True)
def test_a_refresh_that_outlasts_the_ttl_keeps_the_lock_and_the_second_worker_waits_for_its_tokens(monkeypatch, organization, token_server, redis_db):
    # A short TTL so the holder visibly outlives it, long enough that a 2-second stall of a loaded CI machine between renewals
    # (every third of it) cannot let it lapse.
    monkeypatch.setattr(oauth, "REFRESH_LOCK_TIMEOUT", 3.0)
    integration = expiring_integration(organization, token_server)
    key = oauth.refresh_lock_key(integration.pk)

    first, first_outcome = in_thread(lambda: services.oauth_refresh(integration_id=integration.pk, sleep=lambda _s: None))
    wait_for(lambda: token_server.refresh_tokens, timeout=10, message="the first refresh to reach the token endpoint")
    held_since = time.monotonic()
    second, second_outcome = in_thread(lambda: services.oauth_refresh(integration_id=integration.pk, sleep=lambda _s: None))
    # Three TTLs later the first refresh is still waiting for its answer: the lock is still held and the second has not refreshed.
    wait_for(lambda: time.monotonic() - held_since > 3 * oauth.REFRESH_LOCK_TIMEOUT, timeout=20, message="three lock TTLs to pass")
    assert redis_db.exists(key) == 1 and 0 < redis_db.pttl(key) <= 3000
    assert token_server.refresh_tokens == ["rt-0"] and first.is_alive() and second.is_alive()

    token_server.release.set()
    first.join(30)
    second.join(30)
    assert "error" not in first_outcome and "error" not in second_outcome, (first_outcome, second_outcome)
    assert first_outcome["result"]["access_token"] == second_outcome["result"]["access_token"] == "at-1"
    assert token_server.refresh_tokens == ["rt-0"]  # one refresh; the rotated token was spent once
    stored = IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH).data
    assert stored["refresh_token"] == "rt-1" and redis_db.exists(key) == 0


@pytest.mark.django_db(transaction=True)
def test_a_waiter_gives_up_after_a_bounded_wait_without_calling_the_token_endpoint(monkeypatch, organization, token_server, redis_db):
    monkeypatch.setattr(oauth, "REFRESH_LOCK_WAIT", 0.5)
    integration = expiring_integration(organization, token_server)
    other_worker = redis_db.lock(oauth.refresh_lock_key(integration.pk), timeout=30)
    assert other_worker.acquire(blocking=False)
    try:
        started = time.monotonic()
        with pytest.raises(ApiHostError, match="Timed out waiting for another worker to refresh the token") as raised:
            services.oauth_refresh(integration_id=integration.pk, sleep=lambda _s: None)
        assert raised.value.retryable and time.monotonic() - started < 5
    finally:
        other_worker.release()
    assert token_server.refresh_tokens == []
    assert IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH).data["refresh_token"] == "rt-0"
