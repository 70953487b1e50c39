"""PagerDuty connector against the sandbox over real HTTP: auth, paging, incremental reads, exactly-once actions, v3 webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from integrations.connectors.base import WebhookRequest
from integrations.connectors.pagerduty import PagerDutyConnector
from integrations.errors import ApiUnauthorized, WebhookRejected
from integrations.http import HttpClient

FIXTURES = Path(__file__).parent / "fixtures" / "pagerduty"
ACTOR = "amara.nwosu@acme.example"


class Receiver:
    """A real HTTP endpoint on loopback that records what vendors POST to it."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/pagerduty"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.server.shutdown()


@pytest.fixture
def pd_token(sandbox) -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": "pagerduty", "subject": ACTOR}, timeout=5).json()["token"]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connector(sandbox, pd_token, sleeps) -> PagerDutyConnector:
    client = HttpClient(f"{sandbox}/pagerduty", sleep=sleeps.append, timeout=(2, 5))
    return PagerDutyConnector(client=client, credentials={"api_key": pd_token}, config={"from_email": ACTOR, "page_size": 4})


def _created(sandbox: str, kind: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "pagerduty", "kind": kind}, timeout=5).json()


def _service_id(connector: PagerDutyConnector, name: str = "Payments API") -> str:
    return next(s["id"] for s in connector.read("services").records if s["name"] == name)


def test_connection_reports_user_and_abilities(connector, sandbox):
    result = connector.test_connection()
    assert result.ok and result.identity == "Amara Nwosu <amara.nwosu@acme.example>"
    assert "webhook_subscriptions" in result.detail["abilities"] and result.detail["key_type"] == "user"
    requests_log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "pagerduty"}, timeout=5).json()
    assert {r["path"] for r in requests_log} == {"/pagerduty/abilities", "/pagerduty/users/me"}


def test_account_level_key_falls_back_to_abilities(sandbox):
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "pagerduty", "subject": "account"}, timeout=5).json()["token"]
    result = PagerDutyConnector(client=HttpClient(f"{sandbox}/pagerduty"), credentials={"api_key": token}).test_connection()
    assert result.ok and result.identity == "account-level API key" and result.detail["key_type"] == "account"


def test_wrong_token_is_unauthorized(sandbox):
    connector = PagerDutyConnector(client=HttpClient(f"{sandbox}/pagerduty"), credentials={"api_key": "wrong"})
    with pytest.raises(ApiUnauthorized):
        connector.test_connection()


def test_incident_history_pages_then_incremental(connector):
    seen, page, pages = [], None, 0
    while True:
        result = connector.read("incidents", page=page)
        pages += 1
        seen.extend(result.records)
        assert result.is_full_scan
        if result.next_page is None:
            cursor = result.cursor
            break
        assert result.cursor is None  # the cursor is only handed over with the last page
        page = result.next_page
    assert pages == 3 and len(seen) == 9 and len({i["id"] for i in seen}) == 9
    assert [i["status"] for i in seen].count("resolved") == 7
    assert connector.to_bastion("incidents", seen[0]) == {
        "external_id": seen[0]["id"],
        "title": "Elevated card decline rate",
        "status": "resolved",
        "urgency": "high",
        "service": "Payments API",
        "created_at": seen[0]["created_at"],
        "url": f"https://acme.pagerduty.com/incidents/{seen[0]['id']}",
    }
    created = connector.perform(
        "trigger_incident", {"service_id": _service_id(connector), "title": "Data breach", "urgency": "high"}, idempotency_key="inc-new"
    )
    incremental = connector.read("incidents", cursor=cursor)
    assert not incremental.is_full_scan
    assert [i["id"] for i in incremental.records] == [created.external_id]


def test_services_oncalls_and_field_discovery(connector):
    services = connector.read("services")
    assert [s["name"] for s in services.records] == ["Payments API", "Customer Portal", "Identity Platform", "Data Pipeline"]
    oncalls = connector.read("oncalls").records + connector.read("oncalls", page={"offset": 4}).records
    assert len(oncalls) == 8
    first = connector.to_bastion("oncalls", oncalls[0])
    assert first["escalation_policy"] == "Payments On-Call" and first["escalation_level"] == 1 and first["user_name"] == "Yuki Tanaka"
    fields = {f.name: f for f in connector.discover_fields("incidents")}
    assert fields["status"].path == "$.status" and fields["service.summary"].path == "$.service.summary" and fields["created_at"].type == "datetime"


def test_trigger_is_exactly_once_under_retries(connector, sandbox):
    payload = {"service_id": _service_id(connector), "title": "Security breach: customer data", "urgency": "high", "body": "Scope unknown"}
    first = connector.perform("trigger_incident", payload, idempotency_key="step-1")
    again = connector.perform("trigger_incident", payload, idempotency_key="step-1")
    assert first.created and not again.created and again.external_id == first.external_id
    assert first.data["incident_key"].startswith("bastion-") and first.data["body"] == {"type": "incident_body", "details": "Scope unknown"}
    # The vendor commits the incident but the response is lost (502); the client retries and PagerDuty's dedup answers.
    requests.post(f"{sandbox}/pagerduty/_sandbox/fail_after_create", json={"count": 1}, timeout=5)
    lost = connector.perform("trigger_incident", {**payload, "title": "Second"}, idempotency_key="step-2")
    assert not lost.created
    titles = [c["summary"] for c in _created(sandbox, "incident")]
    assert len(titles) == 2 and titles[1].endswith("Second (Payments API)")


def test_trigger_dedups_even_after_resolution(connector, sandbox):
    payload = {"service_id": _service_id(connector), "title": "Outage", "urgency": "low"}
    first = connector.perform("trigger_incident", payload, idempotency_key="resolved-then-retried")
    connector.perform("resolve_incident", {"incident_id": first.external_id}, idempotency_key="r")
    assert connector.perform("trigger_incident", payload, idempotency_key="resolved-then-retried").external_id == first.external_id
    assert len(_created(sandbox, "incident")) == 1


def test_acknowledge_resolve_and_retry_never_reopens(connector):
    incident = connector.perform("trigger_incident", {"service_id": _service_id(connector), "title": "Ack me", "urgency": "high"}, idempotency_key="ack")
    assert connector.perform("acknowledge_incident", {"incident_id": incident.external_id}, idempotency_key="a").data["status"] == "acknowledged"
    assert connector.perform("resolve_incident", {"incident_id": incident.external_id}, idempotency_key="b").data["status"] == "resolved"
    late_retry = connector.perform("acknowledge_incident", {"incident_id": incident.external_id}, idempotency_key="a")
    assert late_retry.data["status"] == "resolved" and not late_retry.created


def test_add_note_once_even_when_response_lost(connector, sandbox):
    incident = connector.perform("trigger_incident", {"service_id": _service_id(connector), "title": "Notes", "urgency": "high"}, idempotency_key="n")
    requests.post(f"{sandbox}/pagerduty/_sandbox/fail_after_create", json={"count": 1}, timeout=5)
    first = connector.perform("add_note", {"incident_id": incident.external_id, "content": "Legal informed"}, idempotency_key="note-1")
    second = connector.perform("add_note", {"incident_id": incident.external_id, "content": "Legal informed"}, idempotency_key="note-1")
    assert first.external_id == second.external_id and not second.created
    notes = connector.client.get(f"incidents/{incident.external_id}/notes").json()["notes"]
    assert len(notes) == 1 and notes[0]["content"].startswith("Legal informed\n\n[ref bastion-")


def test_rate_limit_is_waited_out(connector, sandbox, sleeps):
    requests.put(f"{sandbox}/_control/faults/pagerduty", json={"rate_limit_next": 2, "retry_after": 3}, timeout=5)
    assert len(connector.read("services").records) == 4
    assert len(sleeps) == 2 and all(3 <= s < 3.3 for s in sleeps)


def test_missing_from_header_config_is_a_clear_error(sandbox, pd_token):
    connector = PagerDutyConnector(client=HttpClient(f"{sandbox}/pagerduty"), credentials={"api_key": pd_token})
    with pytest.raises(Exception, match="from_email"):
        connector.perform("trigger_incident", {"service_id": "PNOSUCH", "title": "x", "urgency": "high"}, idempotency_key="k")
    assert _created(sandbox, "incident") == []


def _request(body: bytes, signature: str | None, received_at: datetime | None = None) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-PagerDuty-Signature"] = signature
    return WebhookRequest("POST", "https://bastion.example/hooks/pagerduty", headers, body, received_at or datetime.now(UTC))


def test_v3_webhook_signature_window_and_parse():
    payload = json.loads((FIXTURES / "incident_acknowledged_v3.json").read_text())
    body = json.dumps(payload).encode()
    occurred = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    good = "v1=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    # Two signatures during secret rotation: one valid one is enough.
    PagerDutyConnector.verify_webhook(_request(body, f"v1=deadbeef, {good}", occurred + timedelta(seconds=30)), secret="s3cret")
    with pytest.raises(WebhookRejected) as bad:
        PagerDutyConnector.verify_webhook(_request(body, "v1=" + "0" * 64, occurred), secret="s3cret")
    assert bad.value.status == 401
    with pytest.raises(WebhookRejected) as stale:
        PagerDutyConnector.verify_webhook(_request(body, good, occurred + timedelta(minutes=6)), secret="s3cret")
    assert stale.value.status == 409
    with pytest.raises(WebhookRejected) as missing:
        PagerDutyConnector.verify_webhook(_request(body, None, occurred), secret="s3cret")
    assert missing.value.status == 400
    [event] = PagerDutyConnector.parse_webhook(_request(body, good, occurred))
    assert (event.delivery_id, event.event_type, event.entity, event.external_id, event.action) == (
        "5ac64822-4adc-4fda-ade0-410becf0de4f",
        "incident.acknowledged",
        "incidents",
        "PGR0VU2",
        "status",
    )
    assert event.record["status"] == "acknowledged"


def test_vendor_side_acknowledge_delivers_signed_webhook(connector, sandbox, receiver):
    subscription = connector.register_webhook(url=receiver.url, secret="unused: PagerDuty makes its own")
    secret = subscription["delivery_method"]["secret"]
    incident_id = connector.client.get("incidents", params={"statuses[]": "triggered", "date_range": "all"}).json()["incidents"][0]["id"]
    answer = requests.post(
        f"{sandbox}/pagerduty/_sandbox/incidents/{incident_id}/status", json={"status": "acknowledged", "by": "yuki.tanaka@acme.example"}, timeout=10
    ).json()
    assert [d["status"] for d in answer["deliveries"]] == [200]
    delivered = receiver.requests[-1]
    request = WebhookRequest("POST", receiver.url, delivered["headers"], delivered["body"], datetime.now(UTC))
    PagerDutyConnector.verify_webhook(request, secret=secret)
    [event] = PagerDutyConnector.parse_webhook(request)
    assert event.external_id == incident_id and event.action == "status" and event.record["status"] == "acknowledged"
    with pytest.raises(WebhookRejected) as wrong:
        PagerDutyConnector.verify_webhook(request, secret="another-secret")
    assert wrong.value.status == 401
