"""Twilio's error envelope through TwilioConnector.classify_response: its numeric code is the vendor_code."""

from __future__ import annotations

import json

import pytest
import requests

from integrations.connectors.twilio import TwilioConnector
from integrations.errors import ApiBadRequest, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    return response


def _envelope(status: int, code: int, message: str) -> dict:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


@pytest.mark.parametrize(
    ("status", "code", "message", "kind", "retry_after"),
    [
        (400, 21211, "The 'To' number +1555 is not a valid phone number.", ApiBadRequest, None),
        (400, 21617, "The concatenated message body exceeds the 1600 character limit.", ApiBadRequest, None),
        (401, 20003, "Authenticate", ApiUnauthorized, None),
        (404, 20404, "The requested resource /2010-04-01/Accounts/AC1/Messages/SM1.json was not found", ApiNotFound, None),
        (429, 20429, "Too Many Requests", ApiRateLimited, 1.0),
        (500, 20500, "Internal Server Error", ApiHostError, None),
    ],
)
def test_twilio_envelopes(status, code, message, kind, retry_after):
    error = TwilioConnector.classify_response(_response(status, _envelope(status, code, message)), "/2010-04-01/Accounts/AC1/Messages.json")
    assert type(error) is kind
    assert (error.message, error.vendor_code, error.status, error.path) == (message, str(code), status, "/2010-04-01/Accounts/AC1/Messages.json")
    assert error.retry_after == retry_after


def test_twilio_retry_after_and_success():
    limited = TwilioConnector.classify_response(_response(429, _envelope(429, 20429, "Too Many Requests"), {"Retry-After": "3"}), "/m")
    assert type(limited) is ApiRateLimited and limited.retry_after == 3.0
    assert TwilioConnector.classify_response(_response(201, {"sid": "SM1", "status": "queued"}), "/m") is None
