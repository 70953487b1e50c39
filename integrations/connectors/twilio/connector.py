"""Twilio SMS connector: send through the Messages API (form-encoded) and verify signed delivery-status callbacks.

Idempotency, honestly: Twilio has no idempotency key. Before sending, the connector lists recent messages to the
same number from the same sender and treats an identical body created within `dedup_window_minutes` (default 60) as
the earlier attempt. The POST itself is never retried blindly after a lost response (5xx/timeout): the connector
searches first. This makes a retry of the same step safe; it also means two *different* steps sending the identical
text to the same number within the window collapse into one SMS. With `append_reference: true` a short reference
derived from the idempotency key is appended to the body and matching is exact instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from integrations.connectors.base import ActionResult, ConnectionTest, FieldInfo, Page
from integrations.connectors.kit.markers import MARKER_PREFIX, idempotency_marker
from integrations.connectors.kit.once import create_once
from integrations.connectors.twilio.client import classify_twilio_response
from integrations.connectors.twilio.manifest import MANIFEST
from integrations.connectors.twilio.webhooks import TwilioWebhooks
from integrations.errors import ApiBadRequest, ApiError
from integrations.http import BasicAuth

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
API = "2010-04-01"
MAX_SEND_ATTEMPTS = 4
MESSAGE_FIELDS = (
    "sid",
    "to",
    "from",
    "body",
    "status",
    "direction",
    "num_segments",
    "error_code",
    "error_message",
    "price",
    "date_created",
    "date_sent",
    "messaging_service_sid",
)


def _reference(idempotency_key: str) -> str:
    """The reference appended to a body with append_reference: "ref " and 8 hex digits of the key's marker."""
    return "ref " + idempotency_marker(idempotency_key, length=8).removeprefix(MARKER_PREFIX)


class TwilioConnector(TwilioWebhooks):
    manifest = MANIFEST

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None and self.client.auth is None and self.credentials.get("auth_token"):
            username = self.credentials.get("api_key_sid") or self.credentials.get("account_sid", "")
            self.client.auth = BasicAuth(username, self.credentials.get("api_key_secret") or self.credentials["auth_token"])

    @property
    def account_sid(self) -> str:
        sid = self.credentials.get("account_sid") or self.config.get("account_sid")
        if not sid:
            raise ApiBadRequest("Twilio needs the Account SID (credential account_sid).")
        return str(sid)

    @property
    def _messages_path(self) -> str:
        return f"{API}/Accounts/{self.account_sid}/Messages.json"

    @classmethod
    def classify_response(cls, response: Any, path: str) -> ApiError | None:
        return classify_twilio_response(response, path)

    def test_connection(self) -> ConnectionTest:
        account = self.client.get(f"{API}/Accounts/{self.account_sid}.json").json()
        active = account.get("status") == "active"
        return ConnectionTest(
            ok=active,
            identity=f"{account.get('friendly_name', '')} ({account.get('sid', '')})",
            scopes=[],  # Twilio auth tokens are account-wide; there are no scopes to report
            detail={"status": account.get("status"), "type": account.get("type")},
            account_id=account.get("sid", ""),
        )

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        if entity != "messages":
            raise KeyError(f"twilio has no entity '{entity}'")
        sample = (self.client.get(self._messages_path, params={"PageSize": 1}).json().get("messages") or [{}])[0]
        names = list(dict.fromkeys([*MESSAGE_FIELDS, *sample.keys()]))
        return [
            FieldInfo(n, n.replace("_", " ").capitalize(), "datetime" if n.startswith("date_") else "string", f"$.{n}", is_required=n in ("sid", "to"))
            for n in names
        ]

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        """Pages follow `next_page_uri`; incremental reads filter `DateSent>=` the day of the last run (day granularity).

        One page per call (the position is stored between the sync engine's tasks), so no HttpClient.paginate_* generator.
        """
        if entity != "messages":
            raise KeyError(f"twilio has no entity '{entity}'")
        position = dict(page or {})
        started = position.get("started") or datetime.now(UTC).date().isoformat()
        if position.get("next"):
            response = self.client.get(position["next"].lstrip("/"))
        else:
            params: dict[str, Any] = {"PageSize": int(self.config.get("page_size", 100))}
            if cursor:
                params["DateSent>"] = cursor
            response = self.client.get(self._messages_path, params=params)
        body = response.json()
        next_uri = body.get("next_page_uri")
        return Page(
            records=body.get("messages", []),
            next_page={"next": next_uri, "started": started} if next_uri else None,
            cursor=None if next_uri else started,
            is_full_scan=not cursor,
        )

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        return str(record["sid"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        value = record.get("date_updated")
        return parsedate_to_datetime(value).isoformat() if value else None

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "external_id": str(record["sid"]),
            "to": record.get("to", ""),
            "body": record.get("body", ""),
            "status": record.get("status", ""),
            "error_code": record.get("error_code"),
            "sent_at": parsedate_to_datetime(record["date_sent"]).isoformat() if record.get("date_sent") else None,
        }

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """send_sms payload → Twilio's PascalCase form fields."""
        to = str(data.get("to", "")).replace(" ", "")
        if not E164.match(to):
            raise ApiBadRequest(f"'{data.get('to')}' is not an E.164 phone number (e.g. +447700900123).")
        body = str(data.get("body", ""))
        if not body or len(body) > 1600:
            raise ApiBadRequest("An SMS body is required and may have at most 1600 characters.")
        form = {"To": to, "Body": body}
        if self.config.get("from_number"):
            form["From"] = self.config["from_number"]
        elif self.config.get("messaging_service_sid"):
            form["MessagingServiceSid"] = self.config["messaging_service_sid"]
        else:
            raise ApiBadRequest("Twilio needs a From number or a Messaging Service SID (config from_number or messaging_service_sid).")
        if self.config.get("status_callback_url"):
            form["StatusCallback"] = self.config["status_callback_url"]
        return form

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """known_new is not used: the recent-message search stays, so the requests are those of every other attempt."""
        if action != "send_sms":
            raise KeyError(f"twilio has no action '{action}'")
        form = self.from_bastion("messages", payload)
        if self.config.get("append_reference"):
            form["Body"] = f"{form['Body']}\n({_reference(idempotency_key)})"

        def find() -> ActionResult | None:
            earlier = self._find_recent(form)
            return ActionResult(external_id=earlier["sid"], data=earlier, created=False) if earlier else None

        def send() -> ActionResult:
            # No client retry: a resent POST whose answer was lost is a second SMS. A 429 (20429) was not processed.
            message = self.client.post(self._messages_path, data=form, retry=False).json()
            return ActionResult(external_id=message["sid"], data=message, created=True)

        return find() or create_once(self.client, send, find, attempts=MAX_SEND_ATTEMPTS, what="twilio.sms")

    def _find_recent(self, form: Mapping[str, str]) -> dict[str, Any] | None:
        window = timedelta(minutes=float(self.config.get("dedup_window_minutes", 60)))
        params: dict[str, Any] = {"To": form["To"], "PageSize": 50}
        if form.get("From"):
            params["From"] = form["From"]
        cutoff = datetime.now(UTC) - window
        for message in self.client.get(self._messages_path, params=params).json().get("messages", []):
            created = parsedate_to_datetime(message["date_created"]) if message.get("date_created") else None
            if created and created < cutoff:
                break  # newest first: nothing older can match
            same_sender = form.get("From") or message.get("messaging_service_sid") == form.get("MessagingServiceSid")
            if message.get("body") == form["Body"] and same_sender and message.get("status") not in ("failed", "canceled"):
                return message
        return None

    def get_message(self, sid: str) -> dict[str, Any]:
        return self.client.get(f"{API}/Accounts/{self.account_sid}/Messages/{sid}.json").json()


CONNECTOR = TwilioConnector
