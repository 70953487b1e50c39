"""The template filters: small, total functions (None passes through) over JSON values, times and text."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import re2

from integrations.connectors.kit.markers import MARKER_PREFIX, idempotency_marker
from integrations.connectors.kit.text import single_line, slug, truncate

MAX_PATTERN = 500


def _none_safe(fn):
    def wrapper(value: Any, *args: Any) -> Any:
        return None if value is None else fn(value, *args)

    wrapper.__name__ = fn.__name__
    return wrapper


def to_datetime(value: Any) -> datetime | None:
    """ISO 8601, RFC 2822 (Twilio's dates) or epoch seconds → an aware datetime; None when unreadable."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, tz=UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _default(value: Any, fallback: Any = "") -> Any:
    return fallback if value is None else value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | Mapping) else 0


def _join(value: Any, separator: str = ",") -> str:
    if value is None:
        return ""
    return separator.join("" if item is None else str(item) for item in value) if isinstance(value, list | tuple) else str(value)


def _pluck(value: Any, name: str) -> list[Any]:
    return [(item.get(name) if isinstance(item, Mapping) else None) for item in (value or []) if isinstance(item, Mapping)] if isinstance(value, list) else []


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list | tuple) and value else None


def _last(value: Any) -> Any:
    return value[-1] if isinstance(value, list | tuple) and value else None


def _marker(value: Any, length: int = 32, prefix: str = MARKER_PREFIX) -> str | None:
    return None if value is None else idempotency_marker(str(value), length=int(length), prefix=prefix)


def _matches(value: Any, pattern: str) -> bool:
    """re2 (linear time, no backtracking) search of `pattern` in the value's text."""
    if value is None:
        return False
    if len(pattern) > MAX_PATTERN:
        raise ValueError("pattern too long")
    return re2.search(pattern, str(value)) is not None


def _iso(value: Any, timespec: str = "auto") -> str | None:
    moment = to_datetime(value)
    return None if moment is None else moment.isoformat(timespec=timespec)


def _iso_z(value: Any, timespec: str = "seconds") -> str | None:
    """ISO 8601 in UTC with a Z (2024-05-01T10:00:00Z; timespec milliseconds for HubSpot-style stamps)."""
    moment = to_datetime(value)
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def _date(value: Any) -> str | None:
    moment = to_datetime(value)
    return None if moment is None else moment.date().isoformat()


def _strftime(value: Any, fmt: str) -> str | None:
    moment = to_datetime(value)
    return None if moment is None else moment.strftime(fmt)


def _epoch(value: Any) -> int | None:
    moment = to_datetime(value)
    return None if moment is None else int(moment.timestamp())


def _epoch_ms(value: Any) -> int | None:
    moment = to_datetime(value)
    return None if moment is None else int(moment.timestamp() * 1000)


def _plus_seconds(value: Any, seconds: Any) -> datetime | None:
    moment = to_datetime(value)
    return None if moment is None else moment + timedelta(seconds=float(seconds or 0))


def _minus_seconds(value: Any, seconds: Any) -> datetime | None:
    moment = to_datetime(value)
    return None if moment is None else moment - timedelta(seconds=float(seconds or 0))


def _sorted_pairs(value: Any) -> str:
    """name+value of every entry sorted by name (several values of one name sorted too): Twilio's signed parameters."""
    if not isinstance(value, Mapping):
        return ""
    out = []
    for name in sorted(value):
        values = value[name] if isinstance(value[name], list) else [value[name]]
        for item in sorted(str(v) for v in values):
            out.append(f"{name}{item}")
    return "".join(out)


def _get(value: Any, key: Any, fallback: Any = None) -> Any:
    return value.get(key, fallback) if isinstance(value, Mapping) else fallback


def _keys(value: Any) -> list[Any]:
    return list(value) if isinstance(value, Mapping) else []


def _split(value: Any, separator: str = ",") -> list[str]:
    return [part.strip() for part in str(value).split(separator) if part.strip()] if value not in (None, "") else []


def _replace(value: Any, old: str, new: str) -> str:
    return str(value).replace(str(old), str(new))


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _compact(value: Any) -> Any:
    """A list without None/"" items, or a mapping without None values."""
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if v is not None}
    return [item for item in value if item not in (None, "")] if isinstance(value, list) else value


_HTML_TAG = re2.compile(r"<[^>]*>")


def _plain_text(value: Any) -> str:
    """HTML (Intercom's message bodies) as text: tags become spaces, entities are decoded; whitespace is left to single_line."""
    return html.unescape(_HTML_TAG.sub(" ", str(value)))


def _where(value: Any, key: str, wanted: Any, ignore_case: bool = False) -> list[Any]:
    """The items of a list of mappings whose `key` equals `wanted` (a section found by its name among a project's)."""

    def same(item: Any) -> bool:
        if not isinstance(item, Mapping) or item.get(key) is None:
            return False
        if ignore_case:
            return str(item[key]).strip().lower() == str(wanted).strip().lower()
        return item[key] == wanted

    return [item for item in value if same(item)] if isinstance(value, list) else []


def _reshape(value: Any, *fields: str) -> Any:
    """Keep (and rename) keys of a mapping, or of each mapping in a list: reshape('roleName=role', 'email') → {roleName, email}."""
    pairs = [(f.partition("=")[0], f.partition("=")[2] or f.partition("=")[0]) for f in map(str, fields)]

    def one(item: Any) -> Any:
        return {new: item.get(old) for new, old in pairs} if isinstance(item, Mapping) else item

    return [one(item) for item in value] if isinstance(value, list) else one(value)


def _fill_roles(value: Any, roles: Any = None) -> Any:
    """Give each person one of the named roles: whoever names a role keeps it (in the roles' own spelling), the others take
    the roles nobody named, in order; a person left over keeps what they had (the vendor refuses it by name).
    fill_roles(template_roles) fills a signature template's roles from a team whose roles are Bastion's."""
    if not isinstance(value, list):
        return value
    names = [str(role) for role in (roles if isinstance(roles, list) else []) if role not in (None, "")]
    spelled = {name.casefold(): name for name in names}
    people = [dict(item) for item in value if isinstance(item, Mapping)]
    taken: set[str] = set()
    unmatched: list[dict[str, Any]] = []
    for person in people:
        role = spelled.get(str(person.get("role") or "").casefold())
        if role and role not in taken:
            taken.add(role)
            person["role"] = role
        else:
            unmatched.append(person)
    free = iter([name for name in names if name not in taken])
    for person in unmatched:
        person["role"] = next(free, person.get("role"))
    return people


FILTERS: dict[str, Any] = {
    "default": _default,
    "str": _none_safe(lambda v: v if isinstance(v, str) else json.dumps(v) if isinstance(v, bool) else str(v)),
    "int": _int,
    "float": _float,
    "bool": lambda v: bool(v),
    "lower": _none_safe(lambda v: str(v).lower()),
    "upper": _none_safe(lambda v: str(v).upper()),
    "strip": _none_safe(lambda v: str(v).strip()),
    "capitalize": _none_safe(lambda v: str(v).capitalize()),
    "length": _length,
    "join": _join,
    "pluck": _pluck,
    "reshape": _reshape,
    "fill_roles": _fill_roles,
    "first": _first,
    "last": _last,
    "get": _get,
    "keys": _keys,
    "list": _list,
    "compact": _compact,
    "where": _where,
    "split": _split,
    "replace": _none_safe(_replace),
    "json": lambda v: json.dumps(v, separators=(",", ":"), sort_keys=False),
    "urlencode": _none_safe(lambda v: quote(str(v), safe="")),
    "base64": _none_safe(lambda v: base64.b64encode(str(v).encode()).decode()),
    "sha256": _none_safe(lambda v: hashlib.sha256(str(v).encode()).hexdigest()),
    "marker": _marker,
    "matches": _matches,
    "datetime": to_datetime,
    "iso": _iso,
    "iso_z": _iso_z,
    "date": _date,
    "strftime": _strftime,
    "epoch": _epoch,
    "epoch_ms": _epoch_ms,
    "plus_seconds": _plus_seconds,
    "minus_seconds": _minus_seconds,
    "sorted_pairs": _sorted_pairs,
    "plain_text": _none_safe(_plain_text),
    "single_line": _none_safe(lambda v, limit=None: single_line(str(v), limit)),
    "truncate": _none_safe(lambda v, limit: truncate(str(v), int(limit))),
    "slug": _none_safe(lambda v, limit=80: slug(str(v), limit=int(limit))),
}
