"""Outbound deliveries a customer's own script makes on record changes (ServiceNow: a Business Rule calling a REST
Message), for vendors with no built-in webhooks: registered through the stand-in's controls, signed as the description's
`outbound.signature` says (HMAC of `{timestamp}.{body}` or of the body, hex or base64), one POST per change."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox.declared.description import Collection, Description
from sandbox.declared.records import RecordError, Records, iso
from sandbox.declared.webhooks import sign
from sandbox.state import STORE

logger = logging.getLogger(__name__)


class Outbound:
    def __init__(self, description: Description, records: Records):
        self.d = description
        self.records = records
        self.rules = description.outbound

    def register(self, data: dict[str, Any]) -> dict[str, Any]:
        """A rule as the customer's admin would set it up: the collection watched, the target URL and the shared secret."""
        collection, url, secret = str(data.get("collection") or ""), str(data.get("url") or ""), str(data.get("secret") or "")
        if collection not in (self.rules.get("collections") or ()):
            raise RecordError(400, f"collection: outbound deliveries are described for {', '.join(self.rules.get('collections') or ())}")
        if not url.startswith(("http://", "https://")) or not secret:
            raise RecordError(400, "url (http or https) and secret are required")
        rule = {"id": secrets.token_hex(8), "collection": collection, "url": url}
        with STORE.lock:
            STORE.collection(self.d.vendor, "_outbound_rules")[rule["id"]] = {**rule, "secret": secret}
        return rule

    def changed(self, collection: Collection, record: dict[str, Any], operation: str) -> None:
        """A record was inserted or updated: every rule on its collection delivers it (in the background, as the vendor's
        asynchronous Business Rules do)."""
        with STORE.lock:
            rules = [dict(r) for r in STORE.collection(self.d.vendor, "_outbound_rules").values() if r["collection"] == collection.name]
        for rule in rules:
            threading.Thread(target=self.deliver, args=(rule["id"], record[self.records.id_field()], operation), daemon=True).start()

    def payload(self, collection: Collection, record: dict[str, Any], operation: str) -> dict[str, Any]:
        fields = ",".join(self.rules.get("fields") or ())
        shown = self.records.present(collection, record, fields or None, link_base="", bare_refs=True)
        return {"table": collection.resource_type, "operation": operation, "sys_id": record[self.records.id_field()], "record": shown}

    def deliver(self, rule_id: str, record_id: str, operation: str = "update", *, forge: bool = False, age_seconds: int = 0) -> dict[str, Any]:
        """POST one signed delivery; `forge` signs with a wrong secret, `age_seconds` back-dates the timestamp (a replay)."""
        with STORE.lock:
            rule = dict(STORE.collection(self.d.vendor, "_outbound_rules").get(rule_id) or {})
        if not rule:
            raise RecordError(404, f"Unknown outbound rule: {rule_id}")
        collection = self.d.collections[rule["collection"]]
        record = self.records.table(collection.name).get(record_id)
        if record is None:
            raise RecordError(404, f"Unknown record: {record_id}")
        body = json.dumps(self.payload(collection, dict(record), operation)).encode()
        signature = self.rules.get("signature") or {}
        stamp = str(int(time.time()) - age_seconds)
        signed = body
        if signature.get("timestamp_header"):
            signed = stamp.encode() + b"." + body
        headers = {
            "Content-Type": "application/json",
            signature.get("header", "X-Signature"): sign(signature, secrets.token_hex(16) if forge else rule["secret"], signed),
        }
        if signature.get("timestamp_header"):
            headers[signature["timestamp_header"]] = stamp
        outcome: dict[str, Any] = {"rule": rule_id, "record": record_id, "forged": forge, "at": iso(datetime.now(UTC))}
        try:
            outcome["status"] = requests.post(rule["url"], data=body, headers=headers, timeout=5).status_code
        except requests.RequestException as error:
            logger.warning("sandbox.declared.outbound_failed", extra={"vendor": self.d.vendor, "rule": rule_id})
            outcome["status"], outcome["error"] = None, str(error)
        with STORE.lock:
            STORE.collection(self.d.vendor, "_deliveries").setdefault("all", []).append(outcome)
        return outcome

    def controls(self, control: Blueprint, error: Callable[[int, str], Response]) -> None:
        """The stand-in's controls for it: register a rule as the customer's admin would, deliver a record now."""

        @control.post("/_sandbox/outbound")
        def outbound_register():
            try:
                return jsonify(self.register(request.get_json(force=True) or {})), 201
            except RecordError as refused:
                return error(refused.status, refused.message)

        @control.post("/_sandbox/outbound/<rule_id>/deliver")
        def outbound_deliver(rule_id: str):
            """`forge` signs without the secret, `age_seconds` back-dates the signed timestamp."""
            body = request.get_json(force=True) or {}
            try:
                age = int(body.get("age_seconds") or 0)
                return jsonify(self.deliver(rule_id, str(body.get("record") or ""), forge=bool(body.get("forge")), age_seconds=age))
            except (RecordError, ValueError) as refused:
                return error(getattr(refused, "status", 400), getattr(refused, "message", str(refused)))
