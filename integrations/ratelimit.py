"""Per-integration rate limiting in Redis: one token bucket plus a daily quota, shared by every process."""

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

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> LimitConfig:
        daily = data.get("daily")
        return cls(per_second=float(data.get("per_second") or 0), burst=max(1, int(data.get("burst") or 1)), daily=int(daily) if daily else None)

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
    ):
        self.scope = scope
        self.config = config
        self.redis = client
        self.max_inline_wait = max_inline_wait
        self._sleep = sleep
        self._clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._observe = client.register_script(_OBSERVE)

    def _day(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    def keys(self) -> tuple[str, str, str]:
        day = self._day().strftime("%Y-%m-%d")
        base = f"bastion:ratelimit:{self.scope}"
        return f"{base}:bucket", f"{base}:day:{day}", f"{base}:day-limit:{day}"

    def _day_ttl(self) -> int:
        return int((next_utc_midnight(self._day()) - self._day()).total_seconds()) + 3600

    def acquire(self) -> None:
        """Take one call from the budget: wait briefly for a token, or raise when the wait is long or the day is spent."""
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
        """Sync the daily counter with the vendor's own count (Salesforce `Sforce-Limit-Info: api-usage=used/limit`)."""
        raw = headers.get("Sforce-Limit-Info") or ""
        match = SFORCE_USAGE.search(raw)
        if not match:
            return
        used, limit = int(match.group(1)), int(match.group(2))
        _, day_key, limit_key = self.keys()
        self._observe(keys=[day_key, limit_key], args=[used, limit, self._day_ttl()])

    def usage(self) -> dict[str, int | None]:
        """Calls counted today and the effective daily limit (for the health page)."""
        _, day_key, limit_key = self.keys()
        used, observed = self.redis.mget(day_key, limit_key)
        return {"used": int(used or 0), "limit": int(observed) if observed else self.config.daily}

    def reset(self) -> None:
        self.redis.delete(*self.keys())
