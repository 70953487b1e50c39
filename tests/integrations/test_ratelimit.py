"""The per-integration token bucket and daily quota in real Redis, shared across processes."""

from __future__ import annotations

import multiprocessing
import os
import uuid

import pytest
import redis

from integrations.errors import ApiQuotaExhausted, ApiRateLimited
from integrations.ratelimit import LimitConfig, RedisRateLimiter


@pytest.fixture
def redis_client() -> redis.Redis:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL must point at a real Redis for the rate limiter tests.")
    return redis.Redis.from_url(url)


class FakeClock:
    """Time that moves only when the limiter sleeps: bucket refills are exact and the test never waits."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(redis_client, config: LimitConfig, clock: FakeClock | None = None, scope: str | None = None, max_inline_wait: float = 10.0) -> RedisRateLimiter:
    clock = clock or FakeClock()
    return RedisRateLimiter(scope or uuid.uuid4().hex, config, client=redis_client, sleep=clock.sleep, clock=clock, max_inline_wait=max_inline_wait)


def test_bucket_allows_burst_then_waits_for_refill(redis_client):
    clock = FakeClock()
    bucket = limiter(redis_client, LimitConfig(per_second=2, burst=3), clock)
    for _ in range(3):
        bucket.acquire()
    assert clock.slept == []
    bucket.acquire()  # empty: waits for one token at 2/s
    assert clock.slept == [pytest.approx(0.5)]


def test_long_wait_raises_rate_limited_instead_of_sleeping(redis_client):
    clock = FakeClock()
    bucket = limiter(redis_client, LimitConfig(per_second=0.1, burst=1), clock, max_inline_wait=2)
    bucket.acquire()
    with pytest.raises(ApiRateLimited) as raised:
        bucket.acquire()
    assert raised.value.retry_after == pytest.approx(10.0)
    assert clock.slept == []


def test_daily_quota_is_enforced_and_names_the_reset(redis_client):
    clock = FakeClock()
    quota = limiter(redis_client, LimitConfig(daily=5), clock)
    for _ in range(5):
        quota.acquire()
    with pytest.raises(ApiQuotaExhausted) as raised:
        quota.acquire()
    assert raised.value.reset_at is not None and raised.value.reset_at.hour == 0 and raised.value.reset_at.minute == 0
    assert quota.usage() == {"used": 5, "limit": 5}


def test_a_new_utc_day_has_a_fresh_quota(redis_client):
    clock = FakeClock()
    quota = limiter(redis_client, LimitConfig(daily=1), clock)
    quota.acquire()
    with pytest.raises(ApiQuotaExhausted):
        quota.acquire()
    clock.now += 86_400
    quota.acquire()


def test_salesforce_usage_header_syncs_the_counter(redis_client):
    """Salesforce's 5,000/day: the vendor's own count (other clients of the account too) wins when higher."""
    quota = limiter(redis_client, LimitConfig(daily=5000))
    quota.acquire()
    quota.observe({"Sforce-Limit-Info": "api-usage=4999/5000"})
    assert quota.usage() == {"used": 4999, "limit": 5000}
    quota.acquire()
    with pytest.raises(ApiQuotaExhausted):
        quota.acquire()
    quota.observe({"Sforce-Limit-Info": "api-usage=10/5000"})  # a lower vendor count never lowers ours
    assert quota.usage()["used"] == 5000


def test_observed_vendor_limit_replaces_the_configured_one(redis_client):
    quota = limiter(redis_client, LimitConfig(daily=5000))
    quota.observe({"Sforce-Limit-Info": "api-usage=3/3"})
    with pytest.raises(ApiQuotaExhausted):
        quota.acquire()


def _take_tokens(url: str, scope: str, attempts: int, results) -> None:
    bucket = RedisRateLimiter(scope, LimitConfig(per_second=0.001, burst=10, daily=1000), client=redis.Redis.from_url(url), max_inline_wait=0)
    granted = 0
    for _ in range(attempts):
        try:
            bucket.acquire()
            granted += 1
        except ApiRateLimited:
            pass
    results.put(granted)


def test_budget_is_shared_atomically_across_processes(redis_client):
    """Four processes hammer one bucket of 10: exactly 10 calls are granted in total."""
    scope = uuid.uuid4().hex
    url = os.environ["REDIS_URL"]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_take_tokens, args=(url, scope, 8, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    granted = [results.get(timeout=5) for _ in workers]
    assert sum(granted) == 10
    assert RedisRateLimiter(scope, LimitConfig(daily=1000), client=redis_client).usage()["used"] == 10


def test_limiter_in_the_client_counts_real_calls(redis_client, make_client, sandbox):
    clock = FakeClock()
    quota = limiter(redis_client, LimitConfig(daily=3), clock)
    client, calls = make_client(limiter=quota)
    client.get("api/usage", params={"used": "1", "limit": "5000"})
    assert quota.usage() == {"used": 1, "limit": 5000}
    client.get("api/usage", params={"used": "4999", "limit": "5000"})  # the vendor says someone else used the budget
    client.get("api/me")  # call 5,000 of 5,000
    with pytest.raises(ApiQuotaExhausted):
        client.get("api/me")
    assert len(calls) == 3  # the refused call never left the process


def test_build_connector_wires_the_shared_limiter_from_config(organization, sandbox, demo_token):
    """Two connector instances (two workers) of one integration share one daily budget in Redis."""
    from integrations.models import Integration
    from integrations.services import build_connector, credential_store

    integration = Integration.objects.create(
        organization=organization, connector_key="demo", display_name="Demo", base_url=f"{sandbox}/demo", config={"rate_limit": {"daily": 3}}
    )
    credential_store(integration=integration, credential_type="api_key", data={"api_key": demo_token})
    first, second = build_connector(integration), build_connector(integration)
    assert first.client.limiter.config == LimitConfig(daily=3)
    first.test_connection()
    second.test_connection()
    first.test_connection()
    with pytest.raises(ApiQuotaExhausted):
        second.test_connection()
    assert integration.calls.count() == 3  # the refused call never reached the vendor


def test_manifest_rate_limit_is_the_default(organization, sandbox):
    from integrations.models import Integration
    from integrations.services import build_connector

    integration = Integration.objects.create(organization=organization, connector_key="demo", display_name="Demo", base_url=f"{sandbox}/demo")
    assert build_connector(integration).client.limiter.config == LimitConfig(per_second=20, burst=40)
