"""Graph subscriptions over real HTTP: registration with the stand-in's handshake against a live Bastion, renewal on beat
before each resource's maximum lifetime, a removed subscription recreated once, lifecycle events renewing at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from integrations.connectors.microsoft365.subscriptions import client_state, parse_graph_time
from integrations.errors import ApiBadRequest
from integrations.models import CredentialType, Integration
from integrations.services import build_connector, credential_secret, integration_connect, integration_webhook_register, integration_webhooks_refresh
from tests.conftest import wait_for

TENANT_ID = "a1b2c3d4-0000-4000-8000-000000000001"
ORGANIZER = "amara.nwosu@acme.example"
EVENTS_LIFETIME = timedelta(minutes=4230)


def m365_integration(sandbox: str, organization: Any, **config: Any) -> Integration:
    """A Microsoft 365 connection with application permissions (client credentials) to the stand-in."""
    return integration_connect(
        organization=organization,
        connector_key="microsoft365",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"tenant_id": TENANT_ID, "client_id": "bastion-app", "client_secret": "sandbox-app-secret"},
        base_url=f"{sandbox}/microsoft365/v1.0",
        config={"organizer": ORGANIZER, "tenant_id": TENANT_ID, **config},
    )


def webhook_secret(integration: Integration) -> str:
    return str((credential_secret(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, purpose="test") or {})["secret"])


def connector_for(integration: Integration) -> Any:
    integration.refresh_from_db()
    return build_connector(integration)


def graph(connector: Any, method: str, path: str, **kwargs: Any) -> Any:
    return connector.graph(method, path, **kwargs)


def registered(integration: Integration) -> dict[str, Any]:
    """Register Bastion's intake at the stand-in (it validates the URL against the live server first); the stored registration."""
    integration_webhook_register(integration=integration)
    integration.refresh_from_db()
    return integration.config["webhook_registration"]


def sandbox_subscriptions(sandbox: str, integration: Integration) -> list[dict[str, Any]]:
    """The stand-in's live subscriptions to this integration's intake URL."""
    listed = graph(connector_for(integration), "GET", "subscriptions").get("value") or []
    return [s for s in listed if s["notificationUrl"].endswith(f"/api/webhooks/{integration.pk}")]


def lifecycle(sandbox: str, subscription_id: str, event: str) -> None:
    requests.post(f"{sandbox}/microsoft365/_control/subscriptions/{subscription_id}/lifecycle", json={"event": event}, timeout=10).raise_for_status()


def minutes_left(subscription: dict[str, Any]) -> float:
    moment = parse_graph_time(subscription["expirationDateTime"])
    assert moment is not None
    return (moment - datetime.now(UTC)).total_seconds() / 60


@pytest.fixture
def live(sandbox, live_server, organization, settings):
    settings.BASTION_PUBLIC_URL = live_server.url
    return m365_integration(sandbox, organization)


@pytest.mark.django_db(transaction=True)
def test_registration_validates_the_live_url_and_subscribes_with_a_derived_client_state(sandbox, live, live_server):
    registration = registered(live)
    (subscription,) = sandbox_subscriptions(sandbox, live)
    state = client_state(webhook_secret(live))
    assert subscription["clientState"] == state and len(state) <= 128  # derived, never the secret itself
    assert webhook_secret(live) not in str(live.config)
    assert subscription["lifecycleNotificationUrl"] == subscription["notificationUrl"] == f"{live_server.url}/api/webhooks/{live.pk}"
    assert subscription["resource"] == f"users/{ORGANIZER}/events" and subscription["changeType"] == "created,updated,deleted"
    # Just under the 4,230-minute maximum for Outlook events, and the registration expires when the subscription does.
    assert EVENTS_LIFETIME.total_seconds() / 60 - 20 < minutes_left(subscription) < EVENTS_LIFETIME.total_seconds() / 60
    assert parse_graph_time(registration["expires_at"]) == parse_graph_time(subscription["expirationDateTime"])
    assert registration["ids"] == [
        {"id": subscription["id"], "key": "events", "url": subscription["notificationUrl"], "expires_at": subscription["expirationDateTime"]}
    ]
    deliveries = requests.get(f"{sandbox}/microsoft365/_control/deliveries", timeout=10).json()
    assert deliveries == []  # the handshake is not a delivery; nothing was notified yet


@pytest.mark.django_db(transaction=True)
def test_registering_again_replaces_the_subscriptions(sandbox, live):
    first = registered(live)["ids"][0]["id"]
    second = registered(live)["ids"][0]["id"]
    assert first != second
    assert [s["id"] for s in sandbox_subscriptions(sandbox, live)] == [second]  # the old clientState would no longer verify


@pytest.mark.django_db(transaction=True)
def test_a_url_that_does_not_answer_the_handshake_is_refused(sandbox, live, live_server):
    connector = connector_for(live)
    with pytest.raises(ApiBadRequest, match="validation"):
        connector.register_webhook(url=f"{live_server.url}/api/webhooks/00000000-0000-4000-8000-000000000000", secret="s")
    assert sandbox_subscriptions(sandbox, live) == []


@pytest.mark.django_db(transaction=True)
def test_beat_renews_before_the_maximum_lifetime(sandbox, live):
    registered(live)
    (subscription,) = sandbox_subscriptions(sandbox, live)
    soon = (datetime.now(UTC) + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%SZ")
    graph(connector_for(live), "PATCH", f"subscriptions/{subscription['id']}", json={"expirationDateTime": soon})
    live.config = {**live.config, "webhook_registration": {**live.config["webhook_registration"], "expires_at": soon}}
    live.save(update_fields=["config"])

    assert integration_webhooks_refresh() == 1  # the periodic task (integrations:webhook-refresh), vendor-neutral
    (renewed,) = sandbox_subscriptions(sandbox, live)
    assert renewed["id"] == subscription["id"] and minutes_left(renewed) > 4200
    live.refresh_from_db()
    assert parse_graph_time(live.config["webhook_registration"]["expires_at"]) == parse_graph_time(renewed["expirationDateTime"])


@pytest.mark.django_db(transaction=True)
def test_a_removed_subscription_is_recreated_once(sandbox, live):
    registered(live)
    (subscription,) = sandbox_subscriptions(sandbox, live)
    graph(connector_for(live), "DELETE", f"subscriptions/{subscription['id']}")

    integration_webhooks_refresh()
    (recreated,) = sandbox_subscriptions(sandbox, live)
    assert recreated["id"] != subscription["id"]
    assert recreated["clientState"] == client_state(webhook_secret(live)) and recreated["resource"] == subscription["resource"]
    integration_webhooks_refresh()  # the stored id is the removed one: the recreated twin is found and renewed, not duplicated
    assert [s["id"] for s in sandbox_subscriptions(sandbox, live)] == [recreated["id"]]


@pytest.mark.django_db(transaction=True)
def test_lifecycle_notifications_renew_and_recreate_at_once(sandbox, live):
    from sync.models import DeliveryStatus, WebhookDelivery

    registered(live)
    (subscription,) = sandbox_subscriptions(sandbox, live)
    soon = (datetime.now(UTC) + timedelta(minutes=50)).strftime("%Y-%m-%dT%H:%M:%SZ")
    graph(connector_for(live), "PATCH", f"subscriptions/{subscription['id']}", json={"expirationDateTime": soon})

    lifecycle(sandbox, subscription["id"], "reauthorizationRequired")
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(integration=live, status=DeliveryStatus.PROCESSED).first(), message="reauthorization")
    assert delivery.event_types == ["subscription.reauthorizationRequired"] and delivery.result["renewed_until"]
    assert minutes_left(sandbox_subscriptions(sandbox, live)[0]) > 4200  # renewed by Bastion's PATCH, not on the next beat

    lifecycle(sandbox, subscription["id"], "subscriptionRemoved")
    removed = wait_for(
        lambda: WebhookDelivery.objects.filter(integration=live, event_types=["subscription.subscriptionRemoved"], status=DeliveryStatus.PROCESSED).first(),
        message="removal processed",
    )
    (recreated,) = sandbox_subscriptions(sandbox, live)
    assert recreated["id"] != subscription["id"] and removed.result["syncs"]  # recreated, and a delta resync started


@pytest.mark.django_db(transaction=True)
def test_a_forged_lifecycle_notification_changes_nothing(sandbox, live, client):
    registered(live)
    (subscription,) = sandbox_subscriptions(sandbox, live)
    forged = {"value": [{"subscriptionId": subscription["id"], "lifecycleEvent": "subscriptionRemoved", "clientState": "guess", "tenantId": TENANT_ID}]}
    response = client.post(f"/api/webhooks/{live.pk}", data=forged, content_type="application/json")
    assert response.status_code == 401
    assert [s["id"] for s in sandbox_subscriptions(sandbox, live)] == [subscription["id"]]


@pytest.mark.django_db(transaction=True)
def test_each_resource_gets_its_own_maximum_and_the_registration_expires_with_the_first(sandbox, live):
    connector = connector_for(live)
    site = (graph(connector, "GET", "sites", params={"search": "Legal"}).get("value") or [])[0]["id"]
    drive = (graph(connector, "GET", f"sites/{site}/drives").get("value") or [])[0]["id"]
    live.config = {**live.config, "documents_drive_id": drive}
    live.save(update_fields=["config"])

    registration = registered(live)
    by_resource = {s["resource"]: s for s in sandbox_subscriptions(sandbox, live)}
    documents = by_resource[f"drives/{drive}/root"]
    assert documents["changeType"] == "updated"  # drive roots notify "updated" only; deletions come back through delta
    assert 42300 - 20 < minutes_left(documents) < 42300  # OneDrive/SharePoint: 42,300 minutes
    events = by_resource[f"users/{ORGANIZER}/events"]
    assert parse_graph_time(registration["expires_at"]) == parse_graph_time(events["expirationDateTime"])  # the earliest lapse
    assert sorted(entry["key"] for entry in registration["ids"]) == ["drive_items", "events"]


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_delegate_subscribes_to_its_own_calendar(sandbox, live, live_server):
    """Delegated: the signed-in user's events are subscribed and notify; getAllMessages is application-only, so channel messages come by delta."""
    from sync.models import DeliveryStatus, WebhookDelivery
    from tests.integrations.connectors.microsoft365.test_connection import delegated_connector, team_id

    delegate = delegated_connector(sandbox)
    delegate.config["team_id"] = team_id(delegate)
    answer = delegate.register_webhook(url=f"{live_server.url}/api/webhooks/{live.pk}", secret=webhook_secret(live))
    assert [entry["key"] for entry in answer["webhook_ids"]] == ["events"] and answer["skipped"] == []
    (subscription,) = sandbox_subscriptions(sandbox, live)
    assert subscription["resource"] in ("me/events", f"users/{delegate.graph('GET', 'me')['id']}/events")  # the delegate's own calendar

    start = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:00:00")
    end = (datetime.now(UTC) + timedelta(days=1, hours=1)).strftime("%Y-%m-%dT%H:00:00")
    event = delegate.graph(
        "POST", "me/events", json={"subject": "Delegate", "start": {"dateTime": start, "timeZone": "UTC"}, "end": {"dateTime": end, "timeZone": "UTC"}}
    )
    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(integration=live, status=DeliveryStatus.PROCESSED).first(), message="the delegate's event notified"
    )
    assert delivery.events[0]["entity"] == "events" and delivery.events[0]["record"]["ids"] == [event["id"]]
    assert event["id"] in {record["id"] for record in delegate.read_delta("events").records}  # the delegate's calendarView delta
