"""Every verified delivery stays in the inbox with its event type and outcome; directory users from Jira and Okta are applied; Twilio verified with the auth token."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import urlencode

import pytest

from integrations.models import CredentialType
from integrations.services import credential_secret, integration_connect
from people.models import Person
from sandbox.vendors.twilio import signature as twilio_sandbox_signature
from sync.models import DeliveryStatus, SyncRecord, WebhookDelivery

pytestmark = pytest.mark.django_db
OKTA_SECRET = "okta-hook-secret-123"
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"


def connect(organization, connector_key, credentials, **config):
    return integration_connect(organization=organization, connector_key=connector_key, credentials=credentials, config=config, test=False)


@pytest.fixture
def jira(organization):
    return connect(organization, "jira", {"email": "ops@acme.example", "api_token": "tok"}, site_url="https://acme.atlassian.net")


def jira_post(client, integration, payload, django_capture_on_commit_callbacks):
    secret = credential_secret(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, purpose="test", audited=False)["secret"]
    body = json.dumps({"timestamp": int(time.time() * 1000), **payload}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(
            f"/api/webhooks/{integration.pk}",
            data=body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE="sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=str(uuid.uuid4()),
        )


def delivery_of(response) -> WebhookDelivery:
    assert response.status_code == 202, response.content
    return WebhookDelivery.objects.get(pk=response.json()["id"])


def test_jira_directory_users_are_applied_and_other_events_kept_as_unsupported(client, api, jira, organization, django_capture_on_commit_callbacks):
    user = {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Mia Krogh", "emailAddress": "mia.krogh@acme.example", "active": True}
    created = delivery_of(jira_post(client, jira, {"webhookEvent": "user_created", "user": user}, django_capture_on_commit_callbacks))
    assert (created.status, created.event_types, created.result["outcome"]) == (DeliveryStatus.PROCESSED, ["user_created"], "applied")
    assert Person.objects.get(organization=organization, email="mia.krogh@acme.example").display_name == "Mia Krogh"

    project = delivery_of(jira_post(client, jira, {"webhookEvent": "project_created", "project": {"id": "1"}}, django_capture_on_commit_callbacks))
    assert (project.event_types, project.result["outcome"], project.result["events"]) == (
        ["project_created"],
        "unsupported",
        {"project_created": "unsupported"},
    )

    deleted = delivery_of(
        jira_post(client, jira, {"webhookEvent": "user_deleted", "user": {"accountId": user["accountId"]}}, django_capture_on_commit_callbacks)
    )
    assert deleted.result["outcome"] == "applied" and deleted.result["deleted"] == 1
    assert SyncRecord.objects.get(integration=jira, entity_type="users", external_id=user["accountId"]).is_deleted is True
    assert Person.objects.get(organization=organization, email="mia.krogh@acme.example").is_active is False

    counts = api.get("/api/webhook-deliveries/outcomes/").json()
    assert counts == [{"integration": str(jira.pk), "name": jira.display_name, "connector": "jira", "applied": 2, "not_used": 0, "unsupported": 1}]
    listed = api.get("/api/webhook-deliveries/?outcome=unsupported").json()
    assert [(d["delivery_id"], d["event_types"], d["outcome"]) for d in listed["results"]] == [(project.delivery_id, ["project_created"], "unsupported")]


def test_a_forged_delivery_is_still_refused_and_never_stored(client, jira):
    body = json.dumps({"timestamp": int(time.time() * 1000), "webhookEvent": "project_created"}).encode()
    response = client.post(f"/api/webhooks/{jira.pk}", data=body, content_type="application/json", HTTP_X_HUB_SIGNATURE="sha256=" + "0" * 64)
    assert response.status_code == 401 and not WebhookDelivery.objects.exists()


@pytest.fixture
def okta(organization):
    integration = connect(organization, "okta", {"api_token": "okta-token"}, org_url="https://acme.okta.com")
    from integrations.services import credential_store

    credential_store(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": OKTA_SECRET})
    return integration


def okta_post(client, integration, events, django_capture_on_commit_callbacks):
    body = json.dumps({"eventType": "com.okta.event_hook", "eventId": str(uuid.uuid4()), "data": {"events": events}}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(f"/api/webhooks/{integration.pk}", data=body, content_type="application/json", HTTP_AUTHORIZATION=OKTA_SECRET)


@pytest.mark.parametrize(
    "events, event_types, outcome",
    [
        ([{"eventType": "user.lifecycle.deactivate", "target": [{"type": "User", "id": "00u1"}]}], ["user.lifecycle.deactivate"], "applied"),
        # A user event naming the user only by login: the users are re-read (a sync), not dropped.
        ([{"eventType": "user.lifecycle.create", "target": [{"type": "User", "alternateId": "new@acme.example"}]}], ["user.lifecycle.create"], "applied"),
        ([{"eventType": "user.lifecycle.create", "target": []}], ["user.lifecycle.create"], "not_used"),
        ([{"eventType": "group.user_membership.add", "target": [{"type": "UserGroup", "id": "00g1"}]}], ["group.user_membership.add"], "unsupported"),
    ],
)
def test_okta_event_hooks_are_kept_with_their_outcome(client, okta, events, event_types, outcome, django_capture_on_commit_callbacks, monkeypatch):
    started = []
    monkeypatch.setattr("sync.services.jobs.sync_start", lambda **kwargs: started.append(kwargs["data_source"].entity_type) or _Job())
    delivery = delivery_of(okta_post(client, okta, events, django_capture_on_commit_callbacks))
    assert (delivery.status, delivery.event_types, delivery.result["outcome"]) == (DeliveryStatus.PROCESSED, event_types, outcome)
    assert started == (["users"] if events[0]["eventType"] == "user.lifecycle.create" and outcome == "applied" else [])


class _Job:
    pk = "job"


@pytest.fixture
def twilio(organization):
    return connect(organization, "twilio", {"account_sid": "AC" + "1" * 32, "auth_token": AUTH_TOKEN, "from_number": "+15005550006"})


def twilio_post(client, integration, params, *, token=AUTH_TOKEN, idempotency="idem-1"):
    url = f"http://testserver/api/webhooks/{integration.pk}"
    return client.post(
        f"/api/webhooks/{integration.pk}",
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=twilio_sandbox_signature(token, url, params),
        HTTP_I_TWILIO_IDEMPOTENCY_TOKEN=idempotency,
    )


def test_twilio_callbacks_are_verified_with_the_accounts_auth_token(client, twilio, django_capture_on_commit_callbacks):
    assert not twilio.credentials.filter(credential_type=CredentialType.WEBHOOK_SECRET).exists()  # no made-up secret to configure
    params = {"AccountSid": "AC" + "1" * 32, "MessageSid": "SM" + "2" * 32, "MessageStatus": "delivered", "To": "+447700900009", "ApiVersion": "2010-04-01"}
    with django_capture_on_commit_callbacks(execute=True):
        accepted = twilio_post(client, twilio, params)
    delivery = delivery_of(accepted)
    assert delivery.event_types == ["message.delivered"] and delivery.result["outcome"] == "applied"

    replayed = twilio_post(client, twilio, params)  # the replay defence: the same idempotency token is answered, not applied again
    assert replayed.status_code == 200 and replayed.json()["status"] == "duplicate"
    forged = twilio_post(client, twilio, params, token="f" * 32, idempotency="idem-2")
    assert forged.status_code == 401 and WebhookDelivery.objects.count() == 1
