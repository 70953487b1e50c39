"""Per-integration rate limiting in Redis: one token bucket plus a quota per UTC day or per rolling 24 hours, shared by every process."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import redis

from integrations.errors import ApiQuotaExhausted, ApiRateLimited

logger = logging.getLogger(__name__)

# Atomic: refill the bucket from elapsed time, check the daily quota, take one token and count the call.
# Returns {status, value, limit}: status 1 = allowed, 0 = wait `value` seconds, -1 = daily quota spent (used=value).
_ACQUIRE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local daily = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local day_ttl = tonumber(ARGV[5])
if daily > 0 then
  local observed = tonumber(redis.call('GET', KEYS[3]) or '0')
  if observed > 0 then daily = observed end
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= daily then return {-1, tostring(used), tostring(daily)} end
end
if rate > 0 then
  local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then tokens = burst; ts = now end
  if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) end
  if tokens < 1 then
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(math.max(now, ts)))
    redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
    return {0, tostring((1 - tokens) / rate), '0'}
  end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(math.max(now, ts)))
  redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
end
if daily > 0 then
  local used = redis.call('INCR', KEYS[2])
  if used == 1 then redis.call('EXPIRE', KEYS[2], day_ttl) end
end
return {1, '0', tostring(daily)}
"""

# Keep the larger of our count and the vendor's: the vendor also counts calls made by other clients of the account.
_OBSERVE = """
local used = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > current then redis.call('SET', KEYS[1], used, 'EX', tonumber(ARGV[3])) end
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[3])) end
return used
"""

# The rolling window: calls are counted in buckets of `width` seconds (a hash of counts, a sorted set of bucket starts,
# and a running total), so a window of any traffic costs at most window/width entries. A bucket counts until its last
# possible call leaves the window (start + width + window), so the count errs high by at most one bucket's width.
# `foreign` is the vendor's count of calls we did not make (other clients of the account), trusted for `observation_ttl`.
_ROLLING_EVICT = """
local function evict(counts_key, index_key, meta_key, now, window, width)
  local cutoff = now - window - width
  local total = tonumber(redis.call('HGET', meta_key, 'total') or '0')
  local expired = redis.call('ZRANGEBYSCORE', index_key, '-inf', cutoff)
  if #expired > 0 then
    local counts = redis.call('HMGET', counts_key, unpack(expired))
    for _, count in ipairs(counts) do total = total - (tonumber(count) or 0) end
    redis.call('HDEL', counts_key, unpack(expired))
    redis.call('ZREMRANGEBYSCORE', index_key, '-inf', cutoff)
    if total < 0 then total = 0 end
    redis.call('HSET', meta_key, 'total', total)
  end
  return total
end
"""

# Returns {status, retry_at, limit, used}: status 1 = allowed (or, with take=0, within the quota), 0 = wait `retry_at`
# seconds for a token, -1 = quota spent until the absolute time `retry_at`.
_ROLLING_ACQUIRE = (
    _ROLLING_EVICT
    + """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local width = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local take = tonumber(ARGV[8])
local observation_ttl = tonumber(ARGV[9])
local total = evict(KEYS[2], KEYS[3], KEYS[4], now, window, width)
local meta = redis.call('HMGET', KEYS[4], 'limit', 'foreign', 'foreign_at')
local limit = tonumber(meta[1]) or quota
local foreign = tonumber(meta[2]) or 0
local foreign_until = (tonumber(meta[3]) or 0) + observation_ttl
if foreign_until <= now then foreign = 0 end
local used = total + foreign
if quota > 0 and used >= limit then
  -- The earliest time the count drops below the limit: walk the buckets oldest first, and the vendor figure's expiry.
  local buckets = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
  local own = total
  local others = foreign
  local at = nil
  for i = 1, #buckets, 2 do
    local leaves = tonumber(buckets[i + 1]) + width + window
    if others > 0 and foreign_until <= leaves then
      others = 0
      if own < limit then at = foreign_until break end
    end
    own = own - (tonumber(redis.call('HGET', KEYS[2], buckets[i])) or 0)
    if own + others < limit then at = leaves break end
  end
  if at == nil and others > 0 and own < limit then at = foreign_until end
  if at == nil then at = now + window end
  return {-1, tostring(at), tostring(limit), tostring(used)}
end
if take == 0 then return {1, '0', tostring(limit), tostring(used)} end
if rate > 0 then
  local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then tokens = burst; ts = now end
  if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) end
  if tokens < 1 then
    redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(math.max(now, ts)))
    redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
    return {0, tostring((1 - tokens) / rate), tostring(limit), tostring(used)}
  end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(math.max(now, ts)))
  redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
end
if quota > 0 then
  local start = math.floor(now / width) * width
  redis.call('HINCRBY', KEYS[2], tostring(start), 1)
  redis.call('ZADD', KEYS[3], start, tostring(start))
  redis.call('HINCRBY', KEYS[4], 'total', 1)
  for i = 2, 4 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return {1, '0', tostring(limit), tostring(used + 1)}
"""
)

# The vendor's count covers every client of the account over the same rolling window; what exceeds our own count is
# other clients' calls. Responses can arrive out of order, so a lower figure within `settle` seconds does not win.
_ROLLING_OBSERVE = (
    _ROLLING_EVICT
    + """
local used = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local width = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local settle = tonumber(ARGV[7])
local total = evict(KEYS[1], KEYS[2], KEYS[3], now, window, width)
local foreign = math.max(0, used - total)
local previous = redis.call('HMGET', KEYS[3], 'foreign', 'foreign_at')
local previous_foreign = tonumber(previous[1]) or 0
local previous_at = tonumber(previous[2]) or 0
if not (now - previous_at < settle and previous_foreign > foreign) then
  redis.call('HSET', KEYS[3], 'foreign', foreign, 'foreign_at', tostring(now))
end
if limit > 0 then redis.call('HSET', KEYS[3], 'limit', limit) end
redis.call('EXPIRE', KEYS[3], ttl)
return foreign
"""
)

QUOTA_UTC_DAY = "utc_day"
QUOTA_ROLLING_24H = "rolling_24h"
QUOTA_WINDOWS = (QUOTA_UTC_DAY, QUOTA_ROLLING_24H)
ROLLING_WINDOW_SECONDS = 86_400

SFORCE_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@lru_cache(maxsize=4)
def redis_client(url: str) -> redis.Redis:
    """One connection pool per Redis URL and process (limiters and refresh locks share it)."""
    return redis.Redis.from_url(url)


@dataclass(frozen=True)
class LimitConfig:
    per_second: float = 0.0
    burst: int = 1
    daily: int | None = None
    quota_window: str = QUOTA_UTC_DAY  # how `daily` is counted: per UTC day, or over the last 24 hours (rolling_24h)

    def __post_init__(self) -> None:
        if self.quota_window not in QUOTA_WINDOWS:
            raise ValueError(f"quota_window must be one of {', '.join(QUOTA_WINDOWS)}, not {self.quota_window!r}.")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, quota_window: str = QUOTA_UTC_DAY) -> LimitConfig:
        """From `integration.config["rate_limit"]`; `quota_window` is the connector's when the mapping names none."""
        daily = data.get("daily")
        return cls(
            per_second=float(data.get("per_second") or 0),
            burst=max(1, int(data.get("burst") or 1)),
            daily=int(daily) if daily else None,
            quota_window=str(data.get("quota_window") or quota_window),
        )

    @classmethod
    def from_spec(cls, spec: Any) -> LimitConfig:
        """From a connector manifest's RateLimitSpec."""
        return cls(per_second=spec.per_second, burst=spec.burst, daily=spec.daily, quota_window=getattr(spec, "quota_window", QUOTA_UTC_DAY))

    @property
    def is_rolling(self) -> bool:
        return self.quota_window == QUOTA_ROLLING_24H

    @property
    def is_limited(self) -> bool:
        return self.per_second > 0 or bool(self.daily)


def next_utc_midnight(now: datetime | None = None) -> datetime:
    now = now or datetime.now(tz=UTC)
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


class RedisRateLimiter:
    """The HttpClient `limiter` for one integration; every process using the same scope shares the budget."""

    def __init__(
        self,
        scope: str,
        config: LimitConfig,
        *,
        client: redis.Redis,
        max_inline_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        bucket_seconds: int = 60,
        observation_ttl: float = 3600.0,
        observation_settle: float = 60.0,
    ):
        self.scope = scope
        self.config = config
        self.redis = client
        self.max_inline_wait = max_inline_wait
        self._sleep = sleep
        self._clock = clock
        self.bucket_seconds = bucket_seconds
        # After this long without a fresh Sforce-Limit-Info figure, other clients' calls are no longer assumed: the next
        # call goes out and its response reports the vendor's count again.
        self.observation_ttl = observation_ttl
        self.observation_settle = observation_settle
        self._acquire = client.register_script(_ROLLING_ACQUIRE if config.is_rolling else _ACQUIRE)
        self._observe = client.register_script(_ROLLING_OBSERVE if config.is_rolling else _OBSERVE)

    def _day(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    def keys(self) -> tuple[str, ...]:
        """Token bucket, then the quota's keys: (day count, day limit), or rolling (counts, bucket index, meta)."""
        base = f"bastion:ratelimit:{self.scope}"
        if self.config.is_rolling:
            return f"{base}:bucket", f"{base}:rolling:counts", f"{base}:rolling:index", f"{base}:rolling:meta"
        day = self._day().strftime("%Y-%m-%d")
        return f"{base}:bucket", f"{base}:day:{day}", f"{base}:day-limit:{day}"

    def _rolling(self, *, take: bool) -> tuple[int, float, int, int]:
        status, value, limit, used = self._acquire(
            keys=list(self.keys()),
            args=[
                self.config.per_second if take else 0,
                self.config.burst,
                self.config.daily or 0,
                repr(self._clock()),
                ROLLING_WINDOW_SECONDS,
                self.bucket_seconds,
                ROLLING_WINDOW_SECONDS + 2 * self.bucket_seconds + 3600,
                1 if take else 0,
                self.observation_ttl,
            ],
        )
        return int(status), float(value), int(float(limit)), int(float(used))

    def _acquire_rolling(self) -> None:
        waited = 0.0
        while True:
            status, value, limit, used = self._rolling(take=True)
            if status == 1:
                return
            if status == -1:
                reset_at = datetime.fromtimestamp(value, tz=UTC)
                raise ApiQuotaExhausted(
                    f"The API quota of {limit} calls per rolling 24 hours is spent ({used} counted); "
                    f"the next call is allowed at {reset_at:%Y-%m-%d %H:%M:%S} UTC.",
                    reset_at=reset_at,
                    retry_after=max(1.0, value - self._clock()),
                    vendor_code="rolling_quota",
                )
            if waited + value > self.max_inline_wait:
                raise ApiRateLimited(f"Rate limit for this integration: next call allowed in {value:.2f}s.", retry_after=value, vendor_code="local_bucket")
            self._sleep(value)
            waited += value

    def _day_ttl(self) -> int:
        return int((next_utc_midnight(self._day()) - self._day()).total_seconds()) + 3600

    def acquire(self) -> None:
        """Take one call from the budget: wait briefly for a token, or raise when the wait is long or the quota is spent."""
        if self.config.is_rolling:
            self._acquire_rolling()
            return
        waited = 0.0
        while True:
            status, value, limit = self._acquire(
                keys=list(self.keys()),
                args=[self.config.per_second, self.config.burst, self.config.daily or 0, repr(self._clock()), self._day_ttl()],
            )
            status = int(status)
            if status == 1:
                return
            if status == -1:
                reset_at = next_utc_midnight(self._day())
                raise ApiQuotaExhausted(
                    f"The daily API quota of {int(float(limit))} calls is spent ({int(float(value))} used); it resets at {reset_at:%Y-%m-%d %H:%M} UTC.",
                    reset_at=reset_at,
                    retry_after=max(1.0, (reset_at - self._day()).total_seconds()),
                    vendor_code="daily_quota",
                )
            wait = float(value)
            if waited + wait > self.max_inline_wait:
                raise ApiRateLimited(f"Rate limit for this integration: next call allowed in {wait:.2f}s.", retry_after=wait, vendor_code="local_bucket")
            self._sleep(wait)
            waited += wait

    def observe(self, headers: Mapping[str, str]) -> None:
        """Sync the quota with the vendor's own count (Salesforce `Sforce-Limit-Info: api-usage=used/limit`)."""
        raw = headers.get("Sforce-Limit-Info") or ""
        match = SFORCE_USAGE.search(raw)
        if not match:
            return
        used, limit = int(match.group(1)), int(match.group(2))
        if self.config.is_rolling:
            _, counts_key, index_key, meta_key = self.keys()
            self._observe(
                keys=[counts_key, index_key, meta_key],
                args=[
                    used,
                    limit,
                    repr(self._clock()),
                    ROLLING_WINDOW_SECONDS,
                    self.bucket_seconds,
                    ROLLING_WINDOW_SECONDS + 2 * self.bucket_seconds + 3600,
                    self.observation_settle,
                ],
            )
            return
        _, day_key, limit_key = self.keys()
        self._observe(keys=[day_key, limit_key], args=[used, limit, self._day_ttl()])

    def usage(self) -> dict[str, int | None]:
        """Calls counted in the quota's window (today, or the last 24 hours) and the effective limit (for the health page)."""
        if self.config.is_rolling:
            _, _, limit, used = self._rolling(take=False)
            return {"used": used, "limit": limit or self.config.daily}
        _, day_key, limit_key = self.keys()
        used, observed = self.redis.mget(day_key, limit_key)
        return {"used": int(used or 0), "limit": int(observed) if observed else self.config.daily}

    def reset(self) -> None:
        self.redis.delete(*self.keys())
