"""Google's HTTP side: the {"error": {code, message, errors[{reason}]}} envelope, and a 403 whose reason is a rate limit."""

from __future__ import annotations

from typing import Any

import requests

from integrations.errors import ApiError, ApiRateLimited
from integrations.http import classify_status, rate_limit_wait, response_json

RATE_LIMIT_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")


def google_error_message(body: Any) -> tuple[str, str]:
    """(message, code): Google's error object (the first reason is the code), or an OAuth {error, error_description} answer."""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):
        reasons = error.get("errors") or []
        reason = reasons[0].get("reason", "") if reasons and isinstance(reasons[0], dict) else ""
        details = "; ".join(str(e) for e in reasons if isinstance(e, str))
        message = str(error.get("message", "")) + (f": {details}" if details else "")
        return message, str(reason or error.get("code", ""))
    if "message" in body:
        return str(body["message"]), str(body.get("code", "") or body.get("error", ""))
    if isinstance(error, str):
        return str(body.get("error_description") or error), error
    return "", ""


def classify_google_response(response: requests.Response, path: str) -> ApiError | None:
    """The error tree by status with Google's message and reason; a 403 rateLimitExceeded is a rate limit, not a refusal."""
    if 200 <= response.status_code < 400:
        return None
    message, code = google_error_message(response_json(response))
    error = classify_status(response, path, message=message, code=code)
    if response.status_code == 403 and code in RATE_LIMIT_REASONS:
        return ApiRateLimited(error.message, retry_after=rate_limit_wait(response.headers) or 1.0, status=403, vendor_code=code, path=path)
    return error
