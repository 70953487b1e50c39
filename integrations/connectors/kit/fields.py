"""Field discovery from live samples, for vendors without a schema endpoint."""

from __future__ import annotations

from typing import Any


def value_type(value: Any) -> str:
    """The FieldInfo type a sample value shows: boolean, number, array, object, else string (refine strings per vendor)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"
