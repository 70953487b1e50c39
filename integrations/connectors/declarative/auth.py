"""The spec's `auth` section at run time: the AuthProvider installed on the connector's HttpClient."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

from integrations.connectors.declarative.template import holds, render
from integrations.errors import ApiUnauthorized
from integrations.http import AuthProvider, BasicAuth, BearerAuth, HeaderAuth, HttpClient

REFRESH_MARGIN_SECONDS = 60.0  # a client-credentials token is renewed this long before it expires


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class ClientCredentialsAuth:
    """OAuth 2.0 client credentials: a token fetched on first use, renewed before expiry and once after a 401."""

    def __init__(self, client: HttpClient, auth: Mapping[str, Any], scope: Mapping[str, Any]):
        self._lock = threading.Lock()
        self._token = ""
        self._expires = 0.0
        self._spec = auth
        self._scope = scope
        # The token endpoint goes through the same session and SSRF guard as every call of this integration.
        token_url = _text(render(auth["token_url"], scope))
        if "://" not in token_url:  # a path on the vendor's own host (ServiceNow's /oauth_token.do on each instance)
            token_url = urljoin(client.base_url, token_url.lstrip("/"))
        self._token_url = token_url
        self._client = HttpClient(token_url, url_guard=client.url_guard, session=client.session, timeout=client.timeout, max_retries=1, sleep=client.sleep)

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials"}
        scopes = [str(s.get("scope")) for s in self._spec.get("scopes") or [] if isinstance(s, Mapping)]
        if scopes:
            form["scope"] = str(self._spec.get("scope_separator") or " ").join(scopes)
        client_id, secret = _text(render(self._spec["client_id"], self._scope)), _text(render(self._spec["client_secret"], self._scope))
        headers: dict[str, str] = {}
        if self._spec.get("client_auth") == "client_secret_basic":
            BasicAuth(client_id, secret).apply(headers)
        else:
            form.update(client_id=client_id, client_secret=secret)
        body = self._client.post(self._token_url, data=form, headers=headers, retry=False).json()
        token = body.get(self._spec.get("token_field") or "access_token") if isinstance(body, Mapping) else None
        if not token:
            raise ApiUnauthorized("The token endpoint answered without an access token.", path="token")
        lifetime = body.get(self._spec.get("expires_field") or "expires_in")
        self._token = str(token)
        self._expires = time.monotonic() + float(lifetime) - REFRESH_MARGIN_SECONDS if isinstance(lifetime, int | float) else float("inf")

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if not self._token or time.monotonic() >= self._expires:
                self._fetch()
            headers["Authorization"] = f"Bearer {self._token}"

    def refresh(self) -> bool:
        with self._lock:
            self._fetch()
        return True


def auth_provider(auth: Mapping[str, Any] | None, client: HttpClient, scope: Mapping[str, Any]) -> AuthProvider | None:
    """The provider the spec's `auth` describes; None for none/oauth2 (Bastion installs OAuth tokens itself) or when `when`
    fails with no `otherwise`."""
    if not auth:
        return None
    if not holds(auth.get("when"), scope):
        # `otherwise`: the kind used when this one's `when` fails (client credentials when given, else basic).
        return auth_provider(auth.get("otherwise"), client, scope) if auth.get("otherwise") else None
    kind = auth.get("kind")
    if kind == "header":
        return HeaderAuth(str(auth["header"]), _text(render(auth["value"], scope)))
    if kind == "bearer":
        return BearerAuth(_text(render(auth["token"], scope)))
    if kind == "basic":
        return BasicAuth(_text(render(auth["username"], scope)), _text(render(auth["password"], scope)))
    if kind == "client_credentials":
        return ClientCredentialsAuth(client, auth, scope)
    return None  # "query" is added per request (a provider only sets headers); "oauth2"/"none" need nothing here
