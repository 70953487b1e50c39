"""Jira Cloud connector (REST v3): projects, issues, users, fields and create metadata in; issues, assignments, transitions, comments out."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.connectors.jira.dynamic_webhooks import dynamic_webhook_register, dynamic_webhooks_refresh, jwt_verify
from integrations.connectors.base import (
    ActionResult,
    ActionSpec,
    BaseConnector,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldInfo,
    OAuthSpec,
    Page,
    WebhookEvent,
    WebhookRequest,
    WebhookSpec,
)
from integrations.connectors.kit.once import create_once
from integrations.errors import ApiBadRequest, ApiError, ApiForbidden, ApiHostError, ApiNotFound, ApiRateLimited, WebhookRejected
from integrations.http import BasicAuth, BearerAuth, HttpClient

logger = logging.getLogger(__name__)

API = "rest/api/3"
WEBHOOKS = "rest/webhooks/1.0/webhook"
USER_EVENTS = ("user_created", "user_updated", "user_deleted")  # directory users: applied to the users entity
WEBHOOK_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted", *USER_EVENTS)
BULK_LIMIT = 50
REPLAY_WINDOW_MS = 5 * 60 * 1000
ISSUE_FIELDS = ["summary", "status", "assignee", "duedate", "updated", "created", "project", "issuetype", "labels", "priority", "description"]
PERMISSIONS = ("BROWSE_PROJECTS", "CREATE_ISSUES", "EDIT_ISSUES", "ASSIGN_ISSUES", "TRANSITION_ISSUES", "ADD_COMMENTS", "BROWSE_USERS")
OAUTH_SCOPES = {
    "read:jira-work": "Read projects, issues, fields and create metadata.",
    "write:jira-work": "Create issues, transition and comment on them.",
    "read:jira-user": "Find assignees and project leads by email.",
    "manage:jira-webhook": "Receive issue updates so task status flows back to Bastion.",
    "offline_access": "Keep the connection working without asking again (refresh tokens rotate).",
}
CLOUD_ID_IN_URL = re.compile(r"/ex/jira/([0-9a-fA-F-]{36})")
ATLASSIAN_API = "https://api.atlassian.com"  # OAuth 2.0 (3LO) tokens work only here, at /ex/jira/{cloudId}/rest/api/3/…
ACCESSIBLE_RESOURCES = "oauth/token/accessible-resources"  # the sites (cloudIds) a 3LO token reaches, on the API gateway
FULL_SCAN_RESTRICTION = 'updated >= "1970-01-01 00:00"'  # the search endpoint refuses unbounded JQL
FIELD_TYPES = {"string": "string", "number": "number", "date": "date", "datetime": "datetime", "user": "user", "array": "array", "option": "string"}
COMMENT_PROPERTY = "bastion.action"


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
    return "bastion-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


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


class JiraConnector(BaseConnector):
    """Jira Cloud platform REST v3 over Basic (email + API token) or OAuth 2.0 (3LO) bearer tokens."""

    api = API  # the REST root; Data Center's subclass speaks rest/api/2
    manifest = ConnectorManifest(
        key="jira",
        name="Jira",
        category="ticketing",
        description="Read projects, issues, users and custom fields; create issues (in bulk), assign, transition and comment; issue webhooks.",
        logo="connectors/jira.svg",
        auth_methods=("oauth2", "basic"),
        credential_fields=(
            CredentialField("email", "Account email", is_secret=False),
            CredentialField("api_token", "API token", help_text="id.atlassian.com → Security → API tokens."),
        ),
        config_fields=(
            CredentialField("project_keys", "Project keys to sync (comma separated)", is_secret=False, is_required=False),
            CredentialField("jql", "Extra JQL restriction for issue syncs", is_secret=False, is_required=False),
            CredentialField(
                "site_url",
                "Jira site (OAuth)",
                is_secret=False,
                is_required=False,
                help_text="e.g. https://acme.atlassian.net: the site Bastion uses when your Atlassian account reaches several; also used for issue links.",
            ),
        ),
        oauth=OAuthSpec(
            authorize_url="https://auth.atlassian.com/authorize",
            token_url="https://auth.atlassian.com/oauth/token",
            scopes=tuple(OAUTH_SCOPES),
            scope_purposes=OAUTH_SCOPES,
            use_pkce=False,
            rotates_refresh_token=True,
            extra_authorize_params={"audience": "api.atlassian.com", "prompt": "consent"},
        ),
        # OAuth: Atlassian's API gateway; calls go to {gateway}/ex/jira/{cloudId} once the site is known (post_authorize).
        # An API token (Basic) needs the site itself as base URL: https://<site>.atlassian.net.
        default_base_url=ATLASSIAN_API,
        entities=(
            EntitySpec("projects", "Projects", "Projects with lead and next release date.", bastion_type="project"),
            EntitySpec("issues", "Issues", "Issues found by JQL, incrementally by `updated`.", supports_incremental=True, bastion_type="task"),
            EntitySpec("users", "Users", "Atlassian accounts.", bastion_type="person"),
            EntitySpec("fields", "Fields", "System and custom issue fields.", bastion_type="other"),
            EntitySpec("create_metadata", "Create metadata", "Issue types and their fields per project.", bastion_type="other"),
        ),
        actions=(
            ActionSpec(
                "create_issue",
                "Create issue",
                "Create an issue (bulk: ≤50 per call).",
                {
                    "project_key": "string",
                    "summary": "string",
                    "description": "string",
                    "issue_type": "string",
                    "assignee_email": "string",
                    "due_date": "date",
                    "labels": "array",
                    "fields": "object",
                },
                "search",
            ),
            ActionSpec(
                "assign_issue", "Assign issue", "Assign to the account with this email.", {"issue_key": "string", "assignee_email": "string"}, "natural"
            ),
            ActionSpec("transition_issue", "Transition issue", "Move an issue to a status by name.", {"issue_key": "string", "status": "string"}, "natural"),
            ActionSpec("add_comment", "Add comment", "Comment on an issue.", {"issue_key": "string", "body": "string"}, "search"),
        ),
        webhook=WebhookSpec(
            signature="Admin webhook with a secret: X-Hub-Signature = sha256=hex(HMAC-SHA256(secret, body)); payload timestamp within 5 minutes.",
            oauth_jwt=True,
        ),
        capabilities=("read", "incremental", "field_discovery", "actions", "bulk_actions", "webhooks", "undo", "fetch_status", "webhook_registration"),
        docs_url="https://developer.atlassian.com/cloud/jira/platform/rest/v3/",
    )

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

    # ---- reading ------------------------------------------------------------------------------------------------

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        readers = {
            "projects": self._read_projects,
            "issues": self._read_issues,
            "users": self._read_users,
            "fields": self._read_fields,
            "create_metadata": self._read_create_metadata,
        }
        if entity not in readers:
            raise KeyError(f"Jira has no entity '{entity}'")
        return readers[entity](cursor, page)

    def _read_projects(self, cursor: Any, page: Any) -> Page:
        start = int(page or 0)
        params: dict[str, Any] = {"startAt": start, "maxResults": self._page_size(), "expand": "description,lead", "orderBy": "key"}
        if self._project_keys():
            params["keys"] = self._project_keys()
        body = self.client.get(f"{self.api}/project/search", params=params).json()
        records = body.get("values", [])
        for project in records:
            # Projects have no due date of their own: the next unreleased version's release date stands in.
            project["versions"] = self.client.get(f"{self.api}/project/{project['key']}/versions").json()
        last = body.get("isLast", True) or not records
        return Page(records=records, next_page=None if last else start + len(records))

    def _issue_jql(self, cursor: Any) -> str:
        restrictions = []
        if self._project_keys():
            restrictions.append("project in (" + ", ".join(f'"{k}"' for k in self._project_keys()) + ")")
        if self.config.get("jql"):
            restrictions.append(f"({self.config['jql']})")
        since = parse_jira_time((cursor or {}).get("updated")) if isinstance(cursor, Mapping) else None
        if since is not None:
            # Minute precision and >=: the boundary minute is read again, which upserts make harmless.
            restrictions.append(f'updated >= "{since.astimezone(self._timezone()).strftime("%Y-%m-%d %H:%M")}"')
        if not restrictions:
            restrictions.append(FULL_SCAN_RESTRICTION)
        return " AND ".join(restrictions) + " ORDER BY updated ASC"

    def _read_issues(self, cursor: Any, page: Any) -> Page:
        jql = page["jql"] if page else self._issue_jql(cursor)
        body = self.search(jql, fields=ISSUE_FIELDS, page_token=page["token"] if page else None)
        records = body.get("issues", [])
        next_token = body.get("nextPageToken")
        newest = max(
            (r["fields"].get("updated") for r in records if r.get("fields", {}).get("updated")),
            key=lambda v: parse_jira_time(v) or datetime.min.replace(tzinfo=UTC),
            default=None,
        )
        previous = (cursor or {}).get("updated") if isinstance(cursor, Mapping) else None
        if (
            previous
            and newest
            and (parse_jira_time(previous) or datetime.min.replace(tzinfo=UTC)) >= (parse_jira_time(newest) or datetime.min.replace(tzinfo=UTC))
        ):
            newest = None
        return Page(
            records=records,
            next_page={"jql": jql, "token": next_token} if next_token else None,
            cursor={"updated": newest} if newest else None,
            is_full_scan=cursor is None and not self.config.get("jql"),
        )

    def _read_users(self, cursor: Any, page: Any) -> Page:
        start = int(page or 0)
        size = self._page_size()
        users = self.client.get(f"{self.api}/users/search", params={"startAt": start, "maxResults": size}).json()
        people = [u for u in users if u.get("accountType") == "atlassian"]  # app and customer accounts are not people
        return Page(records=people, next_page=start + len(users) if len(users) == size else None)

    def _read_fields(self, cursor: Any, page: Any) -> Page:
        return Page(records=self.client.get(f"{self.api}/field").json())

    def _paged_values(self, path: str, key: str) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = []
        start = 0
        while True:
            body = self.client.get(path, params={"startAt": start, "maxResults": self._page_size()}).json()
            batch = body.get(key, [])
            values.extend(batch)
            start += len(batch)
            if not batch or start >= int(body.get("total", 0)):
                return values

    def create_metadata(self, project_key: str) -> list[dict[str, Any]]:
        """Issue types of a project with their create fields (required flags, allowed values, custom fields)."""
        records = []
        for issue_type in self._paged_values(f"{self.api}/issue/createmeta/{project_key}/issuetypes", "issueTypes"):
            fields = self._paged_values(f"{self.api}/issue/createmeta/{project_key}/issuetypes/{issue_type['id']}", "fields")
            records.append({"id": f"{project_key}:{issue_type['id']}", "project_key": project_key, "issue_type": issue_type, "fields": fields})
        return records

    def _read_create_metadata(self, cursor: Any, page: Any) -> Page:
        keys = self._project_keys() or [p["key"] for p in self._all_projects()]
        index = int(page or 0)
        if index >= len(keys):
            return Page(records=[])
        return Page(records=self.create_metadata(keys[index]), next_page=index + 1 if index + 1 < len(keys) else None)

    def config_choices(self, name: str) -> list[tuple[str, str]]:
        """The wizard's project picker: every project this account can see, read from Jira (a typed key is never guessed)."""
        if name == "project_keys":
            return [(str(p["key"]), f"{p.get('name') or p['key']} ({p['key']})") for p in self._all_projects() if p.get("key")]
        return []

    def _all_projects(self) -> list[dict[str, Any]]:
        projects: list[dict[str, Any]] = []
        start = 0
        while True:
            body = self.client.get(f"{self.api}/project/search", params={"startAt": start, "maxResults": self._page_size(), "orderBy": "key"}).json()
            projects.extend(body.get("values", []))
            start += len(body.get("values", []))
            if body.get("isLast", True) or not body.get("values"):
                return projects

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        if entity == "users":
            return str(record["accountId"])
        return str(record["id"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        if entity == "issues":
            parsed = parse_jira_time((record.get("fields") or {}).get("updated"))
            return parsed.isoformat() if parsed else None
        return None

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        if entity == "issues":
            return [
                FieldInfo(
                    name=field["id"],
                    label=field.get("name", field["id"]),
                    type=FIELD_TYPES.get((field.get("schema") or {}).get("type", ""), "object" if field.get("schema") else "string"),
                    path=f"$.fields.{field['id']}",
                    is_custom=bool(field.get("custom")),
                )
                for field in self.client.get(f"{self.api}/field").json()
            ]
        records = self.read(entity).records[:20]
        seen: dict[str, FieldInfo] = {}
        for record in records:
            for key, value in record.items():
                kind = (
                    "boolean"
                    if isinstance(value, bool)
                    else "number"
                    if isinstance(value, int | float)
                    else "array"
                    if isinstance(value, list)
                    else "object"
                    if isinstance(value, dict)
                    else "string"
                )
                seen.setdefault(key, FieldInfo(key, key, "email" if key == "emailAddress" else kind, f"$.{key}"))
        return sorted(seen.values(), key=lambda f: f.name)

    def create_fields(self, project_key: str, issue_type: str = "Task") -> list[FieldInfo]:
        """The fields a create form needs for one project and issue type, required ones flagged."""
        for meta in self.create_metadata(project_key):
            if meta["issue_type"]["name"].lower() == issue_type.lower() or meta["issue_type"]["id"] == issue_type:
                return [
                    FieldInfo(
                        name=f["fieldId"],
                        label=f["name"],
                        type=FIELD_TYPES.get(f["schema"].get("type", ""), "object"),
                        path=f"$.fields.{f['fieldId']}",
                        is_required=bool(f.get("required")),
                        is_custom=f["fieldId"].startswith("customfield_"),
                    )
                    for f in meta["fields"]
                ]
        raise ApiNotFound(f"Project {project_key} has no issue type {issue_type}.")

    # ---- transformers -------------------------------------------------------------------------------------------

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "projects":
            upcoming = sorted(
                v["releaseDate"] for v in record.get("versions") or [] if v.get("releaseDate") and not v.get("released") and not v.get("archived")
            )
            status = "deleted" if record.get("deleted") else "archived" if record.get("archived") else "active"
            return {
                "external_id": str(record["id"]),
                "key": record.get("key", ""),
                "title": record.get("name", ""),
                "description": record.get("description") or "",
                "status": status,
                "lead_email": ((record.get("lead") or {}).get("emailAddress") or "").lower(),
                "due_date": upcoming[0] if upcoming else "",
            }
        if entity == "issues":
            fields = record.get("fields") or {}
            status = fields.get("status") or {}
            return {
                "external_id": str(record["id"]),
                "key": record.get("key", ""),
                "summary": fields.get("summary") or "",
                "status": status.get("name", ""),
                "status_category": (status.get("statusCategory") or {}).get("key", ""),
                "assignee_email": ((fields.get("assignee") or {}).get("emailAddress") or "").lower(),
                "due_date": fields.get("duedate") or "",
                "url": self._browse_url(record.get("key", ""), record.get("self", "")),
            }
        if entity == "users":
            name = record.get("displayName") or ""
            given, _, family = name.partition(" ")
            return {
                "external_id": record["accountId"],
                "email": (record.get("emailAddress") or "").lower(),
                "name": name,
                "given_name": given,
                "family_name": family,
                "title": "",
                "department": "",
                "phone": "",
                "manager_external_id": "",
                "groups": [g.get("name", "") for g in (record.get("groups") or {}).get("items", [])],
                "is_active": bool(record.get("active", True)),
                "username": "",
            }
        return dict(record)

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Bastion task → IssueUpdateDetails (`assignee_account_id` already resolved from the email)."""
        if entity != "issues":
            raise KeyError(f"Jira cannot write entity '{entity}'")
        fields: dict[str, Any] = {
            "project": {"key": str(data["project_key"]).upper()},
            "summary": str(data["summary"]).strip()[:255],
            "issuetype": {"name": data.get("issue_type") or "Task"},
        }
        if data.get("description"):
            fields["description"] = self._rich_text(str(data["description"]))
        if data.get("assignee_account_id"):
            fields["assignee"] = self._user_ref(str(data["assignee_account_id"]))
        if data.get("due_date"):
            fields["duedate"] = str(data["due_date"])[:10]
        labels = [re.sub(r"\s+", "-", str(label)) for label in data.get("labels") or []]
        if labels:
            fields["labels"] = labels
        fields.update(dict(data.get("fields") or {}))  # custom fields, already in Jira's shape
        return {"fields": fields}

    # ---- actions --------------------------------------------------------------------------------------------------

    def register_webhook(self, *, url: str, secret: str) -> dict[str, Any]:
        """Register (or re-register with a new secret) the signed admin webhook that sends issue changes to `url`.

        OAuth 2.0 connections cannot reach the admin endpoint: they register a dynamic webhook (/rest/api/3/webhook), signed
        with a JWT under the app's client secret and expiring after 30 days unless refreshed (`refresh_webhooks`).
        """
        if self.uses_oauth:
            return dynamic_webhook_register(self.client, url=url, jql=self._webhook_jql())
        hooks = self.client.get(WEBHOOKS).json()
        for hook in hooks:
            if hook.get("url") == url:
                # Jira keeps the secret write-only: replace the hook so the new secret takes effect.
                self.client.delete(f"{WEBHOOKS}/{hook['id']}")
        body = {"name": "Bastion", "url": url, "events": list(WEBHOOK_EVENTS), "secret": secret, "excludeBody": False, "enabled": True}
        return self.client.post(WEBHOOKS, json=body).json()

    def _webhook_jql(self) -> str:
        """A dynamic webhook needs a jqlFilter (of the few clauses it supports): the configured projects, else every project now visible."""
        keys = [k.strip().upper() for k in str(self.config.get("project_keys") or "").split(",") if k.strip()]
        if not keys:
            body = self.client.get(f"{self.api}/project/search", params={"maxResults": 100, "orderBy": "key"}).json()
            keys = [str(p["key"]) for p in body.get("values") or [] if p.get("key")]
        if not keys:
            raise ApiBadRequest("Jira shows this account no project, so there is nothing a webhook could report.")
        return f"project in ({', '.join(keys)})"

    def refresh_webhooks(self, webhook_ids: list[int]) -> datetime:
        """Extend dynamic webhooks registered under OAuth before their 30 days run out; returns the new expiry."""
        return dynamic_webhooks_refresh(self.client, webhook_ids)

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """Run an action. known_new: the caller guarantees no earlier request used this idempotency key, so create_issue
        skips its marker search (create_once still searches after an ambiguous failure)."""
        if known_new and action == "create_issue":
            return self._create_issue(payload, idempotency_key, known_new=True)
        handlers = {
            "create_issue": self._create_issue,
            "assign_issue": self._assign_issue,
            "transition_issue": self._transition_issue,
            "add_comment": self._add_comment,
        }
        if action not in handlers:
            raise KeyError(f"Jira has no action '{action}'")
        return handlers[action](payload, idempotency_key)

    def _issue_payload(self, payload: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        data = dict(payload)
        if payload.get("assignee_email"):
            data["assignee_account_id"] = self._require_account_id(str(payload["assignee_email"]))
        data["labels"] = [*(payload.get("labels") or []), idempotency_label(idempotency_key)]
        return self.from_bastion("issues", data)

    def _issue_result(self, issue: Mapping[str, Any], created: bool) -> ActionResult:
        return ActionResult(
            external_id=str(issue["id"]), url=self._browse_url(issue["key"], issue.get("self", "")), data={"key": issue["key"]}, created=created
        )

    def _find_by_labels(self, labels: list[str]) -> dict[str, dict[str, Any]]:
        """Issues carrying any of these marker labels, by label."""
        if not labels:
            return {}
        jql = "labels in (" + ", ".join(f'"{label}"' for label in labels) + ")"
        found: dict[str, dict[str, Any]] = {}
        token = None
        wanted = set(labels)
        while True:
            body = self.search(jql, fields=["labels", "summary"], page_token=token, max_results=100)
            for issue in body.get("issues", []):
                for label in set(issue["fields"].get("labels", [])) & wanted:
                    found.setdefault(label, issue)
            token = body.get("nextPageToken")
            if not token:
                return found

    def _create_issue(self, payload: Mapping[str, Any], idempotency_key: str, *, known_new: bool = False) -> ActionResult:
        label = idempotency_label(idempotency_key)
        existing = None if known_new else self._find_by_labels([label]).get(label)
        if existing:
            return self._issue_result(existing, created=False)
        body = self._issue_payload(payload, idempotency_key)

        def send() -> ActionResult:
            return self._issue_result(self.client.post(f"{self.api}/issue", json=body, retry=False).json(), created=True)

        def find() -> ActionResult | None:
            issue = self._find_by_labels([label]).get(label)
            return self._issue_result(issue, created=True) if issue else None

        return create_once(self.client, send, find, what="jira issue")

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        """create_issue through POST /issue/bulk, ≤50 per call, one marker search per chunk first (skipped when the caller
        guarantees none of the keys was ever tried: known_new)."""
        if action != "create_issue":
            return super().perform_bulk(action, payloads, idempotency_keys=idempotency_keys)
        if len(payloads) != len(idempotency_keys):
            raise ValueError("Every payload needs its idempotency key.")
        results: list[ActionResult | Exception] = []
        for start in range(0, len(payloads), BULK_LIMIT):
            results.extend(self._bulk_chunk(payloads[start : start + BULK_LIMIT], idempotency_keys[start : start + BULK_LIMIT], known_new=known_new))
        return results

    def _bulk_chunk(self, payloads: list[Mapping[str, Any]], keys: list[str], *, known_new: bool = False) -> list[ActionResult | Exception]:
        labels = [idempotency_label(k) for k in keys]
        results: list[ActionResult | Exception | None] = [None] * len(payloads)
        existing = {} if known_new else self._find_by_labels(labels)
        pending: list[int] = []
        bodies: dict[int, dict[str, Any]] = {}
        for index, label in enumerate(labels):
            if label in existing:
                results[index] = self._issue_result(existing[label], created=False)
                continue
            try:
                bodies[index] = self._issue_payload(payloads[index], keys[index])
                pending.append(index)
            except ApiError as exc:  # e.g. an assignee email nobody has: only this item fails
                results[index] = exc
        for attempt in range(1, 4):
            if not pending:
                break
            try:
                response = self.client.post(f"{self.api}/issue/bulk", json={"issueUpdates": [bodies[i] for i in pending]}, retry=False).json()
            except ApiBadRequest:
                # Every element failed (HTTP 400); create them one by one to get each item's own error.
                for index in pending:
                    try:
                        # A 400 means nothing of the batch was created, so a never-tried key is still new.
                        results[index] = self._create_issue(payloads[index], keys[index], known_new=known_new)
                    except ApiError as exc:
                        results[index] = exc
                pending = []
                break
            except (ApiHostError, ApiRateLimited) as exc:
                # Outcome unknown (or throttled): find what landed by marker, resend only the rest.
                found = self._find_by_labels([labels[i] for i in pending])
                for index in pending:
                    if labels[index] in found:
                        results[index] = self._issue_result(found[labels[index]], created=True)
                pending = [i for i in pending if results[i] is None]
                if attempt == 3:
                    for index in pending:
                        results[index] = exc
                    pending = []
                continue
            failed = {int(e.get("failedElementNumber", -1)): e for e in response.get("errors", [])}
            created = iter(response.get("issues", []))
            for position, index in enumerate(pending):
                if position in failed:
                    element = failed[position].get("elementErrors") or {}
                    message = "; ".join([*element.get("errorMessages", []), *(f"{k}: {v}" for k, v in (element.get("errors") or {}).items())])
                    results[index] = ApiBadRequest(f"Jira refused issue {position + 1} of the batch: {message}", status=failed[position].get("status"))
                else:
                    results[index] = self._issue_result(next(created), created=True)
            pending = []
        return [r if r is not None else ApiError("Issue was not created.") for r in results]

    def _get_issue(self, key: str, fields: str) -> dict[str, Any]:
        return self.client.get(f"{self.api}/issue/{key}", params={"fields": fields}).json()

    def _assign_issue(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        key = str(payload["issue_key"])
        account_id = self._require_account_id(str(payload["assignee_email"]))
        issue = self._get_issue(key, "assignee")
        if self._user_id((issue.get("fields") or {}).get("assignee")) == account_id:
            return self._issue_result(issue, created=False)
        self.client.put(f"{self.api}/issue/{key}/assignee", json=self._user_ref(account_id))
        return self._issue_result(issue, created=True)

    def _transition_issue(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        key = str(payload["issue_key"])
        wanted = str(payload["status"]).strip().lower()
        issue = self._get_issue(key, "status")
        current = ((issue.get("fields") or {}).get("status") or {}).get("name", "")
        if current.lower() == wanted:
            return ActionResult(
                str(issue["id"]), self._browse_url(issue["key"], issue.get("self", "")), {"key": issue["key"], "status": current}, created=False
            )
        transitions = self.client.get(f"{self.api}/issue/{key}/transitions").json().get("transitions", [])
        match = next((t for t in transitions if (t.get("to") or {}).get("name", "").lower() == wanted), None) or next(
            (t for t in transitions if t.get("name", "").lower() == wanted), None
        )
        if match is None:
            names = sorted({(t.get("to") or {}).get("name", "") for t in transitions})
            raise ApiBadRequest(
                f"{key} cannot move from {current} to {payload['status']}; available: {', '.join(names) or 'none'}.", vendor_code="no_transition"
            )
        self.client.post(f"{self.api}/issue/{key}/transitions", json={"transition": {"id": match["id"]}})  # 204; a repeat is caught above
        status = (match.get("to") or {}).get("name") or match.get("name")
        return ActionResult(str(issue["id"]), self._browse_url(issue["key"], issue.get("self", "")), {"key": issue["key"], "status": status}, created=True)

    def _add_comment(self, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        key = str(payload["issue_key"])
        marker = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]

        def find() -> ActionResult | None:
            body = self.client.get(f"{self.api}/issue/{key}/comment", params={"expand": "properties", "maxResults": 100, "orderBy": "-created"}).json()
            for comment in body.get("comments", []):
                for prop in comment.get("properties") or []:
                    if prop.get("key") == COMMENT_PROPERTY and (prop.get("value") or {}).get("idempotency") == marker:
                        return ActionResult(str(comment["id"]), self._browse_url(key), {"issue_key": key}, created=False)
            return None

        existing = find()
        if existing:
            return existing
        body = {"body": self._rich_text(str(payload["body"])), "properties": [{"key": COMMENT_PROPERTY, "value": {"idempotency": marker}}]}

        def send() -> ActionResult:
            comment = self.client.post(f"{self.api}/issue/{key}/comment", json=body, retry=False).json()
            return ActionResult(str(comment["id"]), self._browse_url(key), {"issue_key": key}, created=True)

        return create_once(self.client, send, find, what="jira comment")

    # ---- tracked objects: status polling and undo ------------------------------------------------------------------

    UNDO_ACTIONS: dict[str, str] = {
        "create_issue": "Close the issue (a Cancelled or Done status) with a comment saying why; issues are never deleted.",
    }
    STATUS_FIELDS = ("status", "assignee", "updated")
    STATUS_BATCH = 100  # keys per JQL search: keeps the query short and one page long
    MISSING_KEY = re.compile(r"An issue with key '([^']+)' does not exist")
    CLOSING_NAMES = ("cancelled", "canceled", "won't do", "wont do", "abandoned", "declined", "rejected")

    def _status_shape(self, issue: Mapping[str, Any]) -> dict[str, Any]:
        """The same Bastion task shape the webhook path produces (to_bastion), plus the issue's own updated time."""
        updated = parse_jira_time((issue.get("fields") or {}).get("updated"))
        return {**self.to_bastion("issues", issue), "updated": updated.isoformat() if updated else None}

    def fetch_object(self, kind: str, external_id: str) -> dict[str, Any]:
        """GET /issue/{key}?fields=status,assignee,updated in Bastion's task shape; an issue Jira no longer has reads as deleted."""
        if kind not in ("jira_issue", "issue", "issues"):
            raise KeyError(f"Jira cannot read '{kind}' objects")
        try:
            return self._status_shape(self._get_issue(external_id, ",".join(self.STATUS_FIELDS)))
        except ApiNotFound:
            return {"external_id": external_id, "key": external_id, "status": "deleted"}

    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Many issues (keys or ids) through one JQL search `key in (...)` per 100, keyed by what was asked for.

        Jira refuses the whole query when one key no longer exists; those keys are read one by one (deleted or moved)
        and the search is sent again without them.
        """
        if kind not in ("jira_issue", "issue", "issues"):
            raise KeyError(f"Jira cannot read '{kind}' objects")
        wanted = list(dict.fromkeys(i for i in external_ids if i))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), self.STATUS_BATCH):
            pending = wanted[start : start + self.STATUS_BATCH]
            for _attempt in range(3):
                if not pending:
                    break
                try:
                    issues = self._search_keys(pending)
                except ApiBadRequest as exc:
                    missing = set(self.MISSING_KEY.findall(exc.message)) & set(pending)
                    if not missing:
                        raise
                    for ref in missing:
                        found[ref] = self.fetch_object(kind, ref)
                    pending = [ref for ref in pending if ref not in missing]
                    continue
                by_ref = {ref: issue for issue in issues for ref in (str(issue.get("id", "")), str(issue.get("key", "")))}
                for ref in pending:
                    # Not returned without an error: moved to another project (new key) or hidden; read it directly.
                    found[ref] = self._status_shape(by_ref[ref]) if ref in by_ref else self.fetch_object(kind, ref)
                pending = []
            for ref in pending:
                found[ref] = self.fetch_object(kind, ref)
        return found

    def _search_keys(self, refs: list[str]) -> list[dict[str, Any]]:
        jql = "key in (" + ", ".join(f'"{ref}"' for ref in refs) + ")"
        issues: list[dict[str, Any]] = []
        token = None
        while True:
            body = self.search(jql, fields=list(self.STATUS_FIELDS), page_token=token, max_results=self.STATUS_BATCH)
            issues.extend(body.get("issues", []))
            token = body.get("nextPageToken")
            if not token:
                return issues

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        """Undo create_issue: comment why (once), then transition to a Cancelled-like status, else Done. Never deletes."""
        if action != "create_issue":
            raise KeyError(f"Jira cannot undo '{action}'")
        return self._close_issue(key or external_id, reason, idempotency_key)

    def _close_issue(self, key: str, reason: str, idempotency_key: str) -> ActionResult:
        issue = self._get_issue(key, "status")
        status = (issue.get("fields") or {}).get("status") or {}
        url = self._browse_url(issue["key"], issue.get("self", ""))
        if reason:
            self._add_comment({"issue_key": issue["key"], "body": reason}, f"{idempotency_key}:comment")
        if (status.get("statusCategory") or {}).get("key") == "done":
            data = {"key": issue["key"], "status": status.get("name", ""), "status_category": "done"}
            return ActionResult(str(issue["id"]), url, data, created=False)
        transitions = self.client.get(f"{self.api}/issue/{issue['key']}/transitions", params={"expand": "transitions.fields"}).json().get("transitions", [])
        closing = [t for t in transitions if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == "done"]
        if not closing:
            names = sorted({(t.get("to") or {}).get("name", "") for t in transitions})
            raise ApiBadRequest(
                f"{issue['key']} has no transition to a done status from {status.get('name', '')}; available: {', '.join(names) or 'none'}.",
                vendor_code="no_transition",
            )

        def rank(transition: dict[str, Any]) -> int:
            name = ((transition.get("to") or {}).get("name") or transition.get("name") or "").lower()
            return 0 if name in self.CLOSING_NAMES else 1 if name == "done" else 2

        chosen = min(closing, key=rank)
        body: dict[str, Any] = {"transition": {"id": chosen["id"]}}
        screen = chosen.get("fields") or {}
        required = [name for name, field in screen.items() if field.get("required") and not field.get("hasDefaultValue")]
        if "resolution" in required:
            allowed = [v.get("name", "") for v in screen["resolution"].get("allowedValues") or []]
            preferred = [v for v in allowed if v.lower() in self.CLOSING_NAMES] or [v for v in allowed if v.lower() == "done"] or allowed[:1]
            if preferred:
                body["fields"] = {"resolution": {"name": preferred[0]}}
                required.remove("resolution")
        if required:
            raise ApiBadRequest(
                f"Closing {issue['key']} needs fields Bastion cannot fill: {', '.join(sorted(required))}. Close it in Jira.", vendor_code="transition_screen"
            )
        self.client.post(f"{self.api}/issue/{issue['key']}/transitions", json=body)  # 204; a re-run finds the issue done above
        target = chosen.get("to") or {}
        data = {"key": issue["key"], "status": target.get("name") or chosen.get("name", ""), "status_category": "done"}
        return ActionResult(str(issue["id"]), url, data, created=True)

    # ---- webhooks --------------------------------------------------------------------------------------------------

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """X-Hub-Signature (sha256=…) over the raw body in constant time, then the payload timestamp within 5 minutes.

        A dynamic webhook (OAuth 2.0 connection) has no X-Hub-Signature: its Authorization JWT is checked with `secret`,
        which the intake sets to the app's client secret for such connections.
        """
        signature = request.header("X-Hub-Signature")
        if not signature and request.header("Authorization"):
            jwt_verify(request.header("Authorization") or "", secret=secret, now=request.received_at)
            cls._check_timestamp(request)
            return
        if not signature:
            raise WebhookRejected(400, "missing_signature", "X-Hub-Signature is required; register the Jira webhook with a secret.")
        algorithm, _, digest = signature.strip().partition("=")
        if algorithm != "sha256" or not digest:
            raise WebhookRejected(400, "bad_signature_format", "X-Hub-Signature must look like sha256=<hex>.")
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), digest.lower().encode()):
            raise WebhookRejected(401, "bad_signature", "The Jira signature does not match this integration's webhook secret.")
        cls._check_timestamp(request)

    @classmethod
    def _check_timestamp(cls, request: WebhookRequest) -> None:
        try:
            timestamp = int(json.loads(request.body)["timestamp"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected(400, "missing_timestamp", "The Jira payload has no numeric timestamp.") from exc
        if abs(request.received_at.timestamp() * 1000 - timestamp) > REPLAY_WINDOW_MS:
            raise WebhookRejected(409, "stale_timestamp", "The Jira event is older than 5 minutes (possible replay).")

    @classmethod
    def _user_events(cls, delivery_id: str, kind: str, user: Any, occurred: datetime | None) -> list[WebhookEvent]:
        """Directory users: created/updated upsert the account (the same shape `read('users')` returns), deleted retires it."""
        user_id = cls.webhook_user_id(user)
        if not user_id:
            raise WebhookRejected(400, "invalid_payload", f"A Jira {kind} event names its user (user.accountId).")
        if kind == "user_deleted":
            return [WebhookEvent(delivery_id, kind, "users", user_id, "delete", None, occurred)]
        return [WebhookEvent(delivery_id, kind, "users", user_id, "upsert", dict(user), occurred)]

    @classmethod
    def webhook_user_id(cls, user: Any) -> str:
        """The id `external_id('users', …)` gives the account a webhook names."""
        return str(user.get("accountId") or "") if isinstance(user, Mapping) else ""

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise WebhookRejected(400, "invalid_json", "The Jira webhook body is not JSON.") from exc
        if not isinstance(body, dict) or not isinstance(body.get("webhookEvent"), str):
            raise WebhookRejected(400, "invalid_payload", "The Jira webhook has no webhookEvent.")
        delivery_id = request.header("X-Atlassian-Webhook-Identifier") or hashlib.sha256(request.body).hexdigest()
        kind = body["webhookEvent"]
        issue = body.get("issue")
        occurred = datetime.fromtimestamp(int(body["timestamp"]) / 1000, tz=UTC) if str(body.get("timestamp", "")).isdigit() else None
        if kind in USER_EVENTS:
            return cls._user_events(delivery_id, kind, body.get("user"), occurred)
        if not kind.startswith("jira:issue_"):
            # Kept in the inbox with its type, counted as unsupported: nothing in Bastion reads it yet.
            return [WebhookEvent(delivery_id, kind, action="unsupported", occurred_at=occurred)]
        if not isinstance(issue, dict) or not issue.get("id"):
            raise WebhookRejected(400, "invalid_payload", "A Jira issue event needs issue.id.")
        issue_id = str(issue["id"])
        if kind == "jira:issue_deleted":
            return [WebhookEvent(delivery_id, kind, "issues", issue_id, "delete", None, occurred)]
        events = [WebhookEvent(delivery_id, kind, "issues", issue_id, "upsert", issue, occurred)]
        items = (body.get("changelog") or {}).get("items") or []
        status = (issue.get("fields") or {}).get("status") or {}
        if status and (kind == "jira:issue_created" or any(item.get("field") == "status" for item in items)):
            record = {
                "status": status.get("name", ""),
                "status_category": (status.get("statusCategory") or {}).get("key", ""),
                "key": issue.get("key", ""),
            }
            events.append(WebhookEvent(f"{delivery_id}:status", kind, "issues", issue_id, "status", record, occurred))
        return events


CONNECTOR = JiraConnector
