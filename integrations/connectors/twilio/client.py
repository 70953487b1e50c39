"""Twilio's HTTP side: its error envelope {code, message, more_info, status} (20429 is its rate limit, sent as HTTP 429)."""

from __future__ import annotations

import requests

from integrations.errors import ApiError
from integrations.http import classify_status, generic_error_message, response_json


def classify_twilio_response(response: requests.Response, path: str) -> ApiError | None:
    """Twilio's message and numeric code (e.g. 21211, 20429) become the error's message and vendor_code."""
    if 200 <= response.status_code < 400:
        return None
    message, code = generic_error_message(response_json(response))
    return classify_status(response, path, message=message, code=code)
