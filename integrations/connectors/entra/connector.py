"""Microsoft Entra ID connector: Graph v1.0 users, groups and managers with client-credentials OAuth, nextLink paging and delta queries."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from integrations.connectors.base import BaseConnector, ConnectionTest, ConnectorManifest, CredentialField, EntitySpec, FieldInfo, Page
from integrations.errors import ApiBadRequest, ApiHostError, ApiNotFound, ApiTimeout, ApiUnauthorized
from integrations.http import DEFAULT_TIMEOUT

logger = logging.getLogger(__name__)

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
USER_SELECT = (
    "id",
    "accountEnabled",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "userPrincipalName",
    "jobTitle",
    "department",
    "businessPhones",
    "mobilePhone",
    "employeeId",
    "manager",
)
# Graph `user` properties (v1.0 CSDL) offered for mapping; type per Edm type.
USER_FIELDS = [
    ("displayName", "Display name", "string"),
    ("givenName", "Given name", "string"),
    ("surname", "Surname", "string"),
    ("mail", "Mail", "email"),
    ("userPrincipalName", "User principal name", "string"),
    ("mailNickname", "Mail nickname", "string"),
    ("jobTitle", "Job title", "string"),
    ("department", "Department", "string"),
    ("employeeId", "Employee id", "string"),
    ("employeeHireDate", "Hire date", "datetime"),
    ("businessPhones", "Business phones", "array"),
    ("mobilePhone", "Mobile phone", "string"),
    ("officeLocation", "Office", "string"),
    ("companyName", "Company", "string"),
    ("userType", "User type", "string"),
    ("accountEnabled", "Account enabled", "boolean"),
    ("onPremisesSamAccountName", "On-premises sAMAccountName", "string"),
    ("onPremisesDistinguishedName", "On-premises DN", "string"),
    ("createdDateTime", "Created", "datetime"),
]


class ClientCredentialsAuth:
    """App-only token from the Microsoft identity platform (no refresh token: a new one is requested before expiry)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str = GRAPH_SCOPE,
        session: requests.Session | None = None,
        url_guard: Callable[[str], None] | None = None,
    ):
        self.token_url, self.client_id, self._secret, self.scope = token_url, client_id, client_secret, scope
        self._session = session or requests.Session()
        self._url_guard = url_guard
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetches = 0

    def _fetch(self) -> None:
        if self._url_guard:
            self._url_guard(self.token_url)  # the same SSRF policy as every Graph call
        try:
            response = self._session.post(
                self.token_url,
                data={"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self._secret, "scope": self.scope},
                timeout=DEFAULT_TIMEOUT,
            )
        except requests.Timeout as exc:
            raise ApiTimeout("The Microsoft token endpoint did not answer in time.") from exc
        except requests.ConnectionError as exc:
            raise ApiHostError("Could not reach the Microsoft token endpoint.") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 500:
            raise ApiHostError(f"The Microsoft token endpoint failed ({response.status_code}).", status=response.status_code)
        if response.status_code != 200 or not body.get("access_token"):
            # The reason phrase is the server's own text (a banner when the URL is no token endpoint): never shown.
            description = str(body.get("error_description") or body.get("error") or f"HTTP {response.status_code}").split("\r\n")[0][:300]
            raise ApiUnauthorized(
                f"Entra ID refused the client credentials: {description}", status=response.status_code, vendor_code=str(body.get("error", ""))
            )
        self.fetches += 1
        self._token = body["access_token"]
        # Renew five minutes early so a long sync never presents an expired token.
        self._expires_at = time.time() + max(60, int(body.get("expires_in", 3600)) - 300)

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if not self._token or time.time() >= self._expires_at:
                self._fetch()
            headers["Authorization"] = f"Bearer {self._token}"

    def refresh(self) -> bool:
        with self._lock:
            self._fetch()
        return True


class EntraConnector(BaseConnector):
    """Microsoft Graph v1.0 (application permissions User.Read.All, Group.Read.All)."""

    manifest = ConnectorManifest(
        key="entra",
        name="Microsoft Entra ID",
        category="directory",
        description="People, managers and groups from Microsoft Entra ID (Azure AD) through Microsoft Graph, kept current with delta queries.",
        auth_methods=("service_account",),
        credential_fields=(
            CredentialField("client_id", "Application (client) id", is_secret=False),
            CredentialField("client_secret", "Client secret"),
        ),
        config_fields=(
            CredentialField("tenant_id", "Directory (tenant) id", is_secret=False),
            CredentialField("login_base_url", "Login base URL", is_secret=False, is_required=False, help_text="https://login.microsoftonline.com"),
        ),
        default_base_url="https://graph.microsoft.com/v1.0",
        entities=(
            EntitySpec("users", "Users", "People (disabled accounts are reported as deletions)", supports_incremental=True, bastion_type="person"),
            EntitySpec("groups", "Groups", "Groups with their direct members", bastion_type="group"),
        ),
        capabilities=("read", "incremental", "field_discovery", "deletions", "org_chart"),
        docs_url="https://learn.microsoft.com/graph/delta-query-users",
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None and self.client.auth is None and self.credentials.get("client_secret"):
            self.client.auth = ClientCredentialsAuth(
                self.token_url,
                str(self.credentials.get("client_id") or ""),
                str(self.credentials["client_secret"]),
                session=self.client.session,
                url_guard=self.client.url_guard,
            )
        self._memberships: dict[str, list[str]] | None = None

    @property
    def token_url(self) -> str:
        tenant = str(self.config.get("tenant_id") or "").strip()
        if not tenant:
            raise ApiBadRequest("The directory (tenant) id is required (config 'tenant_id').")
        base = str(self.config.get("login_base_url") or self._default_login_base()).rstrip("/")
        return f"{base}/{quote(tenant, safe='')}/oauth2/v2.0/token"

    def _default_login_base(self) -> str:
        """login.microsoftonline.com for Graph itself; a stand-in (sandbox) serves its token endpoint beside its Graph root."""
        graph_root = self._graph_root()
        if not graph_root or urlsplit(graph_root).hostname in ("graph.microsoft.com", None):
            return "https://login.microsoftonline.com"
        return graph_root

    def _graph_root(self) -> str:
        if self.client is None:
            return ""
        base = self.client.base_url.rstrip("/")
        return base[: -len("/v1.0")] if base.endswith("/v1.0") else base

    def _path(self, path: str) -> str:
        """Relative Graph paths work whether the base URL ends in /v1.0 (Graph) or not (a stand-in's root)."""
        if path.startswith("http") or self.client.base_url.rstrip("/").endswith("/v1.0"):
            return path
        return f"v1.0/{path}"

    @property
    def page_size(self) -> int:
        return max(1, min(int(self.config.get("page_size") or 999), 999))

    # ------------------------------------------------------------ connection and discovery
    def test_connection(self) -> ConnectionTest:
        organizations = self.client.get(self._path("organization")).json().get("value") or []
        organization = organizations[0] if organizations else {}
        return ConnectionTest(ok=True, identity=organization.get("displayName", ""), account_id=str(organization.get("id") or self.config.get("tenant_id", "")))

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        if entity == "users":
            fields = [FieldInfo(name, label, type=kind, path=f"$.{name}") for name, label, kind in USER_FIELDS]
            fields += [FieldInfo("manager", "Manager", type="user", path="$.manager_id"), FieldInfo("groups", "Groups", type="array", path="$.groups")]
            return fields
        if entity == "groups":
            return [FieldInfo("displayName", "Name", path="$.displayName", is_required=True), FieldInfo("members", "Members", type="array", path="$.members")]
        raise ApiNotFound(f"Entra ID has no entity '{entity}'.")

    # ------------------------------------------------------------ reading
    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        if entity == "users":
            return self._read_users(cursor, dict(page or {}))
        if entity == "groups":
            return self._read_groups(dict(page or {}))
        raise ApiNotFound(f"Entra ID has no entity '{entity}'.")

    def _read_users(self, cursor: Any, state: dict[str, Any]) -> Page:
        """A delta round: without a cursor the initial round (every user, a full scan); with the stored deltaLink only changes."""
        incremental = bool(cursor)
        if state.get("next"):
            url, params = state["next"], None
        elif incremental:
            url, params = str(cursor), None
        else:
            url, params = self._path("users/delta"), {"$select": ",".join(USER_SELECT), "$top": self.page_size}
        body = self.client.get(url, params=params).json()
        if not state:
            self._memberships = None
        return self.delta_page(body, incremental=incremental)

    def delta_page(self, body: Mapping[str, Any], *, incremental: bool) -> Page:
        """Turn one Graph delta response into a Page: `@removed` and disabled users become deletions, deltaLink the cursor."""
        values = body.get("value")
        if not isinstance(values, list):
            raise ApiBadRequest("Graph answered a delta query without a value array.")
        memberships = self._group_memberships()
        records, deleted = [], []
        for user in values:
            if not isinstance(user, dict) or not user.get("id"):
                raise ApiBadRequest("Graph returned a user without an id.")
            if "@removed" in user or user.get("accountEnabled") is False:
                deleted.append(str(user["id"]))
                continue
            managers = user.get("manager@delta") or []
            record = {k: v for k, v in user.items() if k != "manager@delta"}
            record["manager_id"] = next((str(m["id"]) for m in managers if isinstance(m, dict) and m.get("id") and "@removed" not in m), "")
            record["groups"] = sorted(memberships.get(str(user["id"]), []))
            records.append(record)
        if body.get("@odata.nextLink"):
            return Page(records, next_page={"next": body["@odata.nextLink"]}, cursor=None, is_full_scan=not incremental, deleted_ids=deleted)
        delta_link = body.get("@odata.deltaLink")
        if not delta_link:
            raise ApiBadRequest("Graph ended a delta round without @odata.deltaLink.")
        return Page(records, next_page=None, cursor=delta_link, is_full_scan=not incremental, deleted_ids=deleted)

    def _paginate(self, path: str, params: Mapping[str, Any] | None = None):
        yield from (items for items, _ in self.client.paginate_next_url(self._path(path), items_key="value", next_key="@odata.nextLink", params=params))

    def _group_memberships(self) -> dict[str, list[str]]:
        """user id → group names, nested groups expanded (cycle-safe); built once per run."""
        if self._memberships is not None:
            return self._memberships
        names: dict[str, str] = {}
        direct: dict[str, set[str]] = {}
        parents: dict[str, set[str]] = {}
        for groups in self._paginate("groups", {"$select": "id,displayName", "$top": 999}):
            for group in groups:
                names[group["id"]] = group.get("displayName") or group["id"]
                for members in self._paginate(f"groups/{group['id']}/members", {"$select": "id", "$top": 999}):
                    for member in members:
                        if member.get("@odata.type") == "#microsoft.graph.group":
                            parents.setdefault(member["id"], set()).add(group["id"])
                        else:
                            direct.setdefault(member["id"], set()).add(group["id"])
        memberships: dict[str, list[str]] = {}
        for user_id, groups in direct.items():
            seen: set[str] = set()
            pending = list(groups)
            while pending:
                group_id = pending.pop()
                if group_id in seen:
                    continue
                seen.add(group_id)
                pending.extend(parents.get(group_id, ()))
            memberships[user_id] = [names.get(g, g) for g in seen]
        self._memberships = memberships
        return memberships

    def _read_groups(self, state: dict[str, Any]) -> Page:
        if state.get("next"):
            body = self.client.get(state["next"]).json()
        else:
            body = self.client.get(
                self._path("groups"), params={"$select": "id,displayName,description,mail,securityEnabled", "$top": min(self.page_size, 100)}
            ).json()
        records = []
        for group in body.get("value") or []:
            members = [m["id"] for items in self._paginate(f"groups/{group['id']}/members", {"$select": "id", "$top": 999}) for m in items]
            records.append({**group, "members": members})
        next_link = body.get("@odata.nextLink")
        return Page(records, next_page={"next": next_link} if next_link else None, is_full_scan=True)

    def manager_of(self, user_id: str) -> dict[str, Any] | None:
        """The user's manager (GET /users/{id}/manager); None when they have none."""
        try:
            return self.client.get(self._path(f"users/{quote(user_id, safe='@.')}/manager"), params={"$select": "id,displayName,mail"}).json()
        except ApiNotFound:
            return None

    # ------------------------------------------------------------ transformers
    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "groups":
            return {"external_id": str(record["id"]), "name": record.get("displayName") or "", "members": list(record.get("members") or [])}
        phones = record.get("businessPhones") or []
        return {
            "external_id": str(record["id"]),
            "email": (record.get("mail") or "").lower(),
            "name": record.get("displayName") or f"{record.get('givenName') or ''} {record.get('surname') or ''}".strip(),
            "given_name": record.get("givenName") or "",
            "family_name": record.get("surname") or "",
            "title": record.get("jobTitle") or "",
            "department": record.get("department") or "",
            "phone": (phones[0] if phones else "") or record.get("mobilePhone") or "",
            "manager_external_id": record.get("manager_id") or "",
            "groups": list(record.get("groups") or []),
            "is_active": record.get("accountEnabled", True) is not False,
            "username": record.get("userPrincipalName") or "",
        }


CONNECTOR = EntraConnector
