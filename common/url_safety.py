"""One rule for every URL Bastion stores or renders from config or a vendor: absolute http(s) only, else nothing.

Browsers strip leading and trailing C0 controls and spaces and drop tabs and newlines anywhere before they read a scheme,
so "java\\tscript:" and " javascript:" are still javascript: to them; the same normalisation happens here first.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

MAX_URL_LENGTH = 4096
HTTP_SCHEMES = ("http", "https")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
_TAB_AND_NEWLINES = str.maketrans("", "", "\t\n\r")


def _normalised(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return value.strip(_C0_AND_SPACE).translate(_TAB_AND_NEWLINES)


def safe_http_url(value: object) -> str:
    """The URL when it is an absolute http(s) URL with a host, else "" (never a javascript:, data: or vbscript: link)."""
    text = _normalised(value)
    if not text or len(text) > MAX_URL_LENGTH or any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return ""
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:  # an unbalanced IPv6 bracket, a bad port
        return ""
    if parts.scheme.lower() not in HTTP_SCHEMES or not host:
        return ""
    return text


def url_problem(value: object, *, schemes: tuple[str, ...] = HTTP_SCHEMES) -> str:
    """Why a configured URL is refused ("" when it is fine): the scheme must be one of `schemes` (http and https by default)."""
    text = _normalised(value)
    if not text:
        return "must be a URL"
    if len(text) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    if text != str(value).strip() or any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return "contains control characters"
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in schemes:
        return f"must start with {' or '.join(s + '://' for s in schemes)} (not {parts.scheme + ':' if parts.scheme else 'no scheme'})"
    if not host:
        return "has no host name"
    return ""


@functools.lru_cache(maxsize=4096)
def _is_link_key(key: object) -> bool:
    # Cached: a sync asks about the same few field names for every record of every page.
    name = str(key).lower()
    return name in ("url", "href", "link") or name.endswith(("_url", "_href", "_link", "url"))


def link_fields_sanitized(data: object) -> object:
    """A copy of a JSON value whose link-named string fields ("url", "*_url", "href", "link") hold http(s) URLs or ""."""
    if isinstance(data, dict):
        copied = {}
        for key, value in data.items():
            if isinstance(value, str):
                copied[key] = safe_http_url(value) if _is_link_key(key) else value
            elif isinstance(value, dict | list):
                copied[key] = link_fields_sanitized(value)
            else:  # numbers, booleans, null: nothing to sanitize (and a record has many)
                copied[key] = value
        return copied
    if isinstance(data, list):
        return [link_fields_sanitized(item) if isinstance(item, dict | list) else item for item in data]
    return data
