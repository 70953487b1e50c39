"""The demo connector's webhook verification and parsing (the example docs/connectors.md walks through)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest

from integrations.connectors.base import WebhookRequest
from integrations.connectors.demo import DemoConnector
from integrations.errors import WebhookRejected

SECRET = "whsec-demo"


def signed(body: bytes, *, timestamp: int | None = None, secret: str = SECRET, received: float | None = None) -> WebhookRequest:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return WebhookRequest(
        method="POST",
        url="/api/webhooks/x",
        headers={"X-Demo-Signature": signature, "X-Demo-Timestamp": ts, "Content-Type": "application/json"},
        body=body,
        received_at=datetime.fromtimestamp(received or time.time(), tz=UTC),
    )


def test_a_valid_delivery_is_accepted_and_parsed():
    body = json.dumps({"id": "evt-1", "type": "person.updated", "created": 1_800_000_000, "data": {"id": "P1001", "email": "ava.chen@acme.example"}}).encode()
    request = signed(body)
    DemoConnector.verify_webhook(request, secret=SECRET)
    [event] = DemoConnector.parse_webhook(request)
    assert (event.delivery_id, event.entity, event.external_id, event.action) == ("evt-1", "people", "P1001", "upsert")
    assert event.record["email"] == "ava.chen@acme.example"


def test_deletions_parse_as_delete_events():
    body = json.dumps({"id": "evt-2", "type": "person.deleted", "data": {"id": "P1002"}}).encode()
    [event] = DemoConnector.parse_webhook(signed(body))
    assert event.action == "delete" and event.record is None


@pytest.mark.parametrize(
    ("request_factory", "status", "code"),
    [
        (lambda b: WebhookRequest("POST", "/", {}, b, datetime.now(tz=UTC)), 400, "missing_signature"),
        (lambda b: signed(b, secret="wrong"), 401, "bad_signature"),
        (lambda b: signed(b, timestamp=int(time.time()) - 3600), 409, "stale_timestamp"),
    ],
)
def test_bad_deliveries_are_rejected_in_order(request_factory, status, code):
    with pytest.raises(WebhookRejected) as raised:
        DemoConnector.verify_webhook(request_factory(b'{"id":"e","type":"person.updated","data":{}}'), secret=SECRET)
    assert (raised.value.status, raised.value.code) == (status, code)


def test_a_tampered_body_fails_the_signature():
    request = signed(b'{"id":"e","type":"person.updated","data":{"id":"P1"}}')
    request.body = b'{"id":"e","type":"person.updated","data":{"id":"P2"}}'
    with pytest.raises(WebhookRejected) as raised:
        DemoConnector.verify_webhook(request, secret=SECRET)
    assert raised.value.status == 401


def test_invalid_payload_is_400():
    with pytest.raises(WebhookRejected) as raised:
        DemoConnector.parse_webhook(signed(b"not json"))
    assert raised.value.status == 400


def test_transformers_round_trip():
    connector = DemoConnector()
    record = {
        "id": "P9",
        "email": "Zara.Ahmed@acme.example",
        "first_name": "Zara",
        "last_name": "Ahmed",
        "job_title": "DPO",
        "department": "Legal",
        "active": True,
    }
    bastion = connector.to_bastion("people", record)
    assert bastion["email"] == "zara.ahmed@acme.example" and bastion["name"] == "Zara Ahmed" and bastion["title"] == "DPO"
    assert set(bastion) == {
        "external_id",
        "email",
        "name",
        "given_name",
        "family_name",
        "title",
        "department",
        "phone",
        "manager_external_id",
        "groups",
        "is_active",
        "username",
    }
    back = connector.from_bastion("people", bastion)
    assert (back["first_name"], back["last_name"], back["job_title"]) == ("Zara", "Ahmed", "DPO")
