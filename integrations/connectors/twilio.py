"""Twilio SMS connector: send through the Messages API (form-encoded) and verify signed delivery-status callbacks.

Idempotency, honestly: Twilio has no idempotency key. Before sending, the connector lists recent messages to the
same number from the same sender and treats an identical body created within `dedup_window_minutes` (default 60) as
the earlier attempt. The POST itself is never retried blindly after a lost response (5xx/timeout): the connector
searches first. This makes a retry of the same step safe; it also means two *different* steps sending the identical
text to the same number within the window collapse into one SMS. With `append_reference: true` a short reference
derived from the idempotency key is appended to the body and matching is exact instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from integrations.connectors.base import (
    ActionResult,
    ActionSpec,
    BaseConnector,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldInfo,
    Page,
    WebhookEvent,
    WebhookRequest,
    WebhookSpec,
)
from integrations.errors import ApiBadRequest, ApiError, ApiRateLimited, WebhookRejected
from integrations.http import BasicAuth

logger = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
API = "2010-04-01"
MAX_SEND_ATTEMPTS = 4
FINAL_STATUSES = ("delivered", "undelivered", "failed", "read", "canceled")
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


def twilio_signature(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """base64(HMAC-SHA1(auth token, full URL + every POST parameter as name+value, sorted by name))."""
    payload = url
    for name in sorted(params):
        values = params[name] if isinstance(params[name], list) else [params[name]]
        for value in sorted(values):
            payload += f"{name}{value}"
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def _url_variants(url: str) -> list[str]:
    """Twilio signs the URL as it called it; proxies may add or drop the default port, so try both (as Twilio's SDKs do)."""
    parts = urlsplit(url)
    variants = [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if parts.port is None and default:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.hostname}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=parts.hostname or "")))
    return variants


def _reference(idempotency_key: str) -> str:
    return "ref " + hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]


class TwilioConnector(BaseConnector):
    manifest = ConnectorManifest(
        key="twilio",
        name="Twilio SMS",
        category="messaging",
        description="Send SMS notifications and follow their delivery status.",
        logo="connectors/twilio.svg",
        auth_methods=("basic",),
        credential_fields=(
            CredentialField("account_sid", "Account SID", is_secret=False),
            CredentialField("auth_token", "Auth token", help_text="Also the key Twilio signs status callbacks with."),
        ),
        config_fields=(
            CredentialField("from_number", "From number", is_secret=False, is_required=False, help_text="E.164, e.g. +15005550006"),
            CredentialField("messaging_service_sid", "Messaging service SID", is_secret=False, is_required=False),
            CredentialField(
                "status_callback_url", "Status callback URL", is_secret=False, is_required=False, help_text="Bastion's webhook URL for this integration."
            ),
        ),
        default_base_url="https://api.twilio.com",
        entities=(EntitySpec("messages", "Messages", "Messages sent from the account, newest first", supports_incremental=True),),
        actions=(
            ActionSpec(
                "send_sms",
                "Send SMS",
                "Send a text message; a recent identical message to the same number is reused (Twilio has no idempotency key).",
                {"to": "E.164 phone", "body": "string (≤1600)"},
            ),
        ),
        webhook=WebhookSpec(
            signature="X-Twilio-Signature: base64 HMAC-SHA1(auth token, URL + sorted POST params); no timestamp, so no replay window", key_field="auth_token"
        ),
        capabilities=("read", "incremental", "actions", "webhooks"),
        docs_url="https://www.twilio.com/docs/messaging/api/message-resource",
    )

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
        """Pages follow `next_page_uri`; incremental reads filter `DateSent>=` the day of the last run (day granularity)."""
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

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        if action != "send_sms":
            raise KeyError(f"twilio has no action '{action}'")
        form = self.from_bastion("messages", payload)
        if self.config.get("append_reference"):
            form["Body"] = f"{form['Body']}\n({_reference(idempotency_key)})"
        last_error: ApiError | None = None
        for _attempt in range(MAX_SEND_ATTEMPTS):
            earlier = self._find_recent(form)
            if earlier:
                return ActionResult(external_id=earlier["sid"], data=earlier, created=False)
            try:
                message = self.client.post(self._messages_path, data=form, retry=False).json()
            except ApiError as error:
                if not error.retryable:
                    raise
                last_error = error
                logger.warning("twilio.send.retry", extra={"error": type(error).__name__, "status": error.status})
                if isinstance(error, ApiRateLimited):
                    # 20429: Twilio did not process the request, waiting and resending is safe.
                    self.client.sleep(min(error.retry_after, self.client.max_inline_wait))
                continue
            return ActionResult(external_id=message["sid"], data=message, created=True)
        assert last_error is not None
        raise last_error

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

    # Webhooks: delivery-status callbacks
    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """`secret` is the account's auth token (the key Twilio signs with). Twilio sends no timestamp: replays are
        caught by the delivery-id dedup (I-Twilio-Idempotency-Token, else MessageSid+status), not by a time window."""
        provided = request.header("X-Twilio-Signature")
        if not provided:
            raise WebhookRejected(400, "missing_signature", "X-Twilio-Signature header is missing.")
        params = _form(request)
        public_url = (config or {}).get("public_url") or request.url
        for url in _url_variants(public_url):
            if hmac.compare_digest(twilio_signature(secret, url, params).encode(), provided.encode()):
                return
        raise WebhookRejected(401, "bad_signature", "Twilio signature does not match.")

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        params = _form(request)
        sid = params.get("MessageSid") or params.get("SmsSid")
        status = params.get("MessageStatus") or params.get("SmsStatus")
        if not sid or not status:
            raise WebhookRejected(400, "invalid_payload", "MessageSid and MessageStatus are required.")
        delivery_id = request.header("I-Twilio-Idempotency-Token") or hashlib.sha256(f"{sid}:{status}:{params.get('ErrorCode', '')}".encode()).hexdigest()
        record = {"status": str(status), "to": params.get("To", ""), "error_code": params.get("ErrorCode") or None, "is_final": status in FINAL_STATUSES}
        return [WebhookEvent(delivery_id, f"message.{status}", "messages", str(sid), "status", record, request.received_at)]


def _form(request: WebhookRequest) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in parse_qsl(request.body.decode("utf-8", errors="replace"), keep_blank_values=True):
        if name in params:
            params[name] = [*params[name], value] if isinstance(params[name], list) else [params[name], value]
        else:
            params[name] = value
    return params


CONNECTOR = TwilioConnector
