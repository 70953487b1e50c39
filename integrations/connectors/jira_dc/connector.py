"""Jira Data Center / Server connector (REST v2, personal access tokens): the Cloud connector's logic over v2's wire format."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from integrations.connectors.base import ActionResult, BaseConnector, ConnectionTest, Page, WebhookRequest
from integrations.connectors.entities import BastionPerson
from integrations.connectors.jira import PERMISSIONS, WEBHOOK_EVENTS, WEBHOOKS, JiraConnector
from integrations.connectors.jira_dc.manifest import MANIFEST
from integrations.connectors.kit.signatures import equal_secret
from integrations.errors import ApiBadRequest, ApiNotFound, WebhookRejected
from integrations.http import BearerAuth, HttpClient

API = "rest/api/2"
WEBHOOK_TOKEN_PARAM = "token"  # Jira before 10 cannot sign: the secret rides in the registered URL's query instead
SIGNING_MAJOR_VERSION = 10  # Data Center 10's admin webhooks take a secret and send X-Hub-Signature


# Wiki markup makes [label|url] a link, !url! an image, [~name] a mention and {name} a macro. Bastion's text is plain
# (scenario text, directory names), so those characters go with a backslash and Jira shows them as typed.
_WIKI_SPECIAL = re.compile(r"([\\\[\]{}!|])")
_WIKI_ESCAPED = re.compile(r"\\([\\\[\]{}!|])")


def wiki_escape(text: str) -> str:
    """Plain text → wiki markup that renders as exactly that text (no link, image, mention or macro)."""
    return _WIKI_SPECIAL.sub(r"\\\1", text)


def description_text(value: Any) -> str:
    """A v2 description or comment body (wiki markup, a plain string) as text; Cloud's ADF is not expected here."""
    return _WIKI_ESCAPED.sub(r"\1", value) if isinstance(value, str) else ""


def webhook_id(hook: Mapping[str, Any]) -> str:
    """A registered webhook's id: Server answers with its `self` link (…/webhook/<id>), not always an id field."""
    return str(hook.get("id") or str(hook.get("self", "")).rstrip("/").rsplit("/", 1)[-1])


class JiraDataCenterConnector(JiraConnector):
    """Self-hosted Jira (Server 8.14+ / Data Center) over REST v2 with a personal access token (Authorization: Bearer)."""

    api = API
    manifest = MANIFEST

    def __init__(self, *, client: HttpClient | None = None, config: Mapping[str, Any] | None = None, credentials: Mapping[str, Any] | None = None):
        # The Cloud constructor's site and gateway logic (cloudId, 3LO) has no meaning on a self-hosted server.
        BaseConnector.__init__(self, client=client, config=config, credentials=credentials)
        if self.client is not None and self.client.auth is None and self.credentials.get("personal_access_token"):
            self.client.auth = BearerAuth(self.credentials["personal_access_token"])
        self._myself: dict[str, Any] | None = None
        self._account_ids: dict[str, str | None] = {}
        self.uses_oauth = False
        self.cloud_id = ""
        self._given_base_url = self.client.base_url if self.client is not None else ""
        self.gateway_url = ""

    # ---- v2 wire format ------------------------------------------------------------------------------------------

    def _rich_text(self, text: str) -> Any:
        """v2 takes descriptions and comments as plain strings (rendered as wiki markup), never ADF."""
        return wiki_escape(text)

    def _user_ref(self, user_id: str) -> dict[str, str]:
        return {"name": user_id}

    def _user_id(self, user: Any) -> str | None:
        return user.get("name") if isinstance(user, Mapping) else None

    @classmethod
    def webhook_user_id(cls, user: Any) -> str:
        return str(user.get("key") or user.get("name") or "") if isinstance(user, Mapping) else ""

    def find_account_id(self, email: str) -> str | None:
        """The username for a username or email via /user/search?username= (matches username, name and email)."""
        wanted = email.strip().lower()
        if wanted not in self._account_ids:
            users = self.client.get(f"{self.api}/user/search", params={"username": wanted, "maxResults": 50}).json()
            exact = [u for u in users if wanted in ((u.get("name") or "").lower(), (u.get("emailAddress") or "").lower())]
            by_name = [u for u in exact if (u.get("name") or "").lower() == wanted]
            # Two directories may hold accounts with one email: refuse to guess between them.
            match = by_name or (exact if len(exact) == 1 else [])
            self._account_ids[wanted] = str(match[0]["name"]) if match else None
        return self._account_ids[wanted]

    def _require_account_id(self, email: str) -> str:
        name = self.find_account_id(email)
        if name is None:
            raise ApiNotFound(f"No single Jira user has the username or email {email}.", vendor_code="user_not_found")
        return name

    def search(self, jql: str, *, fields: list[str], page_token: str | None = None, max_results: int | None = None) -> dict[str, Any]:
        """One page of POST /search (startAt/maxResults/total), shaped like Cloud's: `nextPageToken` is the next startAt."""
        start = int(page_token or 0)
        body = self.client.post(
            f"{self.api}/search", json={"jql": jql, "fields": fields, "startAt": start, "maxResults": max_results or self._page_size()}
        ).json()
        issues = body.get("issues") or []
        # Jira may return fewer than asked (jira.search.views.default.max): advance by what came back.
        following = int(body.get("startAt", start)) + len(issues)
        if issues and following < int(body.get("total", 0)):
            body["nextPageToken"] = str(following)
        return body

    # ---- connection ------------------------------------------------------------------------------------------------

    def _require_server(self) -> None:
        if self.client is None or not self.client.base_url.startswith("http"):
            raise ApiBadRequest(
                "Jira Data Center needs your server's address: set the API base URL to it, e.g. https://jira.example.com.",
                vendor_code="jira_base_url_required",
            )
        host = (urlsplit(self.client.base_url).hostname or "").lower()
        if host.endswith(".atlassian.net") or host == "api.atlassian.com":
            raise ApiBadRequest(
                "That address is Jira Cloud, which refuses personal access tokens: use the Jira (Cloud) connector for it.", vendor_code="jira_cloud_site"
            )

    def server_version(self) -> tuple[int, ...]:
        info = self.client.get(f"{self.api}/serverInfo").json()
        return tuple(int(n) for n in info.get("versionNumbers") or [] if isinstance(n, int))

    def test_connection(self) -> ConnectionTest:
        self._require_server()
        me = self.myself()
        info = self.client.get(f"{self.api}/serverInfo").json()
        permissions = self.client.get(f"{self.api}/mypermissions", params={"permissions": ",".join(PERMISSIONS)}).json().get("permissions", {})
        held = [key for key, value in permissions.items() if value.get("havePermission")]
        return ConnectionTest(
            ok=True,
            identity=f"{me.get('displayName', '')} <{me.get('emailAddress', '')}>".strip(),
            scopes=held,
            account_id=str(info.get("baseUrl") or self.client.base_url).rstrip("/"),  # the server's own URL routes webhooks
            detail={
                "username": me.get("name"),
                "user_key": me.get("key"),
                "time_zone": me.get("timeZone"),
                "base_url": info.get("baseUrl"),
                "deployment_type": info.get("deploymentType"),
                "version": info.get("version"),
                "signs_webhooks": tuple(info.get("versionNumbers") or [0])[:1] >= (SIGNING_MAJOR_VERSION,),
                "permissions": held,
                "missing_permissions": [p for p in PERMISSIONS if p not in held],
            },
        )

    # ---- reading ---------------------------------------------------------------------------------------------------

    def _all_projects(self, expand: str = "") -> list[dict[str, Any]]:
        """GET /project: every visible project in one unpaged list (Server has no /project/search)."""
        projects = self.client.get(f"{self.api}/project", params={"expand": expand} if expand else None).json()
        keys = self._project_keys()
        return sorted((p for p in projects if not keys or p.get("key") in keys), key=lambda p: p.get("key", ""))

    def _read_projects(self, cursor: Any, page: Any) -> Page:
        start = int(page or 0)
        size = self._page_size()
        projects = self._all_projects("description,lead")
        records = projects[start : start + size]  # paged here so each page's version calls stay bounded
        for project in records:
            project["versions"] = self.client.get(f"{self.api}/project/{project['key']}/versions").json()
        return Page(records=records, next_page=start + size if start + size < len(projects) else None)

    def create_metadata(self, project_key: str) -> list[dict[str, Any]]:
        """Issue types of a project with their create fields; Server (8.4+) pages both lists as `values`."""
        records = []
        for issue_type in self._paged_values(f"{self.api}/issue/createmeta/{project_key}/issuetypes", "values"):
            fields = self._paged_values(f"{self.api}/issue/createmeta/{project_key}/issuetypes/{issue_type['id']}", "values")
            records.append({"id": f"{project_key}:{issue_type['id']}", "project_key": project_key, "issue_type": issue_type, "fields": fields})
        return records

    def _read_users(self, cursor: Any, page: Any) -> Page:
        """/user/search?username=. (a query that matches every account), active and inactive, by startAt."""
        start = int(page or 0)
        size = self._page_size()
        params = {"username": ".", "startAt": start, "maxResults": size, "includeActive": "true", "includeInactive": "true"}
        users = self.client.get(f"{self.api}/user/search", params=params).json()
        return Page(records=users, next_page=start + len(users) if len(users) == size else None)

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        if entity == "users":
            return str(record.get("key") or record["name"])  # the key survives renames; the name does not
        return str(record["id"])

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity != "users":
            return super().to_bastion(entity, record)
        name = record.get("displayName") or ""
        given, _, family = name.partition(" ")
        person = BastionPerson(
            external_id=str(record.get("key") or record.get("name") or ""),
            email=(record.get("emailAddress") or "").lower(),
            name=name,
            given_name=given,
            family_name=family,
            title="",
            department="",
            phone="",
            manager_external_id="",
            groups=[g.get("name", "") for g in (record.get("groups") or {}).get("items", [])],
            is_active=bool(record.get("active", True)) and not record.get("deleted"),
            username=record.get("name") or "",
        )
        return dict(person)

    # ---- actions -----------------------------------------------------------------------------------------------

    @staticmethod
    def _assignee_alias(payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """`assignee_name` (a username) is looked up like an email: /user/search matches both."""
        if payload.get("assignee_name") and not payload.get("assignee_email"):
            return {**payload, "assignee_email": payload["assignee_name"]}
        return payload

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        return super().perform(action, self._assignee_alias(payload), idempotency_key=idempotency_key, known_new=known_new)

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        return super().perform_bulk(action, [self._assignee_alias(p) for p in payloads], idempotency_keys=idempotency_keys, known_new=known_new)

    def _issue_payload(self, payload: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        return super()._issue_payload(self._assignee_alias(payload), idempotency_key)

    # ---- webhooks ----------------------------------------------------------------------------------------------

    def register_webhook(self, *, url: str, secret: str) -> dict[str, Any]:
        """Register (or replace) the admin webhook: signed with the secret on Jira 10+, else with the secret as a URL token."""
        signs = self.server_version()[:1] >= (SIGNING_MAJOR_VERSION,)
        target = url if signs else f"{url}{'&' if '?' in url else '?'}{WEBHOOK_TOKEN_PARAM}={secret}"
        for hook in self.client.get(WEBHOOKS).json():
            # Same address, old token or none: replace it so only the new secret is in use.
            if str(hook.get("url", "")).split("?")[0] == url.split("?")[0]:
                self.client.delete(f"{WEBHOOKS}/{webhook_id(hook)}")
        body: dict[str, Any] = {"name": "Bastion", "url": target, "events": list(WEBHOOK_EVENTS), "excludeBody": False, "enabled": True}
        if signs:
            body["secret"] = secret
        registered = self.client.post(WEBHOOKS, json=body).json()
        return {**registered, "id": webhook_id(registered), "signed": signs}

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """X-Hub-Signature when Jira signs (10+); otherwise the secret ?token= in the URL, in constant time; then the 5-minute window."""
        if request.header("X-Hub-Signature"):
            super().verify_webhook(request, secret=secret, config=config)
            return
        if str((config or {}).get("webhook_signing", "")).lower() == "signed":
            raise WebhookRejected(400, "missing_signature", "X-Hub-Signature is required: this integration accepts only signed Jira webhooks.")
        tokens = parse_qs(urlsplit(request.url).query).get(WEBHOOK_TOKEN_PARAM) or []
        if not tokens:
            raise WebhookRejected(
                400, "missing_signature", "Neither X-Hub-Signature nor ?token= is present; register the Jira webhook through Bastion or with a secret."
            )
        if not equal_secret(tokens[0], secret):
            raise WebhookRejected(401, "bad_signature", "The webhook URL's token does not match this integration's webhook secret.")
        cls._check_timestamp(request)


CONNECTOR = JiraDataCenterConnector
