"""Statuspage's HTTP side: the `OAuth <key>` header and its error envelope (420 is its rate-limit status)."""

from __future__ import annotations

import requests

from integrations.errors import ApiError
from integrations.http import classify_status, generic_error_message, response_json


class StatuspageKeyAuth:
    """`Authorization: OAuth <api key>` (the literal word OAuth, not Bearer)."""

    def __init__(self, api_key: str):
        self._value = f"OAuth {api_key}"

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._value

    def refresh(self) -> bool:
        return False


def classify_statuspage_response(response: requests.Response, path: str) -> ApiError | None:
    """Statuspage answers errors as {message} (its ErrorEntity, the live API adds "error"); 420 and 429 are rate limits."""
    if 200 <= response.status_code < 400:
        return None
    message, code = generic_error_message(response_json(response))
    return classify_status(response, path, message=message, code=code)
