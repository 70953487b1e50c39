"""OpenAPI generation: every operation gets a one-line summary (its explicit one, else its description's first sentence)."""

from __future__ import annotations

import re

from drf_spectacular.openapi import AutoSchema

SUMMARY_MAX = 90


def first_sentence(text: str) -> str:
    """The first sentence of a docstring, on one line and short enough for an operation list."""
    flat = " ".join((text or "").split())
    match = re.match(r"(.+?[.!?])(?:\s|$)", flat)
    sentence = (match.group(1) if match else flat).rstrip(".")
    return sentence if len(sentence) <= SUMMARY_MAX else sentence[: SUMMARY_MAX - 1].rsplit(" ", 1)[0] + "…"


class SummaryAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with a summary for operations that do not declare one."""

    def get_summary(self) -> str | None:
        return super().get_summary() or first_sentence(self.get_description()) or None
