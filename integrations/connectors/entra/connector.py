"""The Entra ID connector: Graph v1.0 users, groups and managers with nextLink paging and delta queries."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from integrations.connectors.base import BaseConnector, ConnectionTest, FieldInfo, Page
from integrations.connectors.entities import BastionGroup, BastionPerson
from integrations.connectors.entra.client import ClientCredentialsAuth, classify_graph_response
from integrations.connectors.entra.manifest import MANIFEST
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound

logger = logging.getLogger(__name__)

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


class EntraConnector(BaseConnector):
    """Microsoft Graph v1.0 (application permissions User.Read.All, Group.Read.All)."""

    manifest = MANIFEST

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

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_graph_response(response, path)

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
            return BastionGroup(external_id=str(record["id"]), name=record.get("displayName") or "", members=list(record.get("members") or []))
        phones = record.get("businessPhones") or []
        return BastionPerson(
            external_id=str(record["id"]),
            email=(record.get("mail") or "").lower(),
            name=record.get("displayName") or f"{record.get('givenName') or ''} {record.get('surname') or ''}".strip(),
            given_name=record.get("givenName") or "",
            family_name=record.get("surname") or "",
            title=record.get("jobTitle") or "",
            department=record.get("department") or "",
            phone=(phones[0] if phones else "") or record.get("mobilePhone") or "",
            manager_external_id=record.get("manager_id") or "",
            groups=list(record.get("groups") or []),
            is_active=record.get("accountEnabled", True) is not False,
            username=record.get("userPrincipalName") or "",
        )


CONNECTOR = EntraConnector
