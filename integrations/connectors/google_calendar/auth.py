"""Google service-account auth: bearer tokens from the JWT bearer grant (RFC 7523), refreshed before they expire."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from integrations.errors import ApiBadRequest, ApiUnauthorized, AuthRefreshFailed
from integrations.http import HttpClient

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class ServiceAccountAuth:
    """Bearer tokens from a service-account key via the JWT bearer grant (RFC 7523), refreshed before they expire."""

    def __init__(self, key: Mapping[str, Any], *, scopes: tuple[str, ...], subject: str = "", token_client: HttpClient):
        for name in ("client_email", "private_key", "token_uri"):
            if not key.get(name):
                raise ApiBadRequest(f"The service-account key has no {name}; paste the whole JSON key file.")
        self._key = dict(key)
        self._scopes = scopes
        self._subject = subject
        self._token_client = token_client
        self._lock = threading.Lock()
        self.token = ""
        self.expires_at = 0.0

    def assertion(self, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self._key.get("private_key_id", "")}
        claims = {"iss": self._key["client_email"], "scope": " ".join(self._scopes), "aud": self._key["token_uri"], "iat": issued, "exp": issued + 3600}
        if self._subject:
            claims["sub"] = self._subject  # domain-wide delegation: act as this user
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        private_key = serialization.load_pem_private_key(self._key["private_key"].encode(), password=None)
        signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def fetch(self) -> None:
        try:
            response = self._token_client.post(self._key["token_uri"], data={"grant_type": JWT_BEARER, "assertion": self.assertion()})
        except (ApiBadRequest, ApiUnauthorized) as error:
            raise AuthRefreshFailed(f"Google refused the service-account assertion: {error.message}", status=error.status, vendor_code=error.vendor_code)
        body = response.json()
        self.token = body["access_token"]
        self.expires_at = time.time() + float(body.get("expires_in", 3600))

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if not self.token or self.expires_at - time.time() < 120:  # refresh two minutes early
                self.fetch()
            headers["Authorization"] = f"Bearer {self.token}"

    def refresh(self) -> bool:
        with self._lock:
            self.fetch()
        return True
