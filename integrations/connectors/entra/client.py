"""Microsoft Graph's HTTP side: its error envelope and the app-only token from the Microsoft identity platform."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests

from integrations.errors import ApiError, ApiHostError, ApiTimeout, ApiUnauthorized
from integrations.http import DEFAULT_TIMEOUT, classify_status, generic_error_message, response_json

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def classify_graph_response(response: requests.Response, path: str) -> ApiError | None:
    """Graph answers errors as {"error": {"code", "message", "innerError"}}; 429 and 503 carry Retry-After."""
    if 200 <= response.status_code < 400:
        return None
    message, code = generic_error_message(response_json(response))
    return classify_status(response, path, message=message, code=code)


class ClientCredentialsAuth:
    """App-only token from the Microsoft identity platform (no refresh token: a new one is requested before expiry)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = GRAPH_SCOPE,
        session: requests.Session | None = None,
        url_guard: Callable[[str], None] | None = None,
    ):
        self.token_url, self.client_id, self._secret, self.scope = token_url, client_id, client_secret, scope
        self._session = session or requests.Session()
        self._url_guard = url_guard
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    def _fetch(self) -> None:
        if self._url_guard:
            self._url_guard(self.token_url)  # the same SSRF policy as every Graph call
        try:
            response = self._session.post(
                self.token_url,
                data={"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret, "scope": self.scope},
                timeout=DEFAULT_TIMEOUT,
            )
        except requests.Timeout as exc:
            raise ApiTimeout("The Microsoft token endpoint did not answer in time.") from exc
        except requests.ConnectionError as exc:
            raise ApiHostError("Could not reach the Microsoft token endpoint.") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 500:
            raise ApiHostError(f"The Microsoft token endpoint failed ({response.status_code}).", status=response.status_code)
        if response.status_code != 200 or not body.get("access_token"):
            # The reason phrase is the server's own text (a banner when the URL is no token endpoint): never shown.
            description = str(body.get("error_description") or body.get("error") or f"HTTP {response.status_code}").split("\r\n")[0][:300]
            raise ApiUnauthorized(
                f"Entra ID refused the client credentials: {description}", status=response.status_code, vendor_code=str(body.get("error", ""))
            )
        self.fetches += 1
        self._token = body["access_token"]
        # Renew five minutes early so a long sync never presents an expired token.
        self._expires_at = time.time() + max(60, int(body.get("expires_in", 3600)) - 300)

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if not self._token or time.time() >= self._expires_at:
                self._fetch()
            headers["Authorization"] = f"Bearer {self._token}"

    def refresh(self) -> bool:
        with self._lock:
            self._fetch()
        return True
