"""HubSpot's error envelope through HubSpotConnector.classify_response: class, message, vendor_code and retry_after."""

from __future__ import annotations

import json

import pytest
import requests

from integrations.connectors.hubspot import HubSpotConnector
from integrations.errors import ApiBadRequest, ApiConflict, ApiForbidden, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    return response


def _envelope(message: str, category: str) -> dict:
    return {"status": "error", "message": message, "correlationId": "9a1c", "category": category}


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "message", "code", "retry_after"),
    [
        (400, _envelope("Property values were not valid", "VALIDATION_ERROR"), {}, ApiBadRequest, "Property values were not valid", "VALIDATION_ERROR", None),
        (
            401,
            _envelope("Authentication credentials not found.", "INVALID_AUTHENTICATION"),
            {},
            ApiUnauthorized,
            "Authentication credentials not found.",
            "INVALID_AUTHENTICATION",
            None,
        ),
        (
            403,
            _envelope("This app hasn't been granted all required scopes.", "MISSING_SCOPES"),
            {},
            ApiForbidden,
            "This app hasn't been granted all required scopes.",
            "MISSING_SCOPES",
            None,
        ),
        (404, _envelope("Object not found.", "OBJECT_NOT_FOUND"), {}, ApiNotFound, "Object not found.", "OBJECT_NOT_FOUND", None),
        (409, _envelope("Contact already exists.", "CONFLICT"), {}, ApiConflict, "Contact already exists.", "CONFLICT", None),
        (
            429,
            _envelope("You have reached your secondly limit.", "RATE_LIMITS"),
            {"Retry-After": "7"},
            ApiRateLimited,
            "You have reached your secondly limit.",
            "RATE_LIMITS",
            7.0,
        ),
        (
            429,
            _envelope("You have reached your secondly limit.", "RATE_LIMITS"),
            {},
            ApiRateLimited,
            "You have reached your secondly limit.",
            "RATE_LIMITS",
            1.0,
        ),
        (502, b"<html>Bad gateway</html>", {"Content-Type": "text/html"}, ApiHostError, "HTTP 502 Bad Gateway", "", None),
        (404, {"error": "no such deal"}, {}, ApiNotFound, "no such deal", "no such deal", None),
        (
            401,
            {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"},
            {},
            ApiUnauthorized,
            "missing or invalid refresh token",
            "",
            None,
        ),
    ],
)
def test_hubspot_envelopes(status, body, headers, kind, message, code, retry_after):
    error = HubSpotConnector.classify_response(_response(status, body, headers), "/crm/v3/objects/deals")
    assert type(error) is kind
    assert (error.message, error.vendor_code, error.status, error.path) == (message, code, status, "/crm/v3/objects/deals")
    assert error.retry_after == retry_after


def test_hubspot_success_is_no_error():
    assert HubSpotConnector.classify_response(_response(200, {"results": []}), "/crm/v3/owners") is None
    assert HubSpotConnector.classify_response(_response(204, b""), "/crm/v3/objects/deals/1") is None
