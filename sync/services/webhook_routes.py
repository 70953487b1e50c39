"""The per-process fast path of webhook intake: where a delivery goes and the key it is verified with, the flood counter
(one Redis round trip), and the inbox insert (one statement, its own durable commit)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from integrations.models import Integration, IntegrationCredential
from sync.models import WebhookDelivery


@dataclass(frozen=True)
class IntakeRoute:
    """What intake needs for one integration: the row (organization id, config), its connector class and verification key."""

    integration: Integration
    connector_class: Any
    key: str
    expires_at: float


# Decrypting the key is cheap; the two reads it needs are not (they were a third of each delivery's cost). A route is
# dropped in this process the moment its integration or a credential is saved or deleted; other processes drop it after
# BASTION_WEBHOOK_ROUTE_TTL_SECONDS, the longest a rotated or removed key may still verify there.
_routes: dict[str, IntakeRoute] = {}


def route_ttl() -> float:
    return float(settings.BASTION_WEBHOOK_ROUTE_TTL_SECONDS)


def route_get(integration_id: str) -> IntakeRoute | None:
    route = _routes.get(integration_id)
    if route is None or route.expires_at < time.monotonic():
        return None
    return route


def route_put(integration: Integration, connector_class: Any, key: str) -> IntakeRoute:
    route = IntakeRoute(integration, connector_class, key, time.monotonic() + route_ttl())
    if route_ttl() > 0:
        _routes[str(integration.pk)] = route
    return route


def route_forget(integration_id: Any) -> None:
    _routes.pop(str(integration_id), None)


def _forget_now_and_at_commit(integration_id: Any) -> None:
    # Again at commit: a delivery read between the save and its commit must not keep the old key for a whole TTL.
    route_forget(integration_id)
    transaction.on_commit(lambda: route_forget(integration_id))


@receiver([post_save, post_delete], sender=Integration, dispatch_uid="sync.webhook_route.integration")
def _integration_changed(sender: Any, instance: Integration, **kwargs: Any) -> None:
    _forget_now_and_at_commit(instance.pk)


@receiver([post_save, post_delete], sender=IntegrationCredential, dispatch_uid="sync.webhook_route.credential")
def _credential_changed(sender: Any, instance: IntegrationCredential, **kwargs: Any) -> None:
    _forget_now_and_at_commit(instance.integration_id)


_redis_lock = threading.Lock()
_redis_clients: dict[str, redis.Redis] = {}


def _redis_client() -> redis.Redis | None:
    """One client per process for the cache's Redis (Django's backend builds a new client object on every call)."""
    if not isinstance(caches["default"], RedisCache):
        return None
    location = settings.CACHES["default"]["LOCATION"]
    location = location[0] if isinstance(location, list | tuple) else str(location).split(",")[0]
    client = _redis_clients.get(location)
    if client is None:
        with _redis_lock:
            client = _redis_clients.setdefault(location, redis.Redis.from_url(location))
    return client


def flood_count(key: str, *, window_seconds: int = 2) -> int:
    """Count one request under `key` (a per-second bucket) and return the bucket's total: INCR + EXPIRE in one round trip."""
    client = _redis_client()
    if client is None:  # another cache backend (development, some tests): two calls through Django's cache API
        cache.add(key, 0, timeout=window_seconds)
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add and incr: this request starts the new second
            cache.add(key, 1, timeout=window_seconds)
            return 1
    return int(client.eval(_COUNT_SCRIPT, 1, cache.make_and_validate_key(key), window_seconds))


# INCR, and EXPIRE on the bucket's first count: one round trip, and no pipeline object built per request.
_COUNT_SCRIPT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"


# The columns a delivery brings; every other column gets its model default, written into the statement once per process.
_INSERT_VALUES = ("id", "organization_id", "integration_id", "delivery_id", "event_types", "events", "received_at", "created_at", "updated_at")
_INSERT_SQL: str | None = None
_INSERT_ORDER: list[str] = []


def _insert_sql() -> str:
    """INSERT of every column, a redelivery counted on the existing row instead; (xmax = 0) tells the two apart.

    Only a delivery's own values are parameters; the defaults (status, attempts, result, ...) are literals, so each request
    adapts nine values instead of fifteen and builds no model instance."""
    global _INSERT_SQL
    if _INSERT_SQL is None:
        meta = WebhookDelivery._meta
        quote = connection.ops.quote_name
        table = quote(meta.db_table)
        columns, values = [], []
        for model_field in meta.concrete_fields:
            columns.append(quote(model_field.column))
            if model_field.attname in _INSERT_VALUES:
                values.append("%s")
            else:
                literal = connection.ops.compose_sql("%s", [model_field.get_db_prep_save(model_field.get_default(), connection)])
                values.append(literal.replace("%", "%%"))
        _INSERT_ORDER[:] = [model_field.attname for model_field in meta.concrete_fields if model_field.attname in _INSERT_VALUES]
        if len(_INSERT_ORDER) != len(_INSERT_VALUES):
            raise RuntimeError(f"WebhookDelivery lacks a column intake writes: {set(_INSERT_VALUES) - set(_INSERT_ORDER)}")
        _INSERT_SQL = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)}) "
            f"ON CONFLICT (integration_id, delivery_id) DO UPDATE SET duplicates = {table}.duplicates + 1 RETURNING id, (xmax = 0)"
        )
    return _INSERT_SQL


def inbox_insert(*, integration: Integration, delivery_id: str, event_types: list[str], events: list[dict[str, Any]], received_at: Any) -> tuple[Any, bool]:
    """Store a delivery in the inbox in one statement; returns (row id, True if new / False if a redelivery). PostgreSQL only.

    Outside a transaction the statement is its own (durable) commit: one round trip per accepted delivery."""
    now = timezone.now()
    given = {
        "id": uuid.uuid4(),
        "organization_id": integration.organization_id,
        "integration_id": integration.pk,
        "delivery_id": delivery_id,
        "event_types": _json_field("event_types").get_db_prep_save(event_types, connection),
        "events": _json_field("events").get_db_prep_save(events, connection),
        "received_at": received_at,
        "created_at": now,
        "updated_at": now,
    }
    sql = _insert_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [given[attname] for attname in _INSERT_ORDER])
        row_id, inserted = cursor.fetchone()
    return row_id, bool(inserted)


def _json_field(name: str) -> Any:
    return WebhookDelivery._meta.get_field(name)


# Accepted deliveries wait in a Redis list; the first push while no drain is scheduled sends one drain task, which hands
# each delivery to its own processing task. The request pays one EVAL instead of a Celery publish (a third of its CPU).
PENDING_KEY = "bastion:webhooks:pending"
DRAIN_FLAG_KEY = "bastion:webhooks:drain-scheduled"
DRAIN_FLAG_SECONDS = 10  # a drain that died is replaced by the next push after this, or by the reaper's nudge
DRAIN_BATCH = 20  # small: a drain killed mid-batch strands at most this many
_PUSH_SCRIPT = "redis.call('RPUSH', KEYS[1], ARGV[1]) if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 1 end return 0"


def pending_push(delivery_pk: Any) -> bool | None:
    """Queue a stored delivery for processing; True when this push must send the drain task, None without Redis."""
    client = _redis_client()
    if client is None:
        return None
    return bool(client.eval(_PUSH_SCRIPT, 2, PENDING_KEY, DRAIN_FLAG_KEY, str(delivery_pk), DRAIN_FLAG_SECONDS))


def pending_claim_drain() -> bool:
    """Take the drain flag when deliveries wait and no drain is scheduled (the reaper's nudge after a lost drain)."""
    client = _redis_client()
    return bool(client is not None and client.llen(PENDING_KEY) and client.set(DRAIN_FLAG_KEY, "1", nx=True, ex=DRAIN_FLAG_SECONDS))


def pending_drain(hand_over: Any) -> int:
    """Hand every waiting delivery id to `hand_over`, then release the flag; returns how many were handed over.

    Batches are popped atomically, so drains that overlap (a flag that expired while no worker ran) never share an id.
    A drain killed between a pop and its hand-over leaves that batch's rows "received" for an admin replay."""
    client = _redis_client()
    if client is None:
        return 0
    handed = 0
    while True:
        client.expire(DRAIN_FLAG_KEY, DRAIN_FLAG_SECONDS)
        batch = client.lpop(PENDING_KEY, DRAIN_BATCH)
        if batch:
            for delivery_pk in batch:
                hand_over(delivery_pk.decode())
            handed += len(batch)
            continue
        client.delete(DRAIN_FLAG_KEY)
        # A push between the empty pop and the delete found the flag set and sent nothing: take the flag back for it.
        if not pending_claim_drain():
            return handed
