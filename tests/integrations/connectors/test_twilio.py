"""Twilio SMS connector against the sandbox over real HTTP: Basic auth, form-encoded sends, dedup, 429, signed status callbacks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
import requests

from integrations.connectors.base import WebhookRequest
from integrations.connectors.twilio import TwilioConnector, twilio_signature
from integrations.errors import ApiBadRequest, ApiUnauthorized, WebhookRejected
from integrations.http import HttpClient


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/twilio?integration=42"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.server.shutdown()


@pytest.fixture
def account(sandbox) -> dict:
    return requests.get(f"{sandbox}/twilio/_sandbox/account", timeout=5).json()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connector(sandbox, account, sleeps, receiver) -> TwilioConnector:
    client = HttpClient(f"{sandbox}/twilio", sleep=sleeps.append, timeout=(2, 5))
    config = {"from_number": "+15005550006", "status_callback_url": receiver.url, "page_size": 2}
    return TwilioConnector(client=client, credentials={"account_sid": account["account_sid"], "auth_token": account["auth_token"]}, config=config)


def _created(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "twilio"}, timeout=5).json()


def test_connection_and_wrong_token(connector, sandbox, account):
    result = connector.test_connection()
    assert result.ok and result.account_id == account["account_sid"] and result.identity.startswith("Acme Incident Notifications")
    bad = TwilioConnector(client=HttpClient(f"{sandbox}/twilio"), credentials={"account_sid": account["account_sid"], "auth_token": "0" * 32})
    with pytest.raises(ApiUnauthorized) as error:
        bad.test_connection()
    assert error.value.vendor_code == "20003"


def test_send_sms_exactly_once_and_after_lost_response(connector, sandbox):
    first = connector.perform("send_sms", {"to": "+447700900001", "body": "SEV1: join the war room"}, idempotency_key="sms-1")
    again = connector.perform("send_sms", {"to": "+447700900001", "body": "SEV1: join the war room"}, idempotency_key="sms-1")
    assert first.created and not again.created and again.external_id == first.external_id
    assert first.data["status"] == "queued" and first.data["to"] == "+447700900001" and first.data["from"] == "+15005550006"
    requests.put(f"{sandbox}/twilio/_sandbox/knobs", json={"fail_after_create": 1}, timeout=5)
    lost = connector.perform("send_sms", {"to": "+447700900002", "body": "Board call at 15:00"}, idempotency_key="sms-2")
    assert not lost.created and lost.data["body"] == "Board call at 15:00"
    assert [c["summary"] for c in _created(sandbox)] == ["SMS to +447700900001: SEV1: join the war room", "SMS to +447700900002: Board call at 15:00"]


def test_429_is_safe_to_resend(connector, sandbox, sleeps):
    requests.put(f"{sandbox}/_control/faults/twilio", json={"rate_limit_next": 1, "retry_after": 2}, timeout=5)
    sent = connector.perform("send_sms", {"to": "+447700900003", "body": "Rate limited"}, idempotency_key="rl")
    assert sent.created and len(_created(sandbox)) == 1 and len(sleeps) == 1 and 2 <= sleeps[0] <= 2.3


def test_invalid_number_is_refused_before_any_call(connector, sandbox):
    with pytest.raises(ApiBadRequest, match="E.164"):
        connector.perform("send_sms", {"to": "07700 900001", "body": "x"}, idempotency_key="bad")
    assert _created(sandbox) == []


def test_messages_page_by_next_page_uri(connector):
    for n in range(3):
        connector.perform("send_sms", {"to": f"+44770090010{n}", "body": f"m{n}"}, idempotency_key=f"p{n}")
    first = connector.read("messages")
    second = connector.read("messages", page=first.next_page)
    assert len(first.records) == 2 and len(second.records) == 1 and second.next_page is None and second.cursor
    assert [m["body"] for m in first.records + second.records] == ["m2", "m1", "m0"]
    assert connector.to_bastion("messages", first.records[0])["status"] == "queued"


def test_status_callback_signed_and_parsed(connector, sandbox, receiver, account):
    sms = connector.perform("send_sms", {"to": "+447700900009", "body": "Status please"}, idempotency_key="cb")
    answer = requests.post(f"{sandbox}/twilio/_sandbox/messages/{sms.external_id}/status", json={"status": "delivered"}, timeout=10).json()
    assert answer["callback"]["status"] == 204
    delivered = receiver.requests[-1]
    request = WebhookRequest("POST", receiver.url, delivered["headers"], delivered["body"], datetime.now(UTC))
    TwilioConnector.verify_webhook(request, secret=account["auth_token"])
    [event] = TwilioConnector.parse_webhook(request)
    assert (event.external_id, event.action, event.record["status"], event.record["is_final"]) == (sms.external_id, "status", "delivered", True)
    assert event.delivery_id == delivered["headers"]["I-Twilio-Idempotency-Token"]
    with pytest.raises(WebhookRejected) as wrong:
        TwilioConnector.verify_webhook(request, secret="0" * 32)
    assert wrong.value.status == 401
    tampered = WebhookRequest("POST", receiver.url, delivered["headers"], delivered["body"].replace(b"delivered", b"failed"), datetime.now(UTC))
    with pytest.raises(WebhookRejected):
        TwilioConnector.verify_webhook(tampered, secret=account["auth_token"])
    unsigned = WebhookRequest("POST", receiver.url, {"Content-Type": "application/x-www-form-urlencoded"}, delivered["body"], datetime.now(UTC))
    with pytest.raises(WebhookRejected) as missing:
        TwilioConnector.verify_webhook(unsigned, secret=account["auth_token"])
    assert missing.value.status == 400


def test_signature_matches_twilios_documented_example():
    # The test vector of Twilio's own SDKs (twilio-csharp RequestValidatorTest), computed by Twilio, not by us.
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309", "To": "+18005551212"}
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    body = urlencode(params).encode()
    request = WebhookRequest(
        "POST", "https://mycompany.com:443/myapp.php?foo=1&bar=2", {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}, body, datetime.now(UTC)
    )
    TwilioConnector.verify_webhook(request, secret="12345")  # the default port is tolerated, as in Twilio's SDKs
