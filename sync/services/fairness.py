"""Fairness across organizations: a per-organization lease semaphore in Redis caps concurrent sync pages per tenant.

Each sync task processes ONE page and re-enqueues itself at the back of the queue, so syncs interleave page by page; on top
of that an organization may run at most `BASTION_SYNC_MAX_CONCURRENT_PER_ORG` pages at once. A task over its tenant's share
re-queues itself with a short countdown instead of taking a worker slot, so one large tenant cannot starve the others.
Leases expire, so a worker killed while holding one frees it without help.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from django.conf import settings

DEFAULT_MAX_CONCURRENT_PER_ORG = 2
LEASE_SECONDS = 120

_ACQUIRE = """
local key, now, lease, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - lease)
if redis.call('ZSCORE', key, member) then
  redis.call('ZADD', key, now, member)
  return 1
end
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, member)
  redis.call('EXPIRE', key, lease)
  return 1
end
return 0
"""


@lru_cache(maxsize=4)
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def redis_client() -> Any | None:
    """The Redis connection for coordination, or None on the embedded default (no Redis: single process, no contention)."""
    url = getattr(settings, "REDIS_URL", "")
    return _client(url) if url else None


def _key(organization_id: Any) -> str:
    return f"bastion:sync:org-slots:{organization_id}"


def org_slot_acquire(*, organization_id: Any, job_id: Any) -> bool:
    client = redis_client()
    if client is None:
        return True
    limit = int(getattr(settings, "BASTION_SYNC_MAX_CONCURRENT_PER_ORG", DEFAULT_MAX_CONCURRENT_PER_ORG))
    return bool(client.eval(_ACQUIRE, 1, _key(organization_id), time.time(), LEASE_SECONDS, limit, str(job_id)))


def org_slot_release(*, organization_id: Any, job_id: Any) -> None:
    client = redis_client()
    if client is not None:
        client.zrem(_key(organization_id), str(job_id))
