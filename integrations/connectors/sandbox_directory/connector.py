"""Sandbox Directory: a people + groups directory used to exercise the sync engine end to end (demo and tests).

It speaks the wire format of `sandbox/vendors/sandbox_directory.py`: bearer token, keyset paging (`after`), incremental
reads (`updated_since`), an explicit deletions feed, and HMAC-SHA256 signed webhooks with a timestamp and a delivery id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from integrations.connectors.base import BaseConnector, ConnectionTest, FieldInfo, Page
from integrations.connectors.entities import BastionGroup, BastionPerson
from integrations.connectors.sandbox_directory.manifest import MANIFEST
from integrations.connectors.sandbox_directory.webhooks import SandboxDirectoryWebhooksMixin
from integrations.errors import ApiBadRequest, ApiError
from integrations.http import classify_generic

PAGE_SIZE = 500

PERSON_FIELDS = [
    FieldInfo("id", "Id", "string", "$.id", is_required=True),
    FieldInfo("email", "Email", "email", "$.email"),
    FieldInfo("name", "Name", "string", "$.name"),
    FieldInfo("given_name", "Given name", "string", "$.given_name"),
    FieldInfo("family_name", "Family name", "string", "$.family_name"),
    FieldInfo("title", "Title", "string", "$.title"),
    FieldInfo("department", "Department", "string", "$.department"),
    FieldInfo("phone", "Phone", "string", "$.phone"),
    FieldInfo("manager_id", "Manager", "user", "$.manager_id"),
    FieldInfo("groups", "Groups", "array", "$.groups"),
    FieldInfo("active", "Active", "boolean", "$.active"),
    FieldInfo("updated_at", "Updated at", "datetime", "$.updated_at"),
]
GROUP_FIELDS = [
    FieldInfo("id", "Id", "string", "$.id", is_required=True),
    FieldInfo("name", "Name", "string", "$.name"),
    FieldInfo("members", "Members", "array", "$.members"),
]
ENTITY_PATHS = {"people": "v1/people", "groups": "v1/groups"}


class SandboxDirectoryConnector(SandboxDirectoryWebhooksMixin, BaseConnector):
    """Bearer token, keyset paging (`after`), incremental reads (`updated_since`) and an explicit deletions feed."""

    manifest = MANIFEST

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        """The sandbox answers errors as {"error": {"code", "message"}}: the generic envelope."""
        return classify_generic(response, path)

    def _headers(self) -> dict[str, str]:
        token = self.credentials.get("token") or self.credentials.get("access_token") or ""
        return {"Authorization": f"Bearer {token}"}

    def test_connection(self) -> ConnectionTest:
        body = self.client.get("v1/me", headers=self._headers()).json()
        return ConnectionTest(ok=True, identity=str(body.get("name", "")), account_id=str(body.get("account_id", "")))

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        return list(PERSON_FIELDS if entity == "people" else GROUP_FIELDS)

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """One page. `cursor` = {"updated_since": iso} from the last run; `page` = {"after", "mark"} within this run."""
        if entity not in ENTITY_PATHS:
            raise ApiBadRequest(f"Unknown entity {entity}")
        since = (cursor or {}).get("updated_since") if isinstance(cursor, dict) else None
        position = page if isinstance(page, dict) else {}
        params: dict[str, Any] = {"limit": int(self.config.get("page_size", PAGE_SIZE))}
        if since:
            params["updated_since"] = since
        if position.get("after"):
            params["after"] = position["after"]
        body = self._json(self.client.get(ENTITY_PATHS[entity], params=params, headers=self._headers()))
        # The high-water mark is the server time of the run's first page: anything changed during the run is re-read next time.
        mark = position.get("mark") or body.get("server_time")
        deleted: list[str] = []
        if since and not position and entity == "people":
            feed = self._json(self.client.get("v1/people/deleted", params={"since": since}, headers=self._headers()))
            deleted = [str(row["id"]) for row in feed.get("data", [])]
        next_after = body.get("next_after")
        return Page(
            records=list(body.get("data", [])),
            next_page={"after": next_after, "mark": mark} if next_after else None,
            cursor=None if next_after else {"updated_since": mark},
            is_full_scan=not since,
            deleted_ids=deleted,
        )

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise ApiBadRequest("The directory answered with a body that is not JSON.", status=response.status_code)
        if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
            raise ApiBadRequest("The directory answered with an unexpected shape.", status=response.status_code)
        return body

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        return str(record["id"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        value = record.get("updated_at")
        return str(value) if value else None

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "groups":
            return BastionGroup(external_id=str(record["id"]), name=str(record.get("name", "")), members=[str(m) for m in record.get("members", [])])
        return BastionPerson(
            external_id=str(record["id"]),
            email=str(record.get("email") or ""),
            name=str(record.get("name") or ""),
            given_name=str(record.get("given_name") or ""),
            family_name=str(record.get("family_name") or ""),
            title=str(record.get("title") or ""),
            department=str(record.get("department") or ""),
            phone=str(record.get("phone") or ""),
            manager_external_id=str(record.get("manager_id") or ""),
            groups=[str(g) for g in record.get("groups") or []],
            is_active=bool(record.get("active", True)),
            username=str(record.get("email") or "").split("@")[0],
        )


CONNECTOR = SandboxDirectoryConnector
