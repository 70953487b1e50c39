"""Slack's classify_response: its ok:false envelope (sent with HTTP 200) and status errors map to the shared error tree."""

from __future__ import annotations

import json

import pytest
import requests

from integrations.connectors.slack import SlackConnector
from integrations.errors import ApiBadRequest, ApiConflict, ApiForbidden, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized
from integrations.http import HttpClient


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json" if not isinstance(body, bytes) else "text/html"
    response.headers.update(headers or {})
    return response


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}, (ApiRateLimited, "Slack rate limit", "ratelimited", 7.0)),
        (200, {"ok": False, "error": "rate_limited"}, {}, (ApiRateLimited, "Slack rate limit", "rate_limited", 1.0)),
        (200, {"ok": False, "error": "invalid_auth"}, {}, (ApiUnauthorized, "Slack refused the token: invalid_auth", "invalid_auth", None)),
        (200, {"ok": False, "error": "token_revoked"}, {}, (ApiUnauthorized, "Slack refused the token: token_revoked", "token_revoked", None)),
        (200, {"ok": False, "error": "missing_scope"}, {}, (ApiForbidden, "Slack refused the action: missing_scope", "missing_scope", None)),
        (200, {"ok": False, "error": "channel_not_found"}, {}, (ApiNotFound, "Slack: channel_not_found", "channel_not_found", None)),
        (200, {"ok": False, "error": "users_not_found"}, {}, (ApiNotFound, "Slack: users_not_found", "users_not_found", None)),
        (200, {"ok": False, "error": "name_taken"}, {}, (ApiConflict, "Slack: name_taken", "name_taken", None)),
        (200, {"ok": False, "error": "already_in_channel"}, {}, (ApiConflict, "Slack: already_in_channel", "already_in_channel", None)),
        (200, {"ok": False, "error": "internal_error"}, {}, (ApiHostError, "Slack: internal_error", "internal_error", None)),
        (200, {"ok": False, "error": "already_archived"}, {}, (ApiBadRequest, "Slack: already_archived", "already_archived", None)),
        (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}, (ApiRateLimited, "ratelimited", "ratelimited", 30.0)),
        (500, {"ok": False, "error": "fatal_error"}, {}, (ApiHostError, "fatal_error", "fatal_error", None)),
        (502, b"<html>Bad gateway</html>", {}, (ApiHostError, "HTTP 502 Bad Gateway", "", None)),
    ],
)
def test_slack_envelopes(status, body, headers, expected):
    error = SlackConnector.classify_response(answer(status, body, headers), "/api/conversations.create")
    error_class, message, code, retry_after = expected
    assert type(error) is error_class
    assert (error.message, error.vendor_code, error.retry_after, error.status, error.path) == (message, code, retry_after, status, "/api/conversations.create")


def test_slack_success_is_no_error_and_the_connector_installs_its_reading():
    assert SlackConnector.classify_response(answer(200, {"ok": True, "channel": {"id": "C1"}}), "/api/x") is None
    client = HttpClient("https://slack.example/api")
    SlackConnector(client=client)
    assert client.classify == SlackConnector.classify_response
