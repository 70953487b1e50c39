"""Safe, one-pass payload rendering: `{{ path | filter }}` placeholders over whitelisted roots, never re-scanned.

Scenario data is untrusted: a title like "{{ secrets }}" or "{% debug %}" must come out literally. The renderer
substitutes values in a single regex pass (a substituted value is never parsed again), resolves only dotted
paths under the roots the caller passes, and knows a short list of pure filters. The vendor's limits and formats
per payload field (a channel-name rule, a summary length, e-mail header safety) are the connector's: its
ActionSpec.fields (FieldShape) pick each field's escaping and are applied after rendering by `sanitize_payload`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from integrations.connectors.base import FieldShape, TextFormat
from integrations.connectors.kit.text import single_line, truncate

# The expression inside a placeholder may not itself contain "{{" or "}}" (so "{{ a }} x {{ b }}" is two placeholders).
# Found by a scan, not a regex: the lookahead regex this replaces backtracked in cubic time on "{{" and a long run of spaces.
MAX_EXPRESSION_CHARS = 500
# Segments may not start with "_" (no dunder look-ups); values are only ever read by key or index, never getattr.
PATH = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*(\.[a-zA-Z0-9][a-zA-Z0-9_]*)*$")
FILTER = re.compile(r"^\s*([a-z_]+)\s*(?::\s*(.+?))?\s*$")
ALLOWED_ROOTS = frozenset({"scenario", "playbook", "item", "steps", "template", "integration", "run", "count", "payload", "items"})
MAX_RENDERED_CHARS = 20_000


class RenderError(ValueError):
    """A template refers to something it may not, or uses an unknown filter (an authoring error)."""


MISSING = object()


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    if not PATH.match(path):
        raise RenderError(f"'{path}' is not a value path (only dotted names are allowed).")
    parts = path.split(".")
    if parts[0] not in ALLOWED_ROOTS:
        raise RenderError(f"'{parts[0]}' is not something a playbook template can use.")
    value: Any = context
    for part in parts:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _literal(argument: str | None) -> str:
    if argument is None:
        return ""
    argument = argument.strip()
    if len(argument) >= 2 and argument[0] == argument[-1] and argument[0] in "'\"":
        return argument[1:-1]
    return argument


def _as_text(value: Any) -> str:
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        for key in ("name", "title", "email", "url", "amount"):
            if value.get(key):
                return str(value[key])
        return ""
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value if _as_text(v))
    return str(value)


def _parse_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def slugify_ascii(value: str) -> str:
    """Lowercase ASCII words joined by hyphens (accents folded)."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")


def _filter_emails(value: Any, _arg: str | None) -> list[str]:
    items = value if isinstance(value, list) else [value]
    emails: list[str] = []
    for item in items:
        email = item.get("email") if isinstance(item, Mapping) else item
        if isinstance(email, str) and "@" in email and email.strip().lower() not in emails:
            emails.append(email.strip().lower())
    return emails


def _filter_people(value: Any, _arg: str | None) -> list[dict[str, str]]:
    """People values (a person, a stakeholder list) as [{name, email, role}], once per e-mail: signers, invitees."""
    people: list[dict[str, str]] = []
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, Mapping):
            continue
        email = str(item.get("email") or "").strip().lower()
        if "@" in email and all(p["email"] != email for p in people):
            people.append({"name": _as_text(item.get("name")) or email, "email": email, "role": _as_text(item.get("role"))})
    return people


def _filter_add_minutes(value: Any, arg: str | None) -> str:
    when = _parse_datetime(value)
    if when is None:
        return ""
    return (when + timedelta(minutes=int(_literal(arg) or 0))).isoformat()


def _filter_date(value: Any, arg: str | None) -> str:
    when = _parse_datetime(value)
    if when is None:
        return _as_text(value)
    return when.strftime(_literal(arg) or "%Y-%m-%d")


def _filter_default(value: Any, arg: str | None) -> Any:
    return value if value not in (None, "", [], {}, MISSING) else _literal(arg)


def _filter_count(value: Any, _arg: str | None) -> int:
    return len(value) if isinstance(value, list | tuple | Mapping) else (0 if value in (None, "", MISSING) else 1)


FILTERS: dict[str, Callable[[Any, str | None], Any]] = {
    "default": _filter_default,
    "upper": lambda v, _a: _as_text(v).upper(),
    "lower": lambda v, _a: _as_text(v).lower(),
    "slug": lambda v, _a: slugify_ascii(_as_text(v)),
    "truncate": lambda v, a: truncate(_as_text(v), int(_literal(a) or 255)),
    "single_line": lambda v, a: single_line(_as_text(v), int(_literal(a) or 255)),
    "emails": _filter_emails,
    "people": _filter_people,
    "count": _filter_count,
    "join": lambda v, a: (_literal(a) if a is not None else ", ").join(_as_text(x) for x in (v if isinstance(v, list) else [v]) if _as_text(x)),
    "date": _filter_date,
    "add_minutes": _filter_add_minutes,
    "names": lambda v, _a: [_as_text(x) for x in (v if isinstance(v, list) else [v]) if _as_text(x)],
}


def _split_filters(expression: str) -> list[str]:
    """Split on | outside quotes."""
    parts, current, quote = [], [], ""
    for char in expression:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == "|":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def placeholder_spans(template: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, expression) of every `{{ … }}` from left to right, in linear time; an opening followed by another one
    before its closing is not a placeholder (the later one may be)."""
    opening, closing = template.find("{{"), -1
    while opening != -1:
        if closing < opening + 2:
            closing = template.find("}}", opening + 2)
            if closing == -1:
                return
        if template.find("{{", opening + 2, closing) != -1:
            opening = template.find("{{", opening + 1)
            continue
        yield opening, closing + 2, template[opening + 2 : closing].strip()
        opening = template.find("{{", closing + 2)


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate `path | filter:arg | …` against the context; unknown paths yield empty, unknown filters raise."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise RenderError(f"A placeholder is longer than {MAX_EXPRESSION_CHARS} characters.")
    path, *filters = _split_filters(expression)
    value = _lookup(context, path)
    for raw in filters:
        match = FILTER.match(raw)
        if not match or match.group(1) not in FILTERS:
            raise RenderError(f"Unknown filter '{raw}'.")
        name, argument = match.group(1), match.group(2)
        if name == "default" and argument and argument.strip()[0] not in "'\"" and PATH.match(argument.strip()):
            # `default:scenario.other_field` falls back to another whitelisted value, not to the literal text.
            fallback = _lookup(context, argument.strip())
            value = value if value not in (None, "", [], {}, MISSING) else (None if fallback is MISSING else fallback)
            continue
        value = FILTERS[name](value, argument)
    return None if value is MISSING else value


# Escaping per destination format. Only substituted values (scenario text, directory names: untrusted) are escaped,
# never the template's own markup, so a template may bold a line in a chat message while a title cannot ping the channel.
Escape = Callable[[str], str]
# C0/C1 controls except tab and newline, and the bidirectional overrides that make text read differently than it is.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_plain(value: str) -> str:
    """Plain text (SMS, e-mail text bodies, ticket fields the connector turns into document nodes): no markup, controls removed."""
    return _CONTROLS.sub("", value)


def escape_mrkdwn(value: str) -> str:
    """Chat mrkdwn: &, < and > as entities, so `<!everyone>`, `<@U1>` and `<http://x|label>` stay text."""
    return escape_plain(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_html(value: str) -> str:
    """E-mail HTML bodies: every character HTML gives meaning to, quotes included (values may land in attributes)."""
    return html.escape(escape_plain(value), quote=True)


def escape_none(value: str) -> str:
    return value


# How substituted values are escaped for each destination format a connector's FieldShape names.
ESCAPES: dict[TextFormat, Escape] = {TextFormat.PLAIN: escape_plain, TextFormat.SLACK_MRKDWN: escape_mrkdwn, TextFormat.HTML: escape_html}


def render_string(template: str, context: Mapping[str, Any], escape: Escape = escape_none) -> Any:
    """Render one string. A string that is exactly one placeholder keeps the value's type (lists stay lists)."""
    if "{{" not in template:
        return template[:MAX_RENDERED_CHARS]
    stripped = template.strip()
    first = next(placeholder_spans(stripped), None)
    if first and first[0] == 0 and first[1] == len(stripped):
        return _escape_value(evaluate(first[2], context), escape)
    parts, position = [], 0
    for start, end, expression in placeholder_spans(template):
        parts += [template[position:start], escape(_as_text(evaluate(expression, context)))]
        position = end
    parts.append(template[position:])
    return "".join(parts)[:MAX_RENDERED_CHARS]


def _escape_value(value: Any, escape: Escape) -> Any:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list):
        return [_escape_value(v, escape) for v in value]
    if isinstance(value, Mapping):
        return {k: _escape_value(v, escape) for k, v in value.items()}
    return value


def render_payload(template: Any, context: Mapping[str, Any], escape: Escape = escape_none, *, fields: Mapping[str, FieldShape] | None = None) -> Any:
    """Render every string inside a JSON payload template (dicts and lists are walked, other values kept).

    With `fields` (an action's FieldShapes), each top-level field's substituted values are escaped for the format that
    field is delivered in (plain text when the field names none).
    """
    if fields is not None:
        if not isinstance(template, Mapping):
            return render_payload(template, context, escape_plain)
        return {str(key): render_payload(value, context, _field_escape(fields.get(str(key)))) for key, value in template.items()}
    if isinstance(template, str):
        return render_string(template, context, escape) if "{{" in template else template
    if isinstance(template, Mapping):
        return {str(key): render_payload(value, context, escape) for key, value in template.items()}
    if isinstance(template, list):
        return [render_payload(value, context, escape) for value in template]
    return template


def _field_escape(shape: FieldShape | None) -> Escape:
    return ESCAPES.get(shape.format, escape_plain) if shape is not None else escape_plain


def placeholders(template: Any) -> list[str]:
    """Every placeholder expression used in a payload template (for validation in the admin)."""
    found: list[str] = []
    if isinstance(template, str):
        found.extend(expression for _start, _end, expression in placeholder_spans(template))
    elif isinstance(template, Mapping):
        for value in template.values():
            found.extend(placeholders(value))
    elif isinstance(template, list):
        for value in template:
            found.extend(placeholders(value))
    return found


def validate_template(template: Any) -> list[str]:
    """Return authoring errors (bad paths, unknown filters) without needing real data."""
    errors: list[str] = []
    for expression in placeholders(template):
        path, *filters = _split_filters(expression)
        root = path.split(".")[0]
        if not PATH.match(path):
            errors.append(f"'{path}' is not a value path.")
        elif root not in ALLOWED_ROOTS:
            errors.append(f"'{root}' is not something a playbook template can use (use one of {', '.join(sorted(ALLOWED_ROOTS))}).")
        for raw in filters:
            match = FILTER.match(raw)
            if not match or match.group(1) not in FILTERS:
                errors.append(f"Unknown filter '{raw}'.")
    return errors


def _shaped(shape: FieldShape, value: Any) -> Any:
    """One field after the vendor's rule: its transform first, then one line and the length limit for text."""
    if value is None:
        return None
    if shape.transform is not None:
        value = shape.transform(value)
    if value is None or not (shape.single_line or shape.max_chars):
        return value
    text = _as_text(value) if not isinstance(value, str) else value
    if shape.single_line:
        return single_line(text, shape.max_chars)
    return truncate(text, shape.max_chars) if shape.max_chars else text


def sanitize_payload(fields: Mapping[str, FieldShape], payload: dict[str, Any]) -> dict[str, Any]:
    """Apply an action's field shapes to a rendered payload (after rendering, so a template edit cannot produce a value
    the vendor refuses or an e-mail subject with a header break); optional fields that rendered empty are dropped."""
    cleaned = {key: value for key, value in payload.items() if not (key in fields and fields[key].optional and value in (None, "", []))}
    for name, shape in fields.items():
        if name in cleaned:
            cleaned[name] = _shaped(shape, cleaned[name])
    return cleaned
