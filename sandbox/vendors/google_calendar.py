"""Google Calendar API v3 stand-in: calendarList, events (client ids, sync tokens, Meet), freeBusy, push channels, service-account JWT grant."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Blueprint, Response, has_request_context, jsonify, render_template_string, request

from sandbox.oauth import OAuthProfile, bearer_token, issue_static_token, oauth_blueprint, token_info
from sandbox.server import install_faults
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "google_calendar"
DEMO_TOKEN = "sandbox-google-calendar-token"
DEFAULT_USER = "amara.nwosu@acme.example"
ROOMS = {
    "c_boardroom@resource.calendar.google.com": "Boardroom (12)",
    "c_warroom@resource.calendar.google.com": "War room (8)",
}
SHARED = {
    "c_incident.rota@group.calendar.google.com": ("Incident response rota", "writer"),
    "en.uk#holiday@group.v.calendar.google.com": ("Holidays in United Kingdom", "reader"),
}
WRITE_SCOPES = {"https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/calendar.events"}
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _unb64(token: str) -> dict[str, Any] | None:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        return None


def _error(status: int, message: str, reason: str, domain: str = "global", extra: dict[str, Any] | None = None) -> Response:
    google_status = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        409: "ALREADY_EXISTS",
        410: "FAILED_PRECONDITION",
    }
    body = {"error": {"errors": [{"domain": domain, "reason": reason, "message": message, **(extra or {})}], "code": status, "message": message}}
    if status in google_status:
        body["error"]["status"] = google_status[status]
    response = jsonify(body)
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    style = STORE.collection(VENDOR, "knobs").get("rate_limit_style", "403")
    if style == "429":
        response = _error(429, "Rate Limit Exceeded", "rateLimitExceeded", "usageLimits")
    else:
        response = _error(403, "User Rate Limit Exceeded", "userRateLimitExceeded", "usageLimits")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _events() -> Any:
    return STORE.collection(VENDOR, "events")


def _calendars() -> Any:
    return STORE.collection(VENDOR, "calendars")


def _next_rev() -> int:
    with STORE.lock:
        meta = STORE.collection(VENDOR, "meta")
        meta["rev"] = meta.get("rev", 0) + 1
        return meta["rev"]


def _current_rev() -> int:
    return STORE.collection(VENDOR, "meta").get("rev", 0)


def _random_id() -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuv"
    return "".join(secrets.choice(alphabet) for _ in range(26))


def seed() -> None:
    """A primary calendar per person, rooms, shared calendars, and a week of meetings."""
    issue_static_token(VENDOR, DEMO_TOKEN, subject=DEFAULT_USER)
    staff = people()
    with STORE.lock:
        for person in staff:
            _calendars()[person["email"]] = {
                "id": person["email"],
                "summary": person["email"],
                "timeZone": "Europe/London",
                "owner": person["email"],
                "name": person["name"],
            }
        for room, name in ROOMS.items():
            _calendars()[room] = {"id": room, "summary": name, "timeZone": "Europe/London", "owner": "", "name": name, "resource": True}
        for calendar_id, (name, _role) in SHARED.items():
            _calendars()[calendar_id] = {"id": calendar_id, "summary": name, "timeZone": "Europe/London", "owner": "", "name": name}
    base = _now().replace(hour=0, minute=0, second=0, microsecond=0)
    by_email = {p["email"]: p for p in staff}

    def add(organizer: str, summary: str, day: int, hour: int, minutes: int, attendees: list[str], calendar: str | None = None) -> None:
        start = base + timedelta(days=day, hours=hour)
        event = _make_event(
            _random_id(),
            calendar or organizer,
            organizer,
            {
                "summary": summary,
                "start": {"dateTime": _rfc3339(start), "timeZone": "UTC"},
                "end": {"dateTime": _rfc3339(start + timedelta(minutes=minutes)), "timeZone": "UTC"},
                "attendees": [{"email": email} for email in attendees],
            },
        )
        for attendee in event.get("attendees", []):
            if attendee["email"] in by_email and int(hashlib.md5((attendee["email"] + summary).encode()).hexdigest(), 16) % 3 == 0:
                attendee["responseStatus"] = "accepted"
        _events()[event["id"]] = event

    execs = [staff[i]["email"] for i in (0, 1, 2, 3, 4, 13, 14, 17)]
    add(staff[0]["email"], "Executive staff meeting", 1, 9, 60, execs)
    add(staff[19]["email"], "Incident review", 2, 15, 45, [staff[i]["email"] for i in (19, 5, 6, 7, 16, 18)])
    add(staff[19]["email"], "On-call handover", 3, 9, 30, [staff[19]["email"], staff[7]["email"]], calendar="c_incident.rota@group.calendar.google.com")
    for index, person in enumerate(staff):
        if person["manager_email"]:
            add(
                person["manager_email"],
                f"1:1 {by_email[person['manager_email']]['given_name']} / {person['given_name']}",
                index % 5 + 1,
                10 + index % 6,
                30,
                [person["manager_email"], person["email"]],
            )
        add(person["email"], "Focus time", index % 4 + 1, 14, 90, [])


def _html_link(event_id: str, calendar_id: str) -> str:
    """Google's event link shape, served by the sandbox itself so a person can open what Bastion booked."""
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    if has_request_context():
        return f"{request.host_url.rstrip('/')}/{VENDOR}/calendar/event?eid={eid}"
    return f"https://www.google.com/calendar/event?eid={eid}"


def _make_event(event_id: str, calendar_id: str, organizer: str, body: dict[str, Any], *, conference: bool = False) -> dict[str, Any]:
    now = _now()
    event: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": f'"{int(now.timestamp() * 1000)}"',
        "id": event_id,
        "status": "confirmed",
        "htmlLink": _html_link(event_id, calendar_id),
        "created": _rfc3339(now),
        "updated": _rfc3339(now),
        "summary": body.get("summary", ""),
        "creator": {"email": organizer},
        "organizer": {"email": organizer},
        "start": body.get("start"),
        "end": body.get("end"),
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": body.get("reminders") or {"useDefault": True},
        "eventType": "default",
        "_calendar": calendar_id,
        "_rev": _next_rev(),
    }
    for key in ("description", "location", "transparency", "visibility", "extendedProperties", "colorId"):
        if key in body:
            event[key] = body[key]
    if body.get("attendees"):
        event["attendees"] = [_attendee(a, organizer) for a in body["attendees"]]
    if conference and isinstance((body.get("conferenceData") or {}).get("createRequest"), dict):
        _attach_meet(event, body["conferenceData"]["createRequest"])
    return event


def _attendee(data: dict[str, Any], organizer: str) -> dict[str, Any]:
    email = str(data.get("email", "")).lower()
    attendee: dict[str, Any] = {"email": email, "responseStatus": data.get("responseStatus", "needsAction")}
    if data.get("optional"):
        attendee["optional"] = True
    if email == organizer:
        attendee.update(organizer=True, responseStatus="accepted")
    if data.get("resource") or email in ROOMS:
        # Room resources accept automatically when they are free.
        attendee.update(resource=True, responseStatus="accepted", displayName=ROOMS.get(email, email))
    elif data.get("displayName"):
        attendee["displayName"] = data["displayName"]
    return attendee


def _attach_meet(event: dict[str, Any], create_request: dict[str, Any]) -> None:
    code = hashlib.sha256(str(create_request.get("requestId", "")).encode()).hexdigest()
    letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in code[:10])
    meeting = f"{letters[:3]}-{letters[3:7]}-{letters[7:10]}"
    solution = (create_request.get("conferenceSolutionKey") or {}).get("type", "hangoutsMeet")
    event["conferenceData"] = {
        "createRequest": {**create_request, "status": {"statusCode": "success"}},
        "entryPoints": [{"entryPointType": "video", "uri": f"https://meet.google.com/{meeting}", "label": f"meet.google.com/{meeting}"}],
        "conferenceSolution": {
            "key": {"type": solution},
            "name": "Google Meet",
            "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
        },
        "conferenceId": meeting,
    }
    event["hangoutLink"] = f"https://meet.google.com/{meeting}"


def _public(event: dict[str, Any]) -> dict[str, Any]:
    if event["status"] == "cancelled":
        return {"kind": "calendar#event", "etag": event["etag"], "id": event["id"], "status": "cancelled"}
    return {k: v for k, v in event.items() if not k.startswith("_")}


def _visible(event: dict[str, Any], calendar_id: str) -> bool:
    return event["_calendar"] == calendar_id or any(a["email"] == calendar_id for a in event.get("attendees", []))


def _touch(event: dict[str, Any]) -> None:
    now = _now()
    event["updated"] = _rfc3339(now)
    event["etag"] = f'"{int(now.timestamp() * 1000)}{event["sequence"]}"'
    event["_rev"] = _next_rev()


def _notify(event: dict[str, Any], *, wait: bool) -> list[dict[str, Any]]:
    """Send `exists` push notifications to every channel watching a calendar that shows this event."""
    with STORE.lock:
        channels = [dict(c) for c in STORE.collection(VENDOR, "channels").values() if _visible(event, c["calendar"])]
    if not channels:
        return []
    if wait:
        return [_push(channel, "exists") for channel in channels]
    threading.Thread(target=lambda: [_push(c, "exists") for c in channels], daemon=True).start()
    return []


def _push(channel: dict[str, Any], state: str) -> dict[str, Any]:
    with STORE.lock:
        stored = STORE.collection(VENDOR, "channels").get(channel["id"])
        if stored is None:
            return {"channel": channel["id"], "status": None, "error": "stopped"}
        stored["message_number"] += 1
        number = stored["message_number"]
    headers = {
        "X-Goog-Channel-ID": channel["id"],
        "X-Goog-Channel-Expiration": format_datetime(datetime.fromtimestamp(channel["expiration"] / 1000, UTC), usegmt=True),
        "X-Goog-Resource-ID": channel["resourceId"],
        "X-Goog-Resource-URI": channel["resourceUri"],
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
        "Content-Length": "0",
    }
    if channel.get("token"):
        headers["X-Goog-Channel-Token"] = channel["token"]
    try:
        answer = requests.post(channel["address"], data=b"", headers=headers, timeout=5)
        return {"channel": channel["id"], "state": state, "status": answer.status_code, "message_number": number}
    except requests.RequestException as exc:
        logger.warning("sandbox.google_calendar.push_failed", extra={"channel": channel["id"], "error": str(exc)})
        return {"channel": channel["id"], "state": state, "status": None, "error": str(exc)}


def _fail_after_create() -> int:
    with STORE.lock:
        knob = STORE.collection(VENDOR, "knobs").get("fail_after_create")
        if knob and knob["count"] > 0:
            knob["count"] -= 1
            return knob["status"]
    return 0


def blueprints() -> list[Blueprint]:
    api = Blueprint("google_calendar_api", __name__)
    control = Blueprint("google_calendar_control", __name__)
    install_faults(
        api, VENDOR, rate_limited=_rate_limited, error=lambda status, message: _error(status, message, "backendError" if status >= 500 else "badRequest")
    )

    @api.before_request
    def _authenticate():
        if request.path.endswith("/oauth2/v3/tokeninfo") or request.path.endswith(f"/{VENDOR}/token"):
            return None
        grant = token_info(VENDOR, bearer_token())
        if grant is None:
            return _error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                "authError",
                extra={"location": "Authorization", "locationType": "header"},
            )
        subject = grant.get("subject", "")
        known = subject in _calendars() or subject.endswith(".iam.gserviceaccount.com")
        request.environ["gcal.user"] = subject if known else DEFAULT_USER
        request.environ["gcal.scopes"] = set(grant.get("scopes") or [])
        if subject.endswith(".iam.gserviceaccount.com"):
            with STORE.lock:
                _calendars().setdefault(subject, {"id": subject, "summary": subject, "timeZone": "UTC", "owner": subject, "name": subject})
        return None

    def _user() -> str:
        return request.environ["gcal.user"]

    def _can_write() -> bool:
        scopes = request.environ.get("gcal.scopes") or set()
        return not scopes or bool(scopes & WRITE_SCOPES)

    def _resolve(calendar_id: str) -> str:
        return _user() if calendar_id == "primary" else calendar_id

    def _role(calendar_id: str) -> str | None:
        calendar = _calendars().get(calendar_id)
        if calendar is None:
            return None
        if calendar["owner"] == _user():
            return "owner"
        if calendar_id in SHARED:
            return SHARED[calendar_id][1]
        return "freeBusyReader" if calendar_id in ROOMS or "@acme.example" in calendar_id else None

    def _entry(calendar_id: str) -> dict[str, Any]:
        calendar = _calendars()[calendar_id]
        role = _role(calendar_id)
        entry = {
            "kind": "calendar#calendarListEntry",
            "etag": f'"{hashlib.md5(calendar_id.encode()).hexdigest()[:12]}"',
            "id": calendar_id,
            "summary": calendar["summary"],
            "timeZone": calendar["timeZone"],
            "accessRole": role,
            "backgroundColor": "#9fe1e7",
            "foregroundColor": "#000000",
            "defaultReminders": [{"method": "popup", "minutes": 10}] if role == "owner" else [],
        }
        if role == "owner" and calendar_id == _user():
            entry.update(primary=True, selected=True)
        return entry

    def _paged(items: list[Any], default: int, maximum: int, token_state: dict[str, Any]) -> tuple[list[Any], str | None] | Response:
        try:
            size = min(int(request.args.get("maxResults", default)), maximum)
        except ValueError:
            return _error(400, "Invalid value for maxResults", "invalid")
        offset = 0
        if request.args.get("pageToken"):
            state = _unb64(request.args["pageToken"])
            if not state or "o" not in state:
                return _error(400, "Invalid page token value.", "invalid")
            offset = int(state["o"])
        chunk = items[offset : offset + size]
        next_token = _b64({**token_state, "o": offset + size}) if offset + size < len(items) else None
        return chunk, next_token

    @api.get("/calendar/v3/users/me/calendarList")
    def calendar_list():
        visible = [cid for cid in _calendars() if _role(cid)]
        visible.sort(key=lambda cid: (cid != _user(), cid))
        result = _paged([_entry(cid) for cid in visible], 100, 250, {})
        if isinstance(result, Response):
            return result
        items, next_token = result
        body: dict[str, Any] = {"kind": "calendar#calendarList", "etag": f'"{_current_rev()}"', "items": items}
        if next_token:
            body["nextPageToken"] = next_token
        else:
            body["nextSyncToken"] = _b64({"calendarList": _current_rev()})
        return jsonify(body)

    @api.get("/calendar/v3/users/me/calendarList/<path:calendar_id>")
    def calendar_list_get(calendar_id: str):
        calendar_id = _resolve(calendar_id)
        if not _role(calendar_id):
            return _error(404, "Not Found", "notFound")
        return jsonify(_entry(calendar_id))

    @api.get("/calendar/v3/calendars/<calendar_id>")
    def calendar_get(calendar_id: str):
        """calendars.get: the calendar's metadata; only someone who can see its events (not free/busy only) may read it."""
        calendar_id = _resolve(calendar_id)
        if _role(calendar_id) not in ("owner", "writer", "reader"):
            return _error(404, "Not Found", "notFound")
        calendar = _calendars()[calendar_id]
        return jsonify(
            {
                "kind": "calendar#calendar",
                "etag": f'"{hashlib.md5(calendar_id.encode()).hexdigest()[:12]}"',
                "id": calendar_id,
                "summary": calendar["summary"],
                "timeZone": calendar["timeZone"],
                "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
            }
        )

    @api.get("/calendar/v3/calendars/<path:calendar_id>/events")
    def events_list(calendar_id: str):
        calendar_id = _resolve(calendar_id)
        if _role(calendar_id) not in ("owner", "writer", "reader"):
            return _error(404, "Not Found", "notFound")
        meta = STORE.collection(VENDOR, "meta")
        state: dict[str, Any] = {"c": calendar_id}
        since_rev: int | None = None
        if request.args.get("pageToken"):
            token = _unb64(request.args["pageToken"]) or {}
            state.update(s=token.get("s"), r=token.get("r", _current_rev()))
            since_rev = token.get("s")
        elif request.args.get("syncToken"):
            token = _unb64(request.args["syncToken"])
            if not token or token.get("c") != calendar_id:
                return _error(400, "Invalid sync token value.", "invalid")
            if token["r"] < meta.get("min_sync_rev", 0):
                return _error(410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired")
            since_rev = token["r"]
            state.update(s=since_rev, r=_current_rev())
        else:
            state.update(s=None, r=_current_rev())
        with STORE.lock:
            rows = [e for e in _events().values() if _visible(e, calendar_id)]
        if since_rev is not None:
            rows = [e for e in rows if since_rev < e["_rev"] <= state["r"]]
        else:
            rows = [e for e in rows if e["_rev"] <= state["r"] and (e["status"] != "cancelled" or request.args.get("showDeleted") == "true")]
            time_min, time_max = _parse(request.args.get("timeMin", "")), _parse(request.args.get("timeMax", ""))
            if time_min:
                rows = [e for e in rows if _parse(e["end"].get("dateTime") or e["end"].get("date", "")) > time_min]
            if time_max:
                rows = [e for e in rows if _parse(e["start"].get("dateTime") or e["start"].get("date", "")) < time_max]
            if request.args.get("q"):
                rows = [e for e in rows if request.args["q"].lower() in (e.get("summary", "") + e.get("description", "")).lower()]
        result = _paged([_public(e) for e in rows], 250, 2500, state)
        if isinstance(result, Response):
            return result
        items, next_token = result
        calendar = _calendars()[calendar_id]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{state["r"]}"',
            "summary": calendar["summary"],
            "updated": _rfc3339(_now()),
            "timeZone": calendar["timeZone"],
            "accessRole": _role(calendar_id),
            "defaultReminders": [{"method": "popup", "minutes": 10}],
            "items": items,
        }
        if next_token:
            body["nextPageToken"] = next_token
        else:
            body["nextSyncToken"] = _b64({"c": calendar_id, "r": state["r"]})
        return jsonify(body)

    @api.post("/calendar/v3/calendars/<path:calendar_id>/events")
    def events_insert(calendar_id: str):
        calendar_id = _resolve(calendar_id)
        if not _can_write():
            return _error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        if _role(calendar_id) not in ("owner", "writer"):
            return _error(403, "You need to have writer access to this calendar.", "requiredAccessLevel")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, "Parse Error", "parseError")
        for edge in ("start", "end"):
            moment = body.get(edge) or {}
            if not (_parse(str(moment.get("dateTime", ""))) or moment.get("date")):
                return _error(400, "Missing end time." if edge == "end" else "Missing start time.", "required")
        if (
            _parse(body["end"].get("dateTime", ""))
            and _parse(body["start"].get("dateTime", ""))
            and _parse(body["end"]["dateTime"]) < _parse(body["start"]["dateTime"])
        ):
            return _error(400, "The specified time range is empty.", "timeRangeEmpty")
        event_id = body.get("id") or _random_id()
        if not EVENT_ID.match(event_id):
            return _error(400, "Invalid resource id value.", "invalid")
        with STORE.lock:
            if event_id in _events():
                return _error(409, "The requested identifier already exists.", "duplicate")
            event = _make_event(
                event_id, calendar_id, _calendars()[calendar_id]["owner"] or _user(), body, conference=request.args.get("conferenceDataVersion") == "1"
            )
            _events()[event_id] = event
        invited = len(event.get("attendees", [])) if request.args.get("sendUpdates") in ("all", "externalOnly") else 0
        STORE.record_created(
            VENDOR,
            "event",
            event_id,
            f"{event['summary']} ({event['start'].get('dateTime') or event['start'].get('date')}; {invited} invitations sent)",
            event["htmlLink"],
        )
        _notify(event, wait=False)
        failure = _fail_after_create()
        if failure:
            return _error(failure, "Backend Error", "backendError")
        return jsonify(_public(event))

    @api.get("/calendar/v3/calendars/<path:calendar_id>/events/<event_id>")
    def events_get(calendar_id: str, event_id: str):
        calendar_id = _resolve(calendar_id)
        event = _events().get(event_id)
        if event is None or not _visible(event, calendar_id) or _role(calendar_id) not in ("owner", "writer", "reader"):
            return _error(404, "Not Found", "notFound")
        return jsonify(_public(event) if event["status"] != "cancelled" else {k: v for k, v in event.items() if not k.startswith("_")})

    @api.route("/calendar/v3/calendars/<path:calendar_id>/events/<event_id>", methods=["PATCH", "PUT"])
    def events_patch(calendar_id: str, event_id: str):
        calendar_id = _resolve(calendar_id)
        if not _can_write():
            return _error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        event = _events().get(event_id)
        if event is None or event["_calendar"] != calendar_id:
            return _error(404, "Not Found", "notFound")
        if event["status"] == "cancelled":
            return _error(410, "Resource has been deleted", "deleted")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, "Parse Error", "parseError")
        with STORE.lock:
            if request.method == "PUT":
                for key in ("description", "location", "attendees", "reminders", "conferenceData"):
                    event.pop(key, None)
            for key in ("summary", "description", "location", "start", "end", "reminders", "transparency", "visibility"):
                if key in body:
                    event[key] = body[key]
            if "attendees" in body:
                previous = {a["email"]: a for a in event.get("attendees", [])}
                event["attendees"] = [previous.get(str(a.get("email", "")).lower()) or _attendee(a, event["organizer"]["email"]) for a in body["attendees"]]
            if request.args.get("conferenceDataVersion") == "1" and isinstance((body.get("conferenceData") or {}).get("createRequest"), dict):
                _attach_meet(event, body["conferenceData"]["createRequest"])
            event["sequence"] += 1
            _touch(event)
        _notify(event, wait=False)
        return jsonify(_public(event))

    @api.delete("/calendar/v3/calendars/<path:calendar_id>/events/<event_id>")
    def events_delete(calendar_id: str, event_id: str):
        calendar_id = _resolve(calendar_id)
        if not _can_write():
            return _error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        event = _events().get(event_id)
        if event is None or event["_calendar"] != calendar_id:
            return _error(404, "Not Found", "notFound")
        if event["status"] == "cancelled":
            return _error(410, "Resource has been deleted", "deleted")
        with STORE.lock:
            event["status"] = "cancelled"
            event["sequence"] += 1
            _touch(event)
        notified = [a["email"] for a in event.get("attendees", []) if not a.get("resource")] if request.args.get("sendUpdates") == "all" else []
        STORE.record_created(VENDOR, "cancellation", event_id, f"{event.get('summary', '')} cancelled; {len(notified)} cancellation notices sent")
        _notify(event, wait=False)
        return Response(status=204)

    @api.post("/calendar/v3/calendars/<path:calendar_id>/events/watch")
    def events_watch(calendar_id: str):
        calendar_id = _resolve(calendar_id)
        if _role(calendar_id) not in ("owner", "writer", "reader"):
            return _error(404, "Not Found", "notFound")
        body = request.get_json(silent=True) or {}
        if body.get("type") not in ("web_hook", "webhook") or not str(body.get("address", "")).startswith("http") or not body.get("id"):
            return _error(400, "Channel id, type web_hook and an address are required.", "required")
        with STORE.lock:
            if body["id"] in STORE.collection(VENDOR, "channels"):
                return _error(400, f"Channel id {body['id']} not unique", "channelIdNotUnique")
            expiration = int(body.get("expiration") or (time.time() + 7 * 86400) * 1000)
            channel = {
                "kind": "api#channel",
                "id": body["id"],
                "resourceId": hashlib.sha1(f"events:{calendar_id}".encode()).hexdigest()[:27],
                "resourceUri": f"https://www.googleapis.com/calendar/v3/calendars/{calendar_id}/events?alt=json",
                "token": body.get("token", ""),
                "expiration": expiration,
                "address": body["address"],
                "calendar": calendar_id,
                "message_number": 0,
            }
            STORE.collection(VENDOR, "channels")[channel["id"]] = channel
        STORE.record_created(VENDOR, "channel", channel["id"], f"push channel for {calendar_id} → {body['address']}")
        threading.Thread(target=_push, args=(dict(channel), "sync"), daemon=True).start()
        shown = {k: channel[k] for k in ("kind", "id", "resourceId", "resourceUri", "expiration")}
        if channel["token"]:
            shown["token"] = channel["token"]
        shown["expiration"] = str(expiration)
        return jsonify(shown)

    @api.post("/calendar/v3/channels/stop")
    def channels_stop():
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            channel = STORE.collection(VENDOR, "channels").get(body.get("id", ""))
            if channel is None or channel["resourceId"] != body.get("resourceId"):
                return _error(404, f"Channel '{body.get('id')}' not found for project", "notFound")
            del STORE.collection(VENDOR, "channels")[channel["id"]]
        return Response(status=204)

    @api.post("/calendar/v3/freeBusy")
    def free_busy():
        body = request.get_json(silent=True) or {}
        time_min, time_max = _parse(str(body.get("timeMin", ""))), _parse(str(body.get("timeMax", "")))
        if not time_min or not time_max:
            return _error(400, "Missing timeMin or timeMax.", "required")
        if time_max <= time_min:
            return _error(400, "The specified time range is empty.", "timeRangeEmpty")
        calendars: dict[str, Any] = {}
        for item in body.get("items") or []:
            calendar_id = _resolve(str(item.get("id", "")))
            if calendar_id not in _calendars():
                calendars[calendar_id] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            busy = []
            for event in _events().values():
                if event["status"] == "cancelled" or event.get("transparency") == "transparent" or not _visible(event, calendar_id):
                    continue
                mine = next((a for a in event.get("attendees", []) if a["email"] == calendar_id), None)
                if mine and mine.get("responseStatus") == "declined":
                    continue
                start, end = _parse(event["start"].get("dateTime", "")), _parse(event["end"].get("dateTime", ""))
                if start and end and start < time_max and end > time_min:
                    busy.append((max(start, time_min), min(end, time_max)))
            busy.sort()
            calendars[calendar_id] = {"busy": [{"start": _rfc3339(s).replace(".000", ""), "end": _rfc3339(e).replace(".000", "")} for s, e in busy]}
        return jsonify({"kind": "calendar#freeBusy", "timeMin": _rfc3339(time_min), "timeMax": _rfc3339(time_max), "calendars": calendars})

    @api.route("/oauth2/v3/tokeninfo", methods=["GET", "POST"])
    def tokeninfo():
        token = request.values.get("access_token", "")
        grant = token_info(VENDOR, token)
        if grant is None:
            return jsonify({"error": "invalid_token", "error_description": "Invalid Value"}), 400
        expires_in = int(grant["expires_at"] - time.time()) if grant.get("expires_at") else 3599
        body = {
            "azp": grant.get("client_id", ""),
            "aud": grant.get("client_id", ""),
            "scope": " ".join(grant.get("scopes") or []),
            "expires_in": str(expires_in),
        }
        subject = grant.get("subject", "")
        body["email"] = subject if "@" in subject else DEFAULT_USER
        body["email_verified"] = "true"
        return jsonify(body)

    @api.post("/token")
    def jwt_token():
        """Google's token endpoint for the service-account JWT bearer grant (RFC 7523)."""
        if request.form.get("grant_type") != JWT_BEARER:
            return jsonify({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}), 400
        assertion = request.form.get("assertion", "")
        parts = assertion.split(".")
        if len(parts) != 3:
            return jsonify({"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"}), 400
        header, claims = _unb64(parts[0]), _unb64(parts[1])
        if not header or not claims or header.get("alg") != "RS256":
            return jsonify({"error": "invalid_grant", "error_description": "Invalid JWT header: RS256 required"}), 400
        with STORE.lock:
            account = STORE.collection(VENDOR, "service_accounts").get(header.get("kid", "")) or next(
                (a for a in STORE.collection(VENDOR, "service_accounts").values() if a["client_email"] == claims.get("iss")), None
            )
        if account is None or account["client_email"] != claims.get("iss"):
            return jsonify({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}), 400
        public_key = serialization.load_pem_public_key(account["public_key_pem"].encode())
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        try:
            public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return jsonify({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}), 400
        now = time.time()
        if claims.get("aud") != request.base_url:
            return jsonify({"error": "invalid_grant", "error_description": f"Invalid JWT: audience must be {request.base_url}"}), 400
        if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0)) or claims.get("exp", 0) - claims.get("iat", 0) > 3600:
            return jsonify(
                {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."}
            ), 400
        scopes = str(claims.get("scope", "")).split()
        if not scopes:
            return jsonify({"error": "invalid_scope", "error_description": "Empty or missing scope not allowed."}), 400
        subject = claims.get("sub") or account["client_email"]
        token = issue_static_token(VENDOR, f"ya29.sbx-{secrets.token_urlsafe(24)}", scopes=scopes, ttl=3599, subject=subject)
        return jsonify({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # Sandbox controls (no faults, no auth): what a person or an admin console does on Google's side.
    @control.post("/_sandbox/service_accounts")
    def control_service_account():
        """Create a service-account key like the Cloud console does; or register a public key you generated."""
        body = request.get_json(silent=True) or {}
        client_email = body.get("client_email") or f"bastion-{secrets.token_hex(3)}@acme-sandbox.iam.gserviceaccount.com"
        key_id = body.get("private_key_id") or secrets.token_hex(20)
        key_file: dict[str, Any] = {
            "type": "service_account",
            "project_id": "acme-sandbox",
            "private_key_id": key_id,
            "client_email": client_email,
            "client_id": str(uuid.uuid4().int)[:21],
            "token_uri": f"{request.host_url.rstrip('/')}/{VENDOR}/token",
        }
        if body.get("public_key_pem"):
            public_pem = body["public_key_pem"]
        else:
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_file["private_key"] = private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            public_pem = private_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        STORE.collection(VENDOR, "service_accounts")[key_id] = {"client_email": client_email, "public_key_pem": public_pem}
        return jsonify(key_file), 201

    @control.post("/_sandbox/events/<event_id>/respond")
    def control_respond(event_id: str):
        """An attendee accepts or declines: the event changes and watch channels get a push notification."""
        body = request.get_json(silent=True) or {}
        event = _events().get(event_id)
        response_status = body.get("response")
        if event is None or response_status not in ("accepted", "declined", "tentative", "needsAction"):
            return jsonify({"error": "unknown event or response"}), 400
        with STORE.lock:
            attendee = next((a for a in event.get("attendees", []) if a["email"] == str(body.get("email", "")).lower()), None)
            if attendee is None:
                return jsonify({"error": "not an attendee"}), 400
            attendee["responseStatus"] = response_status
            _touch(event)
        return jsonify({"event": _public(event), "deliveries": _notify(event, wait=True)})

    @control.post("/_sandbox/invalidate_sync_tokens")
    def control_invalidate():
        with STORE.lock:
            STORE.collection(VENDOR, "meta")["min_sync_rev"] = _current_rev() + 1
        return jsonify({"ok": True})

    @control.put("/_sandbox/knobs")
    def control_knobs():
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            knobs = STORE.collection(VENDOR, "knobs")
            if "rate_limit_style" in body:
                knobs["rate_limit_style"] = str(body["rate_limit_style"])
            if "fail_after_create" in body:
                knobs["fail_after_create"] = {"count": int(body["fail_after_create"]), "status": int(body.get("status", 503))}
        return jsonify({"ok": True})

    @control.get("/calendar/event")
    def event_page():
        """What a person sees when opening the event link: summary, time, attendees and their answers."""
        eid = request.args.get("eid", "")
        try:
            event_id = base64.urlsafe_b64decode(eid + "=" * (-len(eid) % 4)).decode().split(" ", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return Response("Bad event link", status=400)
        with STORE.lock:
            event = _events().get(event_id)
            if event is None:
                return Response("Event not found", status=404)
            event = json.loads(json.dumps(event))
        return render_template_string(
            "<h1>{{ e.summary }}</h1><p>{{ e.start.dateTime or e.start.date }} → {{ e.end.dateTime or e.end.date }}</p>"
            "<ul>{% for a in e.attendees or [] %}<li>{{ a.email }}: {{ a.responseStatus }}</li>{% endfor %}</ul>",
            e=event,
        )

    return [api, control, oauth_blueprint(OAuthProfile(VENDOR, access_ttl=3599, rotates_refresh_token=False))]
