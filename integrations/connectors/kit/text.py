"""Text shaping for vendor fields: one line, truncation, slugs. Linear-time: no regex backtracks on user text."""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"


def single_line(value: str, limit: int | None = None) -> str:
    """Collapse every run of whitespace (line and paragraph separators included) to one space, then truncate."""
    text = " ".join(value.split())
    return truncate(text, limit) if limit else text


def truncate(value: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut."""
    if len(value) <= limit:
        return value
    return value[: max(0, limit - 1)].rstrip() + ELLIPSIS


def slug(value: str, *, limit: int, allowed: str = "-_", separator: str = "-", fallback: str = "item") -> str:
    """Lowercase ASCII letters, digits and `allowed`; every other run of characters becomes one `separator`."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    out: list[str] = []
    for char in ascii_text:
        if char.isalnum() or char in allowed:
            out.append(char)
        elif out and out[-1] != separator:
            out.append(separator)
    text = "".join(out).strip(separator)[:limit].strip(separator)
    return text or fallback
