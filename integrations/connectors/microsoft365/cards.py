"""The playbook's Slack-style text (`*bold*` lines, newlines, URLs) as an Adaptive Card for a Teams channel message."""

from __future__ import annotations

import re
from typing import Any

from common.url_safety import safe_http_url

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"
MAX_BLOCKS = 60  # a briefing is a few paragraphs; a runaway template must not build a card Teams refuses
# Slack's <url|label> and <url>, a bare http(s) URL, and *bold* within a line.
_SLACK_LINK = re.compile(r"<([^<>|\s]+)(?:\|([^<>]*))?>")
_BARE_URL = re.compile(r"(?<![(\[])\bhttps?://[^\s<>()\[\]]+")
_BOLD = re.compile(r"(?<![*\w])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![*\w])")
_MARKDOWN_CHARS = re.compile(r"([\[\]()])")


def _link(url: str, label: str = "") -> str:
    """A Markdown link for http(s) URLs only; anything else stays plain text."""
    safe = safe_http_url(url)
    text = _MARKDOWN_CHARS.sub(r"\\\1", label or url)
    if not safe:
        return text
    return f"[{text}]({safe.replace(')', '%29').replace(' ', '%20')})"


def _inline(line: str) -> str:
    """One line's Slack markup as Adaptive Card Markdown: **bold** and [label](url)."""
    parts: list[str] = []
    position = 0
    for match in _SLACK_LINK.finditer(line):
        parts.append(_bare_links(line[position : match.start()]))
        parts.append(_link(match.group(1), match.group(2) or ""))
        position = match.end()
    parts.append(_bare_links(line[position:]))
    return _BOLD.sub(r"**\1**", "".join(parts))


def _bare_links(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _BARE_URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?")
        out.append(text[position : match.start()])
        out.append(_link(url))
        position = match.start() + len(url)
    out.append(text[position:])
    return "".join(out)


def text_blocks(text: str) -> list[dict[str, Any]]:
    """A TextBlock per line: a line that is all `*bold*` becomes a bold heading, blank lines become spacing."""
    blocks: list[dict[str, Any]] = []
    gap = False
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            gap = bool(blocks)
            continue
        block: dict[str, Any] = {"type": "TextBlock", "wrap": True}
        heading = re.fullmatch(r"\*([^*]+)\*", line)
        if heading:
            block.update(text=_inline(heading.group(1)), weight="Bolder", size="Medium" if not blocks else "Default")
        else:
            block["text"] = _inline(line)
        if gap:
            block["spacing"] = "Medium"
            gap = False
        blocks.append(block)
    if len(blocks) > MAX_BLOCKS:
        rest = " ".join(b["text"] for b in blocks[MAX_BLOCKS - 1 :])
        blocks = [*blocks[: MAX_BLOCKS - 1], {"type": "TextBlock", "wrap": True, "text": rest}]
    return blocks


def adaptive_card(text: str, *, title: str = "") -> dict[str, Any]:
    """The card itself (schema 1.4): an optional title, then the text's blocks."""
    body = text_blocks(text)
    if title:
        body.insert(0, {"type": "TextBlock", "wrap": True, "text": _inline(title), "weight": "Bolder", "size": "Large"})
    return {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": CARD_VERSION, "body": body}


def plain_text(text: str) -> str:
    """The message's text without Slack markup, for previews and the notification body."""
    text = _SLACK_LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return _BOLD.sub(r"\1", text)
