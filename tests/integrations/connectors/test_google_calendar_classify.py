"""Google Calendar's classify_response: Google's error object (first reason is the code), 403 rate limits, OAuth token errors."""

from __future__ import annotations

import json

import pytest
import requests

from integrations.connectors.google_calendar import GoogleCalendarConnector
from integrations.errors import ApiBadRequest, ApiConflict, ApiForbidden, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json" if not isinstance(body, bytes) else "text/html"
    response.headers.update(headers or {})
    return response


def google(code: int, message: str, reason: str = "") -> dict:
    return {"error": {"code": code, "message": message, "errors": [{"domain": "global", "reason": reason, "message": message}] if reason else []}}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (403, google(403, "Rate Limit Exceeded", "rateLimitExceeded"), {"Retry-After": "3"}, (ApiRateLimited, "Rate Limit Exceeded", "rateLimitExceeded", 3.0)),
        (403, google(403, "User Rate Limit Exceeded", "userRateLimitExceeded"), {}, (ApiRateLimited, "User Rate Limit Exceeded", "userRateLimitExceeded", 1.0)),
        (403, google(403, "Calendar usage limits exceeded.", "quotaExceeded"), {}, (ApiForbidden, "Calendar usage limits exceeded.", "quotaExceeded", None)),
        (404, google(404, "Not Found", "notFound"), {}, (ApiNotFound, "Not Found", "notFound", None)),
        (410, google(410, "Sync token is no longer valid", "fullSyncRequired"), {}, (ApiNotFound, "Sync token is no longer valid", "fullSyncRequired", None)),
        (
            409,
            google(409, "The requested identifier already exists.", "duplicate"),
            {},
            (ApiConflict, "The requested identifier already exists.", "duplicate", None),
        ),
        (401, google(401, "Invalid Credentials", "authError"), {}, (ApiUnauthorized, "Invalid Credentials", "authError", None)),
        (
            400,
            {"error": {"code": 400, "message": "Bad Request", "errors": ["a detail", "another"]}},
            {},
            (ApiBadRequest, "Bad Request: a detail; another", "400", None),
        ),
        (500, google(500, "Backend Error"), {}, (ApiHostError, "Backend Error", "500", None)),
        (429, b"", {"Retry-After": "2"}, (ApiRateLimited, "HTTP 429 Too Many Requests", "", 2.0)),
        (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, {}, (ApiBadRequest, "Invalid JWT Signature.", "invalid_grant", None)),
    ],
)
def test_google_envelopes(status, body, headers, expected):
    error = GoogleCalendarConnector.classify_response(answer(status, body, headers), "/calendar/v3/calendars/primary/events")
    error_class, message, code, retry_after = expected
    assert type(error) is error_class
    assert (error.message, error.vendor_code, error.retry_after, error.status) == (message, code, retry_after, status)


def test_google_success_is_no_error():
    assert GoogleCalendarConnector.classify_response(answer(200, {"id": "e1"}), "/calendar/v3/calendars/primary/events") is None
