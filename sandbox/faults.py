"""Fault knobs applied before every vendor request: latency, 429 storms, 5xx, outages, revoked tokens."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from flask import Response

from sandbox.state import STORE

ErrorRenderer = Callable[[int, str], Response]


def apply_faults(vendor: str, *, rate_limited: Callable[[int], Response], error: ErrorRenderer) -> Response | None:
    """Return the fault response to send instead of the real one, or None to proceed."""
    faults = STORE.faults_for(vendor)
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)
    with STORE.lock:
        if faults.down:
            return _with_retry_after(error(503, "service unavailable (sandbox outage knob)"), faults.error_retry_after)
        if faults.rate_limit_next > 0:
            faults.rate_limit_next -= 1
            return rate_limited(faults.retry_after)
        if faults.error_next > 0:
            faults.error_next -= 1
            return _with_retry_after(error(faults.error_status, "injected failure (sandbox fault knob)"), faults.error_retry_after)
    if faults.error_rate and random.random() < faults.error_rate:
        return _with_retry_after(error(faults.error_status, "injected failure (sandbox fault knob)"), faults.error_retry_after)
    return None


def _with_retry_after(response: Response, seconds: int | None) -> Response:
    if seconds is not None:
        response.headers["Retry-After"] = str(seconds)
    return response
