"""A generic OAuth 2.0 authorization server (code + PKCE, expiring and optionally rotating tokens) per vendor."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, render_template_string, request

from sandbox.state import STORE


@dataclass
class OAuthProfile:
    vendor: str
    access_ttl: int = 3600
    rotates_refresh_token: bool = False
    issue_refresh_token: bool = True
    extra_token_fields: dict[str, Any] = field(default_factory=dict)
    error_style: str = "rfc6749"  # rfc6749 | slack


PROFILES: dict[str, OAuthProfile] = {}


def register_profile(profile: OAuthProfile) -> None:
    PROFILES[profile.vendor] = profile


def issue_static_token(
    vendor: str, token: str | None = None, *, scopes: list[str] | None = None, ttl: int | None = None, subject: str = "sandbox-admin"
) -> str:
    """Create a non-OAuth credential (API key, private-app token, PAT) the vendor will accept."""
    token = token or f"sbx-{vendor}-{secrets.token_hex(12)}"
    with STORE.lock:
        STORE.tokens[token] = {
            "vendor": vendor,
            "scopes": list(scopes or []),
            "expires_at": time.time() + ttl if ttl else None,
            "subject": subject,
        }
    return token


def token_info(vendor: str, token: str | None) -> dict[str, Any] | None:
    """Return the token's grant if it is valid for this vendor now, else None."""
    if not token:
        return None
    with STORE.lock:
        info = STORE.tokens.get(token)
        if not info or info["vendor"] != vendor or STORE.faults_for(vendor).revoked:
            return None
        if info["expires_at"] is not None and info["expires_at"] < time.time():
            return None
        return dict(info)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _pkce_ok(verifier: str | None, challenge: str | None, method: str | None) -> bool:
    if not challenge:
        return True
    if not verifier:
        return False
    if (method or "plain") == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    return verifier == challenge


CONSENT_PAGE = """<!doctype html><html><head><title>Authorize Bastion</title></head><body style="font-family:sans-serif;max-width:520px;margin:40px auto">
<h1>{{ vendor|title }} sandbox</h1><p><strong>Bastion</strong> asks for access to your {{ vendor }} sandbox account.</p>
<p>Requested scopes:</p><ul>{% for s in scopes %}<li><code>{{ s }}</code></li>{% endfor %}</ul>
<form method="post">{% for k, v in params.items() %}<input type="hidden" name="{{ k }}" value="{{ v }}">{% endfor %}
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button></form></body></html>"""


def _redirect(url: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in url else "?"
    response = Response(status=302)
    response.headers["Location"] = f"{url}{separator}{urlencode(params)}"
    return response


def _token_error(profile: OAuthProfile, code: str, description: str, status: int = 400) -> Response:
    if profile.error_style == "slack":
        return jsonify({"ok": False, "error": code})
    response = jsonify({"error": code, "error_description": description})
    response.status_code = status
    return response


def _issue_tokens(profile: OAuthProfile, scopes: list[str], client_id: str, subject: str) -> dict[str, Any]:
    access = f"sbx-at-{profile.vendor}-{secrets.token_hex(16)}"
    with STORE.lock:
        STORE.tokens[access] = {
            "vendor": profile.vendor,
            "scopes": scopes,
            "expires_at": time.time() + profile.access_ttl,
            "subject": subject,
            "client_id": client_id,
        }
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": profile.access_ttl, "scope": " ".join(scopes)}
    if profile.issue_refresh_token:
        refresh = f"sbx-rt-{profile.vendor}-{secrets.token_hex(16)}"
        with STORE.lock:
            STORE.refresh_tokens[refresh] = {"vendor": profile.vendor, "scopes": scopes, "client_id": client_id, "subject": subject, "used": False}
        body["refresh_token"] = refresh
    body.update(profile.extra_token_fields)
    return body


def oauth_blueprint(profile: OAuthProfile) -> Blueprint:
    """Blueprint with /oauth/authorize and /oauth/token for one vendor (mounted under the vendor prefix)."""
    register_profile(profile)
    bp = Blueprint(f"{profile.vendor}_oauth", __name__)

    @bp.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize():
        params = request.values.to_dict()
        params.pop("decision", None)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or not params.get("client_id"):
            return Response("redirect_uri and client_id are required", status=400)
        if params.get("response_type", "code") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", "state": params.get("state", "")})
        scopes = [s for s in params.get("scope", "").replace(",", " ").split() if s]
        if request.method == "GET":
            return render_template_string(CONSENT_PAGE, vendor=profile.vendor, scopes=scopes, params=params)
        if request.form.get("decision") != "allow":
            return _redirect(redirect_uri, {"error": "access_denied", "state": params.get("state", "")})
        code = secrets.token_urlsafe(24)
        with STORE.lock:
            STORE.codes[code] = {
                "vendor": profile.vendor,
                "client_id": params["client_id"],
                "redirect_uri": redirect_uri,
                "scopes": scopes,
                "challenge": params.get("code_challenge"),
                "challenge_method": params.get("code_challenge_method"),
                "expires_at": time.time() + 300,
            }
        return _redirect(redirect_uri, {"code": code, "state": params.get("state", "")})

    @bp.route("/oauth/token", methods=["POST"])
    def token():
        form = request.form.to_dict()
        if request.authorization and request.authorization.username:
            form.setdefault("client_id", request.authorization.username)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            with STORE.lock:
                grant = STORE.codes.pop(form.get("code", ""), None)
            if not grant or grant["vendor"] != profile.vendor or grant["expires_at"] < time.time():
                return _token_error(profile, "invalid_grant", "authorization code is invalid or expired")
            if grant["redirect_uri"] != form.get("redirect_uri") or grant["client_id"] != form.get("client_id"):
                return _token_error(profile, "invalid_grant", "redirect_uri or client_id mismatch")
            if not _pkce_ok(form.get("code_verifier"), grant["challenge"], grant["challenge_method"]):
                return _token_error(profile, "invalid_grant", "PKCE verification failed")
            return jsonify(_issue_tokens(profile, grant["scopes"], grant["client_id"], "sandbox-user"))
        if grant_type == "refresh_token":
            with STORE.lock:
                stored = STORE.refresh_tokens.get(form.get("refresh_token", ""))
                if not stored or stored["vendor"] != profile.vendor or stored["used"] or STORE.faults_for(profile.vendor).revoked:
                    return _token_error(profile, "invalid_grant", "refresh token is invalid, revoked or already used")
                if profile.rotates_refresh_token:
                    stored["used"] = True
            body = _issue_tokens(profile, stored["scopes"], stored["client_id"], stored["subject"])
            if not profile.rotates_refresh_token:
                with STORE.lock:
                    STORE.refresh_tokens.pop(body.pop("refresh_token", ""), None)
            return jsonify(body)
        if grant_type == "client_credentials":
            scopes = [s for s in form.get("scope", "").split() if s]
            body = _issue_tokens(
                OAuthProfile(profile.vendor, profile.access_ttl, issue_refresh_token=False, extra_token_fields=profile.extra_token_fields),
                scopes,
                form.get("client_id", ""),
                "service",
            )
            return jsonify(body)
        return _token_error(profile, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

    return bp
