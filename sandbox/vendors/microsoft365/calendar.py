"""Outlook calendar: events (Teams meeting links, rooms as resource attendees), calendarView, cancel, getSchedule, findMeetingTimes, rooms."""

from __future__ import annotations

import base64
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import (
    GRAPH,
    TENANT_ID,
    VENDOR,
    bad_request,
    bump,
    col,
    delegated,
    delta_answer,
    failure_after_create,
    find_user,
    graph_error,
    graph_moment,
    iso,
    json_body,
    now,
    paged,
    parse_moment,
    preferred_zone,
    require_scope,
    resolve_user,
)
from sandbox.vendors.microsoft365.subscriptions import notify

RESPONSES = ("none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded")
WRITE = ("Calendars.ReadWrite",)
READ = ("Calendars.Read", "Calendars.ReadBasic", "Calendars.ReadWrite", "Calendars.Read.Shared", "Calendars.ReadWrite.Shared")
ENUMS = {
    "importance": ("low", "normal", "high"),
    "sensitivity": ("normal", "personal", "private", "confidential"),
    "showAs": ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
}
DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?$")


def _int(value: Any, default: int) -> int:
    """A number a client sent as a number or a numeric string; anything else is the default (Graph's own default)."""
    try:
        return int(value) if value is not None and not isinstance(value, bool) else default
    except (TypeError, ValueError):
        return default


def _event_id() -> str:
    return "AAMkAG" + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode().rstrip("=") + "AAA="


def _room(email: str) -> dict[str, Any] | None:
    return next((r for r in col("rooms").values() if r["emailAddress"].lower() == email.lower()), None)


def _busy(email: str, start: datetime, end: datetime, ignore: str = "") -> list[dict[str, Any]]:
    """Live events overlapping [start, end) where `email` is organizer or a not-declining attendee."""
    email = email.lower()
    found = []
    with STORE.lock:
        for event in col("events").values():
            if event.get("_deleted") or event["isCancelled"] or event["id"] == ignore:
                continue
            if not (event["_start"] < end and start < event["_end"]):
                continue
            if event["_organizer"].lower() == email:
                found.append(event)
                continue
            if any(a["emailAddress"]["address"].lower() == email and a["status"]["response"] != "declined" for a in event["attendees"]):
                found.append(event)
    return found


def make_event(organizer: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """An organizer's event from a create body (already validated): attendees start at `none`, rooms answer at once."""
    start, end = parse_moment(body["start"]), parse_moment(body["end"])
    event_id = _event_id()
    attendees = []
    for entry in body.get("attendees") or []:
        address = entry["emailAddress"]["address"]
        kind = entry.get("type", "required")
        room = _room(address)
        response = "none"
        if room is not None:
            kind = "resource"
            response = "declined" if _busy(address, start, end) else "accepted"  # room mailboxes auto-answer
        attendees.append(
            {
                "type": kind,
                "status": {"response": response, "time": iso(now()) if response != "none" else "0001-01-01T00:00:00Z"},
                "emailAddress": {
                    "address": address,
                    "name": entry["emailAddress"].get("name") or (room or find_user(address) or {}).get("displayName") or address,
                },
            }
        )
    online = bool(body.get("isOnlineMeeting"))
    content = (body.get("body") or {}).get("content", "")
    thread = secrets.token_hex(12)
    event = {
        "id": event_id,
        "createdDateTime": iso(now()),
        "changeKey": secrets.token_urlsafe(12),
        "categories": body.get("categories") or [],
        "transactionId": body.get("transactionId"),
        "originalStartTimeZone": (body["start"] or {}).get("timeZone", "UTC"),
        "originalEndTimeZone": (body["end"] or {}).get("timeZone", "UTC"),
        "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(24).upper(),
        "reminderMinutesBeforeStart": _int(body.get("reminderMinutesBeforeStart"), 15),
        "isReminderOn": bool(body.get("isReminderOn", True)),
        "hasAttachments": False,
        "subject": str(body.get("subject") or ""),
        "bodyPreview": re.sub(r"<[^>]+>", "", content)[:255],
        "importance": body.get("importance", "normal"),
        "sensitivity": body.get("sensitivity", "normal"),
        "isAllDay": bool(body.get("isAllDay", False)),
        "isCancelled": False,
        "isOrganizer": True,
        "responseRequested": bool(body.get("responseRequested", True)),
        "seriesMasterId": None,
        "showAs": body.get("showAs", "busy"),
        "type": "singleInstance",
        "webLink": f"https://outlook.office365.com/owa/?itemid={event_id}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": online,
        "onlineMeetingProvider": body.get("onlineMeetingProvider", "teamsForBusiness") if online else "unknown",
        "allowNewTimeProposals": bool(body.get("allowNewTimeProposals", True)),
        "isDraft": False,
        "hideAttendees": False,
        "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
        "body": {"contentType": (body.get("body") or {}).get("contentType", "text"), "content": content},
        "location": body.get("location") or {"displayName": "", "locationType": "default"},
        "locations": body.get("locations") or ([body["location"]] if body.get("location") else []),
        "recurrence": None,
        "attendees": attendees,
        "organizer": {"emailAddress": {"name": organizer["displayName"], "address": organizer["mail"]}},
        "onlineMeeting": (
            {"joinUrl": f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{thread}%40thread.v2/0?context=%7b%22Tid%22%3a%22{TENANT_ID}%22%7d"}
            if online
            else None
        ),
        "_owner": organizer["id"],
        "_organizer": organizer["mail"],
        "_start": start,
        "_end": end,
    }
    return bump(event)


def render(event: dict[str, Any]) -> dict[str, Any]:
    tz = preferred_zone()
    # The description types recurrence and onlineMeeting as objects (not nullable): a single instance without a meeting omits them.
    body = {k: v for k, v in event.items() if not k.startswith("_") and not (k in ("recurrence", "onlineMeeting") and v is None)}
    body["start"], body["end"] = graph_moment(event["_start"], tz), graph_moment(event["_end"], tz)
    body["@odata.etag"] = f'W/"{event["changeKey"]}"'
    return body


def _visible_to(event: dict[str, Any], user: dict[str, Any]) -> bool:
    if event["_owner"] == user["id"]:
        return True
    return any(a["emailAddress"]["address"].lower() == user["mail"].lower() for a in event["attendees"])


def _validate(body: dict[str, Any]) -> str:
    for edge in ("start", "end"):
        value = body.get(edge)
        if not isinstance(value, dict) or parse_moment(value) is None:
            return f"{edge} must be a dateTimeTimeZone object with a valid dateTime and timeZone."
    if parse_moment(body["end"]) < parse_moment(body["start"]):
        return "The end time of the event must be after its start time."
    attendees = body.get("attendees") or []
    if not isinstance(attendees, list):
        return "attendees must be a list."
    for entry in attendees:
        email = entry.get("emailAddress") if isinstance(entry, dict) else None
        address = email.get("address") if isinstance(email, dict) else None
        if not isinstance(address, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
            return "Every attendee needs emailAddress.address with a valid SMTP address."
        if entry.get("type", "required") not in ("required", "optional", "resource"):
            return "attendee type must be required, optional or resource."
    if body.get("onlineMeetingProvider") not in (None, "teamsForBusiness", "skypeForBusiness", "skypeForConsumer", "unknown"):
        return "Invalid onlineMeetingProvider."
    content = body.get("body")
    if content is not None and not (
        isinstance(content, dict) and isinstance(content.get("content", ""), str) and content.get("contentType", "text") in ("text", "html")
    ):
        return "body must be an itemBody {contentType: text|html, content}."
    if not isinstance(body.get("location") or {}, dict) or not isinstance(body.get("locations") or [], list):
        return "location must be an object and locations a list."
    for key, allowed in (("importance", ENUMS["importance"]), ("sensitivity", ENUMS["sensitivity"]), ("showAs", ENUMS["showAs"])):
        if body.get(key) is not None and body[key] not in allowed:
            return f"{key} must be one of {', '.join(allowed)}."
    return ""


def _event_for(user_key: str, event_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Response | None]:
    user, error = resolve_user(user_key)
    if error:
        return None, None, error
    event = col("events").get(event_id)
    if event is None or event.get("_deleted") or not _visible_to(event, user):
        return user, None, graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    return user, event, None


def _targets(event: dict[str, Any]) -> set[str]:
    """The organizer's calendar and each attendee's that is in the directory (their copy of the meeting changes too)."""
    found = {f"users/{event['_owner']}/events".lower()}
    for attendee in event["attendees"]:
        user = find_user(attendee["emailAddress"]["address"])
        if user is not None:
            found.add(f"users/{user['id']}/events".lower())
    return found


def changed(event: dict[str, Any], change_type: str) -> None:
    notify(
        _targets(event),
        change_type,
        f"Users/{event['_owner']}/Events/{event['id']}",
        {"id": event["id"], "@odata.id": f"Users/{event['_owner']}/Events/{event['id']}"},
    )


def _window() -> tuple[datetime | None, datetime | None, Response | None]:
    start, end = parse_moment(request.args.get("startDateTime")), parse_moment(request.args.get("endDateTime"))
    if start is None or end is None:
        return (
            None,
            None,
            bad_request("This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.", "ErrorInvalidParameter"),
        )
    return start, end, None


def _value(body: dict[str, Any], name: str) -> Any:
    """getSchedule parameters are PascalCase in the CSDL, camelCase in the docs' examples: match either."""
    return next((v for k, v in body.items() if k.lower() == name.lower()), None)


def register(bp: Blueprint) -> None:
    user_routes = ("/v1.0/me{}", "/v1.0/users/<user_key>{}")

    def both(suffix: str, methods: list[str]):
        def decorate(view):
            # One endpoint per rule: werkzeug redirects between rules of one endpoint that share defaults.
            name = f"{view.__name__}{suffix.replace('/', '_').replace('<', '').replace('>', '')}"
            bp.add_url_rule(user_routes[0].format(suffix), view_func=view, methods=methods, defaults={"user_key": "me"}, endpoint=f"{name}_me")
            bp.add_url_rule(user_routes[1].format(suffix), view_func=view, methods=methods, endpoint=name)
            return view

        return decorate

    @both("/events", ["POST"])
    @both("/calendar/events", ["POST"])
    def create_event(user_key: str):
        user, error = resolve_user(user_key)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if scope_error := require_scope(*WRITE):
            return scope_error
        if problem := _validate(body):
            return bad_request(problem, "ErrorInvalidRequest")
        if body.get("transactionId"):
            with STORE.lock:
                twin = next((e for e in col("events").values() if e["_owner"] == user["id"] and e["transactionId"] == body["transactionId"]), None)
            if twin is not None and not twin.get("_deleted"):
                return jsonify(render(twin)), 201  # a retried create with the same transactionId returns the first event
        event = make_event(user, body)
        col("events")[event["id"]] = event
        invited = len([a for a in event["attendees"] if a["type"] != "resource"])
        STORE.record_created(VENDOR, "event", event["id"], f"{event['subject']} ({iso(event['_start'])}; {invited} invitations sent)", event["webLink"])
        changed(event, "created")
        if failure := failure_after_create():
            return failure
        return jsonify({"@odata.context": f"{GRAPH}/$metadata#users('{user['id']}')/events/$entity", **render(event)}), 201

    @both("/events", ["GET"])
    @both("/calendar/events", ["GET"])
    def list_events(user_key: str):
        user, error = resolve_user(user_key)
        if error:
            return error
        if scope_error := require_scope(*READ):
            return scope_error
        found = [render(e) for e in col("events").values() if not e.get("_deleted") and _visible_to(e, user)]
        return paged(found, f"users('{user['id']}')/events")

    @both("/calendarView", ["GET"])
    @both("/calendar/calendarView", ["GET"])
    def calendar_view(user_key: str):
        user, error = resolve_user(user_key)
        start, end, window_error = _window()
        if error or window_error:
            return error or window_error
        found = [e for e in col("events").values() if not e.get("_deleted") and _visible_to(e, user) and e["_start"] < end and start < e["_end"]]
        found.sort(key=lambda e: e["_start"])
        return paged([render(e) for e in found], f"users('{user['id']}')/calendarView")

    @both("/events/delta", ["GET"])
    @both("/calendarView/delta", ["GET"])
    def events_delta(user_key: str):
        user, error = resolve_user(user_key)
        if error:
            return error
        start, end = parse_moment(request.args.get("startDateTime")), parse_moment(request.args.get("endDateTime"))
        if request.path.endswith("calendarView/delta") and not request.args.get("$deltatoken") and not request.args.get("$skiptoken"):
            start, end, window_error = _window()
            if window_error:
                return window_error
        found = [e for e in col("events").values() if _visible_to(e, user) and (start is None or end is None or (e["_start"] < end and start < e["_end"]))]
        return delta_answer(found, render, lambda e: {"id": e["id"], "@removed": {"reason": "deleted"}}, keep=("startDateTime", "endDateTime"))

    @both("/events/<event_id>", ["GET"])
    @both("/calendar/events/<event_id>", ["GET"])
    def get_event(user_key: str, event_id: str):
        _user, event, error = _event_for(user_key, event_id)
        return error or jsonify(render(event))

    @both("/events/<event_id>", ["PATCH"])
    def patch_event(user_key: str, event_id: str):
        _user, event, error = _event_for(user_key, event_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        merged = {"start": graph_moment(event["_start"]), "end": graph_moment(event["_end"]), **body}
        if problem := _validate({k: v for k, v in merged.items() if k != "attendees"}):
            return bad_request(problem, "ErrorInvalidRequest")
        with STORE.lock:
            for key in ("subject", "body", "location", "locations", "showAs", "importance", "categories", "reminderMinutesBeforeStart"):
                if key in body:
                    event[key] = body[key]
            event["_start"], event["_end"] = parse_moment(merged["start"]), parse_moment(merged["end"])
            event["changeKey"] = secrets.token_urlsafe(12)
            bump(event)
        changed(event, "updated")
        return jsonify(render(event))

    @both("/events/<event_id>", ["DELETE"])
    def delete_event(user_key: str, event_id: str):
        _user, event, error = _event_for(user_key, event_id)
        if error:
            return error
        with STORE.lock:
            event["_deleted"] = True
            bump(event)
        changed(event, "deleted")
        return Response(status=204)

    @both("/events/<event_id>/cancel", ["POST"])
    def cancel_event(user_key: str, event_id: str):
        user, event, error = _event_for(user_key, event_id)
        if error:
            return error
        body = request.get_json(silent=True) or {}
        if event["_owner"] != user["id"]:
            return bad_request("Your request can't be completed. You need to be an organizer to cancel a meeting.", "ErrorAccessDenied")
        with STORE.lock:
            event["isCancelled"] = True
            event["_deleted"] = True  # cancel moves the organizer's copy to Deleted Items
            bump(event)
        notified = len([a for a in event["attendees"] if a["type"] != "resource"])
        STORE.record_created(
            VENDOR, "cancellation", event_id, f"{event['subject']} cancelled; {notified} cancellation notices sent ({str(body.get('comment') or '')[:60]})"
        )
        changed(event, "deleted")
        return Response(status=202)

    @both("/calendar/getSchedule", ["POST"])
    def get_schedule(user_key: str):
        _user, error = resolve_user(user_key)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        schedules, start, end = _value(body, "Schedules"), parse_moment(_value(body, "StartTime")), parse_moment(_value(body, "EndTime"))
        interval = _int(_value(body, "AvailabilityViewInterval"), 30)
        if not isinstance(schedules, list) or not schedules or start is None or end is None or end <= start:
            return bad_request("Schedules, StartTime and EndTime are required; EndTime must be after StartTime.", "ErrorInvalidParameter")
        if len(schedules) > 100 or not 5 <= interval <= 1440:
            return bad_request("At most 100 schedules; availabilityViewInterval must be 5 to 1440 minutes.", "ErrorInvalidParameter")
        return jsonify(
            {
                "@odata.context": f"{GRAPH}/$metadata#Collection(microsoft.graph.scheduleInformation)",
                "value": [_schedule(s, start, end, interval) for s in schedules],
            }
        )

    @both("/findMeetingTimes", ["POST"])
    def find_meeting_times(user_key: str):
        user, error = resolve_user(user_key)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if not delegated():
            return graph_error(403, "ErrorAccessDenied", "Access is denied. findMeetingTimes supports delegated permissions only (Calendars.Read.Shared).")
        return _find_times(user, body)

    @bp.get("/v1.0/places/microsoft.graph.room")
    @bp.get("/v1.0/places/graph.room")
    def rooms():
        if scope_error := require_scope("Place.Read.All"):
            return scope_error
        return paged(list(col("rooms").values()), "places/microsoft.graph.room")


def _schedule(address: Any, start: datetime, end: datetime, interval: int) -> dict[str, Any]:
    address = str(address)
    if find_user(address) is None and _room(address) is None:
        return {
            "scheduleId": address,
            "availabilityView": "",
            "scheduleItems": [],
            "error": {"message": f"The specified user {address} is invalid.", "responseCode": "ErrorMailRecipientNotFound"},
        }
    busy = _busy(address, start, end)
    view, slot = [], start
    while slot < end:
        nxt = slot + timedelta(minutes=interval)
        view.append("2" if any(e["_start"] < nxt and slot < e["_end"] for e in busy) else "0")
        slot = nxt
    return {
        "scheduleId": address,
        "availabilityView": "".join(view),
        "scheduleItems": [
            {
                "isPrivate": False,
                "status": "busy",
                "subject": e["subject"],
                "location": (e.get("location") or {}).get("displayName", ""),
                "start": graph_moment(e["_start"]),
                "end": graph_moment(e["_end"]),
            }
            for e in busy
        ],
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"},
        },
    }


def _find_times(user: dict[str, Any], body: dict[str, Any]) -> Response:
    match = DURATION.match(str(body.get("meetingDuration") or "PT30M"))
    if not match or not (match[1] or match[2]):
        return bad_request("meetingDuration must be an ISO 8601 duration such as PT1H or PT30M.", "ErrorInvalidParameter")
    duration = timedelta(hours=int(match[1] or 0), minutes=int(match[2] or 0))
    raw_attendees, constraint = body.get("attendees") or [], body.get("timeConstraint") or {}
    location = body.get("locationConstraint") or {}
    if not isinstance(raw_attendees, list) or not isinstance(constraint, dict) or not isinstance(location, dict):
        return bad_request("attendees must be a list; timeConstraint and locationConstraint objects.", "ErrorInvalidParameter")
    attendees = [
        a for a in raw_attendees if isinstance(a, dict) and isinstance(a.get("emailAddress"), dict) and isinstance(a["emailAddress"].get("address"), str)
    ]
    slots = constraint.get("timeSlots") or []
    if not isinstance(slots, list):
        return bad_request("timeConstraint.timeSlots must be a list.", "ErrorInvalidParameter")
    windows = [(parse_moment(s.get("start")), parse_moment(s.get("end"))) for s in slots if isinstance(s, dict)]
    if not windows:
        base = now().replace(minute=0) + timedelta(hours=1)
        windows = [(base, base + timedelta(days=2))]
    if any(a is None or b is None or b <= a for a, b in windows):
        return bad_request("timeConstraint.timeSlots need valid start and end dateTimeTimeZone values.", "ErrorInvalidParameter")
    places = location.get("locations") or []
    if not isinstance(places, list):
        return bad_request("locationConstraint.locations must be a list.", "ErrorInvalidParameter")
    wanted_rooms = [loc["locationEmailAddress"] for loc in places if isinstance(loc, dict) and isinstance(loc.get("locationEmailAddress"), str)]
    if location.get("suggestLocation") and not wanted_rooms:
        wanted_rooms = [r["emailAddress"] for r in col("rooms").values()]
    maximum = max(1, min(_int(body.get("maxCandidates"), 5), 50))
    people = [user["mail"]] + [a["emailAddress"]["address"] for a in attendees]
    suggestions = []
    for window_start, window_end in windows:
        slot = window_start
        while slot + duration <= window_end and len(suggestions) < maximum:
            if 8 <= slot.hour < 17 and slot.weekday() < 5 and not any(_busy(p, slot, slot + duration) for p in people):
                free_rooms = [r for r in wanted_rooms if not _busy(r, slot, slot + duration)]
                if not location.get("isRequired") or free_rooms:
                    suggestions.append(_suggestion(slot, duration, attendees, free_rooms[:1]))
            slot += timedelta(minutes=30)
    reason = "" if suggestions else "attendeesUnavailable"
    return jsonify(
        {
            "@odata.context": f"{GRAPH}/$metadata#microsoft.graph.meetingTimeSuggestionsResult",
            "emptySuggestionsReason": reason,
            "meetingTimeSuggestions": suggestions,
        }
    )


def _suggestion(slot: datetime, duration: timedelta, attendees: list[dict[str, Any]], rooms: list[str]) -> dict[str, Any]:
    return {
        "confidence": 100.0,
        "organizerAvailability": "free",
        "suggestionReason": "Suggested because it is one of the nearest times when all attendees are available.",
        "meetingTimeSlot": {"start": graph_moment(slot), "end": graph_moment(slot + duration)},
        "attendeeAvailability": [
            {"attendee": {"type": a.get("type", "required"), "emailAddress": a["emailAddress"]}, "availability": "free"} for a in attendees
        ],
        "locations": [{"displayName": _room(r)["displayName"], "locationEmailAddress": r} for r in rooms if _room(r)],
    }


def respond(event_id: str, email: str, response: str) -> tuple[dict[str, Any] | None, str]:
    """An attendee's answer (the /_control endpoint stands in for the person clicking Accept/Decline in Outlook)."""
    if response not in ("accepted", "declined", "tentativelyAccepted", "notResponded", "none"):
        return None, "response must be accepted, declined, tentativelyAccepted, notResponded or none"
    event = col("events").get(event_id)
    if event is None or event.get("_deleted"):
        return None, "no such event"
    with STORE.lock:
        attendee = next((a for a in event["attendees"] if a["emailAddress"]["address"].lower() == email.lower()), None)
        if attendee is None:
            return None, f"{email} is not an attendee"
        attendee["status"] = {"response": response, "time": iso(now())}
        event["changeKey"] = secrets.token_urlsafe(12)
        bump(event)
    changed(event, "updated")
    return render(event), ""
