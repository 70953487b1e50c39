"""Graph change notifications through Bastion's real intake: the validationToken handshake (and hostile tokens), clientState
checked on every notification of a delivery, lifecycle events mapped to renew/sync, and notifications from the stand-in."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from integrations.connectors.microsoft365.notifications import NotificationsMixin, entity_of
from integrations.connectors.microsoft365.subscriptions import client_state
from sync.models import DataSyncJob, DeliveryStatus, WebhookDelivery
from tests.integrations.connectors.microsoft365.test_subscriptions import (
    TENANT_ID,
    connector_for,
    graph,
    m365_integration,
    registered,
    sandbox_subscriptions,
    webhook_secret,
)

EVENT = "Users/{user}/Events/{event}"


def notification(state: str, *, change: str = "updated", resource: str = "", data: dict | None = None, **extra) -> dict:
    item = {
        "subscriptionId": "sub-1",
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "changeType": change,
        "resource": resource or EVENT.format(user="u1", event="AAMk-1"),
        "resourceData": data if data is not None else {"@odata.type": "#Microsoft.Graph.Event", "id": "AAMk-1"},
        "clientState": state,
        "tenantId": TENANT_ID,
        **extra,
    }
    return {k: v for k, v in item.items() if v is not None}


def post(client, integration, body, *, query: str = "", content_type: str = "application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/api/webhooks/{integration.pk}{query}", data=raw, content_type=content_type)


@pytest.fixture
def integration(organization, sandbox):
    return m365_integration(sandbox, organization)


@pytest.mark.django_db
def test_handshake_echoes_the_token_as_plain_text(client, integration):
    token = "Validation: Testing client application reachability for subscription Request-Id: 5f7c3a4e-9d2b-4c1e-8a6f-0b1c2d3e4f50"
    response = post(client, integration, b"", query=f"?validationToken={quote(token)}", content_type="text/plain")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content.decode() == token  # URL-decoded, byte for byte
    assert not WebhookDelivery.objects.filter(integration=integration).exists()  # a handshake stores nothing


@pytest.mark.django_db
@pytest.mark.parametrize(
    "token",
    ["x" * 5000, "line1\nline2", "tab\there", "caf\u00e9", "\u202eevil", ""],
    ids=["too-long", "newline", "control", "non-ascii", "bidi", "empty"],
)
def test_hostile_validation_tokens_are_refused(client, integration, token):
    response = post(client, integration, b"", query=f"?validationToken={quote(token)}", content_type="text/plain")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")  # never an echo of the hostile text
    assert token not in response.content.decode() or not token
    assert not WebhookDelivery.objects.filter(integration=integration).exists()


@pytest.mark.django_db
def test_markup_in_a_token_comes_back_inert(client, integration):
    """A printable token is echoed (Graph needs the exact bytes), but as text/plain that browsers must not sniff as HTML."""
    token = "<script>alert(1)</script>"
    response = post(client, integration, b"", query=f"?validationToken={quote(token)}", content_type="text/plain")
    assert response.status_code == 200 and response.content.decode() == token
    assert response["Content-Type"].startswith("text/plain") and response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_a_handshake_with_a_body_is_not_a_handshake(client, integration):
    response = post(client, integration, {"value": []}, query="?validationToken=abc")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_handshake"


@pytest.mark.django_db
def test_signed_notifications_are_stored_and_processed(client, integration, django_capture_on_commit_callbacks):
    state = client_state(webhook_secret(integration))
    body = {
        "value": [
            notification(state, change="updated"),
            notification(state, change="created", data={"@odata.type": "#Microsoft.Graph.Event", "id": "AAMk-2"}),
            notification(state, change="deleted", resource=EVENT.format(user="u1", event="AAMk-3"), data={"id": "AAMk-3"}),
        ]
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, integration, body)
    assert response.status_code == 202, response.content
    delivery = WebhookDelivery.objects.get(integration=integration)
    by_action = {event["action"]: event for event in delivery.events}
    # Without resource data Graph only says "changed": one resync of the entity, never an empty record stored over a full one.
    assert by_action["sync"]["entity"] == "events" and by_action["sync"]["record"]["ids"] == ["AAMk-1", "AAMk-2"]
    assert by_action["delete"]["external_id"] == "AAMk-3"
    assert delivery.status == DeliveryStatus.PROCESSED
    assert DataSyncJob.objects.filter(integration=integration, data_source__entity_type="events").exists()


@pytest.mark.django_db
def test_one_forged_notification_refuses_the_whole_delivery(client, integration):
    state = client_state(webhook_secret(integration))
    body = {"value": [notification(state), notification("forged-" + state[7:]), notification(state, change="deleted")]}
    response = post(client, integration, body)
    assert response.status_code == 401 and response.json()["error"]["code"] == "bad_client_state"
    missing = post(client, integration, {"value": [notification(None)]})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_client_state"  # unsigned, like a missing header
    other_secret = post(client, integration, {"value": [notification(client_state("another integration's secret"))]})
    assert other_secret.status_code == 401
    other_tenant = post(client, integration, {"value": [notification(state), notification(state, tenantId="0b0b0b0b-0000-4000-8000-000000000009")]})
    assert other_tenant.status_code == 403 and other_tenant.json()["error"]["code"] == "wrong_tenant"
    assert not WebhookDelivery.objects.filter(integration=integration).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw, code",
    [(b"not json", "invalid_json"), (b'{"value": []}', "invalid_payload"), (b'{"value": ["x"]}', "invalid_payload"), (b"[1]", "invalid_payload")],
)
def test_malformed_bodies_are_4xx(client, integration, raw, code):
    response = post(client, integration, raw)
    assert response.status_code == 400 and response.json()["error"]["code"] == code


@pytest.mark.django_db
def test_lifecycle_events_become_renewals_and_resyncs(client, integration):
    state = client_state(webhook_secret(integration))
    body = {
        "value": [
            {"subscriptionId": "s1", "lifecycleEvent": "reauthorizationRequired", "clientState": state, "tenantId": TENANT_ID},
            {"subscriptionId": "s2", "lifecycleEvent": "subscriptionRemoved", "clientState": state, "resource": "users/u1/events"},
            {"subscriptionId": "s3", "lifecycleEvent": "missed", "clientState": state, "resource": "drives/d1/root"},
        ]
    }
    events = NotificationsMixin.parse_webhook(_request(body))
    summary = [(e.event_type, e.action, e.entity) for e in events]
    assert summary == [
        ("subscription.reauthorizationRequired", "renew", ""),
        ("subscription.subscriptionRemoved", "renew", "events"),
        ("subscription.subscriptionRemoved", "sync", "events"),
        ("subscription.missed", "sync", "drive_items"),
    ]


def test_resources_name_their_entity_in_either_graph_form():
    assert entity_of("teams('19:a')/channels('19:b')/messages('1677')") == "channel_messages"
    assert entity_of("teams/19:a/channels/19:b/messages/1677/replies/1678") == "channel_messages"
    assert entity_of("Users/abc/Events/AAMk") == "events"
    assert entity_of("drives/b!x/root") == "drive_items"
    assert entity_of("anything", {"@odata.type": "#Microsoft.Graph.chatMessage"}) == "channel_messages"
    assert entity_of("groups/g1") == ""


def _request(body: dict):
    from django.utils import timezone

    from integrations.connectors.base import WebhookRequest

    return WebhookRequest("POST", "https://bastion.example/api/webhooks/x", {}, json.dumps(body).encode(), timezone.now())


@pytest.mark.django_db(transaction=True)
def test_the_stand_in_validates_then_notifies_bastion_over_http(sandbox, live_server, organization, settings):
    """Graph (stand-in) → Bastion's live intake: handshake on subscribe, an event booked and deleted, both delivered and processed."""
    from tests.conftest import wait_for

    settings.BASTION_PUBLIC_URL = live_server.url
    integration = m365_integration(sandbox, organization)
    registration = registered(integration)
    assert [entry["key"] for entry in registration["ids"]] == ["events"]
    organizer = integration.config["organizer"]
    event = graph(connector_for(integration), "POST", f"users/{organizer}/events", json=_event_body("Notified"))
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(integration=integration, status=DeliveryStatus.PROCESSED).first(), message="a delivery")
    assert delivery.events[0]["entity"] == "events" and delivery.events[0]["action"] == "sync"
    graph(connector_for(integration), "DELETE", f"users/{organizer}/events/{event['id']}")
    deleted = wait_for(
        lambda: WebhookDelivery.objects.filter(integration=integration, events__0__action="delete", status=DeliveryStatus.PROCESSED).first(),
        message="the deletion delivered",
    )
    assert deleted.events[0]["external_id"] == event["id"]
    assert len(sandbox_subscriptions(sandbox, integration)) == 1


def _event_body(subject: str) -> dict:
    return {
        "subject": subject,
        "start": {"dateTime": "2030-03-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-01T11:00:00", "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": "liam.novak@acme.example"}, "type": "required"}],
    }
