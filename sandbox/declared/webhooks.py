"""A declared vendor's webhooks: the subscription handshake, signed deliveries of change events, and the events feed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

import requests

from sandbox.declared.description import Collection, Description
from sandbox.declared.records import RecordError, Records, iso
from sandbox.state import STORE

logger = logging.getLogger(__name__)


def sign(rule: dict[str, Any], secret: str, body: bytes) -> str:
    """The signature header's value: HMAC of the signed string (the raw body) in the declared algorithm and encoding."""
    digest = hmac.new(secret.encode(), body, getattr(hashlib, rule.get("algorithm", "sha256"))).digest()
    return base64.b64encode(digest).decode() if rule.get("encoding") == "base64" else digest.hex()


class Webhooks:
    def __init__(self, description: Description, records: Records):
        self.d = description
        self.records = records
        self.rules = description.webhooks

    # ---- subscriptions
    def handshake(self, target: str) -> str:
        """POST the secret to the target in the handshake header; the target must echo it back (2xx) or nothing is created."""
        header = self.rules.get("handshake", {}).get("header", "X-Hook-Secret")
        secret = secrets.token_hex(32)
        try:
            answer = requests.post(target, headers={header: secret, "Content-Type": "application/json"}, data=b"", timeout=5)
        except requests.RequestException as error:
            raise RecordError(400, f"The remote server at {target} could not be reached to confirm the webhook: {error}") from None
        if answer.status_code not in (200, 204) or answer.headers.get(header) != secret:
            raise RecordError(400, f"The remote server did not respond to the handshake with the {header} it was sent (HTTP {answer.status_code}).")
        return secret

    def subscribe(self, collection: Collection, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
        resource_gid = str(data.get(self.rules.get("resource_param", "resource")) or "")
        target = str(data.get(self.rules.get("target_param", "target")) or "")
        found = self.records.find_any(resource_gid)
        if found is None:
            raise RecordError(404, f"resource: Unknown object: {resource_gid}")
        if not target.startswith(("http://", "https://")):
            raise RecordError(400, "target: Not a valid URL")
        secret = self.handshake(target)
        resource_collection, resource = found
        hook = self.records.build(collection, {}, me=None)
        hook.update(
            active=True,
            resource={**self.records.compact_ref(resource_collection, resource), "name": resource.get("name", "")},
            target=target,
            filters=list(data.get("filters") or []),
            last_failure_content="",
            delivery_retry_count=0,
        )
        with STORE.lock:
            self.records.table(collection.name)[hook[self.records.id_field()]] = hook
            STORE.collection(self.d.vendor, "_hook_secrets")[hook[self.records.id_field()]] = secret
        return hook, secret

    # ---- events
    def event(self, collection: Collection, record: dict[str, Any], action: str, *, user: str | None, changed: list[str] | None = None) -> None:
        """Record a change (the events feed) and deliver it, signed, to every subscription on the record or a parent."""
        if not self.rules and not self.d.events:
            return  # a vendor without subscriptions or a feed (DocuSign notifies through its behaviour module instead)
        gid_field = self.records.id_field()
        payload: dict[str, Any] = {
            "user": {gid_field: user, "resource_type": "user"} if user else None,
            "created_at": iso(datetime.now(UTC)),
            "action": action,
            "resource": {gid_field: record[gid_field], "resource_type": collection.resource_type},
            "parent": None,
        }
        if record.get("resource_subtype"):
            payload["resource"]["resource_subtype"] = record["resource_subtype"]
        watched = {record[gid_field]}
        for parent_field in self.rules.get("bubble_up") or ():
            value = record.get(parent_field)
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, dict) and ref.get(gid_field):
                    watched.add(str(ref[gid_field]))
                    payload["parent"] = payload["parent"] or {gid_field: ref[gid_field], "resource_type": ref.get("resource_type")}
        events = [payload] if not changed else [{**payload, "change": {"field": name, "action": "changed"}} for name in changed]
        with STORE.lock:
            feed = STORE.collection(self.d.vendor, "_events")
            for resource in watched:
                feed.setdefault(resource, []).extend(events)
            hooks = [dict(h) for h in self.records.table(self._hook_collection()).values() if h.get("active") and h["resource"][gid_field] in watched]
        for hook in hooks:
            chosen = [e for e in events if _passes(hook.get("filters") or [], e)]
            if chosen:
                threading.Thread(target=self.deliver, args=(hook[gid_field], chosen), daemon=True).start()

    def _hook_collection(self) -> str:
        return next((r.collection for r in self.d.routes if r.op == "webhook_create"), "webhooks")

    def deliver(self, hook_gid: str, events: list[dict[str, Any]], *, forge: bool = False) -> dict[str, Any]:
        """POST one signed delivery; `forge` signs with a wrong secret (what an attacker without the secret can do)."""
        with STORE.lock:
            hook = dict(self.records.table(self._hook_collection()).get(hook_gid) or {})
            secret = STORE.collection(self.d.vendor, "_hook_secrets").get(hook_gid, "")
        if not hook:
            raise RecordError(404, f"Unknown object: {hook_gid}")
        body = json.dumps({self.rules.get("payload", "events"): events}).encode()
        signature_rule = self.rules.get("signature") or {}
        signed_with = secrets.token_hex(32) if forge else secret
        headers = {"Content-Type": "application/json", signature_rule.get("header", "X-Hook-Signature"): sign(signature_rule, signed_with, body)}
        outcome: dict[str, Any] = {"webhook": hook_gid, "events": len(events), "forged": forge, "at": iso(datetime.now(UTC))}
        try:
            answer = requests.post(hook["target"], data=body, headers=headers, timeout=5)
            outcome["status"] = answer.status_code
        except requests.RequestException as error:
            logger.warning("sandbox.declared.delivery_failed", extra={"vendor": self.d.vendor, "webhook": hook_gid})
            outcome["status"], outcome["error"] = None, str(error)
        with STORE.lock:
            STORE.collection(self.d.vendor, "_deliveries").setdefault("all", []).append(outcome)
            stored = self.records.table(self._hook_collection()).get(hook_gid)
            if stored is not None:
                stored["last_success_at" if outcome.get("status") and outcome["status"] < 300 else "last_failure_at"] = outcome["at"]
        return outcome

    def feed(self, resource: str, sync: str | None) -> tuple[int, dict[str, Any]]:
        """The events feed: no or an unknown sync token → the expired status with a fresh token; else events since it."""
        rules = self.d.events
        if self.records.find_any(resource) is None:
            raise RecordError(404, f"Unknown object: {resource}")
        with STORE.lock:
            events = list(STORE.collection(self.d.vendor, "_events").get(resource, []))
            tokens = STORE.collection(self.d.vendor, "_sync_tokens")
            fresh = secrets.token_hex(16)
            tokens[fresh] = (resource, len(events))
            known = tokens.get(sync or "")
        if known is None or known[0] != resource:
            message = rules.get("expired_message", "Sync token invalid or too old.")
            return int(rules.get("expired_status", 412)), {"errors": [{"message": message}], "sync": fresh}
        return 200, {"data": events[known[1] :], "sync": fresh, "has_more": False}


def _passes(filters: list[dict[str, Any]], event: dict[str, Any]) -> bool:
    if not filters:
        return True
    for rule in filters:
        if rule.get("resource_type") and rule["resource_type"] != event["resource"].get("resource_type"):
            continue
        if rule.get("action") and rule["action"] != event["action"]:
            continue
        if rule.get("fields") and (event.get("change") or {}).get("field") not in rule["fields"]:
            continue
        return True
    return False
