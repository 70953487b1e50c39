"""Google's HTTP side: the {"error": {code, message, errors[{reason}]}} envelope, and a 403 whose reason is a rate limit."""

from __future__ import annotations

import requests

from integrations.errors import ApiError, ApiRateLimited
from integrations.http import classify_status, generic_error_message, rate_limit_wait, response_json

RATE_LIMIT_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")


def classify_google_response(response: requests.Response, path: str) -> ApiError | None:
    """The error tree by status with Google's message and reason; a 403 rateLimitExceeded is a rate limit, not a refusal."""
    if 200 <= response.status_code < 400:
        return None
    message, code = generic_error_message(response_json(response))
    error = classify_status(response, path, message=message, code=code)
    if response.status_code == 403 and code in RATE_LIMIT_REASONS:
        return ApiRateLimited(error.message, retry_after=rate_limit_wait(response.headers) or 1.0, status=403, vendor_code=code, path=path)
    return error
