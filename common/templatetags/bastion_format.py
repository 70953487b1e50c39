"""Template filters that turn machine values into words a person reads at a glance (durations, keys, statuses)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

from common.url_safety import safe_http_url

register = template.Library()

STATUS_WORDS = {
    "succeeded": "Done",
    "failed": "Failed",
    "running": "Running",
    "queued": "Queued",
    "retrying": "Retrying",
    "pending": "Waiting",
    "skipped": "Skipped",
    "cancelled": "Cancelled",
    "partial": "Partly done",
    "not_requested": "Not asked",
    "not_undoable": "Stays",
    "connected": "Connected",
    "auth_failed": "Needs attention",
    "degraded": "Degraded",
    "disconnected": "Disconnected",
}


@register.filter
def duration(milliseconds: float | int | None) -> str:
    """1860 → "1.9 s", 248000 → "4 min 8 s", 3_900_000 → "1 h 5 min"; never a raw millisecond figure."""
    if milliseconds is None or milliseconds == "":
        return ""
    seconds = float(milliseconds) / 1000
    if seconds < 0.1:
        return "under 0.1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def seconds_duration(seconds: float | int | None) -> str:
    """The same words for a figure in seconds."""
    return "" if seconds is None or seconds == "" else duration(float(seconds) * 1000)


@register.filter
def words(key: str | None) -> str:
    """A snake_case key as words: "calendar_event" → "Calendar event"."""
    text = str(key or "").replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def status_word(status: str | None) -> str:
    """A status in the product's words: "succeeded" → "Done", "auth_failed" → "Needs attention"."""
    return STATUS_WORDS.get(str(status or ""), words(status))


@register.filter
def percent(ratio: float | None, digits: int = 0) -> str:
    """0.1234 → "12%" (a ratio, not a figure already in percent)."""
    if ratio is None or ratio == "":
        return "—"
    value = float(ratio) * 100
    return f"{value:.{int(digits)}f}%"


@register.filter
def ago(moment: datetime | None) -> str:
    """A past moment relative to now: "just now", "4 min ago", "3 h ago", "2 days ago"; the exact time stays in a title."""
    if not moment:
        return "never"
    delta = timezone.now() - moment
    if delta < timedelta(0):
        delta = timedelta(0)
    seconds = int(delta.total_seconds())
    if seconds < 45:
        return "just now"
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min ago"
    if seconds < 86400:
        return f"{round(seconds / 3600)} h ago"
    days = round(seconds / 86400)
    return f"{days} day{'s' if days != 1 else ''} ago"


@register.filter
def safe_url(value: str | None) -> str:
    """The value when it is an absolute http(s) URL, else "" (every href built from vendor or config data): common.url_safety."""
    return safe_http_url(value)


http_url = register.filter("http_url", safe_url)
