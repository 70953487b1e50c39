"""Graph change notifications: /subscriptions with the validation handshake, per-resource lifetimes, change and lifecycle delivery."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from flask import Blueprint, Response, jsonify

from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import (
    GRAPH,
    TENANT_ID,
    VENDOR,
    bad_request,
    caller_user,
    col,
    find_user,
    graph_error,
    iso,
    json_body,
    new_id,
    now,
    paged,
    parse_moment,
)

HANDSHAKE_TIMEOUT = 10  # seconds Graph waits for the validationToken echo
CLIENT_STATE_MAX = 128
CHANGE_TYPES = {"created", "updated", "deleted"}
# (resource pattern, max lifetime in minutes, label) — FACTS §15 (Teams chatMessage: > 60 min needs lifecycleNotificationUrl).
LIFETIMES = (
    (re.compile(r"^(teams/[^/]+/channels/[^/]+/messages|teams/getallmessages|chats/[^/]+/messages)$"), 4320, "chatMessage"),
    (re.compile(r"^(me|users/[^/]+)(/calendar)?/events$"), 4230, "event"),
    (re.compile(r"^drives/[^/]+/root$"), 42300, "driveItem"),
    (re.compile(r"^(users|groups)$"), 41760, "directory"),
)
MIN_LIFETIME = 45


def _normalize(resource: str, owner: dict[str, Any] | None) -> str:
    """A subscription resource in the matching form: no leading slash, lower-case, /me and UPNs as the user's id."""
    text = resource.strip().lstrip("/").lower()
    if text.startswith("me/") and owner is not None:
        text = f"users/{owner['id']}/" + text[3:]
    if match := re.match(r"users/([^/]+)/", text):
        user = find_user(match[1])
        if user is not None:
            text = text.replace(match[1], user["id"].lower(), 1)
    return text.replace("/calendar/events", "/events")


def _live() -> dict[str, dict[str, Any]]:
    """Subscriptions not yet expired: Graph drops an expired one, so it can no longer be read or renewed (only recreated)."""
    with STORE.lock:
        for key, subscription in list(col("subscriptions").items()):
            if parse_moment(subscription["expirationDateTime"]) < now():
                del col("subscriptions")[key]
        return col("subscriptions")


def _public(subscription: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in subscription.items() if not k.startswith("_")}


def _url_ok(url: str) -> bool:
    """Graph requires https; a loopback http URL is let through so the sandbox can call Bastion's test server."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"))


def handshake(url: str) -> str:
    """POST url?validationToken=…; '' when the endpoint echoed the token as text/plain with 200 within 10 s, else why not."""
    token = f"Validation: Testing client application reachability for subscription Request-Id: {new_id()}"
    target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token)}"
    try:
        answer = requests.post(target, timeout=HANDSHAKE_TIMEOUT, headers={"Content-Type": "text/plain; charset=utf-8"})
    except requests.RequestException as exc:
        return f"the endpoint did not answer within {HANDSHAKE_TIMEOUT} s ({type(exc).__name__})"
    if answer.status_code != 200:
        return f"the endpoint answered HTTP {answer.status_code}, expected 200"
    if not answer.headers.get("Content-Type", "").startswith("text/plain"):
        return f"the endpoint answered Content-Type {answer.headers.get('Content-Type')!r}, expected text/plain"
    if answer.text != token:
        return "the response body did not exactly match the validationToken"
    return ""


def _deliver(url: str, payload: dict[str, Any], subscription_id: str, kind: str) -> None:
    record: dict[str, Any] = {"subscriptionId": subscription_id, "kind": kind, "url": url, "payload": payload, "at": time.time()}
    try:
        answer = requests.post(url, json=payload, timeout=10)
        record["status"] = answer.status_code
    except requests.RequestException as exc:
        record["status"] = None
        record["error"] = type(exc).__name__
    with STORE.lock:
        col("deliveries")[new_id()] = record


def _send(url: str, payload: dict[str, Any], subscription_id: str, kind: str) -> None:
    threading.Thread(target=_deliver, args=(url, payload, subscription_id, kind), daemon=True).start()


def notify(targets: set[str], change_type: str, resource: str, resource_data: dict[str, Any] | None) -> int:
    """Deliver a change notification to every live subscription on one of `targets` (normalized resources) taking `change_type`."""
    wanted = {t.lower() for t in targets}
    sent = 0
    with STORE.lock:
        subscriptions = [s for s in col("subscriptions").values() if s["_match"] in wanted and change_type in s["changeType"].split(",")]
    for subscription in subscriptions:
        if parse_moment(subscription["expirationDateTime"]) < now():
            continue
        item = {
            "subscriptionId": subscription["id"],
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "changeType": change_type,
            "resource": resource,
            "clientState": subscription.get("clientState"),
            "tenantId": TENANT_ID,
        }
        if resource_data is not None:
            item["resourceData"] = {"@odata.type": f"#Microsoft.Graph.{subscription['_kind']}", **resource_data}
        _send(subscription["notificationUrl"], {"value": [item]}, subscription["id"], "change")
        sent += 1
    return sent


def lifecycle(subscription_id: str, event: str) -> tuple[dict[str, Any] | None, str]:
    """Send a lifecycle notification (reauthorizationRequired | subscriptionRemoved | missed); subscriptionRemoved also drops it."""
    with STORE.lock:
        subscription = _live().get(subscription_id)
    if subscription is None:
        return None, "no such subscription"
    if event not in ("reauthorizationRequired", "subscriptionRemoved", "missed"):
        return None, "event must be reauthorizationRequired, subscriptionRemoved or missed"
    url = subscription.get("lifecycleNotificationUrl")
    if not url:
        return None, "the subscription has no lifecycleNotificationUrl"
    item = {
        "subscriptionId": subscription_id,
        "subscriptionExpirationDateTime": subscription["expirationDateTime"],
        "tenantId": TENANT_ID,
        "clientState": subscription.get("clientState"),
        "lifecycleEvent": event,
    }
    if event == "subscriptionRemoved":
        with STORE.lock:
            col("subscriptions").pop(subscription_id, None)
    _send(url, {"value": [item]}, subscription_id, "lifecycle")
    return item, ""


def _expiration(body: dict[str, Any], kind: str, maximum: int, has_lifecycle: bool) -> tuple[str | None, str]:
    moment = parse_moment(body.get("expirationDateTime"))
    if moment is None:
        return None, "expirationDateTime is required and must be an ISO 8601 date and time."
    minutes = (moment - now()).total_seconds() / 60
    if minutes <= 0:
        return None, "Subscription expiration can only be a time in the future."
    if minutes > maximum + 1:
        return None, f"Subscription expiration can only be {maximum} minutes in the future."
    if kind == "chatMessage" and minutes > 60 and not has_lifecycle:
        return (
            None,
            "lifecycleNotificationUrl is a required property for subscription creation on this resource when the expirationDateTime value is set to greater than 1 hour.",
        )
    if minutes < MIN_LIFETIME:
        moment = now() + timedelta(minutes=MIN_LIFETIME)
    return iso(moment), ""


def register(bp: Blueprint) -> None:
    @bp.post("/v1.0/subscriptions")
    def subscription_create():
        body, error = json_body()
        if error:
            return error
        owner = caller_user()
        for field in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if not body.get(field):
                return bad_request(f"{field} is a required property for subscription creation.", "InvalidRequest")
        change_types = [c.strip() for c in str(body["changeType"]).split(",")]
        if not set(change_types) <= CHANGE_TYPES:
            return bad_request(f"Invalid changeType: {body['changeType']}.", "InvalidRequest")
        match = _normalize(str(body["resource"]), owner)
        if match.startswith("me/") or match == "me":
            return bad_request("/me is only valid with delegated authentication.", "InvalidRequest")
        rule = next(((maximum, kind) for pattern, maximum, kind in LIFETIMES if pattern.match(match)), None)
        if rule is None:
            return bad_request(f"Resource '{body['resource']}' is not supported for change notifications.", "InvalidRequest")
        maximum, kind = rule
        if kind == "driveItem" and change_types != ["updated"]:
            return bad_request("A driveItem subscription supports changeType 'updated' only.", "InvalidRequest")
        client_state = body.get("clientState")
        if client_state is not None and (not isinstance(client_state, str) or len(client_state) > CLIENT_STATE_MAX):
            return bad_request(f"clientState must be a string of at most {CLIENT_STATE_MAX} characters.", "InvalidRequest")
        if body.get("includeResourceData") and not body.get("encryptionCertificate"):
            return bad_request("encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.", "InvalidRequest")
        expiration, problem = _expiration(body, kind, maximum, bool(body.get("lifecycleNotificationUrl")))
        if expiration is None:
            return bad_request(problem, "InvalidRequest")
        for field in ("notificationUrl", "lifecycleNotificationUrl"):
            url = body.get(field)
            if url is None:
                continue
            if not _url_ok(str(url)):
                return bad_request(f"Subscription {field} must be an https URL.", "InvalidRequest")
            if problem := handshake(str(url)):
                return bad_request(f"Subscription validation request failed for {field}: {problem}.", "ValidationError")
        subscription_id = new_id()
        subscription = {
            "id": subscription_id,
            "resource": body["resource"],
            "applicationId": "b0a5ea57-0000-4000-8000-0000000b0a57",
            "changeType": ",".join(change_types),
            "clientState": client_state,
            "notificationUrl": body["notificationUrl"],
            "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
            "expirationDateTime": expiration,
            "creatorId": owner["id"] if owner else "b0a5ea57-0000-4000-8000-0000000b0a57",
            "includeResourceData": bool(body.get("includeResourceData")),
            "latestSupportedTlsVersion": body.get("latestSupportedTlsVersion", "v1_2"),
            "encryptionCertificate": body.get("encryptionCertificate"),
            "encryptionCertificateId": body.get("encryptionCertificateId"),
            "notificationUrlAppId": body.get("notificationUrlAppId"),
            "_match": match,
            "_kind": kind,
            "_owner": owner["id"] if owner else None,
        }
        with STORE.lock:
            col("subscriptions")[subscription_id] = subscription
        STORE.record_created(VENDOR, "subscription", subscription_id, f"{subscription['changeType']} on {body['resource']} → {body['notificationUrl']}")
        return jsonify({"@odata.context": f"{GRAPH}/$metadata#subscriptions/$entity", **_public(subscription)}), 201

    @bp.get("/v1.0/subscriptions")
    def subscription_list_all():
        return paged([_public(s) for s in _live().values()], "subscriptions")

    @bp.get("/v1.0/subscriptions/<subscription_id>")
    def subscription_get(subscription_id: str):
        subscription = _live().get(subscription_id)
        if subscription is None:
            return graph_error(404, "ResourceNotFound", f"The object was not found: subscription {subscription_id}.")
        return jsonify(_public(subscription))

    @bp.patch("/v1.0/subscriptions/<subscription_id>")
    def subscription_renew(subscription_id: str):
        subscription = _live().get(subscription_id)
        if subscription is None:
            return graph_error(404, "ResourceNotFound", f"The object was not found: subscription {subscription_id}.")
        body, error = json_body()
        if error:
            return error
        if set(body) - {"expirationDateTime", "notificationUrl"}:
            return bad_request("Only expirationDateTime (and notificationUrl) can be updated.", "InvalidRequest")
        maximum = next(m for p, m, k in LIFETIMES if k == subscription["_kind"])
        expiration, problem = _expiration(
            {"expirationDateTime": body.get("expirationDateTime", subscription["expirationDateTime"])},
            subscription["_kind"],
            maximum,
            bool(subscription.get("lifecycleNotificationUrl")),
        )
        if expiration is None:
            return bad_request(problem, "InvalidRequest")
        url = str(body.get("notificationUrl") or subscription["notificationUrl"])
        if not _url_ok(url):
            return bad_request("Subscription notificationUrl must be an https URL.", "InvalidRequest")
        if problem := handshake(url):  # Graph validates the endpoint again on renewal
            return bad_request(f"Subscription validation request failed for notificationUrl: {problem}.", "ValidationError")
        subscription["notificationUrl"] = url
        with STORE.lock:
            subscription["expirationDateTime"] = expiration
        return jsonify(_public(subscription))

    @bp.delete("/v1.0/subscriptions/<subscription_id>")
    def subscription_delete(subscription_id: str):
        with STORE.lock:
            removed = _live().pop(subscription_id, None)
        if removed is None:
            return graph_error(404, "ResourceNotFound", f"The object was not found: subscription {subscription_id}.")
        return Response(status=204)

    @bp.post("/v1.0/subscriptions/<subscription_id>/reauthorize")
    def subscription_reauthorize(subscription_id: str):
        if _live().get(subscription_id) is None:
            return graph_error(404, "ResourceNotFound", f"The object was not found: subscription {subscription_id}.")
        return Response(status=204)


def deliveries(subscription_id: str | None = None) -> list[dict[str, Any]]:
    with STORE.lock:
        return [d for d in col("deliveries").values() if subscription_id in (None, d["subscriptionId"])]
