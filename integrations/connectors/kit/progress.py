"""An action reports what it made the moment it exists, before its remaining calls, so the steps that need it can start.

A Slack channel exists after conversations.create; setting its topic is one more round trip that the invitations and the
briefing do not need. `output_ready(result)` hands the engine the result the action will return (its id, link and data
final), and the engine lets dependent steps start on it while the action finishes. Outside the engine it does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from integrations.connectors.results import ActionResult

logger = logging.getLogger(__name__)

_listener: ContextVar[Callable[[ActionResult], None] | None] = ContextVar("bastion_action_output", default=None)


def output_ready(result: ActionResult) -> None:
    """The object exists and `result` is what the action will return: dependents may start. Never fails the action."""
    listener = _listener.get()
    if listener is None:
        return
    try:
        listener(result)
    except Exception:  # noqa: BLE001 - reporting early is an optimisation: the action goes on and reports at its end
        logger.exception("connectors.output_ready.failed")


@contextmanager
def output_listener(callback: Callable[[ActionResult], None]) -> Iterator[None]:
    """While the block runs, output_ready() calls `callback` (the engine's hook for one step)."""
    token = _listener.set(callback)
    try:
        yield
    finally:
        _listener.reset(token)
