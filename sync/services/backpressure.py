"""Backpressure for the sync dispatcher: start only as many scheduled syncs as the workers can take soon.

Sending every due start into the broker when the workers serve less than the schedule asks makes a FIFO queue that grows
without bound, and every start waits behind all of it: no organization's wait is bounded. Instead the dispatcher keeps
the syncs in flight under a bound that follows the measured completion rate (`BASTION_SYNC_DISPATCH_AHEAD_SECONDS` of
work at that rate, at least `BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT`); sources it does not send stay due with their
`next_sync_at`, so the next tick sends the most overdue first.

In flight = active sync jobs in PostgreSQL (pending or running, not paused into the future: a rate-limited job holds no
worker) + sources whose start message is sent and not yet run (a Redis sorted set, scored by send time, so a lost message
stops counting after `SENT_HORIZON_SECONDS`). Completions are counted in Redis per 10-second bucket. Everything is shared
by every dispatcher and worker machine through the one PostgreSQL and Redis; without Redis (the embedded demo, tasks run
in-process) nothing is held back.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob, JobType
from sync.services.fairness import redis_client

logger = logging.getLogger(__name__)

SENT_KEY = "bastion:sync:dispatch:sent"  # members "<organization id>:<data source id>", score: when the start was sent
COMPLETED_PREFIX = "bastion:sync:dispatch:completed:"  # + 10-second bucket number: sync jobs that ended in it
STATE_KEY = "bastion:sync:dispatch:state"  # the last tick's figures, read by /metrics
BUCKET_SECONDS = 10
RATE_WINDOW_SECONDS = 20  # the last two full buckets and the current one so far give the counted rate
SENT_HORIZON_SECONDS = 600  # a start message not run after this long is taken as lost (its source is due again by then)


@dataclass
class InFlight:
    """Sync work the workers have not finished: total and per organization (ids as strings)."""

    total: int = 0
    by_organization: Counter[str] = field(default_factory=Counter)


def is_enabled() -> bool:
    return bool(getattr(settings, "BASTION_SYNC_DISPATCH_BACKPRESSURE", True)) and redis_client() is not None


def per_organization_cap() -> int:
    """At most this many syncs of one organization in flight: more would only wait for its per-organization slots."""
    return max(1, int(getattr(settings, "BASTION_SYNC_DISPATCH_MAX_IN_FLIGHT_PER_ORG", 20)))


def sync_completion_record(*, at: float | None = None) -> None:
    """Count one sync job that ended (succeeded, failed, cancelled) in its 10-second bucket."""
    client = redis_client()
    if client is None:
        return
    bucket = int((at if at is not None else time.time()) // BUCKET_SECONDS)
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.incr(f"{COMPLETED_PREFIX}{bucket}")
            pipe.expire(f"{COMPLETED_PREFIX}{bucket}", RATE_WINDOW_SECONDS * 3)
            pipe.execute()
    except Exception:  # noqa: BLE001 - a missed count only makes the next bound a little lower; the job itself is done
        logger.warning("sync.dispatch.completion_uncounted", exc_info=True)


def completion_rate(*, at: float | None = None) -> float:
    """Sync jobs ended per second over the last RATE_WINDOW_SECONDS and the current bucket so far, across every worker machine."""
    client = redis_client()
    if client is None:
        return 0.0
    now = at if at is not None else time.time()
    current = int(now // BUCKET_SECONDS)
    buckets = RATE_WINDOW_SECONDS // BUCKET_SECONDS
    counts = client.mget([f"{COMPLETED_PREFIX}{current - offset}" for offset in range(buckets + 1)])
    return sum(int(count or 0) for count in counts) / (RATE_WINDOW_SECONDS + now - current * BUCKET_SECONDS)


def dispatch_bound(*, at: float, in_flight_now: int) -> tuple[int, float]:
    """(the in-flight bound for this tick, the measured completion rate per second).

    The rate is the counted completions, or, when higher, how fast what was in flight after the last tick drained since
    (no bucket lag). The bound is `AHEAD_SECONDS` of work at that rate, at least the floor; and when the workers ran
    (nearly) dry since the last tick while sources were held back, they could have done more than the drain shows: the
    bound then grows 4× (after a start-up or a quiet spell it reaches the workers' pace in two or three ticks).
    """
    rate = completion_rate(at=at)
    last = dispatch_state()
    elapsed = at - last.get("at", at)
    if elapsed >= 1.0:
        rate = max(rate, (last.get("in_flight", 0.0) - in_flight_now) / elapsed)
    bound = in_flight_bound(rate=rate)
    if elapsed >= 1.0 and last.get("held_back", 0) > 0 and in_flight_now <= last.get("in_flight", 0.0) / 4:
        bound = max(bound, 4 * int(last.get("bound", 0)))
    return bound, rate


def in_flight_bound(*, rate: float) -> int:
    """How many syncs may be in flight: `AHEAD_SECONDS` of work at the measured rate, never below the floor."""
    ahead = float(getattr(settings, "BASTION_SYNC_DISPATCH_AHEAD_SECONDS", 20.0))
    floor = int(getattr(settings, "BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT", 100))
    return max(floor, math.ceil(rate * ahead))


def in_flight(*, now: datetime) -> InFlight:
    """Active sync jobs that hold or wait for a worker, plus starts sent and not yet run; per organization too."""
    result = InFlight()
    jobs = (
        DataSyncJob.objects.filter(status__in=ACTIVE_JOB_STATUSES, job_type=JobType.SYNC)
        .filter(Q(resume_at__isnull=True) | Q(resume_at__lte=now))
        .values("organization_id")
        .annotate(count=Count("id"))
    )
    for row in jobs:
        result.by_organization[str(row["organization_id"])] += row["count"]
    client = redis_client()
    if client is not None:
        with client.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(SENT_KEY, "-inf", now.timestamp() - SENT_HORIZON_SECONDS)
            pipe.zrange(SENT_KEY, 0, -1)
            _removed, members = pipe.execute()
        for member in members:
            result.by_organization[member.decode().partition(":")[0]] += 1
    result.total = sum(result.by_organization.values())
    return result


def starts_sent_record(*, sources: list[tuple[Any, Any]], at: float) -> None:
    """Remember (organization id, data source id) of starts just sent until a worker runs them."""
    client = redis_client()
    if client is None or not sources:
        return
    client.zadd(SENT_KEY, {f"{organization_id}:{source_id}": at for organization_id, source_id in sources})


def start_run_record(*, organization_id: Any, data_source_id: Any) -> None:
    """A worker ran a sent start (a job now exists, or the source could not start): it is no longer waiting."""
    client = redis_client()
    if client is None:
        return
    try:
        client.zrem(SENT_KEY, f"{organization_id}:{data_source_id}")
    except Exception:  # noqa: BLE001 - the start happened; the entry only counts until SENT_HORIZON_SECONDS
        logger.warning("sync.dispatch.start_unrecorded", extra={"data_source": str(data_source_id)}, exc_info=True)


def dispatch_state_record(*, due: int, sent: int, in_flight_before: int, bound: int, rate: float, at: float) -> None:
    """Keep the tick's figures for /metrics: due, held back (due and not sent), in flight, bound, measured rate."""
    client = redis_client()
    if client is None:
        return
    state = {"due": due, "held_back": max(0, due - sent), "in_flight": in_flight_before + sent, "bound": bound, "rate": rate, "at": at}
    client.hset(STATE_KEY, mapping=state)  # no expiry: with beat down, the last tick's age keeps growing on /metrics


def dispatch_state() -> dict[str, float]:
    """The last tick's figures (empty without Redis or before the first tick)."""
    client = redis_client()
    if client is None:
        return {}
    return {key.decode(): float(value) for key, value in client.hgetall(STATE_KEY).items()}
