"""Webhook intake under attack, for every connector that receives webhooks, over POST /api/webhooks/<integration id>.

Bad signatures → 401, replays processed once, stale timestamps → 409, wrong content types and malformed bodies → 400,
oversized bodies → 413, unknown integrations → 404, a flood from one source → 429; random bytes never a 500.
Each vendor is signed with its own real scheme (tests/hardening/conftest.py: webhook_for).
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from integrations.registry import connector_classes
from sync.models import DataSyncJob, DeliveryStatus, SyncRecord, WebhookDelivery
from tests.hardening import conftest as hardening
from tests.hardening.conftest import Connected, webhook_for

pytestmark = pytest.mark.django_db

WEBHOOK_VENDORS = sorted(key for key, connector in connector_classes().items() if connector.manifest.supports_webhooks)
# Vendors that sign no timestamp: replays are stopped by the delivery-id inbox alone (documented in their manifests).
NO_REPLAY_WINDOW = {"okta", "twilio", "asana", "microsoft365", "intercom", "productboard", "docusign"}  # they sign no time
BODY_SIGNED = {"microsoft365"}  # no signature header: each Graph notification carries the subscription's clientState
BODYLESS = {"google_calendar", "google_sheets"}  # Google push notifications (Calendar, Drive changes) carry headers, no body


@pytest.fixture(autouse=True)
def _record_handlers(settings):
    hardening.EVENT_CALLS.clear()
    settings.BASTION_EVENT_HANDLERS = ["tests.hardening.conftest.record_events"]
    settings.BASTION_SYNC_HTTP_RETRIES = 0


def url_of(item: Connected) -> str:
    return f"/api/webhooks/{item.integration.pk}"


def post(client, item: Connected, signed: hardening.SignedWebhook, *, content_type: str | None = None):
    return client.post(url_of(item), data=signed.body, content_type=content_type or signed.content_type, **signed.headers)


def signed_for(item: Connected, **kwargs) -> hardening.SignedWebhook:
    return webhook_for(item.key, secret=item.webhook_secret, url=f"http://testserver{url_of(item)}", **kwargs)


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture(params=WEBHOOK_VENDORS)
def vendor(request, connect_one, organization) -> Connected:
    return connect_one(organization, request.param)


def test_every_webhook_vendor_has_a_signer_and_a_payload():
    """A new webhook connector fails here until the suite knows how that vendor signs and what it sends."""
    assert WEBHOOK_VENDORS
    for key in WEBHOOK_VENDORS:
        signed = webhook_for(key, secret="s", url="http://testserver/x")
        assert (signed.headers or key in BODY_SIGNED) and (signed.body or key in BODYLESS), key


def test_valid_delivery_is_accepted_once_and_a_replay_is_not_processed_again(client, vendor, django_capture_on_commit_callbacks):
    signed = signed_for(vendor, external_id="hx1", delivery_id=f"dlv-{vendor.key}")
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, vendor, signed)
    assert first.status_code == 202, first.content
    records, jobs = SyncRecord.objects.count(), DataSyncJob.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        replay = post(client, vendor, signed)

    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    [delivery] = WebhookDelivery.objects.filter(integration=vendor.integration)
    assert delivery.status == DeliveryStatus.PROCESSED, delivery.last_error
    assert (delivery.attempts, delivery.duplicates) == (1, 1)
    assert len(hardening.EVENT_CALLS) == 1 and hardening.EVENT_CALLS[0][0] == str(vendor.integration.pk)
    assert (SyncRecord.objects.count(), DataSyncJob.objects.count()) == (records, jobs), "the replay changed something"


def test_bad_signature_is_401_and_nothing_is_stored(client, vendor):
    forged = webhook_for(vendor.key, secret="not-the-secret-" + vendor.webhook_secret[-6:], url=f"http://testserver{url_of(vendor)}")
    response = post(client, vendor, forged)
    assert response.status_code == 401, response.content
    assert not WebhookDelivery.objects.exists() and not hardening.EVENT_CALLS


def test_missing_signature_is_400_and_nothing_is_stored(client, vendor):
    unsigned = signed_for(vendor)
    body = unsigned.body
    if vendor.key in BODY_SIGNED:  # the proof rides in the body (Graph's clientState): the unsigned delivery lacks it
        notification = json.loads(body)
        for item in notification["value"]:
            item.pop("clientState", None)
        body = json.dumps(notification).encode()
    response = client.post(url_of(vendor), data=body, content_type=unsigned.content_type)
    assert response.status_code == 400, response.content
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("key", sorted(set(WEBHOOK_VENDORS) - NO_REPLAY_WINDOW))
def test_stale_timestamp_is_409_and_nothing_is_stored(client, connect_one, organization, key):
    item = connect_one(organization, key)
    response = post(client, item, signed_for(item, age_seconds=3600))
    assert response.status_code == 409, response.content
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("key", sorted(set(WEBHOOK_VENDORS) - BODYLESS))
def test_wrong_content_type_is_400(client, connect_one, organization, key):
    vendor = connect_one(organization, key)
    response = post(client, vendor, signed_for(vendor), content_type="application/xml")
    assert response.status_code == 400 and error_code(response) == "unsupported_content_type"
    assert not WebhookDelivery.objects.exists()


def test_malformed_body_is_400(client, vendor):
    response = post(client, vendor, signed_for(vendor, body=b'{"type": "event_callback", "data": '))
    assert response.status_code == 400, response.content
    assert not WebhookDelivery.objects.exists()


def test_body_over_the_limit_is_413(client, vendor, settings):
    settings.BASTION_WEBHOOK_MAX_BYTES = 2048
    padding = json.dumps({"padding": "x" * 5000}).encode()
    # Google's notifications carry their meaning in headers; the oversized body rides along a valid one.
    signed = dataclasses.replace(signed_for(vendor), body=padding) if vendor.key in BODYLESS else signed_for(vendor, body=padding)
    response = post(client, vendor, signed)
    assert response.status_code == 413 and error_code(response) in ("too_large", "payload_too_large")  # the intake or the body-size middleware
    assert not WebhookDelivery.objects.exists()


def test_unknown_integration_is_404(client, db):
    for path in (f"/api/webhooks/{uuid.uuid4()}", "/api/webhooks/not-a-uuid"):
        response = client.post(path, data=b"{}", content_type="application/json")
        assert response.status_code == 404, path
    # A NUL byte in the URL is refused before routing (no text column can hold it).
    assert client.post("/api/webhooks/%00", data=b"{}", content_type="application/json").status_code == 400
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("key", ["sandbox_directory", "slack"])
def test_a_flood_from_one_source_is_rate_limited(client, connect_one, organization, settings, key, django_capture_on_commit_callbacks):
    settings.BASTION_WEBHOOK_MAX_PER_SECOND = 5
    item = connect_one(organization, key)
    statuses = []
    with django_capture_on_commit_callbacks(execute=True):
        for index in range(40):
            statuses.append(post(client, item, signed_for(item, external_id=f"hx{index}", delivery_id=f"flood-{index}")))
    codes = [r.status_code for r in statuses]
    assert set(codes) <= {202, 429}, codes
    # 40 requests span at most a few one-second windows of 5: most are refused, each with Retry-After.
    assert codes.count(429) >= 40 - 5 * 4 and all(r["Retry-After"] for r in statuses if r.status_code == 429)
    stored = WebhookDelivery.objects.filter(integration=item.integration)
    assert stored.count() == codes.count(202) and all(d.attempts == 1 for d in stored)


@pytest.fixture
def all_webhook_integrations(connect_one, organization) -> list[Connected]:
    return [connect_one(organization, key) for key in WEBHOOK_VENDORS]


@hypothesis_settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=100),
    body=st.binary(max_size=3000),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", "application/octet-stream", ""]),
    header_value=st.text(max_size=80).filter(lambda v: "\n" not in v and "\r" not in v),
)
def test_random_bytes_never_500_and_nothing_is_processed_twice(client, all_webhook_integrations, index, body, content_type, header_value):
    item = all_webhook_integrations[index % len(all_webhook_integrations)]
    signed = signed_for(item)
    # Random bytes, half the time under the vendor's own (now wrong) signature headers, half the time with random header values.
    headers = {name: header_value for name in signed.headers} if index % 2 else signed.headers
    response = client.post(url_of(item), data=body, content_type=content_type, **headers)
    assert response.status_code in (200, 202, 400, 401, 404, 409, 413, 415, 429), (response.status_code, response.content[:200])
    assert all(d.attempts <= 1 for d in WebhookDelivery.objects.all())
