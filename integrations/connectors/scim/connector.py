"""The SCIM 2.0 connector: /Users and /Groups with ListResponse paging, filters and the enterprise extension."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from integrations.connectors.base import BaseConnector, ConnectionTest, FieldInfo, Page
from integrations.connectors.entities import BastionGroup, BastionPerson
from integrations.connectors.scim.client import ENTERPRISE, LIST_SCHEMA, SCIM_HEADERS, USER_SCHEMA, classify_scim_response, scim_quote
from integrations.connectors.scim.manifest import MANIFEST
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound
from integrations.http import BearerAuth

TYPE_MAP = {"string": "string", "boolean": "boolean", "decimal": "number", "integer": "number", "dateTime": "datetime", "reference": "string"}


class ScimConnector(BaseConnector):
    """Any SCIM 2.0 service provider (Okta, Entra ID, OneLogin, PagerDuty, …) with a bearer token."""

    manifest = MANIFEST

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        token = self.credentials.get("token") or self.credentials.get("api_token") or self.credentials.get("access_token")
        if self.client is not None and self.client.auth is None and token:
            self.client.auth = BearerAuth(str(token))

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_scim_response(response, path)

    @property
    def page_size(self) -> int:
        return max(1, min(int(self.config.get("page_size") or 100), 1000))

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = self.client.get(path, params=params, headers=SCIM_HEADERS).json()
        if not isinstance(body, dict):
            raise ApiBadRequest(f"The SCIM service answered {path} with something other than a JSON object.")
        return body

    # ------------------------------------------------------------ connection and discovery
    def test_connection(self) -> ConnectionTest:
        config = self._get("ServiceProviderConfig")
        users = self._get("Users", {"startIndex": 1, "count": 1})
        return ConnectionTest(
            ok=True,
            identity=f"SCIM service with {users.get('totalResults', 0)} users",
            detail={"filter": (config.get("filter") or {}).get("supported", False), "patch": (config.get("patch") or {}).get("supported", False)},
        )

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        """Attributes from /Schemas (core User + enterprise extension); sub-attributes as dotted paths."""
        if entity not in ("users", "groups"):
            raise ApiNotFound(f"SCIM has no entity '{entity}'.")
        if entity == "groups":
            return [FieldInfo("displayName", "Name", path="$.displayName", is_required=True), FieldInfo("members", "Members", type="array", path="$.members")]
        fields: list[FieldInfo] = []
        for schema in self._get("Schemas").get("Resources") or []:
            if schema.get("id") not in (USER_SCHEMA, ENTERPRISE):
                continue
            prefix = "$" if schema["id"] == USER_SCHEMA else f'$["{ENTERPRISE}"]'
            for attribute in schema.get("attributes") or []:
                name = attribute["name"]
                kind = "array" if attribute.get("multiValued") else TYPE_MAP.get(attribute.get("type", "string"), "object")
                if attribute.get("type") == "complex" and not attribute.get("multiValued"):
                    for sub in attribute.get("subAttributes") or []:
                        fields.append(
                            FieldInfo(
                                f"{name}.{sub['name']}",
                                f"{name}.{sub['name']}",
                                TYPE_MAP.get(sub.get("type", "string"), "string"),
                                f"{prefix}.{name}.{sub['name']}",
                            )
                        )
                    continue
                fields.append(
                    FieldInfo(name, name, kind, f"{prefix}.{name}", is_required=bool(attribute.get("required")), is_custom=schema["id"] != USER_SCHEMA)
                )
        return fields

    # ------------------------------------------------------------ reading
    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        if entity == "users":
            return self._read_users(cursor, dict(page or {}))
        if entity == "groups":
            return self._read_list("Groups", dict(page or {}), None)
        raise ApiNotFound(f"SCIM has no entity '{entity}'.")

    def _filter(self, cursor: Any) -> str | None:
        clauses = []
        if self.config.get("user_filter"):
            clauses.append(f"({self.config['user_filter']})")
        if cursor:
            clauses.append(f"meta.lastModified gt {scim_quote(cursor)}")
        return " and ".join(clauses) or None

    def _read_users(self, cursor: Any, state: dict[str, Any]) -> Page:
        incremental = bool(cursor)
        result = self._read_list("Users", state, self._filter(cursor))
        records, deleted = [], []
        run_max = state.get("max") or cursor
        for user in result.records:
            if not user.get("id"):
                raise ApiBadRequest("The SCIM service returned a user without an id.")
            modified = (user.get("meta") or {}).get("lastModified") or ""
            run_max = modified if modified and (not run_max or modified > run_max) else run_max
            if user.get("active") is False:
                deleted.append(str(user["id"]))
            else:
                records.append(user)
        if result.next_page is not None:
            return Page(records, next_page={**result.next_page, "max": run_max}, cursor=None, is_full_scan=not incremental, deleted_ids=deleted)
        return Page(records, next_page=None, cursor=run_max if run_max and run_max != cursor else None, is_full_scan=not incremental, deleted_ids=deleted)

    def _read_list(self, resource: str, state: dict[str, Any], search: str | None) -> Page:
        """One ListResponse page: startIndex is 1-based; the run ends when totalResults are delivered or a page comes back empty."""
        start = int(state.get("start") or 1)
        params: dict[str, Any] = {"startIndex": start, "count": self.page_size}
        if search:
            params["filter"] = search
        body = self._get(resource, params)
        if LIST_SCHEMA not in (body.get("schemas") or []) and "Resources" not in body and "totalResults" not in body:
            raise ApiBadRequest(f"The SCIM service did not answer /{resource} with a ListResponse.")
        resources = body.get("Resources") or []
        total = int(body.get("totalResults") or 0)
        following = start + len(resources)
        more = bool(resources) and following <= total
        return Page(list(resources), next_page={"start": following} if more else None, is_full_scan=True)

    def find_user(self, user_name: str) -> dict[str, Any] | None:
        """Look a user up by userName (filter `userName eq "…"`)."""
        body = self._get("Users", {"filter": f"userName eq {scim_quote(user_name)}", "startIndex": 1, "count": 2})
        resources = body.get("Resources") or []
        return resources[0] if resources else None

    # ------------------------------------------------------------ transformers
    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return (record.get("meta") or {}).get("lastModified")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "groups":
            return BastionGroup(
                external_id=str(record["id"]),
                name=record.get("displayName") or "",
                members=[m["value"] for m in record.get("members") or [] if m.get("value")],
            )
        name = record.get("name") or {}
        enterprise = record.get(ENTERPRISE) or {}
        emails = record.get("emails") or []
        email = next((e.get("value") for e in emails if e.get("primary")), None) or (emails[0].get("value") if emails else "")
        phones = record.get("phoneNumbers") or []
        manager = enterprise.get("manager") or {}
        given, family = name.get("givenName") or "", name.get("familyName") or ""
        return BastionPerson(
            external_id=str(record["id"]),
            email=(email or "").lower(),
            name=record.get("displayName") or name.get("formatted") or f"{given} {family}".strip(),
            given_name=given,
            family_name=family,
            title=record.get("title") or "",
            department=enterprise.get("department") or "",
            phone=phones[0].get("value", "") if phones else "",
            manager_external_id=(manager.get("value") if isinstance(manager, dict) else "") or "",
            groups=sorted(g.get("display") or g.get("value") for g in record.get("groups") or [] if g.get("display") or g.get("value")),
            is_active=record.get("active", True) is not False,
            username=record.get("userName") or "",
        )


CONNECTOR = ScimConnector
