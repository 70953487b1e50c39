"""Slack's HTTP side: method errors arrive as HTTP 200 `ok:false`, so the envelope is read on every answer; the Web API calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from integrations.connectors.base import BaseConnector, ConnectionTest
from integrations.connectors.slack.manifest import SCOPE_PURPOSES
from integrations.errors import ApiBadRequest, ApiConflict, ApiError, ApiForbidden, ApiHostError, ApiNotFound, ApiRateLimited, ApiUnauthorized
from integrations.http import BearerAuth, HttpClient, classify_status, generic_error_message, rate_limit_wait, response_json

RATE_LIMITED = ("ratelimited", "rate_limited")
REFUSED_TOKEN = ("invalid_auth", "not_authed", "token_expired", "token_revoked", "account_inactive")
REFUSED_ACTION = ("missing_scope", "not_allowed_token_type", "restricted_action")
NOT_FOUND = ("channel_not_found", "user_not_found", "users_not_found")
CONFLICT = ("name_taken", "already_in_channel")
HOST_ERROR = ("internal_error", "service_unavailable", "fatal_error", "request_timeout")


def classify_slack_response(response: requests.Response, path: str) -> ApiError | None:
    """The error tree from Slack's answer: `{"ok": false, "error": code}` with a 200 by method error code, else by status."""
    status = response.status_code
    body = response_json(response)
    if isinstance(body, dict) and body.get("ok") is False:
        code = str(body.get("error", ""))
        if status != 200:
            return classify_status(response, path, message=code, code=code)
        if code in RATE_LIMITED:
            return ApiRateLimited("Slack rate limit", retry_after=rate_limit_wait(response.headers) or 1.0, status=status, vendor_code=code, path=path)
        if code in REFUSED_TOKEN:
            return ApiUnauthorized(f"Slack refused the token: {code}", status=status, vendor_code=code, path=path)
        if code in REFUSED_ACTION:
            return ApiForbidden(f"Slack refused the action: {code}", status=status, vendor_code=code, path=path)
        for error_class, codes in ((ApiNotFound, NOT_FOUND), (ApiConflict, CONFLICT), (ApiHostError, HOST_ERROR)):
            if code in codes:
                return error_class(f"Slack: {code}", status=status, vendor_code=code, path=path)
        return ApiBadRequest(f"Slack: {code}", status=status, vendor_code=code, path=path)
    if 200 <= status < 400:
        return None
    message, code = generic_error_message(body)
    return classify_status(response, path, message=message, code=code)


class SlackClient(BaseConnector):
    """The Web API calls every part of the Slack connector makes (bot token as a bearer)."""

    def __init__(self, *, client: HttpClient | None = None, config: Mapping[str, Any] | None = None, credentials: Mapping[str, Any] | None = None):
        super().__init__(client=client, config=config, credentials=credentials)
        token = self.credentials.get("access_token") or self.credentials.get("bot_token")
        if self.client is not None and self.client.auth is None and token:
            self.client.auth = BearerAuth(token)
        self._workspace_url: str | None = None
        self._bot_user: str | None = None
        self._user_ids: dict[str, tuple[str, float]] = {}  # e-mail → (user id, expiry): this connector's lookups

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_slack_response(response, path)

    def _get(self, method: str, **params: Any) -> dict[str, Any]:
        return self.client.get(method, params={k: v for k, v in params.items() if v is not None}).json()

    def _post(self, method: str, *, retry: bool = True, **body: Any) -> dict[str, Any]:
        return self.client.post(method, json={k: v for k, v in body.items() if v is not None}, retry=retry).json()

    def _page_size(self) -> int:
        return int(self.config.get("page_size") or 200)

    def test_connection(self) -> ConnectionTest:
        response = self.client.post("auth.test")
        body = response.json()
        scopes = [s for s in (response.headers.get("x-oauth-scopes") or "").split(",") if s]
        self._workspace_url = body.get("url")
        missing = [s for s in SCOPE_PURPOSES if scopes and s not in scopes]
        return ConnectionTest(
            ok=True,
            identity=f"{body.get('user')} @ {body.get('team')}",
            scopes=scopes,
            account_id=body.get("team_id", ""),
            detail={"team": body.get("team"), "user_id": body.get("user_id"), "bot_id": body.get("bot_id"), "url": body.get("url"), "missing_scopes": missing},
        )

    def _workspace(self) -> str:
        if self._workspace_url is None:
            self._workspace_url = self._post("auth.test").get("url") or ""
        return self._workspace_url

    def _bot_user_id(self) -> str:
        if self._bot_user is None:
            self._bot_user = str(self._post("auth.test").get("user_id") or "")
        return self._bot_user

    def _channel_url(self, channel_id: str) -> str:
        base = self._workspace()
        return f"{base.rstrip('/')}/archives/{channel_id}" if base else ""
