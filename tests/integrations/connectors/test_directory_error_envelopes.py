"""Each directory connector reads its own vendor's error envelope (classify_response): class, message, code and wait."""

from __future__ import annotations

import json

import pytest
import requests

from integrations.connectors.demo import DemoConnector
from integrations.connectors.entra import EntraConnector
from integrations.connectors.okta import OktaConnector
from integrations.connectors.sandbox_actions import SandboxActionsConnector
from integrations.connectors.sandbox_directory import SandboxDirectoryConnector
from integrations.connectors.scim import ScimConnector
from integrations.errors import ApiBadRequest, ApiConflict, ApiForbidden, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized


def answer(status: int, body: object, headers: dict[str, str] | None = None, content_type: str = "application/json") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update({"Content-Type": content_type, **(headers or {})})
    return response


def outcome(error: object) -> tuple[object, ...]:
    return (type(error), error.message, error.vendor_code, error.status, error.retry_after, error.path)


OKTA = [
    (answer(200, [{"id": "00u1"}]), None),
    (
        answer(401, {"errorCode": "E0000011", "errorSummary": "Invalid token provided", "errorLink": "E0000011", "errorId": "oae1", "errorCauses": []}),
        (ApiUnauthorized, "Invalid token provided", "E0000011", 401, None, "/api/v1/users"),
    ),
    (
        answer(429, {"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."}, {"Retry-After": "7"}),
        (ApiRateLimited, "API call exceeded rate limit due to too many requests.", "E0000047", 429, 7.0, "/api/v1/users"),
    ),
    (
        answer(400, {"errorCode": "E0000031", "errorSummary": "Invalid search criteria.", "errorCauses": [{"errorSummary": "after: unknown cursor"}]}),
        (ApiBadRequest, "Invalid search criteria.", "E0000031", 400, None, "/api/v1/users"),
    ),
    (
        answer(404, {"errorCode": "E0000007", "errorSummary": "Not found: Resource not found: 00u9 (User)"}),
        (ApiNotFound, "Not found: Resource not found: 00u9 (User)", "E0000007", 404, None, "/api/v1/users"),
    ),
    (
        answer(500, {"errorCode": "E0000009", "errorSummary": "Internal Server Error"}),
        (ApiHostError, "Internal Server Error", "E0000009", 500, None, "/api/v1/users"),
    ),
    (
        answer(401, {"error": "invalid_client", "error_description": "The client secret supplied for a confidential client is invalid."}),
        (ApiUnauthorized, "The client secret supplied for a confidential client is invalid.", "invalid_client", 401, None, "/api/v1/users"),
    ),
    (answer(502, b"<html>Bad gateway</html>", content_type="text/html"), (ApiHostError, "HTTP 502 Bad Gateway", "", 502, None, "/api/v1/users")),
]

GRAPH = [
    (
        answer(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired or is not yet valid.", "innerError": {}}}),
        (ApiUnauthorized, "Access token has expired or is not yet valid.", "InvalidAuthenticationToken", 401, None, "/v1.0/users/delta"),
    ),
    (
        answer(403, {"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}}),
        (ApiForbidden, "Insufficient privileges to complete the operation.", "Authorization_RequestDenied", 403, None, "/v1.0/users/delta"),
    ),
    (
        answer(429, {"error": {"code": "TooManyRequests", "message": "Too many requests."}}, {"Retry-After": "3"}),
        (ApiRateLimited, "Too many requests.", "TooManyRequests", 429, 3.0, "/v1.0/users/delta"),
    ),
    (
        answer(410, {"error": {"code": "syncStateNotFound", "message": "The sync state generation is not found."}}),
        (ApiNotFound, "The sync state generation is not found.", "syncStateNotFound", 410, None, "/v1.0/users/delta"),
    ),
    (
        answer(503, {"error": {"code": "serviceNotAvailable", "message": "Service unavailable"}}, {"Retry-After": "2"}),
        (ApiHostError, "Service unavailable", "serviceNotAvailable", 503, 2.0, "/v1.0/users/delta"),
    ),
]

SCIM = [
    (
        answer(404, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "detail": "Resource 2819c223 not found", "status": "404"}),
        (ApiNotFound, "Resource 2819c223 not found", "", 404, None, "/scim/v2/Users"),
    ),
    (
        answer(
            400, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "scimType": "invalidFilter", "detail": "The filter is invalid.", "status": "400"}
        ),
        (ApiBadRequest, "The filter is invalid.", "invalidFilter", 400, None, "/scim/v2/Users"),
    ),
    (
        answer(409, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "scimType": "uniqueness", "detail": "userName is taken", "status": "409"}),
        (ApiConflict, "userName is taken", "uniqueness", 409, None, "/scim/v2/Users"),
    ),
    (
        answer(429, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "detail": "Slow down", "status": "429"}, {"Retry-After": "4"}),
        (ApiRateLimited, "Slow down", "", 429, 4.0, "/scim/v2/Users"),
    ),
    (answer(401, b"", content_type="text/plain"), (ApiUnauthorized, "HTTP 401 Unauthorized", "", 401, None, "/scim/v2/Users")),
]

# The sandbox's stand-ins answer {"error": {"code", "message"}} (the demo vendor's code is the status number).
SANDBOX = [
    (
        answer(401, {"error": {"code": "invalid_token", "message": "The access token is invalid, expired or revoked."}}),
        (ApiUnauthorized, "The access token is invalid, expired or revoked.", "invalid_token", 401, None, "/v1/people"),
    ),
    (
        answer(429, {"error": {"code": "rate_limited", "message": "Too many requests."}}, {"Retry-After": "1"}),
        (ApiRateLimited, "Too many requests.", "rate_limited", 429, 1.0, "/v1/people"),
    ),
    (answer(404, {"error": {"code": "not_found", "message": "No object 12."}}), (ApiNotFound, "No object 12.", "not_found", 404, None, "/v1/people")),
    (answer(400, {"error": {"code": 400, "message": "email is required"}}), (ApiBadRequest, "email is required", "400", 400, None, "/v1/people")),
    (answer(503, {"error": {"code": "injected", "message": "down"}}), (ApiHostError, "down", "injected", 503, None, "/v1/people")),
]


def check(connector, cases, path):
    for response, expected in cases:
        error = connector.classify_response(response, path)
        assert (None if error is None else outcome(error)) == expected


def test_okta_reads_error_summary_and_its_oauth_errors():
    check(OktaConnector, OKTA, "/api/v1/users")


def test_graph_reads_its_error_dict_and_retry_after():
    check(EntraConnector, GRAPH, "/v1.0/users/delta")


def test_scim_reads_detail_and_scim_type():
    check(ScimConnector, SCIM, "/scim/v2/Users")


@pytest.mark.parametrize("connector", [DemoConnector, SandboxActionsConnector, SandboxDirectoryConnector])
def test_the_sandbox_stand_ins_read_the_generic_envelope(connector):
    check(connector, SANDBOX, "/v1/people")


def test_a_connector_installs_its_reading_on_its_client():
    from integrations.http import HttpClient

    client = HttpClient("https://example.okta.com")
    OktaConnector(client=client, credentials={"api_token": "t"})
    assert client.classify == OktaConnector.classify_response
