"""The per-integration token bucket and the daily quota (per UTC day or rolling 24 hours) in real Redis, shared across processes."""

from __future__ import annotations

import multiprocessing
import os
import uuid

import pytest
import redis

from integrations.errors import ApiQuotaExhausted, ApiRateLimited
from integrations.ratelimit import QUOTA_ROLLING_24H, LimitConfig, RedisRateLimiter


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


DAY = 86_400
LATE_EVENING = 1_800_055_800.0  # 2027-01-15 23:30:00 UTC, on a bucket boundary


def rolling(daily: int, **kwargs) -> LimitConfig:
    return LimitConfig(daily=daily, quota_window=QUOTA_ROLLING_24H, **kwargs)


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


def test_rolling_quota_spans_midnight_and_names_when_the_oldest_call_leaves(redis_client):
    """Salesforce-style: 3 calls per rolling 24 h. Midnight UTC frees nothing; the oldest call leaving the window does."""
    clock = FakeClock(LATE_EVENING)
    quota = limiter(redis_client, rolling(3), clock)
    first_call = clock.now
    for _ in range(3):
        quota.acquire()
        clock.now += 600  # 23:30, 23:40, 23:50
    clock.now = LATE_EVENING + 3600  # 00:30 the next UTC day: a per-day quota would be fresh again
    with pytest.raises(ApiQuotaExhausted) as raised:
        quota.acquire()
    leaves = first_call + 60 + DAY  # the end of the first call's one-minute bucket, plus 24 hours
    assert raised.value.retry_after == pytest.approx(leaves - clock.now)
    assert raised.value.reset_at.timestamp() == pytest.approx(leaves)
    assert raised.value.vendor_code == "rolling_quota"
    assert quota.usage() == {"used": 3, "limit": 3}

    clock.now = leaves - 1  # a second early is still refused
    with pytest.raises(ApiQuotaExhausted):
        quota.acquire()
    clock.now = leaves
    assert quota.usage() == {"used": 2, "limit": 3}
    quota.acquire()
    with pytest.raises(ApiQuotaExhausted) as raised:
        quota.acquire()
    assert raised.value.reset_at.timestamp() == pytest.approx(first_call + 600 + 60 + DAY)  # now the 23:40 call is oldest
    assert clock.slept == []


def test_rolling_quota_forgets_calls_older_than_a_day_across_many_buckets(redis_client):
    clock = FakeClock(LATE_EVENING)
    quota = limiter(redis_client, rolling(100), clock)
    for _ in range(50):
        quota.acquire()
        clock.now += 1200  # one call every 20 minutes for ~16.7 hours
    assert quota.usage()["used"] == 50
    clock.now += 12 * 3600  # now = start + 28 h 40 min
    # Calls 0..13 are more than 24 h + one bucket old and have left; call 14, exactly 24 h old, still counts.
    assert quota.usage()["used"] == 50 - 14
    clock.now += 60
    assert quota.usage()["used"] == 50 - 15


def test_rolling_quota_counts_other_clients_from_the_vendor_header(redis_client):
    """Sforce-Limit-Info covers every client of the org: the excess over our own count is held for observation_ttl."""
    clock = FakeClock(LATE_EVENING)
    quota = limiter(redis_client, rolling(15_000), clock)
    quota.acquire()
    quota.acquire()
    quota.observe({"Sforce-Limit-Info": "api-usage=4990/5000"})  # the org's real limit replaces the declared one
    assert quota.usage() == {"used": 4990, "limit": 5000}
    for _ in range(10):
        quota.acquire()
    observed_at = clock.now
    with pytest.raises(ApiQuotaExhausted) as raised:
        quota.acquire()
    # Our own calls are all recent, so the first moment worth trying is when the vendor's figure goes stale.
    assert raised.value.reset_at.timestamp() == pytest.approx(observed_at + quota.observation_ttl)
    clock.now = observed_at + quota.observation_ttl
    quota.acquire()  # the probe: its response reports the vendor's count again
    quota.observe({"Sforce-Limit-Info": "api-usage=5000/5000"})
    with pytest.raises(ApiQuotaExhausted):
        quota.acquire()


def test_rolling_quota_spent_by_the_vendor_count_reopens_when_our_oldest_call_leaves(redis_client):
    """Every call of ours is in the vendor's count, so the org's count drops when our oldest call leaves the window."""
    clock = FakeClock(LATE_EVENING)
    quota = limiter(redis_client, rolling(5000), clock)
    oldest = clock.now
    quota.acquire()
    clock.now += DAY - 1800  # half an hour before that call leaves the window
    quota.observe({"Sforce-Limit-Info": "api-usage=5000/5000"})
    with pytest.raises(ApiQuotaExhausted) as raised:
        quota.acquire()
    assert raised.value.reset_at.timestamp() == pytest.approx(oldest + 60 + DAY)  # sooner than the figure going stale
    clock.now = oldest + 60 + DAY
    quota.acquire()


def test_a_late_lower_vendor_figure_does_not_undercount_but_a_later_one_does_count(redis_client):
    clock = FakeClock(LATE_EVENING)
    quota = limiter(redis_client, rolling(5000), clock)
    quota.observe({"Sforce-Limit-Info": "api-usage=4000/5000"})
    clock.now += 5
    quota.observe({"Sforce-Limit-Info": "api-usage=3990/5000"})  # an older response arriving late
    assert quota.usage()["used"] == 4000
    clock.now += quota.observation_settle
    quota.observe({"Sforce-Limit-Info": "api-usage=3000/5000"})  # other clients' calls left the window
    assert quota.usage()["used"] == 3000


def test_quota_window_is_validated_and_read_from_config():
    assert LimitConfig.from_mapping({"daily": 10, "quota_window": "rolling_24h"}).is_rolling
    assert LimitConfig.from_mapping({"daily": 10}, quota_window="rolling_24h").is_rolling  # the connector's window by default
    assert not LimitConfig.from_mapping({"daily": 10}).is_rolling
    with pytest.raises(ValueError, match="quota_window"):
        LimitConfig(daily=10, quota_window="weekly")


def _take_rolling_quota(url: str, scope: str, attempts: int, results) -> None:
    quota = RedisRateLimiter(scope, rolling(10), client=redis.Redis.from_url(url))
    granted = 0
    for _ in range(attempts):
        try:
            quota.acquire()
            granted += 1
        except ApiQuotaExhausted:
            pass
    results.put(granted)


def test_rolling_quota_is_shared_atomically_across_processes(redis_client):
    scope = uuid.uuid4().hex
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_take_rolling_quota, args=(os.environ["REDIS_URL"], scope, 8, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sum(results.get(timeout=5) for _ in workers) == 10
    assert RedisRateLimiter(scope, rolling(10), client=redis_client).usage() == {"used": 10, "limit": 10}


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


def test_rolling_limiter_in_the_client_learns_the_vendor_count(redis_client, make_client, sandbox):
    clock = FakeClock(LATE_EVENING)
    quota = limiter(redis_client, rolling(15_000), clock)
    client, calls = make_client(limiter=quota)
    client.get("api/usage", params={"used": "4998", "limit": "5000"})
    assert quota.usage() == {"used": 4998, "limit": 5000}
    client.get("api/me")
    client.get("api/me")
    with pytest.raises(ApiQuotaExhausted):
        client.get("api/me")
    assert len(calls) == 3  # the refused call never left the process


def test_salesforce_declares_a_rolling_quota_and_config_overrides_keep_it(organization):
    from integrations.connectors.salesforce import SalesforceConnector
    from integrations.models import Integration
    from integrations.services import rate_limiter_for

    manifest = SalesforceConnector.manifest
    integration = Integration.objects.create(organization=organization, connector_key="salesforce", display_name="Salesforce")
    assert rate_limiter_for(integration, manifest).config == LimitConfig(per_second=20.0, burst=25, daily=15_000, quota_window=QUOTA_ROLLING_24H)
    integration.config = {"rate_limit": {"daily": 100_000}}
    assert rate_limiter_for(integration, manifest).config == LimitConfig(daily=100_000, quota_window=QUOTA_ROLLING_24H)
