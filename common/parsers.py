"""The API's request parsers: DRF's, with JSON read through common.json_input (depth limit, no NUL).

Views that name their parsers import them from here, never from rest_framework.parsers directly (a test checks it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from common import json_input

FormParser = parsers.FormParser
MultiPartParser = parsers.MultiPartParser


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with bounded nesting and NUL characters refused (400, never a 500 further down)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        data = stream.read() if stream is not None else b""
        try:
            return json_input.loads(data.decode(encoding) if isinstance(data, bytes) else data)
        except (json_input.UnsafeJson, UnicodeDecodeError) as error:
            raise ParseError(f"JSON parse error - {error}") from None
