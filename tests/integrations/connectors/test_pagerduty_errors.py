"""PagerDuty's error envelope through PagerDutyConnector.classify_response: the detail strings join the message."""

from __future__ import annotations

import json

import pytest
import requests

from integrations.connectors.pagerduty import PagerDutyConnector
from integrations.errors import ApiBadRequest, ApiForbidden, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    return response


@pytest.mark.parametrize(
    ("status", "body", "kind", "message", "code"),
    [
        (
            400,
            {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Incident key has already been used", "Title is too long"]}},
            ApiBadRequest,
            "Invalid Input Provided: Incident key has already been used; Title is too long",
            "2001",
        ),
        (401, {"error": {"message": "Authentication failed", "code": 2006}}, ApiUnauthorized, "Authentication failed", "2006"),
        (403, {"error": {"message": "Access Denied", "code": 2010, "errors": []}}, ApiForbidden, "Access Denied", "2010"),
        (404, {"error": {"message": "Not Found", "code": 2100}}, ApiNotFound, "Not Found", "2100"),
        (
            400,
            {"error": {"message": "Bad request", "code": 2001, "errors": [{"reason": "invalidParameter"}]}},
            ApiBadRequest,
            "Bad request",
            "invalidParameter",
        ),
        (400, {"error": "unknown incident or status"}, ApiBadRequest, "unknown incident or status", "unknown incident or status"),
        (500, {"error": {"message": "Internal Server Error", "code": 2000}}, ApiHostError, "Internal Server Error", "2000"),
    ],
)
def test_pagerduty_envelopes(status, body, kind, message, code):
    error = PagerDutyConnector.classify_response(_response(status, body), "/incidents")
    assert type(error) is kind
    assert (error.message, error.vendor_code, error.status, error.path) == (message, code, status, "/incidents")


def test_pagerduty_rate_limit_and_success():
    body = {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    limited = PagerDutyConnector.classify_response(_response(429, body), "/incidents")
    assert type(limited) is ApiRateLimited and (limited.message, limited.vendor_code, limited.retry_after) == ("Rate Limit Exceeded", "2020", 1.0)
    hinted = PagerDutyConnector.classify_response(_response(429, body, {"Retry-After": "5"}), "/incidents")
    assert hinted.retry_after == 5.0
    assert PagerDutyConnector.classify_response(_response(200, {"incidents": [], "more": False}), "/incidents") is None
