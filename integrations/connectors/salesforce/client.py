"""Salesforce's HTTP side: the instance URL, its error envelope and daily quota, Sforce-Limit-Info, SOQL literals."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from integrations.connectors.base import BaseConnector
from integrations.errors import ApiBadRequest, ApiError, ApiQuotaExhausted
from integrations.http import classify_status, generic_error_message, rate_limit_wait, response_json

DEFAULT_API_VERSION = "60.0"
LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
QUOTA_WAIT_SECONDS = 3600.0  # REQUEST_LIMIT_EXCEEDED without a hint: look again in an hour (the quota is a rolling 24 h)


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API requests, as the last Sforce-Limit-Info header reported them."""

    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """Parse `Sforce-Limit-Info: api-usage=used/limit` (other parts such as api-bursts are ignored)."""
    match = LIMIT_INFO.search(header or "")
    return ApiUsage(int(match.group(1)), int(match.group(2))) if match else None


def soql_string(value: str) -> str:
    """A quoted SOQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def soql_datetime(value: str) -> str:
    """A SOQL datetime literal (unquoted, UTC, whole seconds) from any ISO 8601 / Salesforce timestamp."""
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", str(value).replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def salesforce_error_message(body: Any) -> tuple[str, str]:
    """(message, errorCode) of the first entry of Salesforce's error list; its OAuth endpoints answer {error, error_description}."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("message", "")), str(body[0].get("errorCode", ""))
    return generic_error_message(body)


def classify_salesforce_response(response: requests.Response, path: str) -> ApiError | None:
    """By status, except a 403 REQUEST_LIMIT_EXCEEDED: the org's daily API quota is spent (ApiQuotaExhausted, not a refusal)."""
    if 200 <= response.status_code < 400:
        return None
    message, code = salesforce_error_message(response_json(response))
    if response.status_code == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        wait = rate_limit_wait(response.headers) or QUOTA_WAIT_SECONDS
        reset_at = datetime.fromtimestamp(time.time() + wait, tz=UTC)
        text = message[:500] or "HTTP 403 Forbidden"
        return ApiQuotaExhausted(text, retry_after=wait, reset_at=reset_at, status=403, vendor_code=code, path=path)
    return classify_status(response, path, message=message, code=code)


class SalesforceInstance(BaseConnector):
    """The org's instance URL and API version: every call is an absolute URL built from them."""

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_salesforce_response(response, path)

    @classmethod
    def api_base_url(cls, credentials: Mapping[str, Any], config: Mapping[str, Any], fallback: str = "") -> str:
        """The instance root: credentials["instance_url"] wins over the integration's base URL."""
        return str(credentials.get("instance_url") or fallback or cls.manifest.default_base_url).rstrip("/")

    @property
    def instance_url(self) -> str:
        return self.api_base_url(self.credentials, self.config, self.client.base_url if self.client else "")

    @property
    def api_version(self) -> str:
        version = str(self.config.get("api_version") or DEFAULT_API_VERSION).lstrip("vV")
        if not re.fullmatch(r"\d{2}\.\d", version):
            raise ApiBadRequest(f"Salesforce API version {version!r} is not of the form 60.0.")
        return version

    @property
    def data_url(self) -> str:
        return f"{self.instance_url}/services/data/v{self.api_version}"

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if path.startswith("/services/"):
            return self.instance_url + path  # nextRecordsUrl and Location headers are relative to the instance root
        return self.data_url + path

    def _get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.client.get(self._url(path), **kwargs)
