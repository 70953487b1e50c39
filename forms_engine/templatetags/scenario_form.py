"""Filters for the scenario form: where a value came from, in words ("from Okta (7 people)")."""

from __future__ import annotations

from typing import Any

from django import template

from integrations.registry import UnknownConnector, get_connector_class

register = template.Library()

SOURCE_WORDS = {"csv": "a CSV file", "prefill": "the last scenario", "directory": "the directory", "manual": "typed by hand", "import": "an import"}
NOUNS = {"stakeholder_list": ("person", "people"), "channel": ("channel", "channels"), "person": ("person", "people")}


def _source_name(source: str) -> str:
    if source in SOURCE_WORDS:
        return SOURCE_WORDS[source]
    try:
        return get_connector_class(source).manifest.name
    except UnknownConnector:
        return source.replace("_", " ").title()


@register.filter
def provenance(items: list[dict[str, Any]] | None, field_type: str = "") -> str:
    """[{source: okta}×7, {source: csv}×2] → "from Okta (7 people) and a CSV file (2 people)"."""
    counts: dict[str, int] = {}
    for item in items or []:
        source = str((item or {}).get("source") or "manual")
        counts[source] = counts.get(source, 0) + 1
    if not counts:
        return ""
    singular, plural = NOUNS.get(field_type, ("item", "items"))
    parts = [f"{_source_name(source)} ({n} {singular if n == 1 else plural})" for source, n in counts.items()]
    return "from " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])
