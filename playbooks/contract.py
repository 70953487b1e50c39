"""What the playbook engine reads of the connector contract: an action's declaration, and the outcome a step stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from integrations.connectors.base import ActionResult, ActionSpec, FieldShape, TrackedKind, TrackedObject
from integrations.registry import UnknownConnector, get_connector_class

# The keys of StepRun.result that hold what the connector said of the outcome (next to "data", its raw answer).
OUTCOME_KEYS = ("data", "tracked", "link_text", "summary")


def action_spec(connector_key: str, action: str) -> ActionSpec | None:
    """The step's action as its connector declares it (None: connector not installed, or no such action)."""
    try:
        return get_connector_class(connector_key).manifest.action(action)
    except (UnknownConnector, KeyError):
        return None


def action_fields(connector_key: str, action: str) -> Mapping[str, FieldShape]:
    spec = action_spec(connector_key, action)
    return spec.fields if spec is not None else {}


def tracks_meeting(connector_key: str, action: str) -> bool:
    spec = action_spec(connector_key, action)
    return spec is not None and spec.tracks == TrackedKind.MEETING


def outcome_stored(result: ActionResult) -> dict[str, Any]:
    """What a succeeded step keeps of its ActionResult, JSON-ready: the vendor's data, the tracked object, the war room's words."""
    stored: dict[str, Any] = {"data": dict(result.data or {})}
    if result.tracked is not None:
        stored["tracked"] = asdict(result.tracked)
    if result.link_text:
        stored["link_text"] = result.link_text
    if result.summary:
        stored["summary"] = result.summary
    return stored


def tracked_restored(stored: Any) -> TrackedObject | None:
    if not isinstance(stored, Mapping):
        return None
    known = {name: stored[name] for name in ("title", "owner", "status", "is_done", "url", "key", "details") if name in stored}
    return TrackedObject(**known)


def outcome_restored(result: Mapping[str, Any] | None, *, external_id: str, url: str) -> ActionResult:
    """An earlier step's stored outcome as the ActionResult a reuse records again (created=False)."""
    result = result or {}
    return ActionResult(
        external_id=external_id,
        url=url,
        data=dict(result.get("data") or {}),
        created=False,
        tracked=tracked_restored(result.get("tracked")),
        link_text=str(result.get("link_text") or ""),
        summary=str(result.get("summary") or ""),
    )
