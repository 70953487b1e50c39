"""One way to read untrusted JSON: bounded nesting, no NUL characters (PostgreSQL text and jsonb cannot hold U+0000).

Every API body (common.parsers.JSONParser) and every webhook delivery (sync.services.webhooks) goes through here, so a
payload nested a thousand deep or carrying "\\u0000" is a clear 400, never a RecursionError or a database error (500).
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100


class UnsafeJson(ValueError):
    """The JSON is valid but Bastion will not store it (too deep, NUL characters), or it is not valid JSON."""


def check_value(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """Raise UnsafeJson if a decoded value nests deeper than `max_depth` or has a NUL in any key or string; return it."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise UnsafeJson("Text may not contain NUL (\\u0000) characters.")
        elif isinstance(item, dict | list | tuple):
            if depth > max_depth:
                raise UnsafeJson(f"JSON may be nested at most {max_depth} levels deep.")
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and "\x00" in key:
                        raise UnsafeJson("Text may not contain NUL (\\u0000) characters.")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return value


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON: accepted here, they would fail later when the value is rendered back.
    raise UnsafeJson(f"{name} is not a JSON value.")


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads for untrusted input: UnsafeJson (a ValueError) for invalid, too deep or NUL-carrying JSON."""
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except RecursionError:
        raise UnsafeJson(f"JSON may be nested at most {max_depth} levels deep.") from None
    except UnsafeJson:
        raise
    except (ValueError, UnicodeDecodeError) as error:
        raise UnsafeJson(f"The body is not valid JSON: {error}") from None
    return check_value(value, max_depth=max_depth)
