"""Salesforce REST connector: SOQL reads with nextRecordsUrl paging, describe-based field discovery, SystemModstamp incremental sync with
queryAll deletions, idempotent sObject create/update, and the org's daily API usage from Sforce-Limit-Info.

API base: the OAuth token response's `instance_url` (stored in the credential as credentials["instance_url"]) always wins; without it the
HttpClient's base URL (integration.base_url, e.g. the sandbox's /salesforce prefix) is the instance. Every call is made with an absolute URL
built from that base, so `services.build_connector` needs no Salesforce-specific wiring. Whoever refreshes the token must store the
instance_url of every token response (it can change when an org is migrated).
"""

from __future__ import annotations

from typing import Any

import requests

from integrations.connectors.base import ConnectionTest
from integrations.connectors.salesforce.actions import SalesforceActions
from integrations.connectors.salesforce.client import ApiUsage, parse_limit_info
from integrations.connectors.salesforce.manifest import MANIFEST
from integrations.connectors.salesforce.reader import SalesforceReader
from integrations.http import BearerAuth


class SalesforceConnector(SalesforceReader, SalesforceActions):
    """Speaks the Salesforce REST API against the org's instance URL."""

    manifest = MANIFEST

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        token = self.credentials.get("access_token")
        if self.client is not None and self.client.auth is None and token:
            self.client.auth = BearerAuth(token)
        self.last_api_usage: ApiUsage | None = None
        if self.client is not None:
            # Every response, errors included, reports the org's daily usage: keep the latest for the rate limiter.
            self.client.session.hooks.setdefault("response", []).append(self._observe_limit_info)

    def _observe_limit_info(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage:
            self.last_api_usage = usage

    def test_connection(self) -> ConnectionTest:
        limits = self._get("/limits").json()
        daily = limits.get("DailyApiRequests") or {}
        info = self._get("/services/oauth2/userinfo").json()
        return ConnectionTest(
            ok=True,
            identity=str(info.get("preferred_username") or info.get("email") or ""),
            scopes=[s for s in str(self.credentials.get("scope", "")).split() if s],
            account_id=str(info.get("organization_id", "")),
            detail={
                "instance_url": self.instance_url,
                "api_version": self.api_version,
                "daily_api_requests": {"max": daily.get("Max"), "remaining": daily.get("Remaining")},
            },
        )


CONNECTOR = SalesforceConnector
