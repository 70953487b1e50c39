"""PostgreSQL bulk-write helpers shared by the records store and the people directory: COPY into TEMP staging tables."""

from __future__ import annotations

import gc
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import uuid_utils
from django.db import connection
from uuid_utils.compat import uuid7

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
# orjson writes the same bytes as the json module for what vendors send, about five times faster; anything it refuses
# (integers past 64 bits, lone surrogates) takes the json module's path (see sync.services.records for the details).
ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def stage_rows(cursor: Any, table: str, columns: str, rows: Iterable[Sequence[Any]]) -> None:
    """Empty a TEMP staging table (created once per session) and COPY rows into it (psycopg3 cursor.copy, text format).

    ON COMMIT DELETE ROWS empties it at every commit without catalog churn; the DELETE covers a batch of this same transaction
    that already used it (a webhook delivery or a test may merge several batches in one transaction). Call inside a transaction.
    """
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS")
    cursor.execute(f"DELETE FROM {table}")
    names = ", ".join(column.split()[0] for column in columns.split(","))
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def time_ordered_id() -> uuid.UUID:
    """A new primary key for rows written in bulk: a UUIDv7 (RFC 9562), so a large load appends to its indexes' right edge.

    Random v4 keys put each of a million new people on a random page of every index that holds their id (the primary key,
    identities' person_id); with v7 the pages a load touches stay few and in memory. Ids still never repeat or guess."""
    return uuid7()


def time_ordered_id_text() -> str:
    """time_ordered_id as text, for a uuid column in a COPY row: no uuid.UUID built here nor dumped by psycopg (0.5 µs a row
    instead of about 3 µs; 0.2-0.4 s of a 100,000-record import)."""
    return str(uuid_utils.uuid7())


def raw_cursor() -> Any:
    """The psycopg3 cursor under Django's connection (same transaction); errors are mapped to django.db errors by the caller's wrapper."""
    connection.ensure_connection()
    return connection.connection.cursor()


def json_text(value: Any) -> str:
    """Compact JSON for a jsonb column in a COPY row."""
    try:
        return orjson.dumps(value, option=ORJSON_OPTIONS, default=str).decode()
    except (orjson.JSONEncodeError, TypeError):
        return _compact(value)


def deferred_checks_beside(work: Callable[[], None]) -> None:
    """Have PostgreSQL check the transaction's deferred constraints (foreign keys) now, while `work` runs here; errors raise after.

    The checks were most of a batch's commit: sent through a psycopg pipeline they run on the server while this process does
    CPU work (the next batch's parsing), instead of one waiting for the other. `work` must not use the database or raise.
    Elsewhere (SQLite) `work` simply runs and the checks stay at commit.
    """
    if connection.vendor != "postgresql":
        work()
        return
    with connection.wrap_database_errors:
        raw = connection.connection
        with raw.pipeline(), raw.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            work()


# Measured on 2026-12-07 (300,000-row CSV import, 2 CPUs): the default thresholds (700, 10, 10) spent a third of the
# import's Python time in the cyclic collector, re-walking each batch's rows and the long-lived Django objects; these
# cost it nearly nothing and still collect every 50,000 net new containers (memory stays bounded by a batch or two).
BULK_GC_THRESHOLDS = (50_000, 20, 100)


_relaxed_lock = threading.Lock()
_relaxed: list[Any] = [0, None]  # loads running in this process (a threaded worker runs several), thresholds before the first


@contextmanager
def collector_relaxed() -> Iterator[None]:
    """Run a bulk load with the cyclic garbage collector's thresholds raised (BULK_GC_THRESHOLDS), then restore them.

    The thresholds belong to the process: with loads on several threads, the last one to finish restores what the first found."""
    with _relaxed_lock:
        if _relaxed[0] == 0:
            _relaxed[1] = gc.get_threshold()
            gc.set_threshold(*BULK_GC_THRESHOLDS)
        _relaxed[0] += 1
    try:
        yield
    finally:
        with _relaxed_lock:
            _relaxed[0] -= 1
            if _relaxed[0] == 0:
                gc.set_threshold(*_relaxed[1])
