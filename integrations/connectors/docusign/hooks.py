"""DocuSign steps the spec format cannot express: the JWT grant and the account discovery every API call depends on.

- `auth`: the JWT bearer grant for a service integration (integration key, user GUID, RSA key): an RS256 assertion
  exchanged at the account server's /oauth/token; no refresh token, a new assertion when the token runs out. A user who
  never consented gets `consent_required`: the error names the consent URL to open once.
- `post_authorize` / `test_connection`: GET /oauth/userinfo on the account server; the account (the configured one, else
  the default) gives `base_uri` + `account_id`, and every API call goes to {base_uri}/restapi/v2.1/accounts/{account_id}.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.cache import cache

from integrations.connectors.base import ConnectionTest
from integrations.errors import ApiBadRequest, ApiError, ApiForbidden, ApiUnauthorized
from integrations.http import HttpClient, classify_generic

logger = logging.getLogger(__name__)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_SCOPES = "signature impersonation"
ASSERTION_SECONDS = 3600  # DocuSign accepts assertions valid for at most an hour
REFRESH_MARGIN_SECONDS = 120
DISCOVERY_CACHE_SECONDS = 3600  # userinfo's answer changes only when accounts move (DocuSign asks integrations to cache it)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def normalized_pem(text: str) -> str:
    """A PEM block whatever a form did to its line breaks (a one-line input drops them): header, body in 64-column lines, footer."""
    text = text.strip().replace("\\n", "\n")  # also a key pasted from JSON, newlines escaped
    head, sep, rest = text.partition("-----BEGIN ")
    label, sep2, rest = rest.partition("-----")
    body, sep3, _tail = rest.partition("-----END ")
    if not (sep and sep2 and sep3) or head.strip():
        return text
    data = "".join(body.split())
    lines = [data[i : i + 64] for i in range(0, len(data), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])


def account_server(client: HttpClient) -> str:
    """The account server the integration's base URL names (account-d.docusign.com, account.docusign.com, the sandbox)."""
    return client.base_url.rstrip("/")


def consent_url(server: str, integration_key: str, redirect_uri: str) -> str:
    """Where the impersonated user grants the integration key consent, once, before the JWT grant works."""
    query = urlencode({"response_type": "code", "scope": JWT_SCOPES, "client_id": integration_key, "redirect_uri": redirect_uri})
    return f"{server}/oauth/auth?{query}"


class JwtGrantAuth:
    """Bearer tokens from DocuSign's JWT grant, fetched on first use and again before they expire or after a 401."""

    def __init__(self, client: HttpClient, credentials: Mapping[str, Any], config: Mapping[str, Any]):
        self._lock = threading.Lock()
        self._token = ""
        self._expires = 0.0
        self._server = account_server(client)
        self._integration_key = str(credentials.get("integration_key") or "").strip()
        self._user_id = str(credentials.get("user_id") or "").strip()
        self._private_key = normalized_pem(str(credentials.get("private_key") or ""))
        self._redirect_uri = str(config.get("consent_redirect_uri") or settings.BASTION_PUBLIC_URL.rstrip("/") + "/")
        # 400 answers are read here (consent_required, invalid_grant); the rest go through the generic tree.
        self._token_client = HttpClient(
            self._server,
            url_guard=client.url_guard,
            session=client.session,
            timeout=client.timeout,
            max_retries=1,
            sleep=client.sleep,
            connector_key=client.connector_key,
            classify=lambda response, path: None if response.status_code == 400 else classify_generic(response, path),
        )

    def assertion(self, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        claims = {
            "iss": self._integration_key,
            "sub": self._user_id,
            "aud": urlsplit(self._server).netloc,
            "iat": issued,
            "exp": issued + ASSERTION_SECONDS,
            "scope": JWT_SCOPES,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        try:
            key = serialization.load_pem_private_key(self._private_key.encode(), password=None)
        except (ValueError, TypeError):
            raise ApiBadRequest("The RSA private key could not be read: paste the whole PEM block DocuSign gave (BEGIN … PRIVATE KEY).") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ApiBadRequest("DocuSign's JWT grant needs an RSA private key.")
        return f"{signing_input}.{_b64url(key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))}"

    def _fetch(self) -> None:
        response = self._token_client.post("oauth/token", data={"grant_type": JWT_BEARER, "assertion": self.assertion()}, retry=False)
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, Mapping) else {}
        if response.status_code == 400 or not body.get("access_token"):
            error = str(body.get("error") or "no access token")
            if error == "consent_required":
                url = consent_url(self._server, self._integration_key, self._redirect_uri)
                raise ApiForbidden(
                    f"The DocuSign user has not yet consented to this integration key. Open {url} signed in as that user, "
                    "allow access, then test the connection again.",
                    status=400,
                    vendor_code="consent_required",
                    path="oauth/token",
                )
            detail = str(body.get("error_description") or "")
            raise ApiUnauthorized(
                f"DocuSign refused the JWT grant: {error}{': ' + detail if detail else ''}.", status=400, vendor_code=error, path="oauth/token"
            )
        self._token = str(body["access_token"])
        lifetime = body.get("expires_in")
        self._expires = time.monotonic() + float(lifetime) - REFRESH_MARGIN_SECONDS if isinstance(lifetime, int | float) else time.monotonic() + 600

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if not self._token or time.monotonic() >= self._expires:
                self._fetch()
            headers["Authorization"] = f"Bearer {self._token}"

    def refresh(self) -> bool:
        with self._lock:
            self._fetch()
        return True


# ---- account discovery -----------------------------------------------------------------------------------------------------


def _base_uri(value: Any) -> str:
    """userinfo's base_uri as a plain http(s) origin (the SSRF guard still vets each call made to it)."""
    text = str(value or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ApiBadRequest(f"DocuSign's userinfo named an unusable base_uri ({text[:100]!r}).", vendor_code="bad_base_uri")
    return text


def discover_account(self: Any) -> dict[str, str]:
    """The account every call goes to, from GET /oauth/userinfo: the configured account_id, else the user's default."""
    body = self.client.get("oauth/userinfo").json()
    accounts = [a for a in (body.get("accounts") or []) if isinstance(a, Mapping)] if isinstance(body, Mapping) else []
    wanted = str(self.config.get("account_id") or "")
    if wanted:
        chosen = next((a for a in accounts if str(a.get("account_id")) == wanted), None)
    else:
        chosen = next((a for a in accounts if a.get("is_default") in (True, "true")), accounts[0] if accounts else None)
    if chosen is None:
        raise ApiForbidden(
            f"the DocuSign user has no account {wanted}." if wanted else "the DocuSign user belongs to no eSignature account.", vendor_code="no_account"
        )
    return {
        "account_id": str(chosen.get("account_id") or ""),
        "base_uri": _base_uri(chosen.get("base_uri")),
        "account_name": str(chosen.get("account_name") or ""),
        "user_email": str(body.get("email") or ""),
    }


def _discovery_key(self: Any) -> str:
    parts = [self.client.base_url, *(str(self.credentials.get(k) or "") for k in ("integration_key", "user_id")), str(self.config.get("account_id") or "")]
    return "docusign:userinfo:" + hashlib.sha256("|".join(parts).encode()).hexdigest()


def auth(self: Any) -> Any:
    """The JWT grant when the credential is a service integration; found accounts fill base_uri/account_id (cached)."""
    if not self.credentials.get("private_key"):
        return None
    provider = JwtGrantAuth(self.client, self.credentials, self.config)
    if not (self.config.get("base_uri") and self.config.get("account_id")):
        found = cache.get(_discovery_key(self))
        if found is None:
            self.client.auth = provider
            try:
                found = discover_account(self)
                cache.set(_discovery_key(self), found, DISCOVERY_CACHE_SECONDS)
            except ApiError as error:  # the connection test raises it again with its message (consent, key, account)
                logger.warning("docusign.discovery_failed", extra={"error": type(error).__name__, "code": error.vendor_code})
                found = {}
        self.config.update({k: v for k, v in found.items() if k in ("account_id", "base_uri") and not self.config.get(k)})
    return provider


def post_authorize(self: Any, token: Mapping[str, Any]) -> dict[str, Any]:
    """After the authorization-code grant: the account and its base URI, saved in the connection's settings."""
    found = discover_account(self)
    return {"account_id": found["account_id"], "base_uri": found["base_uri"], "account_name": found["account_name"]}


def test_connection(self: Any) -> ConnectionTest:
    """userinfo (who and which account), then the account's template list (the API answers at base_uri)."""
    found = discover_account(self)
    if self.config.get("base_uri") and self.config["base_uri"].rstrip("/") != found["base_uri"]:
        found["moved_from"] = self.config["base_uri"]  # DocuSign moved the account: the discovered base URI wins
    self.config.update(account_id=found["account_id"], base_uri=found["base_uri"])
    if self.credentials.get("private_key"):
        cache.set(_discovery_key(self), {k: found[k] for k in ("account_id", "base_uri", "account_name", "user_email")}, DISCOVERY_CACHE_SECONDS)
    answer = self.send_scoped({"use": "templates_page"}, self.scope())
    templates = answer["body"].get("totalSetSize", "0") if isinstance(answer["body"], Mapping) else "0"
    return ConnectionTest(
        ok=answer["status"] == 200,
        identity=found["user_email"],
        account_id=found["account_id"],
        detail={
            "account_name": found["account_name"],
            "base_uri": found["base_uri"],
            "templates": templates,
            **({"moved_from": found["moved_from"]} if "moved_from" in found else {}),
        },
    )
