"""A test-only task that stays in flight until the test releases it (imported by the worker with `--include`)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.broker_restart.hold_until_released", acks_late=True)
def hold_until_released(marker_dir: str, token: str, hold: bool = True) -> None:
    """Note the start, wait for the test's release file (bounded), then note the completion."""
    directory = Path(marker_dir)
    attempt = uuid.uuid4().hex[:8]
    (directory / f"{token}.started.{attempt}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while hold and not (directory / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (directory / f"{token}.completed.{attempt}").write_text(str(os.getpid()))
