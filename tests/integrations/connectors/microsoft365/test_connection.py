"""The Microsoft 365 connection over real HTTP against the stand-in: delegated sign-in (code + PKCE) and application access
(client credentials), what test_connection reports, the scopes shown before consent, the manifest's permissions per action."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from accounts.models import Role as AccountRole
from integrations.connectors.base import Role
from integrations.connectors.microsoft365 import MANIFEST, Microsoft365Connector
from integrations.connectors.microsoft365.auth import missing_by_feature, token_claims
from integrations.connectors.microsoft365.manifest import FEATURE_PERMISSIONS, SCOPE_PURPOSES
from integrations.errors import ApiBadRequest, ApiUnauthorized
from integrations.http import HttpClient
from integrations.models import Integration, IntegrationStatus
from integrations.registry import get_connector_class
from tests.integrations.oauth_helpers import consent, local

TENANT_ID = "a1b2c3d4-0000-4000-8000-000000000001"
TEAM_NAME = "Bastion Incident Response"
SIGNED_IN = "amara.nwosu@acme.example"
REDIRECT = "https://bastion.example/integrations/oauth/callback"


def graph_client(sandbox: str, *, sleeps: list[float] | None = None, root: str = "") -> HttpClient:
    """A client on the stand-in's root, as the demo's base URL is (<sandbox>/microsoft365): the connector adds /v1.0."""
    return HttpClient(root or f"{sandbox}/microsoft365", sleep=(sleeps.append if sleeps is not None else lambda _s: None), max_inline_wait=5.0)


def app_connector(sandbox: str, *, secret: str = "sandbox-app-secret", sleeps: list[float] | None = None, **config: Any) -> Microsoft365Connector:
    """Application access (client credentials) acting for the organizer."""
    settings = {"tenant_id": TENANT_ID, "organizer": SIGNED_IN, **config}
    credentials = {"tenant_id": TENANT_ID, "client_id": "bastion-app", "client_secret": secret}
    return Microsoft365Connector(client=graph_client(sandbox, sleeps=sleeps), config=settings, credentials=credentials)


def sign_in(sandbox: str, scopes: tuple[str, ...] = tuple(SCOPE_PURPOSES), *, login_hint: str = SIGNED_IN) -> dict[str, Any]:
    """The delegated authorization-code flow with PKCE S256 at the manifest's own login paths, consent accepted."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = f"{sandbox}/microsoft365{urlsplit(MANIFEST.oauth.authorize_url).path}"
    params = {
        "client_id": "bastion-demo",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": " ".join(scopes),
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": login_hint,
    }
    page = requests.get(authorize, params=params, timeout=10)
    assert page.status_code == 200 and "Permissions requested" in page.text
    answer = requests.post(authorize, data={**params, "decision": "allow"}, allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    token = requests.post(
        f"{sandbox}/microsoft365{urlsplit(MANIFEST.oauth.token_url).path}",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": "bastion-demo", "code_verifier": verifier},
        timeout=10,
    )
    assert token.status_code == 200, token.text
    return token.json()


def delegated_connector(sandbox: str, token: dict[str, Any] | None = None, *, sleeps: list[float] | None = None, **config: Any) -> Microsoft365Connector:
    """A signed-in delegate (the OAuth credential as Bastion stores it)."""
    token = token or sign_in(sandbox)
    return Microsoft365Connector(client=graph_client(sandbox, sleeps=sleeps), config={"tenant_id": TENANT_ID, **config}, credentials=dict(token))


def team_id(connector: Microsoft365Connector) -> str:
    return next(value for value, label in connector.config_choices("team_id") if label == TEAM_NAME)


def test_registered_with_roles_and_permissions_on_every_action():
    connector = get_connector_class("microsoft365")
    assert connector is Microsoft365Connector
    assert set(connector.manifest.roles) == {Role.CHAT, Role.MEETING, Role.DOCUMENTS}
    for action in connector.manifest.actions:
        assert action.permissions, f"{action.key} names no Graph permission"
        assert "delegated" in action.description.lower() or "Delegated" in action.description, action.key
    # Least privilege by default: every requested scope says why, none is a tenant-wide write-all.
    assert MANIFEST.oauth.use_pkce and "offline_access" in MANIFEST.oauth.scopes
    assert all(MANIFEST.oauth.scope_purposes.get(scope) for scope in MANIFEST.oauth.scopes)
    assert not {"Directory.ReadWrite.All", "Group.ReadWrite.All", "Calendars.ReadWrite.All"} & set(MANIFEST.oauth.scopes)


def test_application_access_reports_the_organization_and_reuses_its_token(sandbox):
    connector = app_connector(sandbox)
    result = connector.test_connection()
    assert result.ok and result.identity == f"Application access to {TENANT_ID}, acting for {SIGNED_IN}"
    assert result.account_id == TENANT_ID
    assert result.detail["model"] == "application"
    assert connector.app_auth is not None and connector.app_auth.fetches == 1
    connector.test_connection()
    assert connector.app_auth.fetches == 1  # the app-only token is reused until shortly before it expires
    # What an administrator granted comes from the token's roles claim; each feature names what it lacks.
    granted = ["User.Read.All", "Team.ReadBasic.All", "Channel.ReadBasic.All", "Channel.Create", "Calendars.ReadWrite", "Place.Read.All"]
    requests.put(f"{sandbox}/microsoft365/_control/knobs", json={"app_permissions": granted}, timeout=5).raise_for_status()
    fresh = app_connector(sandbox).test_connection()
    assert fresh.detail["permissions_from"] == "token" and fresh.scopes == sorted(granted)
    missing = fresh.detail["missing_permissions"]
    assert missing["Teams channels"] == ["ChannelSettings.ReadWrite.All"]
    assert missing["Post to channels"] == ["not possible with application permissions"]
    assert missing["Teams meetings"] == ["OnlineMeetings.ReadWrite.All"]
    assert "Outlook calendar" not in missing and "Meeting rooms" not in missing


def test_wrong_client_secret_and_missing_tenant_are_clear(sandbox):
    with pytest.raises(ApiUnauthorized, match="AADSTS7000215"):
        app_connector(sandbox, secret="wrong-secret").test_connection()
    with pytest.raises(ApiBadRequest, match="tenant"):
        Microsoft365Connector(client=graph_client(sandbox), config={}, credentials={"client_id": "x", "client_secret": "y"})


def test_delegated_sign_in_reports_who_and_which_features_lack_a_permission(sandbox):
    # A user who consents to everything but channel creation and rooms: both features are named with what they lack.
    scopes = tuple(s for s in SCOPE_PURPOSES if s not in ("Channel.Create", "Place.Read.All"))
    connector = delegated_connector(sandbox, sign_in(sandbox, scopes))
    result = connector.test_connection()
    assert result.identity == SIGNED_IN
    assert result.detail["model"] == "delegated" and result.detail["permissions_from"] in ("token", "grant")
    assert "ChannelMessage.Send" in result.scopes and "Channel.Create" not in result.scopes
    missing = result.detail["missing_permissions"]
    assert missing["Teams channels"] == ["Channel.Create"]
    assert missing["Meeting rooms"] == ["Place.Read.All"]
    assert "Post to channels" not in missing and "Outlook calendar" not in missing


def test_post_authorize_learns_the_tenant(sandbox):
    token = sign_in(sandbox)
    connector = Microsoft365Connector(client=graph_client(sandbox), config={}, credentials=dict(token))
    assert connector.post_authorize(token) == {"tenant_id": TENANT_ID}


def test_config_choices_list_the_teams_of_the_connection(sandbox):
    for connector in (app_connector(sandbox), delegated_connector(sandbox)):
        choices = dict((label, value) for value, label in connector.config_choices("team_id"))
        assert TEAM_NAME in choices and choices[TEAM_NAME]
        assert [t["displayName"] for t in connector.read("teams").records] == [TEAM_NAME]
    organizers = dict(app_connector(sandbox).config_choices("organizer"))
    assert organizers[SIGNED_IN] == "Amara Nwosu" and app_connector(sandbox).config_choices("calendar") == []


def test_feature_permissions_are_judged_by_implication():
    broader = {"Calendars.ReadWrite", "User.Read.All", "TeamMember.ReadWrite.All", "ChannelMember.ReadWrite.All"}
    missing = missing_by_feature(FEATURE_PERMISSIONS, broader, application=True)
    assert "Outlook calendar" not in missing and "Team members for people pickers" not in missing
    assert missing["Find a time (findMeetingTimes)"] == ["not possible with application permissions"]
    assert token_claims("not-a-jwt") == {}
    claims = {"roles": ["Calendars.ReadWrite"], "tid": TENANT_ID}
    payload = base64.urlsafe_b64encode(__import__("json").dumps(claims).encode()).decode().rstrip("=")
    assert token_claims(f"e30.{payload}.sig") == claims


@pytest.mark.django_db
def test_bastion_connects_through_the_entra_consent_page(sandbox, users_by_role, settings):
    settings.BASTION_SANDBOX_URL = sandbox  # Microsoft's login is then the sandbox's, like the demo
    client = Client()
    client.force_login(users_by_role[AccountRole.ADMIN])
    page = client.get("/integrations/connect/microsoft365/").content.decode()
    for scope in ("Channel.Create", "ChannelMessage.Send", "Calendars.ReadWrite", "offline_access"):
        assert scope in page  # each scope is shown with its purpose before the consent page
    assert "Create the incident" in page and "administrator consent" in page
    started = client.post(
        "/integrations/connect/microsoft365/", {"display_name": "Microsoft 365", "base_url": f"{sandbox}/microsoft365", "auth_method": "oauth2"}
    )
    assert started.status_code == 302, started.content[:300]
    authorize_url = started["Location"]
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"] and "offline_access" in query["scope"][0].split()
    response = client.get(local(consent(authorize_url)))
    integration = Integration.objects.get(connector_key="microsoft365")
    assert response.status_code == 302 and integration.status == IntegrationStatus.CONNECTED, integration.last_error
    assert integration.config["tenant_id"] == TENANT_ID and integration.external_account_id == TENANT_ID
