"""Calls a connector makes on helper threads (lookups side by side) are logged by the thread that started them.

The call log is written through the recording thread's database connection: helper threads would each open their own,
outside the step's transaction, and leave it open.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

# (records waiting, the thread that records them): calls made on helper threads inside call_records_deferred().
_deferred_records: ContextVar[tuple[list[tuple[Callable[[Any], None], Any]], int] | None] = ContextVar("bastion_deferred_call_records", default=None)


@contextmanager
def call_records_deferred() -> Iterator[None]:
    """Calls made on helper threads inside the block are recorded by this thread when it ends."""
    pending: list[tuple[Callable[[Any], None], Any]] = []
    token = _deferred_records.set((pending, threading.get_ident()))
    try:
        yield
    finally:
        _deferred_records.reset(token)
        for recorder, record in pending:
            try:
                recorder(record)
            except Exception:  # noqa: BLE001 - a failing metrics sink must not fail the vendor call
                logger.exception("http.record_failed", extra={"path": getattr(record, "path", "")})


def record_later(recorder: Callable[[Any], None], record: Any) -> bool:
    """On a helper thread inside call_records_deferred(): keep the record for the thread that started it (True)."""
    deferred = _deferred_records.get()
    if deferred is None or deferred[1] == threading.get_ident():
        return False
    deferred[0].append((recorder, record))
    return True
