"""Slack's channel-name rule, the only one in Bastion: the playbook renderer (FieldShape transform) and the connector use it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

NAME_LIMIT = 80
RENDERED_FALLBACK = "bastion-channel"  # what a playbook's channel name becomes when nothing of it is left
_DISALLOWED = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")


def _text(value: Any) -> str:
    """A rendered value as text the way the playbook renderer shows it (a picked record by its name, a list joined)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return next((str(value[key]) for key in ("name", "title", "email", "url", "amount") if value.get(key)), "")
    if isinstance(value, list):
        return ", ".join(text for text in (_text(item) for item in value) if text)
    return str(value)


def channel_name(raw: Any, *, fallback: str = "bastion") -> str:
    """Lowercase ASCII letters, digits, '-' and '_', at most 80 characters: every other run of characters becomes one '-'."""
    folded = unicodedata.normalize("NFKD", _text(raw)).encode("ascii", "ignore").decode().lower()
    name = _DASHES.sub("-", _DISALLOWED.sub("-", folded)).strip("-_")
    return name[:NAME_LIMIT].rstrip("-_") or fallback


def rendered_channel_name(value: Any) -> str:
    """The create_channel `name` FieldShape transform: the same rule, falling back to 'bastion-channel'."""
    return channel_name(value, fallback=RENDERED_FALLBACK)
