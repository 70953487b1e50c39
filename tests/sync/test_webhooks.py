"""Webhook intake over HTTP: verification order, inbox dedupe, fast 2xx, processing, handlers, replay, flood guard, never a 500."""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from accounts.models import Role
from integrations.connectors.sandbox_directory import webhook_signature
from people.models import Person
from sync.models import DataSyncJob, DeliveryStatus, SyncRecord, WebhookDelivery
from tests.sync import handlers
from tests.sync.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db


def signed(client, integration, payload, *, secret=WEBHOOK_SECRET, timestamp=None, raw=None, content_type="application/json"):
    body = raw if raw is not None else json.dumps(payload).encode()
    stamp, signature = webhook_signature(secret, body, timestamp)
    return client.post(
        f"/api/webhooks/{integration.pk}",
        data=body,
        content_type=content_type,
        HTTP_X_DIRECTORY_SIGNATURE=signature,
        HTTP_X_DIRECTORY_TIMESTAMP=stamp,
        HTTP_X_DIRECTORY_DELIVERY=str(payload.get("delivery_id", "")) if payload else "",
    )


def person_event(delivery_id="dlv-1", **data):
    record = {
        "id": "p000050",
        "email": "Webhook.Person@Acme.example",
        "name": "Webhook Person",
        "title": "Analyst",
        "active": True,
        "updated_at": "2030-01-01T00:00:00+00:00",
        **data,
    }
    return {"delivery_id": delivery_id, "type": "person.updated", "occurred_at": "2030-01-01T00:00:00+00:00", "data": record}


@pytest.fixture(autouse=True)
def _handlers(settings):
    handlers.CALLS.clear()
    settings.BASTION_EVENT_HANDLERS = ["tests.sync.handlers.record"]


def test_valid_delivery_is_stored_processed_and_handed_to_handlers(client, directory, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed(client, directory, person_event())

    assert response.status_code == 202 and response.json()["status"] == "accepted"
    delivery = WebhookDelivery.objects.get(integration=directory, delivery_id="dlv-1")
    assert delivery.status == DeliveryStatus.PROCESSED and delivery.result["upserted"] == 1
    record = SyncRecord.objects.get(integration=directory, external_id="p000050")
    assert record.data["email"] == "Webhook.Person@Acme.example" and record.last_seen_job is None
    assert Person.objects.get(email="webhook.person@acme.example").title == "Analyst"
    assert handlers.CALLS == [(str(directory.pk), delivery.events)]
    assert delivery.events[0]["occurred_at"] == "2030-01-01T00:00:00+00:00" and delivery.events[0]["action"] == "upsert"


def test_duplicate_delivery_answered_200_and_processed_once(client, directory, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert signed(client, directory, person_event()).status_code == 202
        again = signed(client, directory, person_event(title="Changed in the duplicate"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    delivery = WebhookDelivery.objects.get(integration=directory, delivery_id="dlv-1")
    assert delivery.duplicates == 1 and delivery.attempts == 1 and len(handlers.CALLS) == 1
    assert SyncRecord.objects.get(integration=directory, external_id="p000050").data["title"] == "Analyst"


@pytest.mark.parametrize(
    "mutate, status, code",
    [
        (lambda h: h.pop("HTTP_X_DIRECTORY_SIGNATURE"), 400, "signature_missing"),
        (lambda h: h.pop("HTTP_X_DIRECTORY_TIMESTAMP"), 400, "signature_missing"),
        (lambda h: h.update(HTTP_X_DIRECTORY_SIGNATURE="v1=" + "0" * 64), 401, "signature_invalid"),
    ],
)
def test_missing_or_bad_signature_is_rejected_and_nothing_stored(client, directory, mutate, status, code):
    body = json.dumps(person_event()).encode()
    stamp, signature = webhook_signature(WEBHOOK_SECRET, body)
    headers = {"HTTP_X_DIRECTORY_SIGNATURE": signature, "HTTP_X_DIRECTORY_TIMESTAMP": stamp}
    mutate(headers)
    response = client.post(f"/api/webhooks/{directory.pk}", data=body, content_type="application/json", **headers)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert not WebhookDelivery.objects.exists() and not SyncRecord.objects.exists()


def test_replayed_old_timestamp_is_409(client, directory):
    response = signed(client, directory, person_event(), timestamp=int(time.time()) - 3600)
    assert response.status_code == 409 and response.json()["error"]["code"] == "timestamp_stale"
    assert not WebhookDelivery.objects.exists()


def test_wrong_secret_is_401(client, directory):
    assert signed(client, directory, person_event(), secret="not-the-secret").status_code == 401


def test_unknown_integration_is_404(client, db):
    assert client.post(f"/api/webhooks/{uuid.uuid4()}", data=b"{}", content_type="application/json").status_code == 404
    assert client.post("/api/webhooks/not-a-uuid", data=b"{}", content_type="application/json").status_code == 404


def test_oversized_body_is_413(client, directory, settings):
    settings.BASTION_WEBHOOK_MAX_BYTES = 1024
    response = signed(client, directory, person_event(title="x" * 5000))
    assert response.status_code == 413 and not WebhookDelivery.objects.exists()


def test_malformed_json_and_wrong_content_type_are_400(client, directory):
    malformed = signed(client, directory, {}, raw=b'{"type": "person.updated", "data": ')
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed"
    wrong_type = signed(client, directory, person_event(), content_type="application/xml")
    assert wrong_type.status_code == 400 and wrong_type.json()["error"]["code"] == "unsupported_content_type"
    assert not WebhookDelivery.objects.exists()


def test_garbage_never_produces_a_500(client, directory):
    for _ in range(40):
        garbage = os.urandom(int.from_bytes(os.urandom(1), "big") + 1)
        for response in (
            client.post(f"/api/webhooks/{directory.pk}", data=garbage, content_type="application/json"),
            signed(client, directory, {}, raw=garbage),
            signed(client, directory, {}, raw=b'{"type": 5, "data": []}'),
            signed(client, directory, {}, raw=b'{"type": "person.updated", "data": {}}'),
        ):
            assert 400 <= response.status_code < 500, response.content


def test_missing_webhook_secret_is_401(client, directory):
    directory.credentials.filter(credential_type="webhook_secret").delete()
    assert signed(client, directory, person_event()).status_code == 401


def test_flood_guard_answers_429_with_retry_after(client, directory, settings):
    settings.BASTION_WEBHOOK_MAX_PER_SECOND = 3
    codes = [signed(client, directory, person_event(delivery_id=f"f{i}")).status_code for i in range(12)]
    assert 429 in codes and codes[0] == 202
    limited = next(i for i, c in enumerate(codes) if c == 429)
    assert limited >= 3
    response = signed(client, directory, person_event(delivery_id="after"))
    if response.status_code == 429:
        assert response["Retry-After"] == "1"


def test_delete_event_and_stale_update_do_not_resurrect(client, directory, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        signed(client, directory, person_event())
        deleted = {"delivery_id": "dlv-2", "type": "person.deleted", "occurred_at": "2030-01-02T00:00:00+00:00", "data": {"id": "p000050"}}
        assert signed(client, directory, deleted).status_code == 202
    record = SyncRecord.objects.get(integration=directory, external_id="p000050")
    assert record.is_deleted
    assert Person.objects.get(email="webhook.person@acme.example").is_active is False


def test_sync_event_starts_an_incremental_sync(client, directory, django_capture_on_commit_callbacks):
    event = {"delivery_id": "dlv-sync", "type": "directory.changed", "data": {"entity": "people"}}
    with django_capture_on_commit_callbacks(execute=True):
        assert signed(client, directory, event).status_code == 202
    job = DataSyncJob.objects.get(integration=directory)
    assert job.trigger == "webhook" and job.status == "succeeded" and job.created_count == 20
    assert WebhookDelivery.objects.get(delivery_id="dlv-sync").result["syncs"] == [str(job.pk)]


def test_failing_handler_marks_delivery_failed_and_replay_recovers(client, directory, settings, api_for, users_by_role, django_capture_on_commit_callbacks):
    settings.BASTION_EVENT_HANDLERS = ["tests.sync.handlers.explode"]
    with django_capture_on_commit_callbacks(execute=True):
        signed(client, directory, person_event())
    delivery = WebhookDelivery.objects.get(delivery_id="dlv-1")
    assert delivery.status == DeliveryStatus.FAILED and "playbook store unavailable" in delivery.last_error

    editor = api_for(users_by_role[Role.EDITOR])
    assert editor.post(f"/api/webhook-deliveries/{delivery.pk}/replay/").status_code == 403
    settings.BASTION_EVENT_HANDLERS = ["tests.sync.handlers.record"]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(users_by_role[Role.ADMIN]).post(f"/api/webhook-deliveries/{delivery.pk}/replay/")
    assert response.status_code == 202
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED and delivery.attempts == 2 and len(handlers.CALLS) == 1
    assert SyncRecord.objects.filter(integration=directory, external_id="p000050").count() == 1
