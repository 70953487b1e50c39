"""DocuSign's account server (account-d.docusign.com) for the declared DocuSign stand-in: sign-in and base URI discovery.

- /oauth/auth (and /oauth/authorize, the sandbox's common layout): the consent page; Allow also records the user's consent
  to an integration key, which the JWT grant needs once (FACTS §19: consent_required until then).
- /oauth/token: authorization_code (client authenticated with Basic or the form, PKCE checked when started with it),
  refresh_token, and the JWT bearer grant: an RS256 assertion (iss = integration key, sub = user GUID, aud = this
  server's host, scope with "signature impersonation", at most an hour) verified against the key registered for the
  integration key. No refresh token for JWT.
- /oauth/userinfo: the user and their accounts, each with the base_uri every API call goes to.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Blueprint, Response, jsonify, render_template_string, request

from sandbox.oauth import CONSENT_PAGE, _pkce_ok, _redirect, bearer_token, issue_static_token, token_info
from sandbox.state import STORE
from sandbox.vendors._docusign_envelopes import ACCOUNT_ID, OTHER_ACCOUNT_ID, USER, USER_ID, controls_blueprint

VENDOR = "docusign"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TTL = 28800  # auth-code tokens live 8 hours at DocuSign
JWT_TTL = 3600
MAX_ASSERTION_SECONDS = 3600


def _oauth_error(code: str, description: str = "", status: int = 400) -> Response:
    body = {"error": code, **({"error_description": description} if description else {})}
    response = jsonify(body)
    response.status_code = status
    return response


def _unb64(part: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, TypeError):
        return None


def _issue(scopes: list[str], client_id: str, *, ttl: int, refresh: bool) -> dict[str, Any]:
    token = issue_static_token(VENDOR, f"sbx-ds-{secrets.token_urlsafe(24)}", scopes=scopes, ttl=ttl, subject=USER_ID)
    body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": " ".join(scopes)}
    if refresh:
        refresh_token = f"sbx-ds-rt-{secrets.token_urlsafe(24)}"
        with STORE.lock:
            STORE.refresh_tokens[refresh_token] = {"vendor": VENDOR, "scopes": scopes, "client_id": client_id, "subject": USER_ID, "used": False}
        body["refresh_token"] = refresh_token
    return body


def _consents() -> Any:
    return STORE.collection(VENDOR, "_consents")


def _jwt_grant() -> Response:
    """The JWT bearer grant: verify the assertion against the integration key's registered public key, then consent."""
    parts = request.form.get("assertion", "").split(".")
    if len(parts) != 3:
        return _oauth_error("invalid_grant", "The assertion is not a JWT.")
    header, claims = _unb64(parts[0]), _unb64(parts[1])
    if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
        return _oauth_error("invalid_request", "The JWT must be signed with RS256.")
    with STORE.lock:
        app = dict(STORE.collection(VENDOR, "_jwt_apps").get(str(claims.get("iss")), {}))
    if not app:
        return _oauth_error("invalid_grant", "no_valid_keys_or_signatures")
    try:
        public_key = serialization.load_pem_public_key(app["public_key_pem"].encode())
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    except (InvalidSignature, ValueError, TypeError):
        return _oauth_error("invalid_grant", "no_valid_keys_or_signatures")
    now = time.time()
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int | float) or not isinstance(expires, int | float) or not issued - 300 <= now <= expires:
        return _oauth_error("invalid_grant", "The JWT is expired or not yet valid (iat/exp).")
    if expires - issued > MAX_ASSERTION_SECONDS:
        return _oauth_error("invalid_grant", "The JWT may be valid for an hour at most.")
    if claims.get("aud") != request.host:
        return _oauth_error("invalid_grant", f"The JWT audience must be {request.host}.")
    if claims.get("sub") != USER_ID:
        return _oauth_error("invalid_grant", "user_not_found")
    scopes = str(claims.get("scope") or "").split()
    if "signature" not in scopes or "impersonation" not in scopes:
        return _oauth_error("invalid_scope", 'The JWT grant needs scope "signature impersonation".')
    with STORE.lock:
        consented = (str(claims["iss"]), USER_ID) in _consents()
    if not consented:
        return _oauth_error("consent_required")
    return jsonify(_issue(scopes, str(claims["iss"]), ttl=JWT_TTL, refresh=False))


def blueprints() -> list[Blueprint]:
    from sandbox.declared import declared_vendors
    from sandbox.server import install_faults

    engine = next(v for v in declared_vendors() if v.VENDOR == VENDOR)
    auth = Blueprint("docusign_account_server", __name__)
    install_faults(auth, VENDOR, rate_limited=engine.rate_limited, error=engine.error)

    @auth.route("/oauth/auth", methods=["GET", "POST"], endpoint="authorize_docusign")
    @auth.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize():
        params = request.values.to_dict()
        params.pop("decision", None)
        redirect_uri, client_id = params.get("redirect_uri"), params.get("client_id")
        if not redirect_uri or not client_id:
            return Response("redirect_uri and client_id are required", status=400)
        if params.get("response_type", "code") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", "state": params.get("state", "")})
        scopes = [s for s in params.get("scope", "").split() if s]
        if request.method == "GET":
            return render_template_string(CONSENT_PAGE, vendor=VENDOR, scopes=scopes, params=params)
        if request.form.get("decision") != "allow":
            return _redirect(redirect_uri, {"error": "access_denied", "state": params.get("state", "")})
        code = secrets.token_urlsafe(24)
        with STORE.lock:
            if "impersonation" in scopes:
                _consents()[(client_id, USER_ID)] = scopes  # the one-time consent a JWT integration needs
            STORE.codes[code] = {
                "vendor": VENDOR,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scopes": scopes,
                "challenge": params.get("code_challenge"),
                "challenge_method": params.get("code_challenge_method"),
                "expires_at": time.time() + 120,
            }
        return _redirect(redirect_uri, {"code": code, "state": params.get("state", "")})

    @auth.post("/oauth/token")
    def token():
        form = request.form.to_dict()
        grant_type = form.get("grant_type")
        if grant_type == JWT_BEARER:
            return _jwt_grant()
        client_id = request.authorization.username if request.authorization and request.authorization.username else form.get("client_id", "")
        if grant_type == "authorization_code":
            with STORE.lock:
                grant = STORE.codes.pop(form.get("code", ""), None)
            if not grant or grant["vendor"] != VENDOR or grant["expires_at"] < time.time():
                return _oauth_error("invalid_grant", "The authorization code is invalid or expired.")
            if grant["redirect_uri"] != form.get("redirect_uri") or grant["client_id"] != client_id:
                return _oauth_error("invalid_grant", "redirect_uri or client_id does not match the authorization.")
            if not _pkce_ok(form.get("code_verifier"), grant["challenge"], grant["challenge_method"]):
                return _oauth_error("invalid_grant", "PKCE verification failed.")
            return jsonify(_issue(grant["scopes"], client_id, ttl=ACCESS_TTL, refresh=True))
        if grant_type == "refresh_token":
            with STORE.lock:
                stored = STORE.refresh_tokens.get(form.get("refresh_token", ""))
                if not stored or stored["vendor"] != VENDOR or STORE.faults_for(VENDOR).revoked:
                    return _oauth_error("invalid_grant", "The refresh token is invalid or revoked.")
            body = _issue(stored["scopes"], stored["client_id"], ttl=ACCESS_TTL, refresh=False)
            body["refresh_token"] = form["refresh_token"]  # DocuSign keeps the refresh token valid (30 days)
            return jsonify(body)
        return _oauth_error("unsupported_grant_type")

    @auth.get("/oauth/userinfo")
    def userinfo():
        if token_info(VENDOR, bearer_token()) is None:
            return _oauth_error("invalid_token", "The access token is expired, revoked or malformed.", 401)
        with STORE.lock:
            moved = STORE.collection(VENDOR, "_userinfo").get("base_uri")
        base_uri = moved or request.host_url.rstrip("/") + f"/{VENDOR}"
        accounts = [
            {"account_id": OTHER_ACCOUNT_ID, "is_default": False, "account_name": "Acme Ventures", "base_uri": base_uri},
            {"account_id": ACCOUNT_ID, "is_default": True, "account_name": "Acme Corp", "base_uri": base_uri},
        ]
        first, _, last = USER["name"].partition(" ")
        return jsonify({"sub": USER_ID, "name": USER["name"], "given_name": first, "family_name": last, "email": USER["email"], "accounts": accounts})

    control = Blueprint("docusign_account_controls", __name__)

    @control.post("/_sandbox/jwt-apps")
    def register_jwt_app():
        """An integration key with an RSA key pair (the private key returned once, as DocuSign's admin page does)."""
        body = request.get_json(silent=True) or {}
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
        public_pem = private_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        integration_key = str(uuid.uuid4())
        with STORE.lock:
            STORE.collection(VENDOR, "_jwt_apps")[integration_key] = {"public_key_pem": public_pem}
            if body.get("consented"):
                _consents()[(integration_key, USER_ID)] = ["signature", "impersonation"]
        return jsonify({"integration_key": integration_key, "user_id": USER_ID, "private_key": private_pem, "account_id": ACCOUNT_ID})

    @control.put("/_sandbox/userinfo")
    def move_account():
        """The base_uri userinfo names for the user's accounts (DocuSign moves accounts between sites); null restores it."""
        base_uri = (request.get_json(force=True) or {}).get("base_uri")
        with STORE.lock:
            STORE.collection(VENDOR, "_userinfo")["base_uri"] = base_uri
        return jsonify({"base_uri": base_uri})

    return [auth, control, controls_blueprint()]
