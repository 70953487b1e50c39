"""Jira Cloud dynamic webhooks (/rest/api/3/webhook) for OAuth 2.0 apps, per the published v3 spec: 30-day life, refresh, JWT-signed deliveries."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from joserfc import jwt
from joserfc.jwk import OctKey

from sandbox.oauth import bearer_token, token_info
from sandbox.state import STORE

LIFETIME_MS = 30 * 24 * 3600 * 1000
EVENTS = (
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "issue_property_set",
    "issue_property_deleted",
)
# The OAuth app's client secret the deliveries are signed with: Bastion's development client unless a test sets another.
DEFAULT_APP_SECRET = "bastion-demo-secret"


def app_secret(vendor: str) -> str:
    return str(STORE.collection(vendor, "_knobs").get("app_secret") or DEFAULT_APP_SECRET)


def delivery_headers(vendor: str, hook: dict[str, Any]) -> dict[str, str]:
    """Authorization for a dynamic webhook delivery: a short-lived HS256 JWT under the app's client secret."""
    now = int(time.time())
    claims = {"iss": hook["app"], "iat": now, "exp": now + 180, "sub": hook.get("registered_by", "")}
    token = jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, OctKey.import_key(app_secret(vendor).encode()))
    return {"Authorization": f"Bearer {token}"}


def is_live(hook: dict[str, Any]) -> bool:
    """Admin webhooks never expire; a dynamic one stops being sent after its expirationDate."""
    return hook.get("kind") != "dynamic" or hook["expirationDate"] > time.time() * 1000


def install(
    bp: Blueprint,
    *,
    vendor: str,
    api: str,
    is_gateway: Callable[[], bool],
    errors: Callable[..., Response],
    jql_ok: Callable[[str], str | None],
    caller: Callable[[], str],
) -> None:
    """Add the dynamic-webhook operations to a Jira Cloud API blueprint (reachable only through the OAuth gateway, as at Atlassian)."""

    def app() -> str | None:
        if not is_gateway():
            return None
        grant = token_info(vendor, bearer_token()) or {}
        return str(grant.get("client_id") or "sandbox-app")

    def app_hooks(client: str) -> list[dict[str, Any]]:
        return [h for h in STORE.webhook_subscriptions.get(vendor, []) if h.get("kind") == "dynamic" and h["app"] == client]

    def refused() -> Response:
        return errors(403, ["Only Connect and OAuth 2.0 apps can use this operation."])

    def public(hook: dict[str, Any]) -> dict[str, Any]:
        return {"id": hook["id"], "url": hook["url"], "jqlFilter": hook["jqlFilter"], "events": hook["events"], "expirationDate": hook["expirationDate"]}

    @bp.route(f"{api}/webhook", methods=["GET", "POST", "DELETE"])
    def dynamic_webhooks():
        client = app()
        if client is None:
            return refused()
        if request.method == "GET":
            try:
                start, size = int(request.args.get("startAt", 0)), max(1, min(int(request.args.get("maxResults", 100)), 100))
            except ValueError:
                return errors(400, ["startAt and maxResults must be integers."])
            with STORE.lock:
                hooks = [public(h) for h in app_hooks(client)]
            page = hooks[start : start + size]
            return jsonify({"startAt": start, "maxResults": size, "total": len(hooks), "isLast": start + size >= len(hooks), "values": page})
        body = request.get_json(silent=True)
        if request.method == "DELETE":
            ids = body.get("webhookIds") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                return errors(400, ["webhookIds must be a list of integers."])
            with STORE.lock:
                # Only the calling app's webhooks go; other ids are ignored, as the spec says.
                STORE.webhook_subscriptions[vendor] = [
                    h for h in STORE.webhook_subscriptions.get(vendor, []) if not (h.get("kind") == "dynamic" and h["app"] == client and h["id"] in ids)
                ]
            return Response(status=202)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not isinstance(body.get("webhooks"), list):
            return errors(400, ["url and webhooks are required."])
        if set(body) - {"url", "webhooks"}:
            return errors(400, [f"Unrecognized field {sorted(set(body) - {'url', 'webhooks'})[0]!r}."])
        results: list[dict[str, Any]] = []
        with STORE.lock:
            if any(h["url"] != body["url"] for h in app_hooks(client)):
                return errors(400, ["Only a single URL per app is allowed to be registered."])
            for details in body["webhooks"]:
                problem = _details_problem(details, jql_ok)
                if problem:
                    results.append({"errors": [problem]})
                    continue
                hook_id = STORE.next_id()
                STORE.webhook_subscriptions.setdefault(vendor, []).append(
                    {
                        "id": hook_id,
                        "kind": "dynamic",
                        "app": client,
                        "registered_by": caller(),
                        "url": body["url"],
                        "events": list(details["events"]),
                        "jqlFilter": details["jqlFilter"],
                        "expirationDate": int(time.time() * 1000) + LIFETIME_MS,
                        "enabled": True,
                        "secret": "",
                    }
                )
                results.append({"createdWebhookId": hook_id})
        return jsonify({"webhookRegistrationResult": results})

    @bp.put(f"{api}/webhook/refresh")
    def dynamic_webhooks_refresh():
        client = app()
        if client is None:
            return refused()
        body = request.get_json(silent=True)
        ids = body.get("webhookIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            return errors(400, ["webhookIds must be a list of integers."])
        expiry = int(time.time() * 1000) + LIFETIME_MS
        with STORE.lock:
            for hook in app_hooks(client):
                if hook["id"] in ids:  # unknown ids and other apps' are ignored
                    hook["expirationDate"] = expiry
        return jsonify({"expirationDate": expiry})


def _details_problem(details: Any, jql_ok: Callable[[str], str | None]) -> str:
    if not isinstance(details, dict):
        return "Each webhook is an object with events and jqlFilter."
    events, jql = details.get("events"), details.get("jqlFilter")
    if not isinstance(events, list) or not events:
        return "events is required."
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        return f"The event {unknown[0]} is not supported by dynamic webhooks."
    if not isinstance(jql, str) or not jql.strip():
        return "jqlFilter is required."
    return jql_ok(jql) or ""
