"""Every rule of the shared HttpClient, over real HTTP against the sandbox's demo vendor."""

from __future__ import annotations

import socket
import uuid
from email.utils import formatdate

import pytest
import requests

from integrations.errors import ApiBadRequest, ApiHostError, ApiNotFound, ApiQuotaExhausted, ApiRateLimited, ApiTimeout, ApiUnauthorized, UnsafeBaseUrl
from integrations.http import HttpClient, parse_retry_after
from tests.integrations.conftest import hits


def key() -> str:
    return uuid.uuid4().hex


def test_success_records_method_path_status_latency_without_secrets(make_client, demo_token):
    client, calls = make_client()
    response = client.get("api/me", params={"access_token": "query-secret-never-logged"})
    assert response.json()["account_id"] == "demo-acct-0001"
    assert len(calls) == 1
    call = calls[0]
    assert (call.method, call.path, call.status, call.ok, call.attempt) == ("GET", "/demo/api/me", 200, True, 1)
    assert call.latency_ms > 0
    recorded = repr(call)
    assert demo_token not in recorded and "query-secret" not in recorded and "Demo Workspace" not in recorded


def test_5xx_is_retried_with_exponential_backoff_and_jitter(make_client, sandbox, sleeps):
    client, calls = make_client(max_retries=4, backoff_base=0.5)
    k = key()
    assert client.get("api/flaky", params={"key": k, "fail": 3, "status": 503}).json() == {"ok": True, "attempts": 4}
    assert hits(sandbox)[k] == 4
    assert [c.status for c in calls] == [503, 503, 503, 200]
    assert [c.error for c in calls[:3]] == ["ApiHostError"] * 3
    assert len(sleeps.waits) == 3
    # Full jitter: each wait lies in [0, base * 2^(attempt-1)].
    for attempt, wait in enumerate(sleeps.waits, start=1):
        assert 0 <= wait <= 0.5 * 2 ** (attempt - 1)


def test_backoff_caps_and_varies():
    client = HttpClient("http://127.0.0.1:1/", backoff_base=1, backoff_cap=4)
    samples = [client.backoff(10) for _ in range(200)]
    assert max(samples) <= 4 and min(samples) >= 0
    assert len({round(s, 3) for s in samples}) > 50  # jittered, not a fixed schedule


def test_5xx_gives_up_after_max_retries(make_client, sandbox, sleeps):
    client, calls = make_client(max_retries=2)
    k = key()
    with pytest.raises(ApiHostError) as raised:
        client.get("api/flaky", params={"key": k, "fail": 10, "status": 502})
    assert raised.value.status == 502
    assert hits(sandbox)[k] == 3 and len(calls) == 3 and len(sleeps.waits) == 2


@pytest.mark.parametrize(("status", "error"), [(400, ApiBadRequest), (404, ApiNotFound), (422, ApiBadRequest)])
def test_4xx_other_than_429_is_not_retried(make_client, sandbox, sleeps, status, error):
    client, calls = make_client()
    k = key()
    with pytest.raises(error):
        client.get(f"api/status/{status}", params={"key": k})
    assert hits(sandbox)[k] == 1 and sleeps.waits == [] and len(calls) == 1


def test_401_without_refreshable_auth_is_not_retried(make_client, sandbox, sleeps):
    client, calls = make_client(auth=None)
    with pytest.raises(ApiUnauthorized):
        client.get("api/me")
    assert sleeps.waits == [] and [c.status for c in calls] == [401]


def test_429_retry_after_seconds_is_honoured(make_client, sandbox, sleeps):
    client, calls = make_client()
    k = key()
    assert client.get("api/retry-after", params={"key": k, "fail": 1, "after": 3}).json()["attempts"] == 2
    assert len(sleeps.waits) == 1 and 3 <= sleeps.waits[0] <= 3.25
    assert calls[0].status == 429 and calls[0].error == "ApiRateLimited"


def test_429_retry_after_http_date_is_honoured(make_client, sandbox, sleeps):
    client, _ = make_client()
    k = key()
    assert client.get("api/retry-after", params={"key": k, "fail": 1, "after": 4, "style": "date"}).json()["attempts"] == 2
    # An HTTP date has one-second resolution: the wait is the remaining ~3-4 seconds, not a default.
    assert len(sleeps.waits) == 1 and 2 <= sleeps.waits[0] <= 4.25


def test_parse_retry_after_forms():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(formatdate(1_000_060, usegmt=True), now=1_000_000) == 60.0
    assert parse_retry_after("garbage") is None and parse_retry_after(None) is None


def test_wait_longer_than_max_inline_wait_raises_instead_of_sleeping(make_client, sandbox, sleeps):
    client, _ = make_client(max_inline_wait=10)
    k = key()
    with pytest.raises(ApiRateLimited) as raised:
        client.get("api/retry-after", params={"key": k, "fail": 5, "after": 30})
    assert raised.value.retry_after == 30
    assert sleeps.waits == [] and hits(sandbox)[k] == 1


def test_slack_style_200_ok_false_ratelimited_is_a_rate_limit(make_client, sandbox, sleeps):
    from integrations.connectors.slack import SlackConnector

    client, calls = make_client(classify=SlackConnector.classify_response)  # the vendor's reading of its answers, applied by the client
    k = key()
    assert client.get("api/slack-ratelimited", params={"key": k, "fail": 2, "after": 2}).json()["ok"] is True
    assert [c.status for c in calls] == [200, 200, 200]
    assert [c.ok for c in calls] == [False, False, True] and calls[0].vendor_code == "ratelimited"
    assert len(sleeps.waits) == 2 and all(2 <= w <= 2.25 for w in sleeps.waits)


def test_salesforce_request_limit_exceeded_is_quota_exhausted(make_client, sandbox, sleeps):
    from integrations.connectors.salesforce import SalesforceConnector

    client, calls = make_client(classify=SalesforceConnector.classify_response)
    k = key()
    with pytest.raises(ApiQuotaExhausted) as raised:
        client.get("api/salesforce-limit", params={"key": k})
    assert raised.value.vendor_code == "REQUEST_LIMIT_EXCEEDED" and raised.value.reset_at is not None
    assert sleeps.waits == [] and hits(sandbox)[k] == 1  # a daily cap is never slept through


def test_google_403_rate_limit_exceeded_is_retried(make_client, sandbox, sleeps):
    from integrations.connectors.google_calendar import GoogleCalendarConnector

    client, calls = make_client(classify=GoogleCalendarConnector.classify_response)
    k = key()
    assert client.get("api/google-ratelimit", params={"key": k, "fail": 1}).json()["attempts"] == 2
    assert calls[0].status == 403 and calls[0].error == "ApiRateLimited" and calls[0].vendor_code == "rateLimitExceeded"
    assert len(sleeps.waits) == 1


def test_read_timeout_is_retried_then_raised(make_client, sandbox, sleeps):
    client, calls = make_client(timeout=(2.0, 0.1), max_retries=1)
    k = key()
    with pytest.raises(ApiTimeout):
        client.get("api/slow", params={"key": k, "ms": 400})
    assert hits(sandbox)[k] == 2 and [c.error for c in calls] == ["ApiTimeout", "ApiTimeout"] and calls[0].status is None
    assert len(sleeps.waits) == 1


def test_connect_timeout_is_a_timeout():
    """A listener whose accept queue is full never completes the handshake: the connect timeout fires."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the backlog so further SYNs are dropped
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        waits: list[float] = []
        client = HttpClient(f"http://127.0.0.1:{port}/", timeout=(0.2, 1.0), max_retries=1, sleep=waits.append)
        with pytest.raises(ApiTimeout):
            client.get("anything")
        assert len(waits) == 1  # retried once, like any transient failure
    finally:
        for s in fillers:
            s.close()
        server.close()


def test_connection_refused_is_a_retryable_host_error(sleeps):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens here now
    client = HttpClient(f"http://127.0.0.1:{port}/", max_retries=2, sleep=sleeps)
    with pytest.raises(ApiHostError):
        client.get("x")
    assert len(sleeps.waits) == 2


def test_pagination_cursor(make_client):
    client, calls = make_client()
    pages = list(client.paginate_cursor("api/people", items_key="people", next_cursor=lambda b: b.get("next_cursor"), params={"limit": 7}))
    assert [len(items) for items, _ in pages] == [7, 7, 6]
    assert len({p["id"] for items, _ in pages for p in items}) == 20


def test_pagination_link_header(make_client):
    client, _ = make_client()
    pages = list(client.paginate_link("api/link/people", params={"per_page": 8}))
    assert [len(items) for items, _ in pages] == [8, 8, 4]
    assert len({p["id"] for items, _ in pages for p in items}) == 20


def test_pagination_offset(make_client):
    client, _ = make_client()
    pages = list(client.paginate_offset("api/offset/people", items_key="items", limit=6, more=lambda body, _offset: body["more"]))
    assert [len(items) for items, _ in pages] == [6, 6, 6, 2]
    assert len({p["id"] for items, _ in pages for p in items}) == 20


def test_pagination_next_url_host_relative(make_client):
    client, calls = make_client()
    pages = list(client.paginate_next_url("api/next/people", items_key="records", next_key="nextRecordsUrl", params={"page_size": 9}))
    assert [len(items) for items, _ in pages] == [9, 9, 2]
    assert [c.path for c in calls] == ["/demo/api/next/people", "/demo/api/next/people/9", "/demo/api/next/people/18"]


def test_redirects_pass_the_url_guard_on_every_hop(make_client, sandbox):
    seen: list[str] = []

    def guard(url: str) -> None:
        seen.append(url)
        if "169.254.169.254" in url:
            raise UnsafeBaseUrl("metadata refused")

    client, _ = make_client(url_guard=guard)
    with pytest.raises(UnsafeBaseUrl):
        client.get("api/redirect", params={"to": "http://169.254.169.254/latest/meta-data/"})
    assert seen[-1] == "http://169.254.169.254/latest/meta-data/"
    assert client.get("api/redirect", params={"to": f"{sandbox}/demo/api/me"}).json()["account_id"] == "demo-acct-0001"


def test_recorder_failure_does_not_fail_the_call(make_client):
    def broken(_call):
        raise RuntimeError("metrics sink down")

    client, _ = make_client(recorder=broken)
    assert client.get("api/me").status_code == 200


def test_sandbox_fault_knob_429_storm(make_client, sandbox, sleeps):
    requests.put(f"{sandbox}/_control/faults/demo", json={"rate_limit_next": 2, "retry_after": 1}, timeout=5).raise_for_status()
    client, calls = make_client()
    assert client.get("api/me").status_code == 200
    assert [c.status for c in calls] == [429, 429, 200] and len(sleeps.waits) == 2


def test_shared_connector_widens_the_pool_without_losing_the_ssrf_pinning(organization, sandbox, demo_token):
    """shared_connector keeps 32 connections per host, and they still go only to addresses the SSRF guard vetted."""
    from integrations.http import PinnedAdapter
    from integrations.models import Integration, IntegrationStatus
    from integrations.services import SHARED_POOL_SIZE, credential_store, shared_connector, shared_connectors_forget
    from integrations.ssrf import url_guard

    integration = Integration.objects.create(
        organization=organization, connector_key="demo", display_name="Demo", base_url=f"{sandbox}/demo", status=IntegrationStatus.CONNECTED
    )
    credential_store(integration=integration, credential_type="api_key", data={"api_key": demo_token})
    shared_connectors_forget()
    try:
        connector = shared_connector(integration, purpose="test")
        adapter = connector.client.session.get_adapter(sandbox)
        assert isinstance(adapter, PinnedAdapter) and adapter.guard is url_guard
        assert adapter._pool_maxsize == SHARED_POOL_SIZE
        assert connector.test_connection().ok
    finally:
        shared_connectors_forget()


def test_calls_made_side_by_side_are_recorded_by_the_thread_that_started_them(make_client):
    """A connector's lookups on helper threads: each call is logged once, by the step's own thread (its DB connection)."""
    import threading

    from integrations.connectors.kit.concurrent import map_concurrently

    client, _ = make_client()
    recorded_on: list[tuple[str, int]] = []
    client.recorder = lambda call: recorded_on.append((call.path, threading.get_ident()))
    answers = map_concurrently(lambda _: client.get("api/me").json()["account_id"], range(6), limit=3)
    assert answers == ["demo-acct-0001"] * 6
    assert len(recorded_on) == 6 and {thread for _, thread in recorded_on} == {threading.get_ident()}

    failing = map_concurrently(lambda n: 1 / n, [1, 0], limit=2)  # an item's exception comes back in its place
    assert failing[0] == 1 and isinstance(failing[1], ZeroDivisionError)
