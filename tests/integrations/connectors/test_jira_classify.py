"""Jira's classify_response (Cloud and Data Center): errorMessages and per-field errors, the gateway's message, status errors."""

from __future__ import annotations

import json

import pytest
import requests

from integrations.connectors.jira import JiraConnector
from integrations.connectors.jira_dc import JiraDataCenterConnector
from integrations.errors import ApiBadRequest, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json" if not isinstance(body, bytes) else "text/html"
    response.headers.update(headers or {})
    return response


MISSING = "Issue does not exist or you do not have permission to see it."


@pytest.mark.parametrize("connector", [JiraConnector, JiraDataCenterConnector])
@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (404, {"errorMessages": [MISSING], "errors": {}}, {}, (ApiNotFound, MISSING, "", None)),
        (
            400,
            {"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue.", "project": "valid project is required"}},
            {},
            (ApiBadRequest, "summary: You must specify a summary of the issue.; project: valid project is required", "", None),
        ),
        (
            400,
            {"errorMessages": ["An issue with key 'OPS-9' does not exist for field 'key'."], "errors": {"labels": "bad"}},
            {},
            (ApiBadRequest, "An issue with key 'OPS-9' does not exist for field 'key'.; labels: bad", "", None),
        ),
        (401, {"code": 401, "message": "Unauthorized; scope does not match"}, {}, (ApiUnauthorized, "Unauthorized; scope does not match", "401", None)),
        (429, b"", {"Retry-After": "5"}, (ApiRateLimited, "HTTP 429 Too Many Requests", "", 5.0)),
        (503, b"<html>down</html>", {"Retry-After": "10"}, (ApiHostError, "HTTP 503 Service Unavailable", "", 10.0)),
        (
            400,
            {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."},
            {},
            (ApiBadRequest, "Unknown or invalid refresh token.", "invalid_grant", None),
        ),
    ],
)
def test_jira_envelopes(connector, status, body, headers, expected):
    error = connector.classify_response(answer(status, body, headers), "/rest/api/3/issue")
    error_class, message, code, retry_after = expected
    assert type(error) is error_class
    assert (error.message, error.vendor_code, error.retry_after, error.status, error.path) == (message, code, retry_after, status, "/rest/api/3/issue")


def test_jira_success_is_no_error():
    assert JiraConnector.classify_response(answer(201, {"id": "1", "key": "OPS-1"}), "/rest/api/3/issue") is None
    assert JiraDataCenterConnector.classify_response(answer(204, b""), "/rest/api/2/issue/OPS-1/transitions") is None
