"""Salesforce's error envelope through SalesforceConnector.classify_response, the spent daily quota included."""

from __future__ import annotations

import json
import time

import pytest
import requests

from integrations.connectors.salesforce import SalesforceConnector
from integrations.errors import ApiBadRequest, ApiForbidden, ApiHostError, ApiNotFound, ApiQuotaExhausted, ApiRateLimited, ApiUnauthorized


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
            401,
            [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            ApiUnauthorized,
            "Session expired or invalid",
            "INVALID_SESSION_ID",
        ),
        (
            400,
            [{"message": "duplicate value found: Bastion_Key__c", "errorCode": "DUPLICATE_VALUE", "fields": []}],
            ApiBadRequest,
            "duplicate value found: Bastion_Key__c",
            "DUPLICATE_VALUE",
        ),
        (400, [{"message": "unexpected token: FORM", "errorCode": "MALFORMED_QUERY"}], ApiBadRequest, "unexpected token: FORM", "MALFORMED_QUERY"),
        (
            403,
            [{"message": "insufficient access rights on object id", "errorCode": "INSUFFICIENT_ACCESS_OR_READONLY"}],
            ApiForbidden,
            "insufficient access rights on object id",
            "INSUFFICIENT_ACCESS_OR_READONLY",
        ),
        (
            404,
            [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}],
            ApiNotFound,
            "The requested resource does not exist",
            "NOT_FOUND",
        ),
        (400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}, ApiBadRequest, "expired access/refresh token", "invalid_grant"),
        (503, [], ApiHostError, "HTTP 503 Service Unavailable", ""),
    ],
)
def test_salesforce_envelopes(status, body, kind, message, code):
    error = SalesforceConnector.classify_response(_response(status, body), "/services/data/v60.0/query")
    assert type(error) is kind
    assert (error.message, error.vendor_code, error.status, error.path) == (message, code, status, "/services/data/v60.0/query")


def test_request_limit_exceeded_is_the_spent_daily_quota():
    body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    before = time.time()
    error = SalesforceConnector.classify_response(_response(403, body), "/services/data/v60.0/sobjects/Account/")
    assert type(error) is ApiQuotaExhausted and isinstance(error, ApiRateLimited)
    assert (error.message, error.vendor_code, error.status, error.retry_after) == ("TotalRequests Limit exceeded.", "REQUEST_LIMIT_EXCEEDED", 403, 3600.0)
    assert before + 3600 <= error.reset_at.timestamp() <= time.time() + 3600
    hinted = SalesforceConnector.classify_response(_response(403, body, {"Retry-After": "120"}), "/services/data/v60.0/query")
    assert type(hinted) is ApiQuotaExhausted and hinted.retry_after == 120.0


def test_salesforce_rate_limit_and_success():
    limited = SalesforceConnector.classify_response(_response(429, [{"message": "slow down", "errorCode": "REQUEST_LIMIT"}], {"Retry-After": "4"}), "/q")
    assert type(limited) is ApiRateLimited and (limited.message, limited.vendor_code, limited.retry_after) == ("slow down", "REQUEST_LIMIT", 4.0)
    assert SalesforceConnector.classify_response(_response(200, {"records": [], "done": True}), "/q") is None
    assert SalesforceConnector.classify_response(_response(201, {"id": "001", "success": True, "errors": []}), "/q") is None
