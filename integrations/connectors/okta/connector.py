"""The Okta connector: reading users, groups and app assignments (Link paging, incremental search, deactivations as deletions)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from integrations.connectors.base import BaseConnector, ConnectionTest, FieldInfo, Page
from integrations.connectors.entities import BastionGroup, BastionPerson
from integrations.connectors.okta.client import OktaRateMixin, classify_okta_response
from integrations.connectors.okta.manifest import MANIFEST
from integrations.connectors.okta.webhooks import OktaWebhooksMixin
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound
from integrations.http import BearerAuth, HeaderAuth

USER_PAGE_LIMIT = 200  # Okta's maximum for /api/v1/users
MEMBER_PAGE_LIMIT = 1000
PROFILE_FIELDS = [
    ("login", "Username", "string", True),
    ("email", "Email", "email", True),
    ("firstName", "First name", "string", False),
    ("lastName", "Last name", "string", False),
    ("displayName", "Display name", "string", False),
    ("title", "Title", "string", False),
    ("department", "Department", "string", False),
    ("primaryPhone", "Primary phone", "string", False),
    ("mobilePhone", "Mobile phone", "string", False),
    ("managerId", "Manager id", "user", False),
    ("employeeNumber", "Employee number", "string", False),
    ("costCenter", "Cost center", "string", False),
    ("division", "Division", "string", False),
    ("organization", "Organization", "string", False),
]


class OktaConnector(OktaRateMixin, OktaWebhooksMixin, BaseConnector):
    """Okta Management API (SSWS API token or OAuth 2.0 bearer)."""

    manifest = MANIFEST

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep, **kwargs: Any):
        super().__init__(**kwargs)
        self._sleep = sleep
        token = self.credentials.get("api_token")
        if self.client is not None and self.client.auth is None:
            if token:
                self.client.auth = HeaderAuth("Authorization", f"SSWS {token}")
            elif self.credentials.get("access_token"):
                self.client.auth = BearerAuth(self.credentials["access_token"])
        self.rate: dict[str, int] = {}
        self.throttle_waits: list[float] = []
        self._memberships: dict[str, list[str]] | None = None
        if self.client is not None:
            self.client.session.hooks.setdefault("response", []).append(self._observe_rate)

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_okta_response(response, path)

    @property
    def page_size(self) -> int:
        return max(1, min(int(self.config.get("page_size") or USER_PAGE_LIMIT), USER_PAGE_LIMIT))

    # ------------------------------------------------------------ connection and discovery
    def test_connection(self) -> ConnectionTest:
        me = self._get("/api/v1/users/me").json()
        profile = me.get("profile") or {}
        return ConnectionTest(ok=True, identity=profile.get("login") or profile.get("email") or me.get("id", ""), detail={"rate_limit": dict(self.rate)})

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        if entity == "users":
            fields = [FieldInfo(name, label, type=kind, path=f"$.profile.{name}", is_required=req) for name, label, kind, req in PROFILE_FIELDS]
            fields += [
                FieldInfo("status", "Status", path="$.status"),
                FieldInfo("lastUpdated", "Last updated", type="datetime", path="$.lastUpdated"),
                FieldInfo("groups", "Groups", type="array", path="$.groups"),
            ]
            # Custom profile attributes (schema extensions) show up on the users themselves.
            sample = self._get("/api/v1/users", {"limit": 1}).json()
            known = {f.name for f in fields}
            for name in sorted((sample[0].get("profile") or {}) if sample else {}):
                if name not in known:
                    fields.append(FieldInfo(name, name, path=f"$.profile.{name}", is_custom=True))
            return fields
        if entity == "groups":
            return [FieldInfo("name", "Name", path="$.profile.name", is_required=True), FieldInfo("members", "Members", type="array", path="$.members")]
        if entity == "app_assignments":
            return [FieldInfo("appId", "Application", path="$.appId"), FieldInfo("userId", "User", type="user", path="$.userId")]
        raise ApiNotFound(f"Okta has no entity '{entity}'.")

    # ------------------------------------------------------------ reading
    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        if entity == "users":
            return self._read_users(cursor, dict(page or {}))
        if entity == "groups":
            return self._read_groups(dict(page or {}))
        if entity == "app_assignments":
            return self._read_app_assignments(dict(page or {}))
        raise ApiNotFound(f"Okta has no entity '{entity}'.")

    def _read_users(self, cursor: Any, state: dict[str, Any]) -> Page:
        if not state:
            self._memberships = None
        incremental = bool(cursor)
        if state.get("next"):
            response = self._get(state["next"])
        elif incremental:
            # `search` includes DEPROVISIONED users, so a deactivation arrives as a change we can report as a deletion.
            response = self._get(
                "/api/v1/users", {"search": f'lastUpdated gt "{cursor}"', "limit": self.page_size, "sortBy": "lastUpdated", "sortOrder": "asc"}
            )
        else:
            response = self._get("/api/v1/users", {"limit": self.page_size})
        users = response.json()
        if not isinstance(users, list):
            raise ApiBadRequest("Okta answered /api/v1/users with something other than a list.")
        memberships = self._group_memberships()
        records, deleted = [], []
        run_max = state.get("max") or cursor
        for user in users:
            if not isinstance(user, dict) or "id" not in user or not isinstance(user.get("profile"), dict):
                raise ApiBadRequest("Okta returned a user without id or profile.")
            updated = user.get("lastUpdated") or ""
            run_max = updated if not run_max or updated > run_max else run_max
            if user.get("status") == "DEPROVISIONED":
                deleted.append(str(user["id"]))
                continue
            records.append({**user, "groups": sorted(memberships.get(str(user["id"]), []))})
        next_url = response.links.get("next", {}).get("url")
        if next_url:
            return Page(records, next_page={"next": next_url, "max": run_max}, cursor=None, is_full_scan=not incremental, deleted_ids=deleted)
        new_cursor = run_max if run_max and run_max != cursor else None
        return Page(records, next_page=None, cursor=new_cursor, is_full_scan=not incremental, deleted_ids=deleted)

    def _group_memberships(self) -> dict[str, list[str]]:
        """user id → group names, built once per run from /groups and /groups/{id}/users."""
        if self._memberships is not None:
            return self._memberships
        memberships: dict[str, list[str]] = {}
        for groups, _ in self._pages("/api/v1/groups", {"limit": 10000}):
            for group in groups:
                name = (group.get("profile") or {}).get("name") or group["id"]
                for member in self._group_members(group["id"]):
                    memberships.setdefault(member, []).append(name)
        self._memberships = memberships
        return memberships

    def _group_members(self, group_id: str) -> list[str]:
        members: list[str] = []
        for users, _ in self._pages(f"/api/v1/groups/{group_id}/users", {"limit": MEMBER_PAGE_LIMIT}):
            members += [str(u["id"]) for u in users]
        return members

    def _read_groups(self, state: dict[str, Any]) -> Page:
        response = self._get(state["next"]) if state.get("next") else self._get("/api/v1/groups", {"limit": 200})
        records = [{**group, "members": self._group_members(group["id"])} for group in response.json()]
        next_url = response.links.get("next", {}).get("url")
        return Page(records, next_page={"next": next_url} if next_url else None, is_full_scan=True)

    def _read_app_assignments(self, state: dict[str, Any]) -> Page:
        app_ids = self.config.get("app_ids") or []
        if isinstance(app_ids, str):
            app_ids = [a.strip() for a in app_ids.split(",") if a.strip()]
        index = int(state.get("app", 0))
        if index >= len(app_ids):
            return Page([], next_page=None, is_full_scan=True)
        app_id = app_ids[index]
        response = self._get(state["next"]) if state.get("next") else self._get(f"/api/v1/apps/{app_id}/users", {"limit": 500})
        records = [{**assignment, "appId": app_id, "userId": assignment["id"], "id": f"{app_id}:{assignment['id']}"} for assignment in response.json()]
        next_url = response.links.get("next", {}).get("url")
        if next_url:
            return Page(records, next_page={"app": index, "next": next_url}, is_full_scan=True)
        if index + 1 < len(app_ids):
            return Page(records, next_page={"app": index + 1}, is_full_scan=True)
        return Page(records, next_page=None, is_full_scan=True)

    # ------------------------------------------------------------ transformers
    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return record.get("lastUpdated")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "groups":
            return BastionGroup(external_id=str(record["id"]), name=(record.get("profile") or {}).get("name", ""), members=list(record.get("members") or []))
        if entity == "app_assignments":
            return {
                "external_id": str(record["id"]),
                "app_id": record.get("appId", ""),
                "user_id": record.get("userId", ""),
                "status": record.get("status", ""),
            }
        profile = record.get("profile") or {}
        given, family = profile.get("firstName") or "", profile.get("lastName") or ""
        return BastionPerson(
            external_id=str(record["id"]),
            email=(profile.get("email") or "").lower(),
            name=profile.get("displayName") or f"{given} {family}".strip(),
            given_name=given,
            family_name=family,
            title=profile.get("title") or "",
            department=profile.get("department") or "",
            phone=profile.get("primaryPhone") or profile.get("mobilePhone") or "",
            manager_external_id=profile.get("managerId") or "",
            groups=list(record.get("groups") or []),
            is_active=record.get("status") not in ("DEPROVISIONED", "SUSPENDED"),
            username=profile.get("login") or "",
        )

    def fetch_user(self, user_id: str) -> dict[str, Any]:
        """One user in the raw shape `read` returns (for event hooks that name a user without its profile)."""
        user = self._get(f"/api/v1/users/{user_id}").json()
        return {**user, "groups": sorted(self._group_memberships().get(str(user["id"]), []))}


CONNECTOR = OktaConnector
