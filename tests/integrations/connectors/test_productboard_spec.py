"""Productboard (Public API v2) as a spec with two hooks (integrations/connectors/productboard/), end to end over real HTTP
against the declared Productboard stand-in: connect, features and releases paged through links.next, notes read
incrementally by updatedFrom, a launch linked to features exactly once (a note with link relationships, found again by
its metadata.source marker) and undone, and the webhook Bastion registers with its secret as the static Authorization
header, verified through Bastion's intake (forged and missing headers refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from accounts.models import Role
from integrations import registry
from integrations.errors import ApiBadRequest
from integrations.models import CredentialType, IntegrationStatus
from integrations.services import integration_connect, shared_connector
from sync.models import JobStatus, SyncRecord, WebhookDelivery
from sync.services.jobs import data_sources_ensure
from tests.conftest import run_sync, wait_for
from tests.sandbox.test_declared_sandbox import HookTarget

TOKEN = "sandbox-productboard-token"
CSV_EXPORT = "0b6a4c2e-0000-4000-8000-000000000100"  # "CSV export for large workspaces"
PACKAGE = Path(registry.__file__).parent / "connectors" / "productboard"


def pb_api(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox}/productboard/v2{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kwargs)


def pb_requests(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/requests", params={"vendor": "productboard"}, timeout=5).json()


@pytest.fixture
def productboard(sandbox, organization):
    integration = integration_connect(
        organization=organization, connector_key="productboard", credentials={"token": TOKEN}, config={}, base_url=f"{sandbox}/productboard/v2"
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


def test_productboard_is_a_spec_with_two_hooks_and_connects_with_a_token(productboard, sandbox, organization):
    assert sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__") == ["README.md", "hooks.py", "spec.yaml"]
    manifest = registry.get_connector_class("productboard").manifest
    assert [e.key for e in manifest.entities] == ["features", "releases", "notes"] and [a.key for a in manifest.actions] == ["link_features"]
    refused = integration_connect(
        organization=organization, connector_key="productboard", credentials={"token": "nope"}, config={}, base_url=f"{sandbox}/productboard/v2"
    )
    refused.refresh_from_db()
    assert refused.status != IntegrationStatus.CONNECTED and "access token is missing, invalid or expired" in refused.last_error


@pytest.mark.django_db
def test_features_page_through_links_next_and_notes_read_only_what_changed(productboard, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=productboard)}
    before = len(pb_requests(sandbox))  # the connection test's request
    job = run_sync(django_capture_on_commit_callbacks, sources["features"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert SyncRecord.objects.filter(integration=productboard, entity_type="features").count() == 130
    pages = [r for r in pb_requests(sandbox)[before:] if r["path"] == "/productboard/v2/entities"]
    assert len(pages) == 2  # 100 + 30, the second by the links.next URL Productboard gave
    export = SyncRecord.objects.get(integration=productboard, entity_type="features", external_id=CSV_EXPORT).data
    assert (export["name"], export["status"], export["owner"]) == ("CSV export for large workspaces", "In progress", "ada.admin@acme.example")
    assert export["parent"] == "0b6a4c2e-0000-4000-8000-000000000001" and export["ends_on"] == "2026-12-15" and export["url"].startswith("https://")
    assert run_sync(django_capture_on_commit_callbacks, sources["releases"], full_refresh=True).status == JobStatus.SUCCEEDED
    assert sorted(SyncRecord.objects.filter(integration=productboard, entity_type="releases").values_list("data__name", flat=True)) == [
        "2026.12 Winter launch",
        "2027.01 Follow-up",
    ]

    assert run_sync(django_capture_on_commit_callbacks, sources["notes"], full_refresh=True).status == JobStatus.SUCCEEDED
    assert SyncRecord.objects.filter(integration=productboard, entity_type="notes").count() == 5
    note = SyncRecord.objects.get(integration=productboard, entity_type="notes", external_id="1c9d5e7f-0000-4000-8000-000000000001").data
    assert note["content"] == "Globex cannot export 40k rows." and note["source"] == "intercom"
    # A note edited in Productboard: the next sync asks updatedFrom (the newest seen, minus a minute) and reads only it.
    changed = {"fields": {"name": "Exports time out (40k rows)"}}
    requests.patch(f"{sandbox}/productboard/_sandbox/records/notes/1c9d5e7f-0000-4000-8000-100000000003", json=changed, timeout=5).raise_for_status()
    job = run_sync(django_capture_on_commit_callbacks, sources["notes"])
    assert job.status == JobStatus.SUCCEEDED and job.records_processed <= 2
    edited = SyncRecord.objects.get(integration=productboard, entity_type="notes", external_id="1c9d5e7f-0000-4000-8000-100000000003")
    assert edited.data["title"] == "Exports time out (40k rows)"


def test_a_launch_is_linked_to_its_features_once_and_undone(productboard, sandbox):
    connector = shared_connector(productboard, purpose="playbooks")
    payload = {"launch_title": "Winter launch", "launch_url": "https://acme.example/launch", "features": [CSV_EXPORT, "Launch feature 7"]}
    first = connector.perform("link_features", payload, idempotency_key="run-1:link")
    again = connector.perform("link_features", payload, idempotency_key="run-1:link")
    assert first.created is True and again.created is False and again.external_id == first.external_id
    note = pb_api(sandbox, "GET", f"/notes/{first.external_id}").json()["data"]
    targets = [(r["type"], r["target"]["type"], r["target"]["id"]) for r in note["relationships"]["data"]]
    assert targets == [("link", "feature", CSV_EXPORT), ("link", "feature", "0b6a4c2e-0000-4000-8000-001000000007")]
    assert note["metadata"]["source"]["system"] == "bastion" and note["metadata"]["source"]["url"] == "https://acme.example/launch"
    assert note["fields"]["name"] == "Winter launch" and first.url == note["links"]["html"]

    # Productboard creates the next note but its answer is lost (502): the marker is found, no second note.
    requests.post(f"{sandbox}/productboard/_sandbox/lose-answer", json={"method": "POST", "path": "/notes"}, timeout=5).raise_for_status()
    recovered = connector.perform("link_features", {"launch_title": "Follow-up", "features": [CSV_EXPORT]}, idempotency_key="run-1:two", known_new=True)
    assert recovered.created is False and recovered.data["features"] == [CSV_EXPORT]
    bastion_notes = pb_api(sandbox, "GET", "/notes", params={"metadata[source][system]": "bastion"}).json()["data"]
    assert len(bastion_notes) == 2

    connector.undo("link_features", external_id=first.external_id, idempotency_key="run-1:link:undo")
    assert pb_api(sandbox, "GET", f"/notes/{first.external_id}").status_code == 404


def test_unknown_or_ambiguous_features_are_a_clear_refusal_before_anything_is_created(productboard, sandbox):
    connector = shared_connector(productboard, purpose="playbooks")
    cases = [
        ({"launch_title": "L", "features": ["No such feature"]}, "no features named"),
        ({"launch_title": "L", "features": ["0b6a4c2e-0000-4000-8000-999999999999"]}, "no feature with id"),
        ({"launch_title": "L", "features": ["0b6a4c2e-0000-4000-8000-000000000010"]}, "is not a feature"),  # a release
        ({"launch_title": "L", "features": []}, "at least one"),
        ({"launch_title": "", "features": [CSV_EXPORT]}, "launch title"),
        ({"launch_title": "L", "launch_url": "javascript:alert(1)", "features": [CSV_EXPORT]}, "http"),
    ]
    for index, (payload, message) in enumerate(cases):
        with pytest.raises(ApiBadRequest, match=message):
            connector.perform("link_features", payload, idempotency_key=f"bad-{index}")
    assert not [r for r in pb_requests(sandbox) if r["method"] == "POST" and r["path"] == "/productboard/v2/notes"]


@pytest.mark.django_db
def test_bastion_registers_its_secret_as_the_authorization_header_and_the_intake_checks_it(
    productboard, sandbox, client, api_for, users_by_role, settings, django_capture_on_commit_callbacks
):
    # Productboard only accepts an https URL on a public host: Bastion's public URL is one; deliveries are relayed below.
    settings.BASTION_PUBLIC_URL = "https://bastion.acme.example"
    registered = api_for(users_by_role[Role.ADMIN]).post(f"/api/integrations/{productboard.pk}/webhook")
    assert registered.status_code == 200, registered.content
    secret = productboard.credentials.get(credential_type=CredentialType.WEBHOOK_SECRET).data["secret"]
    [subscription] = requests.get(f"{sandbox}/productboard/_sandbox/subscriptions", timeout=5).json()
    assert subscription["id"] == registered.json()["vendor_id"] and subscription["url"] == f"https://bastion.acme.example/api/webhooks/{productboard.pk}"
    assert subscription["headers"] == {"authorization": f"Bearer {secret}"} and "feature.updated" in subscription["topics"]

    target = HookTarget()  # stands for Bastion's public URL: what Productboard sends there is relayed to the intake
    try:
        relay_hook = requests.post(
            f"{sandbox}/productboard/_sandbox/subscriptions",
            json={"url": target.url, "topics": subscription["topics"], "headers": subscription["headers"]},
            timeout=5,
        ).json()
        changed = {"fields": {"status": {"id": "5a8e0c1d-0000-4000-8000-000000000003", "name": "Released"}}}
        requests.patch(f"{sandbox}/productboard/_sandbox/records/entities/{CSV_EXPORT}", json=changed, timeout=5).raise_for_status()
        delivery = wait_for(lambda: target.requests, message="Productboard's notification")[0]
        assert json.loads(delivery["body"])["data"]["eventType"] == "feature.updated"

        def relay(body: bytes, authorization: str | None):
            extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
            return client.post(f"/api/webhooks/{productboard.pk}", data=body, content_type="application/json", **extra)

        with django_capture_on_commit_callbacks(execute=True):
            accepted = relay(delivery["body"], delivery["headers"]["authorization"])
        assert accepted.status_code == 202, accepted.content
        stored = WebhookDelivery.objects.get(integration=productboard)
        assert stored.event_types == ["feature.updated"] and stored.events[0]["action"] == "sync" and stored.events[0]["entity"] == "features"
        # The notification carries ids only: the features are read again, and the new status is in the records store.
        assert SyncRecord.objects.get(integration=productboard, entity_type="features", external_id=CSV_EXPORT).data["status"] == "Released"

        requests.post(
            f"{sandbox}/productboard/_sandbox/webhooks/{relay_hook['id']}/deliver",
            json={"events": [{"payload": json.loads(delivery["body"])}], "forge": True},
            timeout=10,
        )
        forged = target.requests[-1]
        assert relay(forged["body"], forged["headers"]["authorization"]).status_code == 401
        assert relay(delivery["body"], secret).status_code == 401  # the scheme is part of the registered value
        missing = relay(delivery["body"], None)
        assert missing.status_code == 400 and missing.json()["error"]["code"] == "missing_signature"
        unsubscribed = b'{"data": {"eventType": "component.updated", "id": "x", "links": {"target": "https://api.productboard.com/x"}}}'
        assert relay(unsubscribed, f"Bearer {secret}").status_code == 202
        assert WebhookDelivery.objects.filter(integration=productboard).latest("received_at").events[0]["action"] == "unsupported"
        malformed = relay(b'{"events": []}', f"Bearer {secret}")
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed"
    finally:
        target.server.shutdown()
