"""Read the next page of a sync while the current one is written, for connectors whose paging lives in the process (LDAP).

The read runs in one background thread per worker process; the step that reaches that page takes it instead of reading. A
page nobody takes (the job moved to another process, was cancelled, or a step was superseded) is dropped after a while.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings

from integrations.connectors.base import Page

UNCLAIMED_SECONDS = 120.0
_lock = threading.Lock()
_pending: dict[str, tuple[str, float, Future]] = {}  # job id → (position key, started at, the read)
_pool: tuple[int, ThreadPoolExecutor] | None = None  # created in the process that uses it (a forked worker gets its own)


def enabled() -> bool:
    """Off unless BASTION_SYNC_READ_AHEAD is set: on 2026-12-07 (2 CPUs, loaded) the 10,000-entry directory sync took 25.8 s
    with it and 23.1 s without; the reading thread's CPU-bound decoding delays the writer's database round trips (GIL)."""
    return bool(settings.BASTION_SYNC_READ_AHEAD)


def _position_key(sequence: int, position: Any) -> str:
    return f"{sequence}:{json.dumps(position, sort_keys=True, default=str)}"


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-read-ahead"))
    return _pool[1]


def start(job_id: Any, sequence: int, position: Any, read: Callable[[], Page]) -> None:
    """Begin reading page `sequence` (at `position`) of the job in the background; replaces any earlier read of the job."""
    now = time.monotonic()
    with _lock:
        for stale_job, (_, started, _future) in list(_pending.items()):
            if now - started > UNCLAIMED_SECONDS:
                _pending.pop(stale_job, None)
        _pending[str(job_id)] = (_position_key(sequence, position), now, _executor().submit(read))


def take(job_id: Any, sequence: int, position: Any) -> Page | None:
    """The page read ahead for exactly this job, sequence and position (waiting for it if needed); None if there is none.
    An error of the read is raised here, where the step would have met it reading the page itself."""
    with _lock:
        entry = _pending.get(str(job_id))
        if entry is not None and entry[0] == _position_key(sequence, position):
            _pending.pop(str(job_id), None)
        else:
            entry = None
    if entry is None:
        settle()
        return None
    return entry[2].result()


def settle() -> None:
    """Wait until no read-ahead runs in this process: a connector is never used by two threads at once (reads that are
    not taken keep their pages for their own jobs)."""
    with _lock:
        running = [future for _, _, future in _pending.values() if not future.done()]
    if running:
        wait(running)


def forget(job_id: Any) -> None:
    """Drop the job's read-ahead (its step was superseded or failed), once it has stopped using the connector."""
    with _lock:
        entry = _pending.pop(str(job_id), None)
    if entry is not None:
        wait([entry[2]])
