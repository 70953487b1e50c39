"""Sandbox Directory: a people + groups directory used to exercise the sync engine end to end (demo and tests).

It speaks the wire format of `sandbox/vendors/sandbox_directory.py`: bearer token, keyset paging (`after`), incremental
reads (`updated_since`), an explicit deletions feed, and HMAC-SHA256 signed webhooks with a timestamp and a delivery id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import (
    BaseConnector,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldInfo,
    Page,
    WebhookEvent,
    WebhookRequest,
    WebhookSpec,
)
from integrations.errors import ApiBadRequest, WebhookRejected

PAGE_SIZE = 500
WEBHOOK_TOLERANCE_SECONDS = 300

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


class SandboxDirectoryConnector(BaseConnector):
    manifest = ConnectorManifest(
        key="sandbox_directory",
        name="Sandbox Directory",
        category="directory",
        description="A people and groups directory served by Bastion's vendor sandbox, for the demo and the sync engine's tests.",
        auth_methods=("api_key",),
        credential_fields=(CredentialField("token", "API token"),),
        entities=(
            EntitySpec("people", "People", "Everyone in the directory.", supports_incremental=True, bastion_type="person"),
            EntitySpec("groups", "Groups", "Directory groups and their members.", supports_incremental=True, bastion_type="group"),
        ),
        webhook=WebhookSpec(signature="HMAC-SHA256 of '<X-Directory-Timestamp>.<body>' in X-Directory-Signature (v1=<hex>), 5-minute window."),
        capabilities=("read", "incremental", "deletions", "webhooks"),
    )

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
            return {"external_id": str(record["id"]), "name": str(record.get("name", "")), "members": [str(m) for m in record.get("members", [])]}
        return {
            "external_id": str(record["id"]),
            "email": str(record.get("email") or ""),
            "name": str(record.get("name") or ""),
            "given_name": str(record.get("given_name") or ""),
            "family_name": str(record.get("family_name") or ""),
            "title": str(record.get("title") or ""),
            "department": str(record.get("department") or ""),
            "phone": str(record.get("phone") or ""),
            "manager_external_id": str(record.get("manager_id") or ""),
            "groups": [str(g) for g in record.get("groups") or []],
            "is_active": bool(record.get("active", True)),
            "username": str(record.get("email") or "").split("@")[0],
        }

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        signature = request.header("X-Directory-Signature")
        stamp = request.header("X-Directory-Timestamp")
        if not signature or not stamp:
            raise WebhookRejected(400, "signature_missing", "X-Directory-Signature and X-Directory-Timestamp are required.")
        try:
            sent_at = int(stamp)
        except ValueError:
            raise WebhookRejected(400, "timestamp_invalid", "X-Directory-Timestamp must be unix seconds.")
        expected = "v1=" + hmac.new(secret.encode(), stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise WebhookRejected(401, "signature_invalid", "The webhook signature does not match.")
        if abs(request.received_at.timestamp() - sent_at) > WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookRejected(409, "timestamp_stale", "The webhook timestamp is outside the 5-minute window (a replay?).")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRejected(400, "malformed", "The webhook body is not JSON.")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not isinstance(body.get("data", {}), dict):
            raise WebhookRejected(400, "malformed", "The webhook body lacks a type or data object.")
        delivery_id = str(body.get("delivery_id") or request.header("X-Directory-Delivery") or hashlib.sha256(request.body).hexdigest())
        data = body.get("data") or {}
        kind = body["type"]
        occurred = _parse_time(body.get("occurred_at"))
        if kind in ("person.created", "person.updated"):
            if not data.get("id"):
                raise WebhookRejected(400, "malformed", "A person event needs data.id.")
            return [WebhookEvent(delivery_id, kind, "people", str(data["id"]), "upsert", dict(data), occurred)]
        if kind == "person.deleted":
            if not data.get("id"):
                raise WebhookRejected(400, "malformed", "A person event needs data.id.")
            return [WebhookEvent(delivery_id, kind, "people", str(data["id"]), "delete", None, occurred)]
        if kind == "directory.changed":
            return [WebhookEvent(delivery_id, kind, str(data.get("entity") or "people"), "", "sync", None, occurred)]
        return [WebhookEvent(delivery_id, kind, "", str(data.get("id") or ""), "status", {"status": str(data.get("status", kind))}, occurred)]


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def webhook_signature(secret: str, body: bytes, timestamp: int | None = None) -> tuple[str, str]:
    """(timestamp, signature header) as the vendor computes them; used by tests and benchmarks to send deliveries."""
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    return stamp, "v1=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


CONNECTOR = SandboxDirectoryConnector
