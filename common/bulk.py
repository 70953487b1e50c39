"""PostgreSQL bulk-write helpers shared by the records store and the people directory: COPY into TEMP staging tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from django.db import connection

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
