"""Outlook calendar over real HTTP against the stand-in: the war-room event with a Teams link and a free room, the time
checked with getSchedule (findMeetingTimes when people are busy), booked once per key, responses read back, cancel on undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from integrations.connectors.microsoft365.calendar import attendee_responses
from integrations.errors import ApiBadRequest
from tests.integrations.connectors.microsoft365.test_connection import app_connector, delegated_connector

GENERAL_COUNSEL = "priya.raman@acme.example"  # the seed makes her and the Boardroom busy tomorrow 09:00-11:00 UTC
ATTENDEES = ["emma.rossi@acme.example", "noah.fischer@acme.example", "omar.haddad@acme.example"]


def tomorrow_at(hour: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def event_payload(start: datetime, minutes: int = 60, **extra) -> dict:
    return {
        "calendar_id": "primary",
        "summary": "War room: data breach",
        "description": "SEV1\n\nWar room: https://bastion.example/runs/42",
        "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "end": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S"),
        "timezone": "UTC",
        "attendees": ATTENDEES,
        "conference": True,
        "reminders_minutes": [10],
        **extra,
    }


def respond(sandbox: str, event_id: str, email: str, response: str) -> None:
    requests.post(f"{sandbox}/microsoft365/_control/events/{event_id}/respond", json={"email": email, "response": response}, timeout=5).raise_for_status()


def test_event_with_teams_link_and_smallest_free_room_booked_once(sandbox):
    calendar = delegated_connector(sandbox)
    payload = event_payload(tomorrow_at(14))
    booked = calendar.perform("create_event", payload, idempotency_key="run-1:book")
    assert booked.created and booked.summary == ""  # everyone free, nothing to report
    assert booked.data["join_url"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert booked.data["location"] == "Crisis Center"  # 4 people: the smallest room that seats them
    assert booked.link_text == f"Meeting {tomorrow_at(14):%a %-d %b}, 14:00, 3 attendees"
    assert booked.tracked.details["attendees"] == [{"email": e, "response": "needsAction"} for e in ATTENDEES]
    again = calendar.perform("create_event", payload, idempotency_key="run-1:book")
    assert not again.created and again.external_id == booked.external_id
    event = calendar.graph("GET", f"{calendar.user_path()}/events/{booked.external_id}")
    assert event["isOnlineMeeting"] and event["reminderMinutesBeforeStart"] == 10
    rooms = [a for a in event["attendees"] if a["type"] == "resource"]
    assert [r["emailAddress"]["address"] for r in rooms] == ["crisiscenter@acme.example"]


def test_busy_attendee_moves_the_meeting_with_find_meeting_times(sandbox):
    calendar = delegated_connector(sandbox)
    payload = event_payload(tomorrow_at(9), attendees=[*ATTENDEES, GENERAL_COUNSEL])
    booked = calendar.perform("create_event", payload, idempotency_key="run-2:book")
    start = datetime.fromisoformat(booked.data["start"])
    if tomorrow_at(9).weekday() < 5:  # the stand-in suggests working hours on working days only
        assert start == tomorrow_at(11) and "moved to 11:00 (findMeetingTimes)" in booked.summary
        assert "1 of 4 attendees busy at 09:00" in booked.summary
    else:
        assert start == tomorrow_at(9) and "kept 09:00" in booked.summary
    again = calendar.perform("create_event", payload, idempotency_key="run-2:book")  # found again where it was moved to
    assert not again.created and again.external_id == booked.external_id
    assert (again.data["start"], again.data["end"], again.link_text) == (booked.data["start"], booked.data["end"], booked.link_text)


def test_application_finds_the_time_from_get_schedule(sandbox):
    calendar = app_connector(sandbox)
    booked = calendar.perform("create_event", event_payload(tomorrow_at(9), 30, attendees=[GENERAL_COUNSEL]), idempotency_key="run-3:book")
    assert datetime.fromisoformat(booked.data["start"]) == tomorrow_at(11)
    assert booked.summary.startswith("moved to 11:00 (getSchedule)")


def test_no_room_free_is_said_and_a_named_busy_room_is_booked_anyway(sandbox):
    calendar = delegated_connector(sandbox)
    crowd = [f"guest{i}@partner.example" for i in range(15)]  # 16 people: only the Boardroom seats them, and it is busy
    booked = calendar.perform("create_event", event_payload(tomorrow_at(9), attendees=crowd, find_time=False), idempotency_key="run-4:book")
    assert booked.data["location"] == "War Room (HQ 3rd floor)"  # no free room seats 16: the largest free one
    named = calendar.perform(
        "create_event", event_payload(tomorrow_at(10), attendees=ATTENDEES, room_email="boardroom@acme.example"), idempotency_key="run-5:book"
    )
    assert "room boardroom@acme.example is busy then" in named.summary


def test_responses_flow_back_and_undo_cancels(sandbox):
    calendar = delegated_connector(sandbox)
    booked = calendar.perform("create_event", event_payload(tomorrow_at(15)), idempotency_key="run-6:book")
    respond(sandbox, booked.external_id, ATTENDEES[0], "accepted")
    respond(sandbox, booked.external_id, ATTENDEES[1], "declined")
    respond(sandbox, booked.external_id, ATTENDEES[2], "tentativelyAccepted")
    state = calendar.fetch_objects("meeting", [booked.external_id])[booked.external_id]
    assert state.status == "scheduled" and not state.is_done and state.details["updated"]
    assert state.details["attendees"] == [
        {"email": ATTENDEES[0], "response": "accepted"},
        {"email": ATTENDEES[1], "response": "declined"},
        {"email": ATTENDEES[2], "response": "tentative"},
    ]
    undone = calendar.undo("create_event", external_id=booked.external_id, reason="Run cancelled", idempotency_key="run-6:undo")
    assert undone.created and undone.tracked.status == "cancelled" and undone.data["notified"] == "all"
    assert calendar.fetch_objects("meeting", [booked.external_id])[booked.external_id].is_done
    twice = calendar.undo("create_event", external_id=booked.external_id, reason="", idempotency_key="run-6:undo")
    assert not twice.created and twice.tracked.is_done


def test_free_busy_reads_busy_intervals(sandbox):
    calendar = app_connector(sandbox)
    day = tomorrow_at(0)
    busy = calendar.free_busy([GENERAL_COUNSEL, ATTENDEES[0]], day.isoformat(), (day + timedelta(days=1)).isoformat())
    assert busy[ATTENDEES[0]] == []
    assert [(datetime.fromisoformat(b["start"]).hour, datetime.fromisoformat(b["end"]).hour) for b in busy[GENERAL_COUNSEL]] == [(9, 11)]


def test_bad_times_are_clear_errors(sandbox):
    calendar = delegated_connector(sandbox)
    with pytest.raises(ApiBadRequest, match="end after it starts"):
        calendar.perform("create_event", event_payload(tomorrow_at(9), -30), idempotency_key="bad-1")
    with pytest.raises(ApiBadRequest, match="not a date"):
        calendar.perform("create_event", {**event_payload(tomorrow_at(9)), "start": "tomorrow"}, idempotency_key="bad-2")
    with pytest.raises(ApiBadRequest, match="time zone"):
        calendar.perform("create_event", {**event_payload(tomorrow_at(9)), "timezone": "Mars/Olympus"}, idempotency_key="bad-3")
    assert attendee_responses({"attendees": [{"type": "resource", "emailAddress": {"address": "room@x"}}]}) == []
