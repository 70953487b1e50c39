"""Webhook intake's per-process fast path: the cached route and key follow rotation and removal at once, the flood counter
is one shared Redis bucket, and accepted deliveries reach processing through the pending list and one drain."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.utils import timezone

from integrations.models import CredentialType
from integrations.services import credential_store, webhook_secret_generate
from sync.models import DeliveryStatus, SyncRecord, WebhookDelivery
from sync.services import webhook_routes
from sync.services.webhooks import webhook_deliveries_drain, webhook_deliveries_nudge, webhook_delivery_enqueue
from tests.conftest import wait_for
from tests.sync.test_webhooks import person_event, signed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_pending_list():
    client = webhook_routes._redis_client()
    assert client is not None, "these tests run against the Redis of REDIS_URL"
    client.delete(webhook_routes.PENDING_KEY, webhook_routes.DRAIN_FLAG_KEY)
    yield client
    client.delete(webhook_routes.PENDING_KEY, webhook_routes.DRAIN_FLAG_KEY)


def test_rotated_secret_takes_effect_at_once_though_the_old_key_was_cached(client, directory, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert signed(client, directory, person_event("before")).status_code == 202
    assert webhook_routes.route_get(str(directory.pk)) is not None  # the key is now served from this process's cache

    new_secret = webhook_secret_generate(integration=directory)

    assert webhook_routes.route_get(str(directory.pk)) is None
    refused = signed(client, directory, person_event("old-key"))
    assert refused.status_code == 401
    with django_capture_on_commit_callbacks(execute=True):
        assert signed(client, directory, person_event("new-key"), secret=new_secret).status_code == 202
    assert not WebhookDelivery.objects.filter(delivery_id="old-key").exists()


def test_removed_secret_refuses_at_once(client, directory):
    assert signed(client, directory, person_event("first")).status_code == 202
    directory.credentials.filter(credential_type=CredentialType.WEBHOOK_SECRET).delete()

    response = signed(client, directory, person_event("after-removal"))

    assert response.status_code == 401 and response.json()["error"]["code"] == "webhook_secret_missing"
    assert not WebhookDelivery.objects.filter(delivery_id="after-removal").exists()


def test_route_expires_after_its_ttl(settings, directory, client):
    settings.BASTION_WEBHOOK_ROUTE_TTL_SECONDS = 0  # nothing is kept: every delivery reads its integration and key
    assert signed(client, directory, person_event("uncached")).status_code == 202
    assert webhook_routes.route_get(str(directory.pk)) is None


def test_redelivery_counted_on_the_stored_row_by_the_one_statement(client, directory):
    assert signed(client, directory, person_event("twice")).status_code == 202
    again = signed(client, directory, person_event("twice"))
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "delivery_id": "twice"}
    assert WebhookDelivery.objects.get(integration=directory, delivery_id="twice").duplicates == 1


def test_flood_counter_is_one_bucket_per_integration_and_second(settings, client, directory, monkeypatch):
    import time

    settings.BASTION_WEBHOOK_MAX_PER_SECOND = 2
    second = int(time.time()) + 10_000  # a bucket no earlier run used; the clock stands still so all six fall in it
    monkeypatch.setattr("sync.services.webhooks.time", SimpleNamespace(time=lambda: float(second)))  # intake's clock only
    statuses = [signed(client, directory, person_event(f"f{index}")).status_code for index in range(6)]
    assert statuses == [202, 202, 429, 429, 429, 429]
    assert not WebhookDelivery.objects.filter(delivery_id__in=["f2", "f3", "f4", "f5"]).exists()
    bucket = cache.make_and_validate_key(f"bastion:webhooks:rate:{directory.pk}:{second}")
    assert 0 < webhook_routes._redis_client().ttl(bucket) <= 2  # the bucket expires on its own


def test_pending_list_sends_one_drain_per_burst_and_the_drain_hands_over_every_delivery(_empty_pending_list):
    assert webhook_routes.pending_push("a") is True  # the first push schedules the drain
    assert webhook_routes.pending_push("b") is False
    assert webhook_routes.pending_push("c") is False

    handed: list[str] = []
    assert webhook_routes.pending_drain(handed.append) == 3

    assert handed == ["a", "b", "c"]
    assert _empty_pending_list.llen(webhook_routes.PENDING_KEY) == 0
    assert not _empty_pending_list.exists(webhook_routes.DRAIN_FLAG_KEY)
    assert webhook_routes.pending_push("d") is True  # the next burst schedules a new drain


def test_reaper_nudge_replaces_a_lost_drain(_empty_pending_list, directory, django_capture_on_commit_callbacks):
    delivery = WebhookDelivery.objects.create(
        organization=directory.organization, integration=directory, delivery_id="stranded", events=[], received_at="2030-01-01T00:00:00Z"
    )
    _empty_pending_list.rpush(webhook_routes.PENDING_KEY, str(delivery.pk))  # queued, and its drain task never ran
    assert webhook_deliveries_nudge() is True  # eager in tests: the drain ran and processed it
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert webhook_deliveries_nudge() is False  # nothing waits any more


def test_enqueue_on_a_worker_goes_through_the_pending_list(_empty_pending_list, directory, settings):
    from bastion_site.celery import app

    delivery = WebhookDelivery.objects.create(
        organization=directory.organization, integration=directory, delivery_id="via-list", events=[], received_at="2030-01-01T00:00:00Z"
    )
    _empty_pending_list.set(webhook_routes.DRAIN_FLAG_KEY, "1", ex=10)  # a drain is already scheduled: nothing is published
    app.conf.task_always_eager = False
    try:
        webhook_delivery_enqueue(delivery_pk=delivery.pk)
    finally:
        app.conf.task_always_eager = True
    assert _empty_pending_list.lrange(webhook_routes.PENDING_KEY, 0, -1) == [str(delivery.pk).encode()]
    assert webhook_deliveries_drain() == 1  # eager again: each delivery is processed as it is handed over
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED


def test_credential_store_forgets_the_route(directory, client):
    assert signed(client, directory, person_event("cached")).status_code == 202
    credential_store(integration=directory, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": "replaced"})
    assert webhook_routes.route_get(str(directory.pk)) is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_a_burst_through_the_pending_list(celery_worker_process, client, directory, _empty_pending_list):
    celery_worker_process()
    for index in range(5):
        event = person_event(f"burst-{index}", id=f"p9{index:05d}", email=f"burst{index}@acme.example")
        assert signed(client, directory, event).status_code == 202

    wait_for(
        lambda: WebhookDelivery.objects.filter(integration=directory, status=DeliveryStatus.PROCESSED).count() == 5,
        timeout=90,
        message="every delivery of the burst processed by the worker",
    )
    assert _empty_pending_list.llen(webhook_routes.PENDING_KEY) == 0
    assert SyncRecord.objects.filter(integration=directory, external_id__startswith="p9").count() == 5


def test_the_one_statement_stores_the_events_as_parsed_and_every_other_column_at_its_default(client, directory):
    before = timezone.now()
    response = signed(client, directory, person_event("defaults", title="Lead"))

    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get(integration=directory, delivery_id="defaults")
    assert str(delivery.pk) == response.json()["id"]
    assert delivery.organization_id == directory.organization_id
    assert delivery.event_types == ["person.updated"]
    [event] = delivery.events
    assert (event["event_type"], event["entity"], event["external_id"], event["action"]) == ("person.updated", "people", "p000050", "upsert")
    assert event["record"]["title"] == "Lead" and event["occurred_at"] == "2030-01-01T00:00:00+00:00"
    assert (delivery.status, delivery.attempts, delivery.duplicates, delivery.last_error, delivery.result) == (DeliveryStatus.RECEIVED, 0, 0, "", {})
    assert delivery.processed_at is None
    assert before <= delivery.received_at <= delivery.created_at == delivery.updated_at <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_a_delivery_for_an_integration_another_process_deleted_is_404_and_stores_nothing(client, directory):
    # The inbox's foreign key to the integration is the check that remains: a process still holding the deleted
    # integration's route (for up to its TTL) gets the key violation at commit and answers 404.
    assert signed(client, directory, person_event("while-connected")).status_code == 202
    integration_id = str(directory.pk)
    stale = webhook_routes.route_get(integration_id)
    assert stale is not None
    directory.delete()
    webhook_routes._routes[integration_id] = stale  # as in a process where the deletion did not happen

    response = signed(client, SimpleNamespace(pk=integration_id), person_event("after-deletion"))

    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_integration"
    assert not WebhookDelivery.objects.exists()  # the deletion took the first delivery, the second was never stored
    assert webhook_routes.route_get(integration_id) is None


def test_deleting_an_organization_deletes_its_deliveries(client, directory, organization):
    assert signed(client, directory, person_event("to-go")).status_code == 202

    organization.delete()

    assert not WebhookDelivery.objects.exists()
