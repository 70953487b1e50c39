"""Teams online meetings (/onlineMeetings, createOrGet by externalId) and the tenant's /organization."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify

from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import (
    GRAPH,
    TENANT_DOMAIN,
    TENANT_ID,
    VENDOR,
    bad_request,
    bump,
    col,
    delegated,
    graph_error,
    identity,
    iso,
    json_body,
    knobs,
    new_id,
    now,
    paged,
    require_scope,
    resolve_user,
)


def _public(meeting: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meeting.items() if not k.startswith("_")}


def _make(user: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    meeting_id = "MSo" + new_id().replace("-", "")
    thread = f"19:meeting_{new_id().replace('-', '')[:24]}@thread.v2"
    start = body.get("startDateTime") or iso(now())
    meeting = {
        "id": meeting_id,
        "subject": str(body.get("subject") or ""),
        "startDateTime": start,
        "endDateTime": body.get("endDateTime") or start,
        "creationDateTime": iso(now()),
        "joinWebUrl": f"https://teams.microsoft.com/l/meetup-join/{thread.replace(':', '%3a').replace('@', '%40')}/0?context=%7b%22Tid%22%3a%22{TENANT_ID}%22%7d",
        "joinMeetingIdSettings": {"joinMeetingId": str(int(time.time() * 1000))[-12:], "isPasscodeRequired": False},
        "chatInfo": {"threadId": thread, "messageId": "0"},
        "participants": {
            "organizer": {"upn": user["userPrincipalName"], "role": "presenter", "identity": identity(user)},
            "attendees": (body.get("participants") or {}).get("attendees") or [],
        },
        "externalId": body.get("externalId"),
        "_owner": user["id"],
    }
    col("online_meetings")[meeting_id] = bump(meeting)
    STORE.record_created(VENDOR, "online_meeting", meeting_id, f"Teams meeting {meeting['subject']!r} for {user['mail']}", meeting["joinWebUrl"])
    return meeting


def _guard(user_key: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Response | None]:
    user, error = resolve_user(user_key)
    body, body_error = json_body()
    if error or body_error:
        return None, None, error or body_error
    if not delegated() and not knobs().get("application_access_policy"):
        # An app may create meetings only for organizers an admin-made application access policy covers.
        return None, None, graph_error(403, "Forbidden", "No application access policy found for this app.")
    if scope_error := require_scope("OnlineMeetings.ReadWrite", "OnlineMeetings.ReadWrite.All"):
        return None, None, scope_error
    return user, body, None


def register(bp: Blueprint) -> None:
    @bp.get("/v1.0/organization")
    def organization():
        domains = [{"name": TENANT_DOMAIN, "isDefault": True, "isInitial": False, "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline"}]
        domains.append({"name": "acme.onmicrosoft.com", "isDefault": False, "isInitial": True, "type": "Managed", "capabilities": "Email"})
        org = {"id": TENANT_ID, "displayName": "Acme (sandbox)", "tenantType": "AAD", "verifiedDomains": domains, "countryLetterCode": "US"}
        return jsonify({"@odata.context": f"{GRAPH}/$metadata#organization", "value": [org]})

    @bp.post("/v1.0/me/onlineMeetings", defaults={"user_key": "me"}, endpoint="create_meeting_me")
    @bp.post("/v1.0/users/<user_key>/onlineMeetings")
    def create_meeting(user_key: str):
        user, body, error = _guard(user_key)
        if error:
            return error
        return jsonify(_public(_make(user, body))), 201

    @bp.post("/v1.0/me/onlineMeetings/createOrGet", defaults={"user_key": "me"}, endpoint="create_or_get_meeting_me")
    @bp.post("/v1.0/users/<user_key>/onlineMeetings/createOrGet")
    def create_or_get_meeting(user_key: str):
        """The meeting with this externalId for this organizer if it exists (200), else a new one (201)."""
        user, body, error = _guard(user_key)
        if error:
            return error
        if not body.get("externalId"):
            return bad_request("externalId is required for createOrGet.")
        with STORE.lock:
            existing = next((m for m in col("online_meetings").values() if m["_owner"] == user["id"] and m["externalId"] == body["externalId"]), None)
        if existing is not None:
            return jsonify(_public(existing))
        return jsonify(_public(_make(user, body))), 201

    @bp.get("/v1.0/me/onlineMeetings", defaults={"user_key": "me"}, endpoint="list_meetings_me")
    @bp.get("/v1.0/users/<user_key>/onlineMeetings")
    def list_meetings(user_key: str):
        user, error = resolve_user(user_key)
        if error:
            return error
        return paged([_public(m) for m in col("online_meetings").values() if m["_owner"] == user["id"]], "onlineMeetings")

    @bp.get("/v1.0/me/onlineMeetings/<meeting_id>", defaults={"user_key": "me"}, endpoint="get_meeting_me")
    @bp.get("/v1.0/users/<user_key>/onlineMeetings/<meeting_id>")
    def get_meeting(user_key: str, meeting_id: str):
        user, error = resolve_user(user_key)
        meeting = col("online_meetings").get(meeting_id)
        if error or meeting is None or meeting["_owner"] != user["id"]:
            return error or graph_error(404, "NotFound", f"Online meeting {meeting_id} not found.")
        return jsonify(_public(meeting))
