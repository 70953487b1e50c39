"""A generic, stateful action target ("sandbox_actions") for exercising the playbook engine.

Objects of any kind (channel, issue, event, email…) can be created one by one or in bulk (≤50 per call),
found by the deterministic marker a client puts on them, read, and changed. Changing an object's status
sends a signed status webhook to every subscription. It honours the shared fault knobs (latency_ms,
rate_limit_next, error_next, down, revoked) and has per-kind rejection rules for partial-failure tests:
`PUT /sandbox_actions/_control/rules` with [{"kind": "issue", "status": 400, "message": "...", "times": null}].
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from typing import Any

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox.oauth import bearer_token, issue_static_token, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "sandbox_actions"
DEMO_TOKEN = "sbx-sandbox-actions-demo-token"
MAX_BULK = 50
KEY_PREFIX = {"issue": "OPS"}
RULES: list[dict[str, Any]] = []


def _error(status: int, message: str, code: str = "error") -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _error(429, "Too many requests, slow down.", "rate_limited")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _objects() -> Any:
    return STORE.collection(VENDOR, "objects")


def _known_emails() -> set[str]:
    return {person["email"] for person in people()}


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "url": f"{request.host_url.rstrip('/')}/{VENDOR}/objects/{obj['id']}"}


def _rule_rejection(kind: str) -> Response | None:
    with STORE.lock:
        for rule in RULES:
            if rule.get("kind") in (kind, "*"):
                if rule.get("times") is not None:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                return _error(int(rule.get("status", 400)), str(rule.get("message", "rejected by rule")), str(rule.get("code", "rejected")))
    return None


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Body must be a JSON object."
    if not isinstance(body.get("kind"), str) or not body["kind"]:
        return "kind is required."
    if not isinstance(body.get("title"), str) or not body["title"].strip():
        return "title is required."
    if len(body["title"]) > 255:
        return "title is longer than 255 characters."
    if body["kind"] == "channel" and not all(c.isalnum() and c.islower() or c.isdigit() or c in "-_" for c in body["title"]):
        return "invalid_name: channel names may only contain lowercase letters, numbers, hyphens, and underscores."
    return None


def _create(body: dict[str, Any]) -> dict[str, Any]:
    object_id = str(STORE.next_id())
    kind = body["kind"]
    obj = {
        "id": object_id,
        "kind": kind,
        "key": f"{KEY_PREFIX[kind]}-{object_id}" if kind in KEY_PREFIX else "",
        "title": body["title"],
        "status": body.get("status") or "open",
        "owner": body.get("owner") or "",
        "marker": body.get("marker") or "",
        "attrs": body.get("attrs") or {},
        "created_at": time.time(),
        "updated_at": time.time(),
    }
    with STORE.lock:
        _objects()[object_id] = obj
    STORE.record_created(VENDOR, kind, object_id, obj["title"], f"/{VENDOR}/objects/{object_id}")
    return obj


def _send_status_webhooks(obj: dict[str, Any]) -> None:
    subscriptions = list(STORE.webhook_subscriptions.get(VENDOR, []))
    if not subscriptions:
        return
    body = json.dumps(
        {"event_id": f"evt-{obj['id']}-{int(time.time() * 1000)}", "type": "object.status_changed", "object": dict(obj), "occurred_at": time.time()}
    ).encode()

    def deliver() -> None:
        for subscription in subscriptions:
            timestamp = str(int(time.time()))
            signature = hmac.new(subscription["secret"].encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
            try:
                requests.post(
                    subscription["url"],
                    data=body,
                    headers={"Content-Type": "application/json", "X-Sandbox-Timestamp": timestamp, "X-Sandbox-Signature": f"v1={signature}"},
                    timeout=(2, 5),
                )
            except requests.RequestException:
                STORE.log_request(VENDOR, "WEBHOOK", subscription["url"], 0)

    threading.Thread(target=deliver, daemon=True, name="sandbox-actions-webhook").start()


def blueprints() -> list[Blueprint]:
    api = Blueprint("sandbox_actions_api", __name__)
    install_faults(api, VENDOR, rate_limited=_rate_limited, error=lambda status, message: _error(status, message, "injected"))

    @api.before_request
    def _auth():
        if request.path.startswith(f"/{VENDOR}/api/") and token_info(VENDOR, bearer_token()) is None:
            return _error(401, "The token is missing, expired or revoked.", "unauthorized")
        return None

    @api.get("/api/me")
    def me():
        info = token_info(VENDOR, bearer_token()) or {}
        return jsonify({"account_id": "sbx-account-1", "identity": info.get("subject", "")})

    @api.get("/api/objects")
    def search():
        markers = {m for m in request.args.get("markers", "").split(",") if m}
        if request.args.get("marker"):
            markers.add(request.args["marker"])
        kind = request.args.get("kind")
        with STORE.lock:
            found = [
                _public(o)
                for o in _objects().values()
                if (not markers or o["marker"] in markers) and (kind is None or o["kind"] == kind) and not o.get("deleted")
            ]
        return jsonify({"objects": found})

    @api.post("/api/objects")
    def create():
        body = request.get_json(silent=True)
        problem = _validate(body)
        if problem:
            return _error(400, problem, "invalid")
        rejected = _rule_rejection(body["kind"])
        if rejected is not None:
            return rejected
        response = jsonify(_public(_create(body)))
        response.status_code = 201
        return response

    @api.post("/api/objects/bulk")
    def create_bulk():
        body = request.get_json(silent=True) or {}
        items = body.get("objects")
        if not isinstance(items, list) or not items:
            return _error(400, "objects must be a non-empty list.", "invalid")
        if len(items) > MAX_BULK:
            return _error(400, f"At most {MAX_BULK} objects per bulk call.", "too_many")
        created, errors = [], []
        for index, item in enumerate(items):
            problem = _validate(item)
            rejected = None if problem else _rule_rejection(item["kind"])
            if problem or rejected is not None:
                message = problem or rejected.get_json()["error"]["message"]
                errors.append({"index": index, "status": 400 if problem else rejected.status_code, "message": message})
                continue
            created.append({"index": index, "object": _public(_create(item))})
        response = jsonify({"objects": created, "errors": errors})
        response.status_code = 201 if created else 400
        return response

    @api.get("/api/objects/<object_id>")
    def read(object_id: str):
        obj = _objects().get(object_id)
        if obj is None:
            return _error(404, f"No object {object_id}.", "not_found")
        return jsonify(_public(obj))

    @api.patch("/api/objects/<object_id>")
    def update(object_id: str):
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            obj = _objects().get(object_id)
            if obj is None:
                return _error(404, f"No object {object_id}.", "not_found")
            changed_status = "status" in body and body["status"] != obj["status"]
            for field in ("status", "title", "owner"):
                if field in body:
                    obj[field] = body[field]
            if isinstance(body.get("attrs"), dict):
                obj["attrs"] = {**obj["attrs"], **body["attrs"]}
            add = body.get("add_members")
            not_found: list[str] = []
            if isinstance(add, list):
                known = _known_emails()
                members = list(obj["attrs"].get("members", []))
                for email in add:
                    if email not in known:
                        not_found.append(email)
                    elif email not in members:
                        members.append(email)
                obj["attrs"]["members"] = members
            obj["updated_at"] = time.time()
            snapshot = dict(obj)
        if changed_status:
            _send_status_webhooks(snapshot)
        return jsonify({**_public(snapshot), "not_found": not_found})

    @api.post("/api/webhooks")
    def subscribe():
        body = request.get_json(silent=True) or {}
        if not body.get("url") or not body.get("secret"):
            return _error(400, "url and secret are required.", "invalid")
        with STORE.lock:
            STORE.webhook_subscriptions.setdefault(VENDOR, []).append({"url": body["url"], "secret": body["secret"]})
        return jsonify({"ok": True}), 201

    @api.get("/objects/<object_id>")
    def page(object_id: str):
        obj = _objects().get(object_id)
        if obj is None:
            return _error(404, f"No object {object_id}.", "not_found")
        return jsonify(_public(obj))

    control = Blueprint("sandbox_actions_control", __name__)

    @control.route("/_control/rules", methods=["GET", "PUT"])
    def rules():
        if request.method == "PUT":
            body = request.get_json(silent=True)
            if not isinstance(body, list):
                return _error(400, "rules must be a list", "invalid")
            with STORE.lock:
                RULES[:] = body
        return jsonify(RULES)

    return [api, control]


def seed() -> None:
    """A well-known API token for the demo and tests; no rejection rules."""
    RULES.clear()
    issue_static_token(VENDOR, DEMO_TOKEN, scopes=["objects:write"])
