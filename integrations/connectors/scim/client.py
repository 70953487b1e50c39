"""SCIM's wire conventions: schema URNs, filter literals and the RFC 7644 error envelope."""

from __future__ import annotations

import json

import requests

from integrations.errors import ApiError
from integrations.http import classify_status, generic_error_message, response_json

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_HEADERS = {"Accept": "application/scim+json, application/json"}


def scim_quote(value: str) -> str:
    """A SCIM filter string literal (JSON string rules: quotes and backslashes escaped)."""
    return json.dumps(str(value))


def classify_scim_response(response: requests.Response, path: str) -> ApiError | None:
    """RFC 7644 3.12: {"schemas": [...Error], "status": "404", "detail", "scimType"}: detail is the message, scimType the code."""
    if 200 <= response.status_code < 400:
        return None
    body = response_json(response)
    if isinstance(body, dict) and "detail" in body and "schemas" in body:
        message, code = str(body["detail"]), str(body.get("scimType", ""))
    else:
        message, code = generic_error_message(body)
    return classify_status(response, path, message=message, code=code)
