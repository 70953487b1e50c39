"""Entra sign-in for the Bastion app: /{tenant}/oauth2/v2.0/authorize (consent page, code + PKCE S256) and /token."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from flask import Blueprint, Response, jsonify, render_template_string, request

from sandbox.oauth import OAuthProfile, _issue_tokens, _pkce_ok, _redirect
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import TENANT_DOMAIN, TENANT_ID, VENDOR, fault_error, find_user, knobs, rate_limited

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
TENANTS = {TENANT_ID, TENANT_DOMAIN, "common", "organizations"}
DEFAULT_SIGN_IN = "amara.nwosu@acme.example"  # the incident manager signs in unless login_hint names someone else
OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
# What an administrator granted the app for client credentials (a `.default` token carries these); /_control can change it.
DEFAULT_APP_PERMISSIONS = [
    "User.Read.All",
    "Group.Read.All",
    "Team.ReadBasic.All",
    "Channel.Create",
    "Channel.Delete.All",
    "ChannelMember.ReadWrite.All",
    "TeamMember.ReadWriteNonOwnerRole.All",
    "Calendars.ReadWrite",
    "Place.Read.All",
    "Files.ReadWrite.All",
    "Sites.Read.All",
    "OnlineMeetings.ReadWrite.All",
]

# Tokens this stand-in issued, kept outside the store: a sandbox reset restores the tenant's data, not the app's sign-in, so a
# connected Bastion (demo or test) keeps working across /_control/reset like a real tenant whose data changed.
ISSUED: dict[str, dict[str, Any]] = {"access": {}, "refresh": {}}

CONSENT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorize Bastion · Microsoft 365 sandbox</title>
<style>body{font-family:"Segoe UI",system-ui,sans-serif;max-width:560px;margin:40px auto;color:#1b1b1b}li{margin:4px 0}
button{font-size:15px;padding:8px 22px;margin-right:8px}#allow{background:#0067b8;color:#fff;border:0}</style></head><body>
<h1>Permissions requested</h1><p>Signed in as <strong>{{ user }}</strong> ({{ tenant }})</p>
<p><strong>Bastion</strong> (app {{ client_id }}) would like to:</p>
<ul id="scopes">{% for s in scopes %}<li><code>{{ s }}</code></li>{% endfor %}</ul>
<p>Accepting lets this app use the data it names as described in its terms and privacy statement.</p>
<form method="post">{% for k, v in params.items() %}<input type="hidden" name="{{ k }}" value="{{ v }}">{% endfor %}
<button type="submit" name="decision" value="allow" id="allow">Accept</button>
<button type="submit" name="decision" value="deny" id="deny">Cancel</button></form></body></html>"""


def _aad_error(code: str, description: str, status: int = 400) -> Response:
    response = jsonify({"error": code, "error_description": description, "error_codes": [int(description[6:11]) if description[6:11].isdigit() else 0]})
    response.status_code = status
    return response


def _scopes(raw: str) -> list[str]:
    return [s for s in raw.replace(",", " ").split() if s]


def _graph_scopes(scopes: list[str]) -> list[str]:
    """Graph permission names from requested scopes (`https://graph.microsoft.com/Files.Read` → `Files.Read`), OIDC scopes kept."""
    return [s.rsplit("/", 1)[-1] if s.startswith("https://graph.microsoft.com/") else s for s in scopes]


def blueprint() -> Blueprint:
    bp = Blueprint("microsoft365_login", __name__)
    install_faults(bp, VENDOR, rate_limited=rate_limited, error=fault_error)

    @bp.route("/<tenant>/oauth2/v2.0/authorize", methods=["GET", "POST"])
    def authorize(tenant: str):
        params = request.values.to_dict()
        params.pop("decision", None)
        redirect_uri, client_id = params.get("redirect_uri"), params.get("client_id")
        if tenant not in TENANTS:
            return Response(f"AADSTS90002: Tenant '{tenant}' not found.", status=400, mimetype="text/plain")
        if not redirect_uri or not client_id:
            return Response("AADSTS900144: The request body must contain the parameters 'client_id' and 'redirect_uri'.", status=400, mimetype="text/plain")
        state = params.get("state", "")
        if params.get("response_type", "code") != "code":
            return _redirect(redirect_uri, {"error": "unsupported_response_type", "error_description": "AADSTS70005", "state": state})
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") != "S256":
            return _redirect(
                redirect_uri, {"error": "invalid_request", "error_description": "AADSTS501491: code_challenge_method must be S256.", "state": state}
            )
        scopes = _scopes(params.get("scope", ""))
        if not [s for s in scopes if s not in OIDC_SCOPES]:
            return _redirect(redirect_uri, {"error": "invalid_scope", "error_description": "AADSTS70011: no resource scope was requested.", "state": state})
        user = find_user(params.get("login_hint")) or find_user(DEFAULT_SIGN_IN)
        if request.method == "GET":
            return render_template_string(CONSENT, user=user["userPrincipalName"], tenant=TENANT_DOMAIN, client_id=client_id, scopes=scopes, params=params)
        if request.form.get("decision") != "allow":
            return _redirect(
                redirect_uri, {"error": "access_denied", "error_description": "AADSTS65004: User declined to consent to access the app.", "state": state}
            )
        code = secrets.token_urlsafe(32)
        with STORE.lock:
            STORE.codes[code] = {
                "vendor": VENDOR,
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scopes": _graph_scopes(scopes),
                "challenge": params.get("code_challenge"),
                "challenge_method": params.get("code_challenge_method"),
                "expires_at": time.time() + 600,
                "subject": user["id"],
            }
        return _redirect(redirect_uri, {"code": code, "state": state, "session_state": secrets.token_hex(8)})

    @bp.post("/<tenant>/oauth2/v2.0/token")
    def token(tenant: str):
        if tenant not in TENANTS:
            return _aad_error("invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        form = request.form.to_dict()
        if request.authorization and request.authorization.username:
            form.setdefault("client_id", request.authorization.username)
            form.setdefault("client_secret", request.authorization.password or "")
        if not form.get("client_id"):
            return _aad_error("invalid_request", "AADSTS900144: The request body must contain the following parameter: 'client_id'.")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return _code_grant(form)
        if grant_type == "refresh_token":
            return _refresh_grant(form)
        if grant_type == "client_credentials":
            return _client_credentials(form)
        return _aad_error("unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")

    # Bastion's generic sandbox layout ({oauth_base_url}/oauth/authorize and /oauth/token, see integrations/oauth.py): the
    # authorize alias redirects to the Entra path so the browser shows the real URL shape; the token alias answers in place.
    @bp.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize_alias():
        if request.method == "POST":
            return authorize("organizations")  # the consent form posted back to the alias
        target = f"{request.script_root}{request.path.rsplit('/oauth/authorize', 1)[0]}/organizations/oauth2/v2.0/authorize"
        query = request.query_string.decode()
        return Response(status=302, headers={"Location": f"{target}?{query}" if query else target})

    @bp.post("/oauth/token")
    def token_alias():
        return token("organizations")

    return bp


def _jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped access token like Entra's (header.claims.signature); the stand-in knows it by value, the signature is random."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'RS256', 'kid': 'sandbox'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


def _answer(scopes: list[str], client_id: str, subject: str, refresh: bool) -> Response:
    profile = OAuthProfile(VENDOR, access_ttl=int(knobs().get("access_ttl", 3599)), issue_refresh_token=refresh, rotates_refresh_token=True)
    body: dict[str, Any] = _issue_tokens(profile, scopes, client_id, subject)
    issued = int(time.time())
    user = find_user(subject)
    claims: dict[str, Any] = {
        "aud": "https://graph.microsoft.com",
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": issued,
        "nbf": issued,
        "exp": issued + body["expires_in"],
        "appid": client_id,
        "tid": TENANT_ID,
        "oid": user["id"] if user else subject,
    }
    if user is not None:
        claims.update({"upn": user["userPrincipalName"], "name": user["displayName"], "scp": " ".join(s for s in scopes if s not in OIDC_SCOPES)})
    else:
        claims["roles"] = scopes
    access = _jwt(claims)
    with STORE.lock:
        STORE.tokens[access] = STORE.tokens.pop(body["access_token"])
        ISSUED["access"][access] = STORE.tokens[access]
        if body.get("refresh_token"):
            ISSUED["refresh"][body["refresh_token"]] = STORE.refresh_tokens[body["refresh_token"]]
    body["access_token"] = access
    body["ext_expires_in"] = body["expires_in"]
    if "openid" in scopes:
        body["id_token"] = f"sbx-idt-{secrets.token_hex(16)}"
    return jsonify(body)


def _code_grant(form: dict[str, str]) -> Response:
    with STORE.lock:
        grant = STORE.codes.pop(form.get("code", ""), None)
    if not grant or grant["vendor"] != VENDOR or grant["expires_at"] < time.time():
        return _aad_error("invalid_grant", "AADSTS70008: The provided authorization code or refresh token has expired or was already redeemed.")
    if grant["redirect_uri"] != form.get("redirect_uri"):
        return _aad_error("invalid_grant", "AADSTS50011: The redirect URI specified in the request does not match the redirect URI used for the code.")
    if grant["client_id"] != form.get("client_id"):
        return _aad_error("invalid_grant", "AADSTS70000: The provided code was issued to another client.")
    if grant["challenge"] and not form.get("code_verifier"):
        return _aad_error("invalid_request", "AADSTS50148: The code_verifier does not match the code_challenge supplied in the authorization request.")
    if not _pkce_ok(form.get("code_verifier"), grant["challenge"], grant["challenge_method"]):
        return _aad_error("invalid_grant", "AADSTS50148: The code_verifier does not match the code_challenge supplied in the authorization request.")
    return _answer(grant["scopes"], grant["client_id"], grant["subject"], refresh="offline_access" in grant["scopes"])


def _refresh_grant(form: dict[str, str]) -> Response:
    """Entra hands out a new refresh token with every refresh; the one presented is spent (rotation)."""
    with STORE.lock:
        stored = STORE.refresh_tokens.get(form.get("refresh_token", ""))
        if not stored or stored["vendor"] != VENDOR or stored["used"] or STORE.faults_for(VENDOR).revoked:
            return _aad_error("invalid_grant", "AADSTS700082: The refresh token has expired or was revoked, or it was already used.")
        if stored["client_id"] != form["client_id"]:
            return _aad_error("invalid_grant", "AADSTS70000: The refresh token was issued to another client.")
        stored["used"] = True
    return _answer(stored["scopes"], stored["client_id"], stored["subject"], refresh=True)


def _client_credentials(form: dict[str, str]) -> Response:
    if not form.get("client_secret") or form["client_secret"] == "wrong-secret":
        return _aad_error("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
    if form.get("scope") != GRAPH_DEFAULT:
        return _aad_error(
            "invalid_scope",
            f"AADSTS1002012: The provided value for scope {form.get('scope')} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        )
    granted = list(knobs().get("app_permissions", DEFAULT_APP_PERMISSIONS))
    response = _answer(granted, form["client_id"], f"app:{form['client_id']}", refresh=False)
    body = response.get_json()
    body.pop("scope", None)  # Entra's client-credentials answer carries no scope; the permissions are in the token's roles claim
    return jsonify(body)


def restore_tokens() -> None:
    """After a reset: the access and refresh tokens issued before it, unexpired ones only."""
    with STORE.lock:
        for token, info in list(ISSUED["access"].items()):
            if info["expires_at"] is not None and info["expires_at"] < time.time():
                del ISSUED["access"][token]
            else:
                STORE.tokens.setdefault(token, info)
        for token, info in list(ISSUED["refresh"].items()):
            if info["used"]:
                del ISSUED["refresh"][token]
            else:
                STORE.refresh_tokens.setdefault(token, info)
