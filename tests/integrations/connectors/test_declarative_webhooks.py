"""Webhooks declared in a spec: HMAC over a templated string with a timestamp window, hostile deliveries, handshakes, events."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest

from integrations.connectors.base import Capability, WebhookRequest
from integrations.connectors.declarative import compile_spec
from integrations.connectors.declarative.webhooks import webhook_signature
from integrations.errors import WebhookRejected

SECRET = "whsec-3f9a"
SPEC = {
    "spec_version": 1,
    "key": "widgets_test",
    "name": "Widgets",
    "category": "ticketing",
    "description": "Signed deliveries.",
    "entities": {
        "tickets": {
            "name": "Tickets",
            "read": {"request": {"path": "tickets"}},
            "tracked": {"title": "{{ record.title }}", "status": "{{ record.state }}", "done": "record.state in ['closed', 'withdrawn']"},
        }
    },
    "webhooks": {
        "event_types": ["ticket.updated", "ticket.deleted"],
        "description": "HMAC-SHA256 of '<timestamp>.<body>' in Widgets-Signature (v1=, several during a rotation)",
        "routes_by_account": True,
        "account_id": "{{ body.account }}",
        "signature": {
            "header": "Widgets-Signature",
            "algorithm": "sha256",
            "encoding": "hex",
            "prefix": "v1=",
            "separator": ",",
            "signed": "{{ timestamp }}.{{ raw_body }}",
            "timestamp": {"header": "Widgets-Timestamp", "unit": "s", "window": 300},
        },
        "reject": [{"if": "body.events == none and body.challenge == none", "status": 400, "message": "A delivery lists its events."}],
        "handshake": [{"when": "body.challenge", "json": {"challenge": "{{ body.challenge }}"}}],
        "events": [
            {
                "many": "$.events",
                "type": "{{ item.type }}",
                "entity": "tickets",
                "external_id": "{{ item.ticket.id }}",
                "action": "{{ 'delete' if item.type == 'ticket.deleted' else 'status' }}",
                "record": "{{ item.ticket }}",
                "delivery_id": "{{ item.id }}",
                "occurred_at": "{{ item.at }}",
            }
        ],
    },
}
WIDGETS = compile_spec(SPEC)


def delivery(body: dict, *, stamp: float | None = None, secret: str = SECRET, header: str | None = None, extra: str = "") -> WebhookRequest:
    raw = json.dumps(body).encode()
    stamp = time.time() if stamp is None else stamp
    signature = "v1=" + hmac.new(secret.encode(), f"{int(stamp)}.".encode() + raw, hashlib.sha256).hexdigest()
    headers = {"Widgets-Timestamp": str(int(stamp)), "Widgets-Signature": header if header is not None else (extra + signature)}
    return WebhookRequest("POST", "https://bastion.test/api/webhooks/by-account/widgets_test", headers, raw, datetime.now(UTC))


BODY = {
    "account": "acc-77",
    "events": [
        {"id": "ev1", "type": "ticket.updated", "at": "2024-05-01T10:00:00Z", "ticket": {"id": "T-1", "title": "Printer", "state": "closed"}},
        {"id": "ev2", "type": "ticket.deleted", "at": "2024-05-01T10:01:00Z", "ticket": {"id": "T-2", "title": "Lift", "state": "open"}},
    ],
}


def test_a_signed_fresh_delivery_is_verified_and_mapped_to_events():
    request = delivery(BODY)
    WIDGETS.verify_webhook(request, secret=SECRET)
    assert request.header("Widgets-Signature") == webhook_signature(WIDGETS, SECRET, request)
    assert WIDGETS.webhook_account_id(request) == "acc-77"
    first, second = WIDGETS.parse_webhook(request)
    assert (first.delivery_id, first.event_type, first.entity, first.external_id, first.action) == ("ev1", "ticket.updated", "tickets", "T-1", "status")
    assert first.occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC) and (second.action, second.external_id) == ("delete", "T-2")
    state = WIDGETS.tracked_state("tickets", first.record, config={})
    assert (state.title, state.status, state.is_done) == ("Printer", "closed", True)
    assert {Capability.WEBHOOKS, Capability.STATUS_WEBHOOKS} <= set(WIDGETS.manifest.capabilities) and WIDGETS.manifest.webhook.routes_by_account


def test_one_of_several_signatures_during_a_rotation_is_enough():
    WIDGETS.verify_webhook(delivery(BODY, extra="v1=" + "0" * 64 + ","), secret=SECRET)


@pytest.mark.parametrize(
    ("request_", "status", "code"),
    [
        (delivery(BODY, secret="someone-else"), 401, "bad_signature"),
        (delivery(BODY, stamp=time.time() - 3600), 409, "stale_timestamp"),
        (delivery(BODY, stamp=time.time() + 3600), 409, "stale_timestamp"),
        (delivery(BODY, header=""), 400, "missing_signature"),
    ],
    ids=["wrong-signature", "stale", "from-the-future", "missing-header"],
)
def test_hostile_deliveries_are_refused_with_a_4xx(request_, status, code):
    with pytest.raises(WebhookRejected) as refused:
        WIDGETS.verify_webhook(request_, secret=SECRET)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_a_tampered_body_an_unreadable_or_missing_timestamp_and_an_empty_secret_are_refused():
    genuine = delivery(BODY)
    tampered = WebhookRequest("POST", genuine.url, genuine.headers, genuine.body.replace(b"closed", b"open  "), genuine.received_at)
    unreadable = WebhookRequest("POST", genuine.url, {**genuine.headers, "Widgets-Timestamp": "yesterday"}, genuine.body, genuine.received_at)
    missing = WebhookRequest("POST", genuine.url, {"Widgets-Signature": genuine.header("Widgets-Signature")}, genuine.body, genuine.received_at)
    for request, status in ((tampered, 401), (unreadable, 400), (missing, 400)):
        with pytest.raises(WebhookRejected) as refused:
            WIDGETS.verify_webhook(request, secret=SECRET)
        assert refused.value.status == status
    with pytest.raises(WebhookRejected) as no_secret:
        WIDGETS.verify_webhook(genuine, secret="")
    assert no_secret.value.status == 401


def test_handshakes_are_answered_and_a_delivery_without_events_is_a_400():
    [handshake] = WIDGETS.parse_webhook(delivery({"challenge": "c-42"}))
    assert handshake.challenge_response == {"challenge": "c-42"} and handshake.action == "ignore"
    with pytest.raises(WebhookRejected) as refused:
        WIDGETS.parse_webhook(delivery({"account": "acc-77"}))
    assert (refused.value.status, refused.value.code, refused.value.message) == (400, "invalid_payload", "A delivery lists its events.")
    [odd] = compile_spec({**SPEC, "webhooks": {**SPEC["webhooks"], "reject": [], "events": [{"when": "body.kind == 'x'", "type": "x"}]}}).parse_webhook(
        delivery({"kind": "y"})
    )
    assert odd.action == "unsupported"


def test_a_spec_without_webhooks_refuses_deliveries():
    quiet = compile_spec({key: value for key, value in SPEC.items() if key != "webhooks"})
    with pytest.raises(WebhookRejected) as refused:
        quiet.verify_webhook(delivery(BODY), secret=SECRET)
    assert refused.value.status == 404 and Capability.WEBHOOKS not in quiet.manifest.capabilities


def test_an_unsigned_handshake_echoes_its_header_and_items_are_filtered_one_by_one():
    doc = {**SPEC, "webhooks": {**SPEC["webhooks"]}}
    doc["webhooks"]["handshake"] = [
        {"when": "headers['X-Hook-Secret']", "unsigned": True, "text": "", "headers": {"X-Hook-Secret": "{{ headers['X-Hook-Secret'] }}"}}
    ]
    doc["webhooks"]["events"] = [{**SPEC["webhooks"]["events"][0], "item_when": "item.type == 'ticket.updated'"}]
    asana_like = compile_spec(doc)
    hello = WebhookRequest("POST", "https://bastion.test/api/webhooks/x", {"X-Hook-Secret": "s3cr3t"}, b"", datetime.now(UTC))
    asana_like.verify_webhook(hello, secret="")  # unsigned by the vendor's design: nothing else is let through this way
    [answer] = asana_like.parse_webhook(hello)
    assert answer.challenge_text == "" and answer.challenge_headers == {"X-Hook-Secret": "s3cr3t"} and answer.action == "ignore"
    [only] = asana_like.parse_webhook(delivery(BODY))
    assert only.external_id == "T-1"
    with pytest.raises(WebhookRejected) as unsigned:
        asana_like.verify_webhook(delivery(BODY, header=""), secret=SECRET)
    assert unsigned.value.status == 400


def test_the_window_is_measured_from_arrival_and_its_answer_code_is_the_vendors():
    arrived = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    queued = delivery(BODY, stamp=datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp())
    queued.received_at = arrived
    WIDGETS.verify_webhook(queued, secret=SECRET)  # verified hours later by a worker: 30 s after it was sent, not a replay
    doc = {**SPEC, "webhooks": {**SPEC["webhooks"], "signature": {**SPEC["webhooks"]["signature"]}}}
    doc["webhooks"]["signature"]["timestamp"] = {**doc["webhooks"]["signature"]["timestamp"], "stale_code": "stale"}
    queued.received_at = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(WebhookRejected) as stale:
        compile_spec(doc).verify_webhook(queued, secret=SECRET)
    assert (stale.value.status, stale.value.code) == (409, "stale")


def test_a_signature_over_another_url_the_vendor_was_given_is_accepted():
    doc = {**SPEC, "webhooks": {**SPEC["webhooks"], "signature": {**SPEC["webhooks"]["signature"]}}}
    doc["webhooks"]["signature"].update(signed="{{ url }}{{ raw_body }}", timestamp=None, alternate_urls=["{{ config.webhook_url }}"])
    del doc["webhooks"]["signature"]["timestamp"]
    proxied = compile_spec(doc)
    raw = json.dumps(BODY).encode()
    public = "https://hooks.example.com/bastion/widgets"
    signature = "v1=" + hmac.new(SECRET.encode(), public.encode() + raw, hashlib.sha256).hexdigest()
    request = WebhookRequest("POST", "http://10.0.0.5:8000/api/webhooks/x", {"Widgets-Signature": signature}, raw, datetime.now(UTC))
    proxied.verify_webhook(request, secret=SECRET, config={"webhook_url": public})
    with pytest.raises(WebhookRejected):
        proxied.verify_webhook(request, secret=SECRET, config={})
