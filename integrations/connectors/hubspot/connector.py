"""The HubSpot connector: CRM v3 (v4 for associations) through the shared HttpClient, composed of its reader, actions and webhooks."""

from __future__ import annotations

from typing import Any

from integrations.connectors.base import ConnectionTest
from integrations.connectors.hubspot.actions import HubSpotActions
from integrations.connectors.hubspot.manifest import MANIFEST
from integrations.connectors.hubspot.reader import HubSpotReader
from integrations.connectors.hubspot.webhooks import HubSpotWebhooks
from integrations.http import BearerAuth


class HubSpotConnector(HubSpotReader, HubSpotActions, HubSpotWebhooks):
    """Speaks HubSpot CRM v3 (v4 for associations) through the shared HttpClient."""

    manifest = MANIFEST

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        token = self.credentials.get("access_token") or self.credentials.get("token")
        if self.client is not None and self.client.auth is None and token:
            # A private-app token is stored as an API key; OAuth tokens already arrive as the client's BearerAuth.
            self.client.auth = BearerAuth(token)
        self._owner_emails: dict[str, str] | None = None
        self._portal_id = ""
        self.last_rate_limit: dict[str, int] = {}
        if self.client is not None and not getattr(self.client.session, "_bastion_hubspot_hook", False):
            self.client.session.hooks.setdefault("response", []).append(self._observe_headers)
            self.client.session._bastion_hubspot_hook = True  # type: ignore[attr-defined]

    def test_connection(self) -> ConnectionTest:
        details = self.client.get("/account-info/v3/details").json()
        portal_id = str(details.get("portalId", ""))
        self._portal_id = portal_id
        scopes: list[str] = []
        identity = f"HubSpot portal {portal_id}"
        token = self.credentials.get("access_token")
        if token and self.credentials.get("refresh_token"):
            # OAuth tokens can be introspected for their granted scopes; private-app tokens cannot.
            info = self.client.get(f"/oauth/v1/access-tokens/{token}").json()
            scopes = list(info.get("scopes") or [])
            identity = f"{info.get('user', '')} @ {info.get('hub_domain', portal_id)}".strip()
        return ConnectionTest(
            ok=bool(portal_id),
            identity=identity,
            scopes=scopes,
            account_id=portal_id,
            detail={k: details.get(k) for k in ("timeZone", "companyCurrency", "dataHostingLocation", "uiDomain", "accountType")},
        )


CONNECTOR = HubSpotConnector
