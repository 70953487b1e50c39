"""Google Calendar connector: calendars, events (sync tokens), free/busy, event actions with Meet and rooms, push channels."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from integrations.connectors.base import (
    ActionResult,
    BaseConnector,
    ConnectionTest,
    FieldInfo,
    Page,
    TrackedObject,
    WebhookEvent,
    WebhookRequest,
)
from integrations.connectors.entities import BastionEvent
from integrations.connectors.google_calendar.auth import ServiceAccountAuth
from integrations.connectors.google_calendar.client import classify_google_response
from integrations.connectors.google_calendar.manifest import EVENT_FIELDS, MANIFEST, PUSH_STATES, SCOPES
from integrations.connectors.kit.markers import idempotency_marker
from integrations.connectors.kit.signatures import equal_secret
from integrations.errors import ApiConflict, ApiError, ApiNotFound, WebhookRejected
from integrations.http import HttpClient

logger = logging.getLogger(__name__)

EVENT_KINDS = ("meeting", "calendar_event", "event", "events")  # TrackedKind.MEETING, and the war room's older task kinds
DONE_STATUSES = ("cancelled",)  # a meeting is over for the war room once cancelled (the poll stops after it ends)


def event_id_for(idempotency_key: str) -> str:
    """A valid client-supplied Google event id (base32hex: a-v, 0-9; 5-1024 chars) derived from the idempotency key."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return "bastion" + base64.b32hexencode(digest).decode().rstrip("=").lower()


def attendee_responses(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each person's response (rooms are resources, not people)."""
    return [{"email": a.get("email", ""), "response": a.get("responseStatus", "needsAction")} for a in event.get("attendees", []) if not a.get("resource")]


def meeting_link_text(payload: Mapping[str, Any]) -> str:
    """'Meeting Mon 7 Dec, 14:00, 5 attendees', the start read in the event's own time zone."""
    try:
        zone = ZoneInfo(str(payload.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    when = ""
    start = payload.get("start")
    if isinstance(start, str) and start:
        try:
            moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            moment = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
            when = moment.strftime("%a %-d %b, %H:%M")
    attendees = len(payload.get("attendees") or [])
    return "Meeting " + (when or "booked") + (f", {attendees} attendees" if attendees else "")


class GoogleCalendarConnector(BaseConnector):
    """Calendar API v3 over OAuth 2.0 or a service account; push channels instead of signed webhooks."""

    manifest = MANIFEST

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        return classify_google_response(response, path)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.service_account: ServiceAccountAuth | None = None
        key = self.credentials.get("service_account_key") or (self.credentials if self.credentials.get("type") == "service_account" else None)
        if isinstance(key, str):
            key = json.loads(key)
        if self.client is not None and self.client.auth is None and key:
            token_client = HttpClient(
                key.get("token_uri", "https://oauth2.googleapis.com/token"),
                timeout=self.client.timeout,
                recorder=self.client.recorder,
                url_guard=self.client.url_guard,
                connector_key=self.client.connector_key,
                session=self.client.session,
                max_retries=2,
                sleep=self.client.sleep,
                classify=classify_google_response,
            )
            self.service_account = ServiceAccountAuth(key, scopes=SCOPES, subject=self.config.get("subject", ""), token_client=token_client)
            self.client.auth = self.service_account

    @property
    def calendar_id(self) -> str:
        return self.config.get("calendar_id") or "primary"

    @staticmethod
    def _cal(calendar_id: str) -> str:
        return quote(calendar_id, safe="")

    # Connection
    def test_connection(self) -> ConnectionTest:
        entry = self.client.get(f"users/me/calendarList/{self._cal(self.calendar_id)}").json()
        scopes = self._granted_scopes()
        return ConnectionTest(
            ok=True,
            identity=entry.get("id", ""),
            scopes=scopes,
            detail={"calendar": entry.get("summary", ""), "time_zone": entry.get("timeZone", ""), "access_role": entry.get("accessRole", "")},
            account_id=entry.get("id", ""),
        )

    def _granted_scopes(self) -> list[str]:
        """Ask Google's tokeninfo which scopes the token carries (falls back to what the OAuth grant recorded)."""
        token = self.service_account.token if self.service_account else self.credentials.get("access_token", "")
        stored = self.credentials.get("scope") or ""
        if token:
            try:
                # POST, not GET: a token in the query string would end up in HTTP debug logs and proxies.
                info = self.client.post("../../oauth2/v3/tokeninfo", data={"access_token": token}).json()
                return sorted(str(info.get("scope", "")).split())
            except ApiError as error:
                logger.warning("google_calendar.tokeninfo_failed", extra={"error": str(error)})
        return sorted(stored.split()) if isinstance(stored, str) else sorted(stored)

    # Reading
    def discover_fields(self, entity: str) -> list[FieldInfo]:
        if entity == "events":
            sample = self.client.get(f"calendars/{self._cal(self.calendar_id)}/events", params={"maxResults": 1}).json().get("items") or [{}]
            known = {f.name for f in EVENT_FIELDS}
            extra = [FieldInfo(k, k, "object" if isinstance(v, dict) else "string", f"$.{k}") for k, v in sample[0].items() if k not in known]
            return list(EVENT_FIELDS) + extra
        if entity == "calendars":
            sample = self.client.get("users/me/calendarList", params={"maxResults": 1}).json().get("items") or [{}]
            return [FieldInfo(k, k, "boolean" if isinstance(v, bool) else "string", f"$.{k}") for k, v in sample[0].items()]
        raise KeyError(f"google_calendar has no entity '{entity}'")

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        page_size = int(self.config.get("page_size", 250))
        position = dict(page or {})
        if entity == "calendars":
            params: dict[str, Any] = {"maxResults": min(page_size, 250)}
            if position.get("pageToken"):
                params["pageToken"] = position["pageToken"]
            body = self.client.get("users/me/calendarList", params=params).json()
            next_token = body.get("nextPageToken")
            return Page(records=body.get("items", []), next_page={"pageToken": next_token} if next_token else None)
        if entity != "events":
            raise KeyError(f"google_calendar has no entity '{entity}'")
        params = {"maxResults": page_size}
        if position.get("pageToken"):
            params["pageToken"] = position["pageToken"]
            is_full = bool(position.get("full"))
        elif cursor:
            params["syncToken"] = cursor
            is_full = False
        else:
            is_full = True
        try:
            body = self.client.get(f"calendars/{self._cal(self.calendar_id)}/events", params=params).json()
        except ApiNotFound as error:
            if error.status == 410 and "syncToken" in params:
                # Google expired the sync token: the documented answer is a full resync.
                logger.info("google_calendar.sync_token_expired", extra={"calendar": self.calendar_id})
                return self.read(entity, cursor=None, page=None)
            raise
        items = body.get("items", [])
        records = [e for e in items if e.get("status") != "cancelled"] if not is_full else items
        deleted = [e["id"] for e in items if e.get("status") == "cancelled"] if not is_full else []
        next_token = body.get("nextPageToken")
        return Page(
            records=records,
            next_page={"pageToken": next_token, "full": is_full} if next_token else None,
            cursor=None if next_token else body.get("nextSyncToken"),
            is_full_scan=is_full,
            deleted_ids=deleted,
        )

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return record.get("updated")

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        if entity == "events":
            start, end = record.get("start") or {}, record.get("end") or {}
            event = BastionEvent(
                external_id=str(record["id"]),
                summary=record.get("summary", ""),
                start=start.get("dateTime") or start.get("date", ""),
                end=end.get("dateTime") or end.get("date", ""),
                attendees=attendee_responses(record),
                url=record.get("htmlLink", ""),
            )
            return dict(event)
        if entity == "calendars":
            return {
                "external_id": str(record["id"]),
                "name": record.get("summaryOverride") or record.get("summary", ""),
                "time_zone": record.get("timeZone", ""),
                "access_role": record.get("accessRole", ""),
                "is_primary": bool(record.get("primary")),
            }
        return dict(record)

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Bastion event (the create_event payload) → Google Event resource."""
        if entity != "events":
            return dict(data)
        timezone = data.get("timezone") or "UTC"
        event: dict[str, Any] = {}
        for key in ("summary", "description", "location"):
            if key in data:
                event[key] = data[key]
        for edge in ("start", "end"):
            if data.get(edge):
                event[edge] = {"dateTime": data[edge], "timeZone": timezone}
        if "attendees" in data or data.get("room_email"):
            event["attendees"] = [{"email": email} for email in data.get("attendees") or []]
            if data.get("room_email"):
                event["attendees"].append({"email": data["room_email"], "resource": True})
        if data.get("reminders_minutes") is not None:
            event["reminders"] = {"useDefault": False, "overrides": [{"method": "popup", "minutes": int(m)} for m in data["reminders_minutes"]]}
        return event

    # Acting
    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        raw_calendar = payload.get("calendar_id") or self.calendar_id
        calendar = self._cal(raw_calendar)
        if action == "create_event":
            return self._create_event(raw_calendar, payload, idempotency_key)
        if action == "update_event":
            body = self.from_bastion("events", {k: v for k, v in payload.items() if k not in ("event_id", "calendar_id", "conference")})
            params = {"sendUpdates": "all"}
            if payload.get("conference"):
                body["conferenceData"] = {
                    "createRequest": {
                        "requestId": idempotency_marker(idempotency_key),
                        "conferenceSolutionKey": {"type": "hangoutsMeet"},
                    }
                }
                params["conferenceDataVersion"] = "1"
            event = self.client.patch(f"calendars/{calendar}/events/{payload['event_id']}", params=params, json=body).json()
            return ActionResult(external_id=event["id"], url=event.get("htmlLink", ""), data=event, created=False)
        if action == "cancel_event":
            try:
                self.client.delete(f"calendars/{calendar}/events/{payload['event_id']}", params={"sendUpdates": "all"})
            except ApiNotFound as error:
                if error.status != 410:
                    raise
                # 410 Gone: already cancelled by an earlier attempt.
            return ActionResult(external_id=payload["event_id"], data={"status": "cancelled"}, created=False)
        raise KeyError(f"google_calendar has no action '{action}'")

    def _create_event(self, raw_calendar: str, payload: Mapping[str, Any], idempotency_key: str) -> ActionResult:
        event_id = event_id_for(idempotency_key)
        body = {"id": event_id, **self.from_bastion("events", payload)}
        params = {"sendUpdates": "all"}
        if payload.get("conference"):
            body["conferenceData"] = {"createRequest": {"requestId": idempotency_marker(idempotency_key), "conferenceSolutionKey": {"type": "hangoutsMeet"}}}
            params["conferenceDataVersion"] = "1"
        try:
            event = self.client.post(f"calendars/{self._cal(raw_calendar)}/events", params=params, json=body).json()
            created = True
        except ApiConflict:
            # The id already exists: an earlier attempt created it (perhaps its response was lost).
            event = self.get_event(event_id, calendar_id=raw_calendar)
            created = False
        url = event.get("htmlLink", "")
        attendees = [str(email) for email in payload.get("attendees") or []]
        tracked = TrackedObject(
            title=str(payload.get("summary") or ""),
            status=str(event.get("status") or "open"),
            url=url,
            details={"attendees": [{"email": email, "response": "needsAction"} for email in attendees]},
        )
        return ActionResult(external_id=event["id"], url=url, data=event, created=created, tracked=tracked, link_text=meeting_link_text(payload))

    def get_event(self, event_id: str, *, calendar_id: str | None = None) -> dict[str, Any]:
        """events.get: the event with each attendee's responseStatus (how acceptances flow back)."""
        return self.client.get(f"calendars/{self._cal(calendar_id or self.calendar_id)}/events/{event_id}").json()

    # Tracked objects: status polling and undo
    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        """events.get per meeting (the polling backstop): its status and attendee responses; a cancelled one is done."""
        if kind not in EVENT_KINDS:
            raise KeyError(f"google_calendar cannot read '{kind}' objects")
        found: dict[str, TrackedObject] = {}
        for external_id in dict.fromkeys(i for i in external_ids if i):
            try:
                event = self.get_event(external_id)
            except ApiNotFound as error:
                if error.status != 410:
                    raise
                found[external_id] = TrackedObject(status="cancelled", is_done=True)
                continue
            status = str(event.get("status") or "confirmed")
            details: dict[str, Any] = {"attendees": attendee_responses(event)}
            if event.get("updated"):
                details["updated"] = event["updated"]  # the vendor's own time: a poll older than what a webhook applied changes nothing
            found[external_id] = TrackedObject(status=status, is_done=status in DONE_STATUSES, url=event.get("htmlLink", ""), details=details)
        return found

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        """Undo create_event: events.delete with sendUpdates=all, so every attendee gets Google's cancellation (410: already cancelled)."""
        if action != "create_event":
            raise KeyError(f"google_calendar cannot undo '{action}'")
        calendar = self._cal(str((payload or {}).get("calendar_id") or self.calendar_id))
        try:
            self.client.delete(f"calendars/{calendar}/events/{external_id}", params={"sendUpdates": "all"})
        except ApiNotFound as error:
            if error.status != 410:
                raise
            return ActionResult(external_id=external_id, data={"status": "cancelled"}, created=False, tracked=TrackedObject(status="cancelled", is_done=True))
        return ActionResult(
            external_id=external_id, data={"status": "cancelled", "notified": "all"}, created=True, tracked=TrackedObject(status="cancelled", is_done=True)
        )

    def free_busy(self, calendar_ids: list[str], time_min: str, time_max: str, *, timezone: str = "UTC") -> dict[str, list[dict[str, str]]]:
        """freebusy.query: busy intervals per calendar (people or rooms); unknown calendars raise ApiNotFound."""
        body = {"timeMin": time_min, "timeMax": time_max, "timeZone": timezone, "items": [{"id": cid} for cid in calendar_ids]}
        answer = self.client.post("freeBusy", json=body).json().get("calendars", {})
        result: dict[str, list[dict[str, str]]] = {}
        for calendar_id in calendar_ids:
            entry = answer.get(calendar_id) or {}
            if entry.get("errors"):
                raise ApiNotFound(f"Google cannot show free/busy for {calendar_id}: {entry['errors'][0].get('reason', '')}", path="freeBusy")
            result[calendar_id] = entry.get("busy", [])
        return result

    def watch_events(self, address: str, *, channel_id: str, token: str, ttl_seconds: int | None = None) -> dict[str, Any]:
        """events.watch: open a push channel; `token` comes back in every notification (store it as the webhook secret)."""
        body: dict[str, Any] = {"id": channel_id, "type": "web_hook", "address": address, "token": token}
        if ttl_seconds:
            body["expiration"] = int((time.time() + ttl_seconds) * 1000)
        return self.client.post(f"calendars/{self._cal(self.calendar_id)}/events/watch", json=body).json()

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        self.client.post("channels/stop", json={"id": channel_id, "resourceId": resource_id})

    # Webhooks (push notifications: no HMAC, the channel token is the shared secret)
    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        channel_id = request.header("X-Goog-Channel-ID")
        state = request.header("X-Goog-Resource-State")
        token = request.header("X-Goog-Channel-Token")
        if not channel_id or not state or token is None:
            raise WebhookRejected(400, "missing_headers", "X-Goog-Channel-ID, X-Goog-Channel-Token and X-Goog-Resource-State are required.")
        if not equal_secret(token, secret):
            raise WebhookRejected(401, "bad_token", "X-Goog-Channel-Token does not match the channel token.")
        expected_channel = (config or {}).get("watch_channel_id")
        if expected_channel and not equal_secret(channel_id, str(expected_channel)):
            raise WebhookRejected(401, "unknown_channel", "X-Goog-Channel-ID is not the channel Bastion opened.")
        if state not in PUSH_STATES:
            raise WebhookRejected(400, "bad_state", f"Unknown X-Goog-Resource-State {state!r}.")
        expiration = request.header("X-Goog-Channel-Expiration")
        if expiration:
            try:
                expires_at = parsedate_to_datetime(expiration)
            except (TypeError, ValueError):
                raise WebhookRejected(400, "bad_expiration", "X-Goog-Channel-Expiration is unreadable.")
            if expires_at < request.received_at:
                raise WebhookRejected(409, "channel_expired", "The push channel has expired; notifications on it are stale.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        channel_id = request.header("X-Goog-Channel-ID") or ""
        state = request.header("X-Goog-Resource-State") or ""
        number = request.header("X-Goog-Message-Number") or hashlib.sha256(request.body + state.encode()).hexdigest()[:16]
        # Google sends no payload: every notification means "something changed, re-list with the sync token".
        return [
            WebhookEvent(
                delivery_id=f"{channel_id}:{number}",
                event_type=f"events.{state}",
                entity="events",
                external_id=request.header("X-Goog-Resource-ID") or "",
                action="sync",
                record={"resource_state": state, "channel_id": channel_id, "resource_uri": request.header("X-Goog-Resource-URI") or ""},
                occurred_at=request.received_at if isinstance(request.received_at, datetime) else None,
            )
        ]


CONNECTOR = GoogleCalendarConnector
