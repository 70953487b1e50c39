"""Outlook calendar: the war-room event with a Teams link and a free room, the time checked first, responses read back, cancel."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from integrations.connectors.base import ActionResult, TrackedObject
from integrations.connectors.google_calendar import meeting_link_text
from integrations.connectors.kit.concurrent import map_concurrently
from integrations.connectors.kit.markers import idempotency_marker
from integrations.connectors.kit.once import create_once
from integrations.connectors.kit.text import single_line
from integrations.connectors.microsoft365.client import GraphBase
from integrations.errors import ApiBadRequest, ApiForbidden, ApiNotFound

logger = logging.getLogger(__name__)

MEETING_KINDS = ("meeting", "calendar_event", "event", "events")
# Graph's responseStatus.response in Google Calendar's words, which the war room reads (details["attendees"]).
RESPONSES = {
    "none": "needsAction",
    "notResponded": "needsAction",
    "organizer": "accepted",
    "accepted": "accepted",
    "tentativelyAccepted": "tentative",
    "declined": "declined",
}
BUSY = frozenset("23")  # getSchedule availabilityView: 0 free, 1 tentative, 2 busy, 3 out of office, 4 working elsewhere
SLOT_MINUTES = 15
SCHEDULES_PER_CALL = 20
SEARCH_WINDOW = timedelta(hours=12)  # how far after the asked start Bastion looks for a time everyone can make
EVENT_SELECT = "id,subject,attendees,isCancelled,webLink,lastModifiedDateTime,start,end,transactionId,onlineMeeting,location"
GETSCHEDULE = "calendar/getSchedule"
FINDMEETINGTIMES = "findMeetingTimes"
ROOMS = "places/microsoft.graph.room"
ROOMS_TTL_SECONDS = 300  # the room list changes when facilities add a room, not between two meetings


def attendee_responses(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each person's response (rooms are resources, not people), in the words the war room reads."""
    return [
        {
            "email": str((a.get("emailAddress") or {}).get("address") or "").lower(),
            "response": RESPONSES.get(str((a.get("status") or {}).get("response")), "needsAction"),
        }
        for a in event.get("attendees") or []
        if a.get("type") != "resource"
    ]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiBadRequest(f"Unknown time zone {name!r} (use an IANA name such as Europe/Paris).") from None


def parse_moment(value: Any, zone: ZoneInfo) -> datetime:
    """An ISO date-time (naive ones are in the event's zone) as UTC."""
    try:
        moment = datetime.fromisoformat(str(value or "").replace("Z", "+00:00"))
    except ValueError:
        raise ApiBadRequest(f"{value!r} is not a date and time (ISO 8601, e.g. 2026-12-07T14:00).") from None
    return (moment.replace(tzinfo=zone) if moment.tzinfo is None else moment).astimezone(UTC)


def graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds"), "timeZone": "UTC"}


def read_graph_time(value: Mapping[str, Any] | None) -> datetime | None:
    """Graph's {dateTime, timeZone} as an aware datetime (Bastion asks in UTC; an IANA zone is honoured, anything else read as UTC)."""
    if not value or not value.get("dateTime"):
        return None
    try:
        moment = datetime.fromisoformat(str(value["dateTime"])[:19])
    except ValueError:
        return None
    try:
        zone = ZoneInfo(str(value.get("timeZone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.replace(tzinfo=zone).astimezone(UTC)


def _emails(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value or "").replace(";", ",").split(",")
    return list(dict.fromkeys(str(e.get("email", "") if isinstance(e, Mapping) else e).strip().lower() for e in items if e))


class CalendarMixin(GraphBase):
    """create_event, free/busy, tracked meetings and their cancellation."""

    def _events_path(self, calendar_id: str = "") -> str:
        if calendar_id and calendar_id != "primary":
            return f"{self.user_path()}/calendars/{calendar_id}/events"
        return f"{self.user_path()}/events"

    # Schedules ---------------------------------------------------------------------------------------------------
    def availability(self, emails: list[str], start: datetime, end: datetime) -> dict[str, str | None]:
        """getSchedule: each address's availabilityView over [start, end) in 15-minute slots (None: Graph could not tell).

        Chunks of SCHEDULES_PER_CALL addresses are asked side by side: people and rooms cost one round trip.
        """
        chunks = [emails[offset : offset + SCHEDULES_PER_CALL] for offset in range(0, len(emails), SCHEDULES_PER_CALL)]

        def ask(chunk: list[str]) -> Any:
            # The published description names the parameters in PascalCase (CSDL), so Bastion sends them that way.
            body = {"Schedules": chunk, "StartTime": graph_time(start), "EndTime": graph_time(end), "AvailabilityViewInterval": SLOT_MINUTES}
            return self.graph("POST", f"{self.user_path()}/{GETSCHEDULE}", json=body)

        self.user_path()  # who asks is resolved once, before the side-by-side calls
        views: dict[str, str | None] = {}
        for answer in map_concurrently(ask, chunks, limit=4):
            if isinstance(answer, Exception):
                raise answer
            for schedule in answer.get("value") or []:
                address = str(schedule.get("scheduleId") or "").lower()
                views[address] = None if schedule.get("error") else str(schedule.get("availabilityView") or "")
        return {email: views.get(email) for email in emails}

    @staticmethod
    def _free(view: str | None, first_slot: int = 0, slots: int | None = None) -> bool:
        if view is None:
            return True  # unknown to Graph (an outside address): nothing says they are busy
        window = view[first_slot : first_slot + slots] if slots is not None else view[first_slot:]
        return not any(mark in BUSY for mark in window)

    def rooms(self) -> list[dict[str, Any]]:
        """The organization's rooms (Place.Read.All), kept by this connector for ROOMS_TTL_SECONDS."""
        cached = self.__dict__.get("_rooms_cache")
        if cached and cached[0] > time.monotonic():
            return cached[1]
        rooms = list(self.iter_items(ROOMS, {"$top": 100}))
        self.__dict__["_rooms_cache"] = (time.monotonic() + ROOMS_TTL_SECONDS, rooms)
        return rooms

    def free_busy(self, calendar_ids: list[str], time_min: str, time_max: str, *, timezone: str = "UTC") -> dict[str, list[dict[str, str]]]:
        """getSchedule: busy intervals per address (people or rooms), like Google's freeBusy."""
        zone = _zone(timezone)
        start, end = parse_moment(time_min, zone), parse_moment(time_max, zone)
        result: dict[str, list[dict[str, str]]] = {}
        for offset in range(0, len(calendar_ids), SCHEDULES_PER_CALL):
            chunk = calendar_ids[offset : offset + SCHEDULES_PER_CALL]
            body = {"Schedules": chunk, "StartTime": graph_time(start), "EndTime": graph_time(end), "AvailabilityViewInterval": SLOT_MINUTES}
            answer = self.graph("POST", f"{self.user_path()}/{GETSCHEDULE}", json=body)
            for schedule in answer.get("value") or []:
                address = str(schedule.get("scheduleId") or "")
                if schedule.get("error"):
                    raise ApiNotFound(f"Microsoft 365 cannot show free/busy for {address}: {(schedule['error'] or {}).get('message', '')}", path=GETSCHEDULE)
                busy = []
                for item in schedule.get("scheduleItems") or []:
                    if item.get("status") in ("busy", "oof", "tentative"):
                        begin, finish = read_graph_time(item.get("start")), read_graph_time(item.get("end"))
                        if begin and finish:
                            busy.append({"start": begin.isoformat(), "end": finish.isoformat()})
                result[address] = busy
        return result

    @staticmethod
    def _rooms_ranked(rooms: list[dict[str, Any]], people: int) -> list[dict[str, Any]]:
        """Rooms that seat everyone, smallest first, then the others, largest first."""
        by_email = {str(r.get("emailAddress") or "").lower(): r for r in rooms if r.get("emailAddress")}

        def rank(room: Mapping[str, Any]) -> tuple[bool, int]:
            seats = int(room.get("capacity") or 0)
            return (seats < people, seats if seats >= people else -seats)

        return sorted(by_email.values(), key=rank)

    def _pick_room(
        self, rooms: list[dict[str, Any]], people: int, start: datetime, end: datetime, views: Mapping[str, str | None] | None = None
    ) -> dict[str, Any] | None:
        """The smallest room that seats everyone and is free, else the largest free one (views: already asked for this time)."""
        fitting = self._rooms_ranked(rooms, people)
        addresses = [str(r["emailAddress"]).lower() for r in fitting]
        if views is None or any(a not in views for a in addresses):
            views = self.availability(addresses, start, end) if fitting else {}
        return next(
            (room for room in fitting if views.get(str(room["emailAddress"]).lower()) is not None and self._free(views[str(room["emailAddress"]).lower()])),
            None,
        )

    def _find_time(self, attendees: list[str], start: datetime, duration: timedelta) -> tuple[datetime | None, str]:
        """A start everyone can make after `start`: findMeetingTimes for a delegate, the getSchedule views for the application."""
        window_end = start + SEARCH_WINDOW + duration
        if not self.is_application:
            body = {
                "attendees": [{"type": "required", "emailAddress": {"address": email}} for email in attendees],
                "timeConstraint": {"activityDomain": "unrestricted", "timeSlots": [{"start": graph_time(start), "end": graph_time(window_end)}]},
                "meetingDuration": f"PT{int(duration.total_seconds() // 60)}M",
                "maxCandidates": 5,
                "isOrganizerOptional": False,
                "returnSuggestionReasons": True,
                "minimumAttendeePercentage": 100,
            }
            try:
                answer = self.graph("POST", f"{self.user_path()}/{FINDMEETINGTIMES}", json=body)
            except ApiForbidden as exc:
                logger.warning("microsoft365.find_meeting_times_refused", extra={"code": exc.vendor_code})
            else:
                starts = sorted(
                    moment
                    for s in answer.get("meetingTimeSuggestions") or []
                    if (moment := read_graph_time((s.get("meetingTimeSlot") or {}).get("start"))) is not None and moment >= start
                )
                return (starts[0] if starts else None), "findMeetingTimes"
        views = self.availability(attendees, start, window_end)
        slots = int(duration.total_seconds() // 60 // SLOT_MINUTES) or 1
        total = int((window_end - start).total_seconds() // 60 // SLOT_MINUTES)
        for first in range(1, total - slots + 1):
            if all(self._free(view, first, slots) for view in views.values()):
                return start + timedelta(minutes=first * SLOT_MINUTES), "getSchedule"
        return None, "getSchedule"

    # The action --------------------------------------------------------------------------------------------------
    def _find_event(self, marker: str, start: datetime, end: datetime) -> dict[str, Any] | None:
        """An event this step already booked (its transactionId is the step's marker), between the asked start and the search window."""
        params = {"startDateTime": start.isoformat(), "endDateTime": (end + SEARCH_WINDOW).isoformat(), "$select": EVENT_SELECT, "$top": 100}
        for event in self.iter_items(f"{self.user_path()}/calendarView", params, max_pages=10):
            if event.get("transactionId") == marker:
                return event
        return None

    def _act_create_event(self, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        zone = _zone(str(payload.get("timezone") or "UTC"))
        start, end = parse_moment(payload.get("start"), zone), parse_moment(payload.get("end"), zone)
        if end <= start:
            raise ApiBadRequest("The meeting must end after it starts.")
        marker = idempotency_marker(idempotency_key)
        attendees = _emails(payload.get("attendees"))
        existing = None if known_new else self._find_event(marker, start, end)
        notes: list[str] = []
        if existing is None:
            duration = end - start
            asked_room = str(payload.get("room_email") or "").strip()
            room_addresses = [] if asked_room else self._room_addresses(len(attendees) + 1, notes)
            views: dict[str, str | None] | None = None
            if payload.get("find_time", True) is not False and attendees:
                # People and candidate rooms in one round: when everyone is free the room comes from the same answer.
                views = self.availability(attendees + [a for a in room_addresses if a not in attendees], start, end)
                busy = [email for email in attendees if not self._free(views.get(email))]
                if busy:
                    views = None  # the time moves: rooms are asked again for the new time
                    found, how = self._find_time(attendees, start, duration)
                    if found is not None:
                        notes.append(
                            f"moved to {found.astimezone(zone):%H:%M} ({how}): {len(busy)} of {len(attendees)} attendees busy at {start.astimezone(zone):%H:%M}"
                        )
                        start, end = found, found + duration
                    else:
                        notes.append(
                            f"kept {start.astimezone(zone):%H:%M} though {len(busy)} of {len(attendees)} attendees are busy: no common free time ({how})"
                        )
            room = self._room_for(payload, len(attendees) + 1, start, end, notes, views=views)
            body = self._event_body(payload, attendees, room, start, end, marker)
            path = self._events_path(str(payload.get("calendar_id") or ""))

            def send() -> dict[str, Any]:
                return self.client.post(self._path(path), json=body, retry=False).json()

            event = create_once(self.client, send, lambda: self._find_event(marker, start, end), what="outlook event")
            created = True
        else:
            event, created = existing, False
            start, end = read_graph_time(event.get("start")) or start, read_graph_time(event.get("end")) or end
        booked = {**payload, "start": start.astimezone(zone).replace(tzinfo=None).isoformat(), "timezone": str(zone)}
        join_url = (event.get("onlineMeeting") or {}).get("joinUrl", "")
        tracked = TrackedObject(
            title=str(payload.get("summary") or ""),
            status="cancelled" if event.get("isCancelled") else "scheduled",
            url=event.get("webLink", ""),
            details={"attendees": [{"email": email, "response": "needsAction"} for email in attendees], "join_url": join_url},
        )
        return ActionResult(
            external_id=str(event["id"]),
            url=event.get("webLink", ""),
            data={"start": start.isoformat(), "end": end.isoformat(), "join_url": join_url, "location": (event.get("location") or {}).get("displayName", "")},
            created=created,
            tracked=tracked,
            link_text=meeting_link_text(booked),
            summary="; ".join(notes),
        )

    def _room_addresses(self, people: int, notes: list[str]) -> list[str]:
        """The candidate rooms' addresses, best first ([] without Place.Read.All: the note says so once)."""
        try:
            rooms = self.rooms()
        except ApiForbidden as exc:
            if "no room: Place.Read.All is not granted" not in notes:
                notes.append("no room: Place.Read.All is not granted")
            logger.warning("microsoft365.rooms_refused", extra={"code": exc.vendor_code})
            return []
        return [str(r["emailAddress"]).lower() for r in self._rooms_ranked(rooms, people)]

    def _room_for(
        self, payload: Mapping[str, Any], people: int, start: datetime, end: datetime, notes: list[str], *, views: Mapping[str, str | None] | None = None
    ) -> dict[str, Any] | None:
        asked = str(payload.get("room_email") or "").strip().lower()
        if asked:
            view = self.availability([asked], start, end).get(asked)
            if not self._free(view):
                notes.append(f"room {asked} is busy then (booked anyway; Outlook lets the room decline)")
            return {"emailAddress": asked, "displayName": asked}
        try:
            rooms = self.rooms()
        except ApiForbidden:
            return None  # _room_addresses noted it
        room = self._pick_room(rooms, people, start, end, views) if rooms else None
        if rooms and room is None:
            notes.append(f"no room: all {len(rooms)} rooms are busy")
        return room

    def _event_body(
        self, payload: Mapping[str, Any], attendees: list[str], room: Mapping[str, Any] | None, start: datetime, end: datetime, marker: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "subject": single_line(str(payload.get("summary") or "War room"))[:255],
            "body": {"contentType": "text", "content": str(payload.get("description") or "")},
            "start": graph_time(start),
            "end": graph_time(end),
            "attendees": [{"type": "required", "emailAddress": {"address": email}} for email in attendees],
            "transactionId": marker,  # Graph's own guard against a retried POST, and Bastion's marker to find it again
            "allowNewTimeProposals": True,
        }
        if room:
            address, name = str(room["emailAddress"]), str(room.get("displayName") or room["emailAddress"])
            body["attendees"].append({"type": "resource", "emailAddress": {"address": address, "name": name}})
            body["location"] = {"displayName": name, "locationEmailAddress": address, "locationType": "conferenceRoom"}
        if payload.get("conference"):
            body["isOnlineMeeting"] = True
            body["onlineMeetingProvider"] = "teamsForBusiness"
        reminders = [int(m) for m in payload.get("reminders_minutes") or [] if str(m).strip().lstrip("-").isdigit()]
        if reminders:
            body["isReminderOn"] = True
            body["reminderMinutesBeforeStart"] = max(0, min(reminders))
        return body

    # Tracked meetings --------------------------------------------------------------------------------------------
    def fetch_meetings(self, external_ids: list[str]) -> dict[str, TrackedObject]:
        """The event with each attendee's response; a cancelled or deleted one is done."""
        found: dict[str, TrackedObject] = {}
        for event_id in dict.fromkeys(i for i in external_ids if i):
            try:
                event = self.graph("GET", f"{self.user_path()}/events/{event_id}", params={"$select": EVENT_SELECT})
            except ApiNotFound:
                found[event_id] = TrackedObject(status="cancelled", is_done=True)
                continue
            cancelled = bool(event.get("isCancelled"))
            details: dict[str, Any] = {"attendees": attendee_responses(event)}
            if event.get("lastModifiedDateTime"):
                details["updated"] = event["lastModifiedDateTime"]
            found[event_id] = TrackedObject(
                title=str(event.get("subject") or ""),
                status="cancelled" if cancelled else "scheduled",
                is_done=cancelled,
                url=event.get("webLink", ""),
                details=details,
            )
        return found

    def cancel_event(self, event_id: str, reason: str) -> ActionResult:
        """Cancel: Outlook sends every attendee the cancellation (an event already gone counts as cancelled)."""
        comment = single_line(reason or "Cancelled by Bastion: the playbook run was undone.")[:1000]
        try:
            self.graph("POST", f"{self.user_path()}/events/{event_id}/cancel", json={"Comment": comment})
        except ApiNotFound:
            return ActionResult(external_id=event_id, data={"status": "cancelled"}, created=False, tracked=TrackedObject(status="cancelled", is_done=True))
        return ActionResult(
            external_id=event_id, data={"status": "cancelled", "notified": "all"}, created=True, tracked=TrackedObject(status="cancelled", is_done=True)
        )
