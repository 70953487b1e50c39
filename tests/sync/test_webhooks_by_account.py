"""Webhook intake routed by vendor account (POST /api/webhooks/by-account/<connector key>): one integration per account,
verified with that integration's secret before anything is written; unknown, missing or ambiguous accounts are 404."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from integrations import registry
from integrations.connectors.base import WebhookRequest
from integrations.connectors.sandbox_directory import SandboxDirectoryConnector, webhook_signature
from integrations.models import CredentialType, Integration, IntegrationStatus
from integrations.registry import connector_classes
from integrations.services import credential_store
from people.models import Person
from sync.models import SyncRecord, WebhookDelivery
from tests.hardening import conftest as hardening
from tests.hardening.conftest import webhook_for
from tests.sync.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

ACCOUNT = "T-ACME"
URL = "/api/webhooks/by-account/routed_directory"
connect_one = hardening.connect_one  # the hardening suite's fixture: each vendor connected to the sandbox with its webhook secret


class RoutedDirectoryConnector(SandboxDirectoryConnector):
    """The sandbox directory as a vendor that sends every account's deliveries to one URL, naming the account in the body."""

    manifest = dataclasses.replace(
        SandboxDirectoryConnector.manifest,
        key="routed_directory",
        name="Routed Directory",
        webhook=dataclasses.replace(SandboxDirectoryConnector.manifest.webhook, routes_by_account=True),
    )

    @classmethod
    def webhook_account_id(cls, request: WebhookRequest) -> str:
        body: Mapping[str, Any] = json.loads(request.body)  # a body that is not JSON raises: the endpoint must answer 400
        return str(body.get("account") or "")


@pytest.fixture
def routed_catalog(monkeypatch):
    monkeypatch.setitem(registry._catalog(), "routed_directory", RoutedDirectoryConnector)


@pytest.fixture
def make_routed(routed_catalog, make_directory):
    def make(organization, *, account: str = ACCOUNT, name: str = "Routed") -> Integration:
        integration = make_directory(organization, name=name)
        Integration.objects.filter(pk=integration.pk).update(connector_key="routed_directory", external_account_id=account)
        integration.refresh_from_db()
        return integration

    return make


def event(delivery_id: str = "dlv-acct-1", account: str | None = ACCOUNT, **data: Any) -> dict[str, Any]:
    record = {"id": "p000077", "email": "routed.person@acme.example", "name": "Routed Person", "active": True, "updated_at": "2030-01-01T00:00:00+00:00"}
    payload: dict[str, Any] = {"delivery_id": delivery_id, "type": "person.updated", "occurred_at": "2030-01-01T00:00:00+00:00", "data": {**record, **data}}
    if account is not None:
        payload["account"] = account
    return payload


def post(client, payload: Any, *, secret: str = WEBHOOK_SECRET, raw: bytes | None = None, url: str = URL):
    body = raw if raw is not None else json.dumps(payload).encode()
    stamp, signature = webhook_signature(secret, body)
    return client.post(
        url,
        data=body,
        content_type="application/json",
        HTTP_X_DIRECTORY_SIGNATURE=signature,
        HTTP_X_DIRECTORY_TIMESTAMP=stamp,
        HTTP_X_DIRECTORY_DELIVERY=str(payload.get("delivery_id", "")) if isinstance(payload, dict) else "",
    )


def nothing_stored() -> bool:
    return not WebhookDelivery.objects.exists() and not SyncRecord.objects.exists()


def test_delivery_goes_to_the_integration_connected_to_the_named_account(
    client, make_routed, organization, other_organization, django_capture_on_commit_callbacks
):
    acme = make_routed(organization)
    make_routed(other_organization, account="T-GLOBEX", name="Globex routed")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, event())

    assert response.status_code == 202 and response.json()["status"] == "accepted"
    delivery = WebhookDelivery.objects.get()
    assert delivery.integration_id == acme.pk and delivery.organization_id == organization.pk and delivery.delivery_id == "dlv-acct-1"
    assert SyncRecord.objects.get(external_id="p000077").integration_id == acme.pk
    assert Person.objects.filter(organization=organization, email="routed.person@acme.example").exists()
    assert not Person.objects.filter(organization=other_organization).exists()


def test_a_repeated_delivery_is_a_duplicate_of_the_same_integration(client, make_routed, organization, django_capture_on_commit_callbacks):
    make_routed(organization)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, event()).status_code == 202
        again = post(client, event(name="Changed in the duplicate"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert WebhookDelivery.objects.get().duplicates == 1


def test_forged_delivery_is_401_and_nothing_is_stored(client, make_routed, organization):
    make_routed(organization)
    response = post(client, event(), secret="not-the-secret")
    assert response.status_code == 401 and response.json()["error"]["code"] == "signature_invalid"
    assert nothing_stored()


def test_signed_with_another_accounts_secret_is_401(client, make_routed, organization, other_organization):
    """The account in the body only chooses whose secret verifies: naming someone else's account gains nothing."""
    make_routed(organization)
    globex = make_routed(other_organization, account="T-GLOBEX", name="Globex routed")
    credential_store(integration=globex, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": "globex-secret"})
    response = post(client, event(account=ACCOUNT), secret="globex-secret")
    assert response.status_code == 401 and nothing_stored()


def test_unknown_account_is_404_with_a_clear_body(client, make_routed, organization):
    make_routed(organization)
    response = post(client, event(account="T-NOBODY"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_account" and "Routed Directory" in error["message"] and "T-NOBODY" not in error["message"]
    assert nothing_stored()


def test_delivery_naming_no_account_is_404(client, make_routed, organization):
    make_routed(organization)
    response = post(client, event(account=None))
    assert response.status_code == 404 and response.json()["error"]["code"] == "account_missing"
    assert nothing_stored()


def test_two_integrations_on_one_account_are_ambiguous_404_and_nothing_is_stored(client, make_routed, organization, other_organization):
    make_routed(organization)
    make_routed(other_organization, name="Globex on the same account")
    response = post(client, event())
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "ambiguous_account" and "own webhook URL" in error["message"]
    assert nothing_stored()


def test_a_disconnected_integration_neither_receives_nor_makes_the_account_ambiguous(
    client, make_routed, organization, other_organization, django_capture_on_commit_callbacks
):
    old = make_routed(other_organization, name="Disconnected earlier")
    Integration.objects.filter(pk=old.pk).update(status=IntegrationStatus.DISCONNECTED)
    current = make_routed(organization)
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, event()).status_code == 202
    assert WebhookDelivery.objects.get().integration_id == current.pk


def test_same_account_id_at_another_connector_is_not_matched(client, make_routed, make_directory, organization):
    plain = make_directory(organization, name="Plain directory")
    Integration.objects.filter(pk=plain.pk).update(external_account_id=ACCOUNT)
    response = post(client, event())
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_account"
    assert nothing_stored()


def test_connector_that_does_not_route_by_account_is_404(client, directory):
    Integration.objects.filter(pk=directory.pk).update(external_account_id=ACCOUNT)
    response = post(client, event(), url="/api/webhooks/by-account/sandbox_directory")
    assert response.status_code == 404 and response.json()["error"]["code"] == "account_routing_unsupported"
    assert nothing_stored()


def test_unknown_connector_is_404(client, db):
    response = post(client, event(), url="/api/webhooks/by-account/no_such_vendor")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_connector"


def test_body_the_connector_cannot_read_is_400_never_500(client, make_routed, organization):
    make_routed(organization)
    response = post(client, None, raw=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed"
    assert nothing_stored()


def test_only_post_is_accepted_and_bodies_are_size_limited(client, make_routed, organization, settings):
    make_routed(organization)
    assert client.get(URL).status_code == 405
    assert client.put(URL, data=b"{}", content_type="application/json").json()["error"]["code"] == "method_not_allowed"
    settings.BASTION_WEBHOOK_MAX_BYTES = 64
    response = post(client, event())
    assert response.status_code == 413
    assert nothing_stored()


# Every vendor that routes by account, signed with its own real scheme (tests/hardening/conftest.py: webhook_for) -----------

ROUTED_VENDORS = sorted(key for key, connector in connector_classes().items() if connector.manifest.webhook and connector.manifest.webhook.routes_by_account)
# Where each vendor names the account in what it sends (the hardening payloads leave it out), and an account id of its shape.
NAMES_ACCOUNT: dict[str, Callable[[Any, str], Any]] = {
    "slack": lambda payload, account: {**payload, "team_id": account},
    "hubspot": lambda payload, account: [{**event, "portalId": int(account)} for event in payload],
}
VENDOR_ACCOUNTS = {"slack": "T0ROUTED1", "hubspot": "62515"}


def test_every_vendor_routed_by_account_is_known_here():
    """A connector that turns on WebhookSpec.routes_by_account fails here until this suite knows where it names the account."""
    assert set(ROUTED_VENDORS) <= set(NAMES_ACCOUNT) & set(VENDOR_ACCOUNTS)


@pytest.mark.parametrize("key", ROUTED_VENDORS)
def test_vendor_delivery_reaches_the_integration_of_its_account(key, client, connect_one, organization, other_organization):
    ours, theirs = connect_one(organization, key), connect_one(other_organization, key)
    account = VENDOR_ACCOUNTS[key]
    Integration.objects.filter(pk=ours.integration.pk).update(external_account_id=account)
    Integration.objects.filter(pk=theirs.integration.pk).update(external_account_id=f"{account}9")
    url = f"/api/webhooks/by-account/{key}"
    payload = json.loads(webhook_for(key, secret=ours.webhook_secret, url=f"http://testserver{url}").body)
    body = json.dumps(NAMES_ACCOUNT[key](payload, account)).encode()

    forged = webhook_for(key, secret="not-the-secret", url=f"http://testserver{url}", body=body)
    assert client.post(url, data=forged.body, content_type=forged.content_type, **forged.headers).status_code == 401
    assert not WebhookDelivery.objects.exists()

    signed = webhook_for(key, secret=ours.webhook_secret, url=f"http://testserver{url}", body=body)
    response = client.post(url, data=signed.body, content_type=signed.content_type, **signed.headers)
    assert response.status_code == 202, response.content
    assert WebhookDelivery.objects.get().integration_id == ours.integration.pk
