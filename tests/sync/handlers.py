"""Event handlers used by the webhook tests (settings.BASTION_EVENT_HANDLERS)."""

from __future__ import annotations

CALLS: list[tuple[str, list[dict]]] = []


def record(integration_id: str, events: list[dict]) -> None:
    CALLS.append((integration_id, events))


def explode(integration_id: str, events: list[dict]) -> None:
    raise ValueError("playbook store unavailable")
