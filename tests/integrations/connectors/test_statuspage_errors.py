"""Statuspage's error envelope through StatuspageConnector.classify_response (420 is its rate-limit status)."""

from __future__ import annotations

import json

import pytest
import requests

from integrations.connectors.statuspage import StatuspageConnector
from integrations.errors import ApiBadRequest, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    return response


def _envelope(message: str) -> dict:
    return {"message": message, "error": message}


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "message", "code", "retry_after"),
    [
        (420, _envelope("Rate limit exceeded"), {"Retry-After": "2"}, ApiRateLimited, "Rate limit exceeded", "Rate limit exceeded", 2.0),
        (429, _envelope("Rate limit exceeded"), {}, ApiRateLimited, "Rate limit exceeded", "Rate limit exceeded", 1.0),
        (401, {"error": "Could not authenticate"}, {}, ApiUnauthorized, "Could not authenticate", "Could not authenticate", None),
        (
            404,
            _envelope("The requested resource could not be found."),
            {},
            ApiNotFound,
            "The requested resource could not be found.",
            "The requested resource could not be found.",
            None,
        ),
        (422, {"message": "Status is not included in the list"}, {}, ApiBadRequest, "Status is not included in the list", "", None),
        (422, {"error": ["Name can't be blank"]}, {}, ApiBadRequest, "HTTP 422 Unprocessable Entity", "", None),
        (502, b"Bad Gateway", {"Content-Type": "text/plain"}, ApiHostError, "HTTP 502 Bad Gateway", "", None),
    ],
)
def test_statuspage_envelopes(status, body, headers, kind, message, code, retry_after):
    error = StatuspageConnector.classify_response(_response(status, body, headers), "/v1/pages/p/incidents")
    assert type(error) is kind
    assert (error.message, error.vendor_code, error.status, error.path) == (message, code, status, "/v1/pages/p/incidents")
    assert error.retry_after == retry_after


def test_statuspage_success_is_no_error():
    assert StatuspageConnector.classify_response(_response(200, []), "/v1/pages/p/incidents") is None
