"""Jira's HTTP side: its error envelope, ADF text, site and gateway addressing, and the calls every part of the connector makes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from integrations.connectors.base import BaseConnector, ConnectionTest
from integrations.connectors.jira.manifest import API, ATLASSIAN_API, PERMISSIONS
from integrations.connectors.kit.markers import idempotency_marker
from integrations.errors import ApiBadRequest, ApiError, ApiForbidden, ApiNotFound
from integrations.http import BasicAuth, BearerAuth, HttpClient, classify_status, response_json

CLOUD_ID_IN_URL = re.compile(r"/ex/jira/([0-9a-fA-F-]{36})")
ACCESSIBLE_RESOURCES = "oauth/token/accessible-resources"  # the sites (cloudIds) a 3LO token reaches, on the API gateway


def jira_error_message(body: Any) -> tuple[str, str]:
    """(message, code) from Jira's envelope {errorMessages, errors}, the gateway's {message, code}, or OAuth's {error, error_description}."""
    if not isinstance(body, dict):
        return "", ""
    if "errorMessages" in body or isinstance(body.get("errors"), dict):
        parts = list(body.get("errorMessages") or []) + [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
        return "; ".join(parts), ""
    if "message" in body:
        return str(body["message"]), str(body.get("code", "") or body.get("error", ""))
    error = body.get("error")
    if isinstance(error, str):
        return str(body.get("error_description") or error), error
    return "", ""


def classify_jira_response(response: requests.Response, path: str) -> ApiError | None:
    """The error tree by status, with Jira's own messages (errorMessages and per-field errors joined)."""
    if 200 <= response.status_code < 400:
        return None
    message, code = jira_error_message(response_json(response))
    return classify_status(response, path, message=message, code=code)


def adf(text: str) -> dict[str, Any]:
    """Plain text → Atlassian Document Format: blank lines split paragraphs, single newlines become hard breaks."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", (text or "").strip()):
        content: list[dict[str, Any]] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        if content:
            paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_text(document: Any) -> str:
    """ADF → plain text (paragraphs joined by blank lines)."""
    if not isinstance(document, dict):
        return str(document or "")

    def walk(node: dict[str, Any]) -> str:
        if node.get("type") == "text":
            return str(node.get("text", ""))
        if node.get("type") == "hardBreak":
            return "\n"
        return "".join(walk(child) for child in node.get("content") or [] if isinstance(child, dict))

    return "\n\n".join(walk(block) for block in document.get("content") or [] if isinstance(block, dict)).strip()


def idempotency_label(idempotency_key: str) -> str:
    """The deterministic label that marks the issue an action created (labels cannot contain spaces)."""
    return idempotency_marker(idempotency_key, length=20)


def atlassian_gateway(base_url: str) -> str:
    """Where api.atlassian.com's paths live for a base URL: Atlassian's gateway, or a stand-in or proxy serving them (the sandbox)."""
    base = (base_url or "").rstrip("/")
    match = CLOUD_ID_IN_URL.search(base)
    if match:
        base = base[: match.start()]
    host = (urlsplit(base).hostname or "").lower()
    if not host or host.endswith(".atlassian.net") or host == "api.atlassian.com":
        return ATLASSIAN_API
    return base


def site_key(url: Any) -> str:
    """A site URL reduced to host and path, so https://Acme.atlassian.net/ and https://acme.atlassian.net compare equal."""
    parts = urlsplit(str(url or "").strip())
    return f"{parts.netloc.lower()}{parts.path.rstrip('/')}" if parts.netloc else ""


def parse_jira_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None


class JiraClient(BaseConnector):
    """Jira Cloud platform REST v3 over Basic (email + API token) or OAuth 2.0 (3LO) bearer tokens: auth, site, shared calls."""

    api = API  # the REST root; Data Center's subclass speaks rest/api/2

    def __init__(self, *, client: HttpClient | None = None, config: Mapping[str, Any] | None = None, credentials: Mapping[str, Any] | None = None):
        super().__init__(client=client, config=config, credentials=credentials)
        if self.client is not None and self.client.auth is None:
            if self.credentials.get("email") and self.credentials.get("api_token"):
                self.client.auth = BasicAuth(self.credentials["email"], self.credentials["api_token"])
            elif self.credentials.get("access_token"):
                self.client.auth = BearerAuth(self.credentials["access_token"])
        self._myself: dict[str, Any] | None = None
        self._account_ids: dict[str, str | None] = {}
        # A 3LO token is refused on the site URL: with OAuth every call goes to {gateway}/ex/jira/{cloudId}.
        self.uses_oauth = self.client is not None and self.client.auth is not None and not isinstance(self.client.auth, BasicAuth)
        self._given_base_url = self.client.base_url if self.client is not None else ""
        self.gateway_url = atlassian_gateway(self._given_base_url)
        self.cloud_id = self._chosen_cloud_id()
        if self.uses_oauth and self.cloud_id:
            self.client.base_url = f"{self.gateway_url}/ex/jira/{self.cloud_id}/"

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_jira_response(response, path)

    # ---- helpers ------------------------------------------------------------------------------------------

    def _rich_text(self, text: str) -> Any:
        """A description or comment body as this API wants it: ADF on Cloud v3."""
        return adf(text)

    def _user_ref(self, user_id: str) -> dict[str, str]:
        """How a request names a user: {"accountId": …} on Cloud."""
        return {"accountId": user_id}

    def _user_id(self, user: Any) -> str | None:
        """The id _user_ref takes, read from a user object in a response."""
        return user.get("accountId") if isinstance(user, Mapping) else None

    def _page_size(self) -> int:
        return int(self.config.get("page_size") or 50)

    def _project_keys(self) -> list[str]:
        raw = self.config.get("project_keys") or []
        keys = raw.split(",") if isinstance(raw, str) else raw
        return [k.strip().upper() for k in keys if k and k.strip()]

    def myself(self) -> dict[str, Any]:
        if self._myself is None:
            self._myself = self.client.get(f"{self.api}/myself").json()
        return self._myself

    def _timezone(self) -> ZoneInfo:
        """JQL date literals are read in the caller's profile time zone, so cursors are written in it."""
        try:
            return ZoneInfo(self.myself().get("timeZone") or "UTC")
        except ZoneInfoNotFoundError:
            return ZoneInfo("UTC")

    def find_account_id(self, email: str) -> str | None:
        """Account id for an email via /user/search (emails may be hidden by privacy settings but still match)."""
        email = email.strip().lower()
        if email not in self._account_ids:
            users = self.client.get(f"{self.api}/user/search", params={"query": email, "maxResults": 10}).json()
            people = [u for u in users if u.get("accountType", "atlassian") == "atlassian"]
            exact = [u for u in people if (u.get("emailAddress") or "").lower() == email]
            match = exact or (people if len(people) == 1 and not people[0].get("emailAddress") else [])
            self._account_ids[email] = match[0]["accountId"] if match else None
        return self._account_ids[email]

    def _require_account_id(self, email: str) -> str:
        account_id = self.find_account_id(email)
        if account_id is None:
            raise ApiNotFound(f"No Jira user has the email {email} (or it is hidden and ambiguous).", vendor_code="user_not_found")
        return account_id

    def _browse_url(self, key: str, self_link: str = "") -> str:
        site = self.config.get("site_url") or (self_link.split("/rest/api/")[0] if "/rest/api/" in self_link else self.client.base_url if self.client else "")
        return f"{site.rstrip('/')}/browse/{key}" if site else ""

    def search(self, jql: str, *, fields: list[str], page_token: str | None = None, max_results: int | None = None) -> dict[str, Any]:
        """One page of POST /search/jql (fields must be asked for: the default is the id only)."""
        body: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": max_results or self._page_size()}
        if page_token:
            body["nextPageToken"] = page_token
        return self.client.post(f"{self.api}/search/jql", json=body).json()

    # ---- site and connection ------------------------------------------------------------------------------------

    def _chosen_cloud_id(self) -> str:
        """The site's cloudId: configured, in the base URL, or the configured site_url among the sites the grant reached."""
        if self.config.get("cloud_id"):
            return str(self.config["cloud_id"])
        match = CLOUD_ID_IN_URL.search(self._given_base_url)
        if match:
            return match.group(1)
        wanted = site_key(self.config.get("site_url"))
        for site in self.config.get("jira_sites") or []:
            if wanted and isinstance(site, Mapping) and site_key(site.get("url")) == wanted:
                return str(site.get("id") or "")
        return ""

    def accessible_sites(self) -> list[dict[str, Any]]:
        """The Jira sites the OAuth token reaches (GET accessible-resources); entries of other products (Confluence) are dropped."""
        body = self.client.get(f"{self.gateway_url}/{ACCESSIBLE_RESOURCES}").json()
        if not isinstance(body, list):
            raise ApiBadRequest("Atlassian's accessible-resources answer is not a list of sites.", vendor_code="bad_accessible_resources")
        sites = []
        for entry in body:
            if not isinstance(entry, Mapping) or not entry.get("id") or not entry.get("url"):
                continue
            scopes = [str(scope) for scope in entry.get("scopes") or []]
            if scopes and not any("jira" in scope for scope in scopes):
                continue
            sites.append({"id": str(entry["id"]), "url": str(entry["url"]).rstrip("/"), "name": str(entry.get("name") or ""), "scopes": scopes})
        return sites

    def post_authorize(self, token: Mapping[str, Any]) -> dict[str, Any]:
        """Find the Jira site the new grant reaches and record its cloudId, URL and name (several: the person chooses)."""
        sites = self.accessible_sites()
        if not sites:
            raise ApiForbidden(
                "the Atlassian account you signed in with gave Bastion access to no Jira Cloud site. "
                "Sign in with an account that uses Jira (and pick the site on Atlassian's consent page).",
                vendor_code="no_jira_site",
            )
        listed = [{"id": site["id"], "url": site["url"], "name": site["name"]} for site in sites]
        chosen = self._pick_site(sites)
        if chosen is None:
            return {"cloud_id": "", "jira_sites": listed}
        return {"cloud_id": chosen["id"], "site_url": chosen["url"], "site_name": chosen["name"], "jira_sites": listed}

    def _pick_site(self, sites: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The one site, else the one the person named: the site URL entered as base URL, the site_url setting, the previous cloudId."""
        if len(sites) == 1:
            return sites[0]
        given = urlsplit(self._given_base_url)
        hints = [site_key(self._given_base_url) if (given.hostname or "").endswith(".atlassian.net") else "", site_key(self.config.get("site_url"))]
        for hint in hints:
            for site in sites:
                if hint and site_key(site["url"]) == hint:
                    return site
        return next((site for site in sites if site["id"] == self.config.get("cloud_id")), None)

    def _require_site(self) -> None:
        """Fail with what to do next when the calls cannot reach a site (OAuth without a chosen site, API token on the gateway)."""
        if self.uses_oauth and not self.cloud_id:
            sites = [s for s in self.config.get("jira_sites") or [] if isinstance(s, Mapping)]
            if not sites:
                raise ApiBadRequest(
                    "Bastion does not know which Jira site to use: authorize Jira again so it can list your sites (or set cloud_id).",
                    vendor_code="jira_site_unknown",
                )
            listed = ", ".join(f"{s.get('url')} ({s.get('name')})" for s in sites)
            chosen = f" (the site_url {self.config['site_url']} is none of them)" if self.config.get("site_url") else ""
            raise ApiBadRequest(
                f"Your Atlassian account reaches several Jira sites: {listed}{chosen}. "
                "Set the Jira site (site_url) in this integration's settings to the one Bastion should use.",
                vendor_code="jira_site_not_chosen",
            )
        if not self.uses_oauth and self.client is not None and urlsplit(self.client.base_url).hostname == urlsplit(ATLASSIAN_API).hostname:
            raise ApiBadRequest(
                "An API token works against your Jira site: set the API base URL to https://<your-site>.atlassian.net.",
                vendor_code="jira_site_url_required",
            )

    def test_connection(self) -> ConnectionTest:
        self._require_site()
        me = self.myself()
        info = self.client.get(f"{self.api}/serverInfo").json()
        permissions = self.client.get(f"{self.api}/mypermissions", params={"permissions": ",".join(PERMISSIONS)}).json().get("permissions", {})
        granted = self.credentials.get("scope") or self.credentials.get("scopes") or ""
        scopes = granted.split() if isinstance(granted, str) else list(granted)
        held = [key for key, value in permissions.items() if value.get("havePermission")]
        account_id = self.cloud_id or info.get("baseUrl", "")  # the cloudId routes webhooks; Basic on a site has only its URL
        return ConnectionTest(
            ok=True,
            identity=f"{me.get('displayName', '')} <{me.get('emailAddress', '')}>".strip(),
            scopes=scopes or held,
            account_id=account_id,
            detail={
                "account_id": me.get("accountId"),
                "time_zone": me.get("timeZone"),
                "base_url": info.get("baseUrl"),
                "cloud_id": self.cloud_id,
                "api_base_url": self.client.base_url,
                "deployment_type": info.get("deploymentType"),
                "version": info.get("version"),
                "permissions": held,
                "missing_permissions": [p for p in PERMISSIONS if p not in held],
            },
        )
