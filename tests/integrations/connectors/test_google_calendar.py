"""Google Calendar connector against the sandbox over real HTTP: service-account JWT grant, paging, sync tokens, actions, push channels."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from integrations.connectors.base import WebhookRequest
from integrations.connectors.google_calendar import GoogleCalendarConnector, event_id_for
from integrations.errors import ApiRateLimited, AuthRefreshFailed, WebhookRejected
from integrations.http import BearerAuth, HttpClient
from tests.conftest import wait_for

USER = "ava.chen@acme.example"


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"headers": dict(self.headers.items()), "body": body})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/google"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.server.shutdown()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def key_file(sandbox) -> dict:
    return requests.post(f"{sandbox}/google_calendar/_sandbox/service_accounts", json={}, timeout=10).json()


@pytest.fixture
def connector(sandbox, key_file, sleeps) -> GoogleCalendarConnector:
    client = HttpClient(f"{sandbox}/google_calendar/calendar/v3/", sleep=sleeps.append, timeout=(2, 5))
    return GoogleCalendarConnector(client=client, credentials=key_file, config={"subject": USER, "page_size": 4})


def _event_payload(**extra) -> dict:
    return {
        "summary": "Crisis war room",
        "description": "Security breach response",
        "start": "2026-12-01T10:00:00Z",
        "end": "2026-12-01T11:00:00Z",
        "attendees": ["marcus.okafor@acme.example", "priya.raman@acme.example"],
        "conference": True,
        "room_email": "c_warroom@resource.calendar.google.com",
        "reminders_minutes": [10, 30],
        **extra,
    }


def test_service_account_connection_reports_identity_and_scopes(connector, sandbox):
    result = connector.test_connection()
    assert result.ok and result.identity == USER and result.account_id == USER
    assert result.scopes == sorted(
        [
            "https://www.googleapis.com/auth/calendar.events",
            "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
            "https://www.googleapis.com/auth/calendar.freebusy",
        ]
    )
    paths = [r["path"] for r in requests.get(f"{sandbox}/_control/requests", params={"vendor": "google_calendar"}, timeout=5).json()]
    # The JWT bearer grant first, then the identity call, then tokeninfo for the scopes.
    assert paths == ["/google_calendar/token", "/google_calendar/calendar/v3/users/me/calendarList/primary", "/google_calendar/oauth2/v3/tokeninfo"]


def test_jwt_signed_by_an_unregistered_key_is_refused(sandbox, key_file):
    other = requests.post(f"{sandbox}/google_calendar/_sandbox/service_accounts", json={}, timeout=10).json()
    forged = {**key_file, "private_key": other["private_key"]}  # right account, wrong key
    connector = GoogleCalendarConnector(client=HttpClient(f"{sandbox}/google_calendar/calendar/v3/"), credentials=forged)
    with pytest.raises(AuthRefreshFailed, match="Invalid JWT Signature"):
        connector.test_connection()


def test_oauth_bearer_token_connection(sandbox):
    token = requests.post(
        f"{sandbox}/_control/tokens",
        json={"vendor": "google_calendar", "subject": USER, "scopes": ["https://www.googleapis.com/auth/calendar.events"]},
        timeout=5,
    ).json()["token"]
    connector = GoogleCalendarConnector(
        client=HttpClient(f"{sandbox}/google_calendar/calendar/v3/", auth=BearerAuth(token)), credentials={"access_token": token}
    )
    result = connector.test_connection()
    assert result.identity == USER and result.scopes == ["https://www.googleapis.com/auth/calendar.events"]


def test_calendars_page_and_events_sync_incrementally(connector, sandbox):
    calendars, page = [], None
    while True:
        result = connector.read("calendars", page=page)
        calendars.extend(result.records)
        if not result.next_page:
            break
        page = result.next_page
    assert len(calendars) == 24 and calendars[0]["id"] == USER and calendars[0]["primary"] is True
    events, page, pages = [], None, 0
    while True:
        result = connector.read("events", page=page)
        pages += 1
        events.extend(result.records)
        assert result.is_full_scan
        if not result.next_page:
            sync_token = result.cursor
            break
        assert result.cursor is None
        page = result.next_page
    assert pages == 3 and len(events) == 11 and sync_token
    assert "Executive staff meeting" in {e["summary"] for e in events}
    created = connector.perform("create_event", _event_payload(), idempotency_key="war-room")
    connector.perform("cancel_event", {"event_id": events[0]["id"]}, idempotency_key="cancel")
    incremental = connector.read("events", cursor=sync_token)
    assert not incremental.is_full_scan
    assert [e["id"] for e in incremental.records] == [created.external_id] and incremental.deleted_ids == [events[0]["id"]]
    # Google expires sync tokens (410 Gone): the connector falls back to a full resync.
    requests.post(f"{sandbox}/google_calendar/_sandbox/invalidate_sync_tokens", timeout=5)
    resync = connector.read("events", cursor=incremental.cursor)
    assert resync.is_full_scan and len(resync.records) == 4


def test_create_event_shape_and_exactly_once(connector, sandbox):
    first = connector.perform("create_event", _event_payload(), idempotency_key="war-room-1")
    event = first.data
    assert first.created and first.external_id == event_id_for("war-room-1")
    assert event["hangoutLink"].startswith("https://meet.google.com/") and event["conferenceData"]["createRequest"]["status"]["statusCode"] == "success"
    assert {a["email"]: a.get("resource", False) for a in event["attendees"]} == {
        "marcus.okafor@acme.example": False,
        "priya.raman@acme.example": False,
        "c_warroom@resource.calendar.google.com": True,
    }
    assert event["reminders"] == {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}, {"method": "popup", "minutes": 30}]}
    again = connector.perform("create_event", _event_payload(), idempotency_key="war-room-1")
    assert not again.created and again.external_id == first.external_id
    # The event is stored but the answer is a 503: the client retries, Google answers 409 duplicate, the connector fetches it.
    requests.put(f"{sandbox}/google_calendar/_sandbox/knobs", json={"fail_after_create": 1}, timeout=5)
    lost = connector.perform("create_event", _event_payload(summary="Board briefing"), idempotency_key="war-room-2")
    assert not lost.created and lost.data["summary"] == "Board briefing"
    created = requests.get(f"{sandbox}/_control/created", params={"vendor": "google_calendar", "kind": "event"}, timeout=5).json()
    assert len(created) == 2 and "3 invitations sent" in created[0]["summary"]


def test_update_cancel_and_attendee_response_flow_back(connector, sandbox, receiver):
    event = connector.perform("create_event", _event_payload(), idempotency_key="flow")
    channel = connector.watch_events(receiver.url, channel_id="bastion-channel-1", token="channel-secret")
    wait_for(lambda: receiver.requests, timeout=10, message="the sync notification")
    assert receiver.requests[0]["headers"]["X-Goog-Resource-State"] == "sync"
    answer = requests.post(
        f"{sandbox}/google_calendar/_sandbox/events/{event.external_id}/respond",
        json={"email": "marcus.okafor@acme.example", "response": "declined"},
        timeout=10,
    ).json()
    assert [d["status"] for d in answer["deliveries"]] == [200]
    push = receiver.requests[-1]
    request = WebhookRequest("POST", receiver.url, push["headers"], push["body"], datetime.now(UTC))
    GoogleCalendarConnector.verify_webhook(request, secret="channel-secret", config={"watch_channel_id": "bastion-channel-1"})
    [notification] = GoogleCalendarConnector.parse_webhook(request)
    assert notification.action == "sync" and notification.entity == "events" and notification.event_type == "events.exists"
    assert notification.delivery_id == f"bastion-channel-1:{push['headers']['X-Goog-Message-Number']}"
    responses = {a["email"]: a["response"] for a in connector.to_bastion("events", connector.get_event(event.external_id))["attendees"]}
    assert responses == {"marcus.okafor@acme.example": "declined", "priya.raman@acme.example": "needsAction"}
    updated = connector.perform(
        "update_event",
        {"event_id": event.external_id, "summary": "War room (moved)", "start": "2026-12-01T12:00:00Z", "end": "2026-12-01T13:00:00Z"},
        idempotency_key="u",
    )
    assert updated.data["summary"] == "War room (moved)" and updated.data["start"]["dateTime"] == "2026-12-01T12:00:00Z"
    connector.perform("cancel_event", {"event_id": event.external_id}, idempotency_key="c")
    assert connector.perform("cancel_event", {"event_id": event.external_id}, idempotency_key="c").data == {"status": "cancelled"}
    connector.stop_channel(channel["id"], channel["resourceId"])


def test_free_busy_for_people_and_rooms(connector):
    connector.perform("create_event", _event_payload(), idempotency_key="fb")
    busy = connector.free_busy(["marcus.okafor@acme.example", "c_warroom@resource.calendar.google.com"], "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z")
    assert busy == {
        "marcus.okafor@acme.example": [{"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"}],
        "c_warroom@resource.calendar.google.com": [{"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T11:00:00Z"}],
    }


@pytest.mark.parametrize("style,status", [("403", 403), ("429", 429)])
def test_rate_limit_answers_are_retried(connector, sandbox, sleeps, style, status):
    connector.test_connection()  # obtain the access token first, so the faults hit the Calendar API
    requests.put(f"{sandbox}/google_calendar/_sandbox/knobs", json={"rate_limit_style": style}, timeout=5)
    requests.put(f"{sandbox}/_control/faults/google_calendar", json={"rate_limit_next": 1, "retry_after": 2}, timeout=5)
    assert connector.read("calendars").records
    assert len(sleeps) == 1 and 2 <= sleeps[0] < 2.3
    requests.put(f"{sandbox}/_control/faults/google_calendar", json={"rate_limit_next": 10, "retry_after": 2}, timeout=5)
    with pytest.raises(ApiRateLimited) as error:
        connector.read("calendars")
    assert error.value.status == status


def _push(headers: dict) -> WebhookRequest:
    return WebhookRequest("POST", "https://bastion.example/hooks/google", headers, b"", datetime.now(UTC))


def test_push_notification_verification_rules():
    future = format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
    past = format_datetime(datetime.now(UTC) - timedelta(minutes=1), usegmt=True)
    good = {
        "X-Goog-Channel-ID": "ch-1",
        "X-Goog-Channel-Token": "tok",
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "7",
        "X-Goog-Channel-Expiration": future,
    }
    GoogleCalendarConnector.verify_webhook(_push(good), secret="tok", config={"watch_channel_id": "ch-1"})
    cases = [
        ({**good, "X-Goog-Channel-Token": "nope"}, 401),
        ({**good, "X-Goog-Channel-ID": "someone-else"}, 401),
        ({k: v for k, v in good.items() if k != "X-Goog-Channel-Token"}, 400),
        ({k: v for k, v in good.items() if k != "X-Goog-Resource-State"}, 400),
        ({**good, "X-Goog-Channel-Expiration": past}, 409),
    ]
    for headers, status in cases:
        with pytest.raises(WebhookRejected) as rejected:
            GoogleCalendarConnector.verify_webhook(_push(headers), secret="tok", config={"watch_channel_id": "ch-1"})
        assert rejected.value.status == status


def test_event_id_is_valid_base32hex():
    event_id = event_id_for("any key")
    assert 5 <= len(event_id) <= 1024 and set(event_id) <= set("abcdefghijklmnopqrstuv0123456789")
    assert event_id == event_id_for("any key") != event_id_for("other key")


def test_fetch_objects_reads_status_and_responses_and_undo_cancels_with_notices(connector, sandbox):
    event = connector.perform("create_event", _event_payload(), idempotency_key="undo-me")
    fetched = connector.fetch_objects("calendar_event", [event.external_id])
    shape = fetched[event.external_id]
    assert shape.status == "confirmed" and not shape.is_done and shape.details["updated"] and list(fetched) == [event.external_id]
    assert {a["email"]: a["response"] for a in shape.details["attendees"]} == {
        "marcus.okafor@acme.example": "needsAction",
        "priya.raman@acme.example": "needsAction",
    }
    requests.post(
        f"{sandbox}/google_calendar/_sandbox/events/{event.external_id}/respond", json={"email": "priya.raman@acme.example", "response": "accepted"}, timeout=10
    ).raise_for_status()
    assert {a["email"]: a["response"] for a in connector.fetch_objects("meeting", [event.external_id])[event.external_id].details["attendees"]}[
        "priya.raman@acme.example"
    ] == "accepted"

    undone = connector.undo("create_event", external_id=event.external_id, payload={"calendar_id": "primary"}, idempotency_key="u1")
    assert undone.created and undone.data["status"] == "cancelled"
    notices = requests.get(f"{sandbox}/_control/created", params={"vendor": "google_calendar", "kind": "cancellation"}, timeout=5).json()
    assert [n["summary"] for n in notices] == ["Crisis war room cancelled; 2 cancellation notices sent"]  # the room is not e-mailed
    # Undo again: Google answers 410 Gone, which means already undone (and nobody is notified twice).
    again = connector.undo("create_event", external_id=event.external_id, idempotency_key="u1")
    assert not again.created and again.data == {"status": "cancelled"}
    assert len(requests.get(f"{sandbox}/_control/created", params={"vendor": "google_calendar", "kind": "cancellation"}, timeout=5).json()) == 1
    cancelled = connector.fetch_objects("calendar_event", [event.external_id])[event.external_id]
    assert (cancelled.status, cancelled.is_done) == ("cancelled", True)
    with pytest.raises(KeyError):
        connector.undo("update_event", external_id=event.external_id, idempotency_key="u2")
