"""PagerDuty's HTTP side: the `Token token=` header, the versioned Accept header and its error envelope."""

from __future__ import annotations

from typing import Any

import requests

from integrations.errors import ApiError
from integrations.http import classify_status, generic_error_message, response_json

ACCEPT = "application/vnd.pagerduty+json;version=2"


class PagerDutyTokenAuth:
    """`Authorization: Token token=<key>`, PagerDuty's REST API key scheme."""

    def __init__(self, api_key: str):
        self._value = f"Token token={api_key}"

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._value

    def refresh(self) -> bool:
        return False


def pagerduty_error_message(body: Any) -> tuple[str, str]:
    """(message, code) from {"error": {"message", "code", "errors": [...]}}: the detail strings join the message."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return generic_error_message(body)
    reasons = error.get("errors") or []
    reason = reasons[0].get("reason", "") if reasons and isinstance(reasons[0], dict) else ""
    details = "; ".join(str(e) for e in reasons if isinstance(e, str))
    message = str(error.get("message", "")) + (f": {details}" if details else "")
    return message, str(reason or error.get("code", ""))


def classify_pagerduty_response(response: requests.Response, path: str) -> ApiError | None:
    """PagerDuty's error envelope by HTTP status (its 429 carries no Retry-After: the shared default wait applies)."""
    if 200 <= response.status_code < 400:
        return None
    message, code = pagerduty_error_message(response_json(response))
    return classify_status(response, path, message=message, code=code)
