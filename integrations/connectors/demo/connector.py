"""Demo Workspace: a small connector for the sandbox's generic "demo" vendor (the wizard's walk-through and the framework tests)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from integrations.connectors.base import ActionResult, BaseConnector, ConnectionTest, FieldInfo, Page, WebhookEvent, WebhookRequest
from integrations.connectors.demo.manifest import MANIFEST
from integrations.connectors.entities import BastionPerson
from integrations.connectors.kit.fields import value_type
from integrations.connectors.kit.signatures import check_window, epoch_seconds, verify_hmac
from integrations.errors import ApiError, WebhookRejected
from integrations.http import BearerAuth, classify_generic

PAGE_SIZE = 10
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _field_type(name: str, value: Any) -> str:
    """Infer a field's type from a live sample value (how discovery works for schemaless vendors)."""
    kind = value_type(value)
    if kind != "string":
        return kind
    text = str(value or "")
    if "@" in text and "." in text.split("@")[-1]:
        return "email"
    if ISO_DATETIME.match(text):
        return "datetime"
    if ISO_DATE.match(text):
        return "date"
    if name.endswith("_id") and name != "id":
        return "user" if "manager" in name or "owner" in name else "string"
    return "string"


class DemoConnector(BaseConnector):
    """The sandbox's demo vendor: bearer token, cursor paging, a vendor idempotency key, signed webhooks."""

    manifest = MANIFEST

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None and self.client.auth is None and self.credentials.get("api_key"):
            self.client.auth = BearerAuth(self.credentials["api_key"])

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        """The sandbox answers errors as {"error": {"code", "message"}}: the generic envelope."""
        return classify_generic(response, path)

    def test_connection(self) -> ConnectionTest:
        body = self.client.get("api/me").json()
        return ConnectionTest(
            ok=True, identity=f"{body.get('user')} @ {body.get('name')}", scopes=list(body.get("scopes") or []), account_id=body.get("account_id", "")
        )

    def config_choices(self, name: str) -> list[tuple[str, str]]:
        """Live choices for a config field (the wizard's "choose workspace/project" step)."""
        if name == "project":
            return [(p["key"], f"{p['name']} ({p['key']})") for p in self.client.get("api/projects").json().get("projects", [])]
        return []

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        self.manifest.entity(entity)
        sample = self.client.get("api/people", params={"limit": 5}).json().get("people", [])
        fields: dict[str, FieldInfo] = {}
        for record in sample:
            for name, value in record.items():
                if name not in fields or (fields[name].type == "string" and value):
                    label = name.replace("_", " ").capitalize()
                    fields[name] = FieldInfo(name, label, _field_type(name, value), f"$.{name}", is_required=name in ("id", "email"))
        return list(fields.values())

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        self.manifest.entity(entity)
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if page:
            params["cursor"] = page
        body = self.client.get("api/people", params=params).json()
        return Page(records=list(body.get("people") or []), next_page=body.get("next_cursor") or None)

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return record.get("updated_at")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        given, family = record.get("first_name", ""), record.get("last_name", "")
        return BastionPerson(
            external_id=str(record["id"]),
            email=(record.get("email") or "").lower(),
            name=f"{given} {family}".strip(),
            given_name=given,
            family_name=family,
            title=record.get("job_title", ""),
            department=record.get("department", ""),
            phone=record.get("phone", ""),
            manager_external_id=record.get("manager_id") or "",
            groups=[],
            is_active=bool(record.get("active", True)),
            username=(record.get("email") or "").split("@")[0],
        )

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        given, family = data.get("given_name", ""), data.get("family_name", "")
        if not (given or family) and data.get("name"):
            given, _, family = str(data["name"]).partition(" ")
        return {
            "email": data.get("email", ""),
            "first_name": given,
            "last_name": family,
            "job_title": data.get("title", ""),
            "department": data.get("department", ""),
            "phone": data.get("phone", ""),
        }

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """The vendor deduplicates on the Idempotency-Key header, so known_new changes nothing."""
        self.manifest.action(action)
        response = self.client.post("api/people", json=dict(payload), headers={"Idempotency-Key": idempotency_key})
        body = response.json()
        return ActionResult(external_id=body["id"], data=body, created=response.status_code == 201)

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        signature, timestamp = request.header("X-Demo-Signature"), request.header("X-Demo-Timestamp")
        if not signature or not timestamp:
            raise WebhookRejected(400, "missing_signature", "X-Demo-Signature and X-Demo-Timestamp are required.")
        verify_hmac(signature, secret=secret, message=timestamp.encode() + b"." + request.body, prefix="sha256=", vendor=cls.manifest.name)
        check_window(epoch_seconds(timestamp), now=request.received_at.timestamp(), vendor=cls.manifest.name)

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
            event_type, data = body["type"], body["data"]
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected(400, "invalid_payload", "Expected {id, type, data}.")
        deleted = event_type.endswith(".deleted")
        return [
            WebhookEvent(
                delivery_id=str(body.get("id") or hashlib.sha256(request.body).hexdigest()),
                event_type=event_type,
                entity="people",
                external_id=str(data.get("id", "")),
                action="delete" if deleted else "upsert",
                record=None if deleted else data,
                occurred_at=datetime.fromtimestamp(int(body.get("created", time.time())), tz=UTC),
            )
        ]


CONNECTOR = DemoConnector
