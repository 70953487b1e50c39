"""Topic notifications (Intercom, Productboard): one POST per change to each subscription that wants its topic.

Unlike Asana's handshake-and-events style (webhooks.py), a subscription is made with the vendor's API (`op: webhook_create`
with `subscription` paths) or, where the vendor has no API for it (Intercom's Developer Hub), by the control
`POST /<vendor>/_sandbox/subscriptions {url, topics}`. A delivery is signed with an HMAC of the raw body keyed with the
description's static `secret` (the app's client secret), or carries the static headers the subscriber registered.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

import requests

from sandbox.declared.description import Collection, Description
from sandbox.declared.records import RecordError, Records, iso
from sandbox.declared.shapes import get_path, shape
from sandbox.declared.webhooks import sign
from sandbox.state import STORE

logger = logging.getLogger(__name__)

HOOKS = "_notification_subscriptions"


class Notifications:
    def __init__(self, description: Description, records: Records):
        self.d = description
        self.records = records
        self.rules = description.webhooks

    def subscribe(self, data: dict[str, Any], *, api: bool = True) -> dict[str, Any]:
        """Keep a subscription: target URL, wanted topics (none = all), static headers; answers the stored record."""
        paths = self.rules.get("subscription") or {}
        target = str((get_path(data, paths["url"]) if api and paths.get("url") else data.get("url")) or "")
        if not target.startswith(("http://", "https://")):
            raise RecordError(400, "url: must be an http(s) URL")
        topics = get_path(data, paths["topics"]) if api and paths.get("topics") else data.get("topics")
        topics = [topics] if isinstance(topics, str) else list(topics or [])
        headers = get_path(data, paths["headers"]) if api and paths.get("headers") else data.get("headers")
        hook_id = self.records.new_id()
        stored = {"id": hook_id, "url": target, "topics": topics, "headers": dict(headers or {}), "input": data, "created_at": iso(datetime.now(UTC))}
        with STORE.lock:
            STORE.collection(self.d.vendor, HOOKS)[hook_id] = stored
        return stored

    def subscriptions(self) -> list[dict[str, Any]]:
        with STORE.lock:
            return [dict(h) for h in STORE.collection(self.d.vendor, HOOKS).values()]

    def unsubscribe(self, hook_id: str) -> bool:
        with STORE.lock:
            return STORE.collection(self.d.vendor, HOOKS).pop(hook_id, None) is not None

    def topic(self, collection: Collection, record: dict[str, Any], action: str) -> str | None:
        """The first `topics` rule for this collection and action whose `when` fields all equal the record's."""
        for rule in self.rules.get("topics") or ():
            if rule.get("collection") != collection.name or rule.get("action", action) != action:
                continue
            if all(str(get_path(record, path)) == str(value) for path, value in (rule.get("when") or {}).items()):
                return str(rule["topic"]).format(**{k: v for k, v in record.items() if isinstance(v, str)})
        return None

    def event(self, collection: Collection, record: dict[str, Any], action: str, *, changed: list[str] | None = None) -> None:
        """A record was added, changed or deleted: notify every subscription that wants the topic, in the background."""
        topic = self.topic(collection, record, action)
        if topic is None:
            return
        item = dict(record)
        for hook in self.subscriptions():
            if not hook["topics"] or topic in hook["topics"]:
                threading.Thread(target=self.deliver, args=(hook["id"], [{"topic": topic, "item": item, "changed": changed or []}]), daemon=True).start()

    def payload(self, event: dict[str, Any]) -> dict[str, Any]:
        item = event.get("item") or {}
        now = datetime.now(UTC)
        values = {
            "topic": event.get("topic", ""),
            "item": item,
            "id": item.get(self.records.id_field()) if isinstance(item, dict) else None,
            "type": item.get(self.records.type_field()) if isinstance(item, dict) else None,
            "changed": event.get("changed") or None,
            "delivery_id": "notif_" + secrets.token_hex(12),
            "now_epoch": int(now.timestamp()),
            "now_iso": iso(now),
            "self_url": self.rules.get("self_url", "").format(**{k: v for k, v in item.items() if isinstance(v, str)}) if isinstance(item, dict) else "",
        }
        return shape(self.rules.get("payload") or {"topic": "$topic", "data": "$item"}, values)

    def deliver(self, hook_id: str, events: list[dict[str, Any]], *, forge: bool = False) -> dict[str, Any]:
        """POST each event to the subscription; `forge` signs with a wrong secret or sends a wrong static header."""
        with STORE.lock:
            hook = dict(STORE.collection(self.d.vendor, HOOKS).get(hook_id) or {})
        if not hook:
            raise RecordError(404, f"Unknown object: {hook_id}")
        outcome: dict[str, Any] = {"webhook": hook_id, "events": len(events), "forged": forge, "at": iso(datetime.now(UTC)), "statuses": []}
        for event in events:
            body = json.dumps(event["payload"] if "payload" in event else self.payload(event)).encode()
            headers = {"Content-Type": "application/json", **{k: ("forged-" + secrets.token_hex(8)) if forge else v for k, v in hook["headers"].items()}}
            signature = self.rules.get("signature")
            if signature:
                secret = secrets.token_hex(32) if forge else str(self.rules.get("secret", ""))
                headers[signature["header"]] = signature.get("prefix", "") + sign(signature, secret, body)
            try:
                answer = requests.post(hook["url"], data=body, headers=headers, timeout=5)
                outcome["statuses"].append(answer.status_code)
            except requests.RequestException as error:
                logger.warning("sandbox.declared.notification_failed", extra={"vendor": self.d.vendor, "webhook": hook_id})
                outcome["statuses"].append(None)
                outcome["error"] = str(error)
        with STORE.lock:
            STORE.collection(self.d.vendor, "_deliveries").setdefault("all", []).append(outcome)
        return outcome
