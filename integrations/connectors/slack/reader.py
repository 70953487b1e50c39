"""Reading Slack: members and channels page by page (always a full scan), their fields, and Bastion's shapes of them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import FieldInfo, Page
from integrations.connectors.entities import BastionChannel, BastionPerson
from integrations.connectors.slack.client import SlackClient
from integrations.connectors.slack.naming import channel_name


def _epoch_iso(value: Any) -> str | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC).isoformat()
    except (TypeError, ValueError):
        return None


def _kind(name: str, value: Any) -> str:
    if name == "email":
        return "email"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def channel_shape(record: Mapping[str, Any]) -> BastionChannel:
    """A conversations.* channel object as Bastion's channel."""
    return BastionChannel(
        external_id=record["id"],
        name=record.get("name", ""),
        is_private=bool(record.get("is_private")),
        is_archived=bool(record.get("is_archived")),
        member_count=int(record.get("num_members") or 0),
        topic=(record.get("topic") or {}).get("value", ""),
    )


class SlackReader(SlackClient):
    """users.list and conversations.list; Slack has no 'changed since' filter, so every read is a full scan."""

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """One page of members or channels."""
        if entity == "users":
            body = self._get("users.list", limit=self._page_size(), cursor=page or None)
            records = [m for m in body.get("members", []) if not m.get("is_bot") and m.get("id") != "USLACKBOT"]
        elif entity == "channels":
            body = self._get(
                "conversations.list", types="public_channel,private_channel", exclude_archived="false", limit=self._page_size(), cursor=page or None
            )
            records = body.get("channels", [])
        else:
            raise KeyError(f"Slack has no entity '{entity}'")
        next_cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
        return Page(records=records, next_page=next_cursor, is_full_scan=True)

    def iter_records(self, entity: str) -> Iterator[dict[str, Any]]:
        """Every record of an entity, page by page."""
        page: Any = None
        while True:
            result = self.read(entity, page=page)
            yield from result.records
            if not result.next_page:
                return
            page = result.next_page

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return _epoch_iso(record.get("updated")) if entity == "users" else None

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        """Fields seen on live records (one page), profile fields included."""
        sample = self.read(entity).records[:50]
        seen: dict[str, FieldInfo] = {}
        for record in sample:
            for key, value in record.items():
                if key == "profile" and isinstance(value, dict):
                    for pkey, pvalue in value.items():
                        if pkey.startswith("image_") or pkey == "fields":
                            continue
                        seen.setdefault(
                            f"profile.{pkey}", FieldInfo(f"profile.{pkey}", pkey.replace("_", " ").capitalize(), _kind(pkey, pvalue), f"$.profile.{pkey}")
                        )
                    for field_id, field in (value.get("fields") or {}).items():
                        label = (field or {}).get("label") or field_id
                        seen.setdefault(
                            f"profile.fields.{field_id}",
                            FieldInfo(f"profile.fields.{field_id}", label, "string", f"$.profile.fields.{field_id}.value", is_custom=True),
                        )
                elif not key.startswith("_"):
                    seen.setdefault(key, FieldInfo(key, key.replace("_", " ").capitalize(), _kind(key, value), f"$.{key}"))
        return sorted(seen.values(), key=lambda f: f.name)

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "users":
            profile = record.get("profile") or {}
            department_field = self.config.get("department_field_id")
            department = ((profile.get("fields") or {}).get(department_field) or {}).get("value", "") if department_field else ""
            person = BastionPerson(
                external_id=record["id"],
                email=(profile.get("email") or "").lower(),
                name=profile.get("real_name") or record.get("real_name") or record.get("name", ""),
                given_name=profile.get("first_name", ""),
                family_name=profile.get("last_name", ""),
                title=profile.get("title", ""),
                department=department,
                phone=profile.get("phone", ""),
                manager_external_id="",
                groups=[],
                is_active=not record.get("deleted", False),
                username=record.get("name", ""),
            )
            return dict(person)
        if entity == "channels":
            return dict(channel_shape(record))
        raise KeyError(f"Slack has no entity '{entity}'")

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Bastion channel → conversations.create arguments."""
        if entity == "channels":
            return {"name": channel_name(data.get("name", "")), "is_private": bool(data.get("is_private", False))}
        raise KeyError(f"Slack cannot write entity '{entity}'")
