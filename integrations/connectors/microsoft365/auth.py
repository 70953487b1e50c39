"""The Microsoft 365 connection: delegated (OAuth code + PKCE) or application (client credentials), and what the token grants."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from integrations.connectors.entra.client import ClientCredentialsAuth
from integrations.connectors.microsoft365.client import GraphBase
from integrations.errors import ApiBadRequest
from integrations.http import BearerAuth

LOGIN_HOST = "https://login.microsoftonline.com"
# Permissions that imply another (a broader grant covers a narrower need).
IMPLIED_BY: Mapping[str, tuple[str, ...]] = {
    "User.ReadBasic.All": ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "Team.ReadBasic.All": ("TeamSettings.Read.All", "TeamSettings.ReadWrite.All", "Directory.Read.All", "Group.Read.All"),
    "Channel.ReadBasic.All": ("ChannelSettings.Read.All", "ChannelSettings.ReadWrite.All", "Directory.Read.All", "Group.Read.All"),
    "Channel.Create": ("Directory.ReadWrite.All", "Group.ReadWrite.All"),
    "ChannelMember.Read.All": ("ChannelMember.ReadWrite.All",),
    "TeamMember.Read.All": ("TeamMember.ReadWrite.All", "TeamMember.ReadWriteNonOwnerRole.All"),
    "TeamMember.ReadWriteNonOwnerRole.All": ("TeamMember.ReadWrite.All",),
    "ChannelSettings.ReadWrite.All": ("Directory.ReadWrite.All", "Group.ReadWrite.All"),
    "Calendars.ReadBasic": ("Calendars.Read", "Calendars.ReadWrite"),
    "Calendars.Read": ("Calendars.ReadWrite",),
    "Calendars.Read.Shared": ("Calendars.ReadWrite.Shared",),
    "Place.Read.All": ("Place.ReadWrite.All",),
    "ChannelMessage.Read.All": ("Group.Read.All", "Group.ReadWrite.All"),
}


def token_claims(token: str) -> dict[str, Any]:
    """A JWT access token's claims, unverified: only read to show what was granted (Graph verifies it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def granted(permission: str, grants: set[str]) -> bool:
    return permission in grants or any(broader in grants for broader in IMPLIED_BY.get(permission, ()))


def missing_by_feature(features: Mapping[str, Mapping[str, tuple[str, ...]]], grants: set[str], *, application: bool) -> dict[str, list[str]]:
    """Feature → the permissions it lacks under this model; a feature the model cannot do at all says so."""
    model = "application" if application else "delegated"
    missing: dict[str, list[str]] = {}
    for feature, needs in features.items():
        required = needs.get(model, ())
        if not required:
            missing[feature] = [f"not possible with {model} permissions"]
            continue
        lacking = [p for p in required if not granted(p, grants)]
        if lacking:
            missing[feature] = lacking
    return missing


class GraphAuth(GraphBase):
    """Installs the application token provider; reads the tenant, the login host and the granted permissions."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.app_auth: ClientCredentialsAuth | None = None
        if self.client is not None and self.client.auth is None and self.credentials.get("client_secret"):
            self.app_auth = ClientCredentialsAuth(
                self.token_url,
                str(self.credentials.get("client_id") or ""),
                str(self.credentials["client_secret"]),
                session=self.client.session,
                url_guard=self.client.url_guard,
            )
            self.client.auth = self.app_auth
        elif self.client is not None and self.client.auth is None and self.credentials.get("access_token"):
            # Bastion installs its refreshing OAuth provider first; a bare token (a test, a script) is presented as is.
            self.client.auth = BearerAuth(str(self.credentials["access_token"]))

    @property
    def tenant(self) -> str:
        return str(self.config.get("tenant_id") or self.credentials.get("tenant_id") or "").strip()

    @property
    def token_url(self) -> str:
        if not self.tenant:
            raise ApiBadRequest("Application access needs the directory (tenant) id: set 'Directory (tenant) id'.")
        return f"{self.login_base()}/{quote(self.tenant, safe='')}/oauth2/v2.0/token"

    def login_base(self) -> str:
        """login.microsoftonline.com for Graph itself; a stand-in (the sandbox) serves its login pages beside its Graph root."""
        configured = str(self.config.get("login_base_url") or "").rstrip("/")
        if configured:
            return configured
        root = self.graph_root() if self.client is not None else ""
        if not root or urlsplit(root).hostname in ("graph.microsoft.com", None):
            return LOGIN_HOST
        return root

    def access_token(self) -> str:
        """The bearer token this connection presents (fetched first for the application)."""
        headers: dict[str, str] = {}
        if self.client is not None and self.client.auth is not None:
            self.client.auth.apply(headers)
        value = headers.get("Authorization", "")
        return value[7:] if value.lower().startswith("bearer ") else str(self.credentials.get("access_token") or "")

    def granted_permissions(self) -> tuple[list[str], str]:
        """(permissions, where they were read): the token's scp/roles claims, else the scope the OAuth grant recorded."""
        claims = token_claims(self.access_token())
        if claims.get("roles") or claims.get("scp"):
            scopes = list(claims.get("roles") or []) + str(claims.get("scp") or "").split()
            return sorted(set(scopes)), "token"
        stored = self.credentials.get("scope") or ""
        scopes = stored.split() if isinstance(stored, str) else list(stored)
        return sorted(set(scopes)), "grant" if scopes else "unknown"

    def post_authorize(self, token: Mapping[str, Any]) -> dict[str, Any]:
        """After the delegated sign-in: the tenant it belongs to (the token's tid, else /organization)."""
        tenant = str(token_claims(str(token.get("access_token") or "")).get("tid") or "")
        if not tenant:
            organizations = self.graph("GET", "organization", params={"$select": "id,displayName"}).get("value") or []
            tenant = str(organizations[0].get("id") or "") if organizations else ""
        return {"tenant_id": tenant} if tenant else {}
