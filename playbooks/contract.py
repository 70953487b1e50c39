"""What the playbook engine reads of the connector contract: an action's declaration, and the outcome a step stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from integrations.connectors.base import ActionResult, ActionSpec, FieldShape, Role, TrackedKind, TrackedObject
from integrations.registry import UnknownConnector, connectors_playing, get_connector_class

# The keys of StepRun.result that hold what the connector said of the outcome (next to "data", its raw answer).
OUTCOME_KEYS = ("data", "tracked", "link_text", "summary")
# Set on a running step whose action reported its object before its last call (kit.progress.output_ready).
OUTPUT_EARLY_KEY = "output_early_at"

# A step's connector_key "@chat" names a role ("the collaboration channel"): the organization's connected tools decide who plays it.
ROLE_PREFIX = "@"
ROLE_NAMES = {
    Role.CHAT: "collaboration channel",
    Role.MEETING: "meeting",
    Role.DOCUMENTS: "documents",
    Role.TASKS: "task tracker",
    Role.SIGNATURES: "e-signature",
}


def step_role(connector_key: str) -> Role | None:
    """The role a step's connector_key names ("@chat" → Role.CHAT), None for a concrete connector key."""
    if not connector_key.startswith(ROLE_PREFIX):
        return None
    try:
        return Role(connector_key[len(ROLE_PREFIX) :])
    except ValueError:
        return None


def connector_label(connector_key: str) -> str:
    """How a step's connector reads to a person: the vendor's name, or the role and who can play it."""
    role = step_role(connector_key)
    if role is not None:
        players = " or ".join(get_connector_class(key).manifest.name for key in connectors_playing(role)) or "no installed tool"
        return f"Any {ROLE_NAMES[role]} tool: {players}"
    try:
        return get_connector_class(connector_key).manifest.name
    except UnknownConnector:
        return connector_key.replace("_", " ").title()


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
