"""Send a non-idempotent create exactly once: never blindly resend after an answer that may hide a success."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from integrations.errors import ApiHostError, ApiRateLimited
from integrations.http import HttpClient

logger = logging.getLogger(__name__)
T = TypeVar("T")


def create_once(client: HttpClient, send: Callable[[], T], find_existing: Callable[[], T | None], *, attempts: int = 4, what: str = "object") -> T:
    """Call `send` (which must pass retry=False to the client) and recover from ambiguous failures.

    A 429 means the vendor refused before acting, so resending is safe. A 5xx or timeout may hide a
    success: look for the object by its deterministic marker first, and resend only if it is absent.
    """
    for attempt in range(1, attempts + 1):
        try:
            return send()
        except ApiRateLimited as exc:
            if attempt == attempts or exc.retry_after > client.max_inline_wait:
                raise
            wait = exc.retry_after
        except ApiHostError as exc:
            existing = find_existing()
            if existing is not None:
                logger.info("connector.create_once.recovered", extra={"what": what, "attempt": attempt, "error": type(exc).__name__})
                return existing
            if attempt == attempts:
                raise
            wait = client.backoff(attempt)
        logger.info("connector.create_once.retry", extra={"what": what, "attempt": attempt, "wait": round(wait, 2)})
        client.sleep(wait)
    raise AssertionError("unreachable")  # the loop either returns or raises
