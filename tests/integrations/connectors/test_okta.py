"""The Okta connector over real HTTP against the sandbox stand-in: paging, incremental, deletions, rate limits, event hooks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from integrations.connectors.base import WebhookRequest
from integrations.connectors.okta import OktaConnector
from integrations.errors import ApiNotFound, ApiUnauthorized, WebhookRejected
from integrations.http import BearerAuth, HttpClient
from sandbox.vendors._people import people
from tests.conftest import wait_for

HOOK_SECRET = "okta-hook-secret-9f2c"

PERSON_KEYS = {
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


def okta_token(sandbox: str) -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": "okta"}, timeout=5).json()["token"]


def make_okta(sandbox: str, token: str | None = None, sleeps: list | None = None, **config) -> OktaConnector:
    client = HttpClient(f"{sandbox}/okta", sleep=(sleeps.append if sleeps is not None else lambda s: None))
    return OktaConnector(client=client, credentials={"api_token": token or okta_token(sandbox)}, config=config, sleep=lambda s: None)


def read_all(connector: OktaConnector, entity: str = "users", cursor=None):
    pages = [connector.read(entity, cursor=cursor)]
    while pages[-1].next_page is not None:
        pages.append(connector.read(entity, cursor=cursor, page=pages[-1].next_page))
    return [r for p in pages for r in p.records], pages


def test_connection_with_ssws_token_and_oauth_bearer(sandbox):
    result = make_okta(sandbox).test_connection()
    assert result.ok and result.identity == "sandbox-admin"
    assert result.detail["rate_limit"]["limit"] == 600

    token = requests.post(
        f"{sandbox}/okta/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "bastion-demo", "client_secret": "bastion-demo-secret", "scope": "okta.users.read"},
        timeout=5,
    ).json()["access_token"]
    oauth = OktaConnector(client=HttpClient(f"{sandbox}/okta", auth=BearerAuth(token)), credentials={})
    assert oauth.test_connection().ok


def test_bad_token_is_unauthorized_with_okta_error_envelope(sandbox):
    with pytest.raises(ApiUnauthorized) as error:
        make_okta(sandbox, token="not-a-token").test_connection()
    assert error.value.vendor_code == "E0000011" and "Invalid token" in error.value.message


def test_unknown_user_is_not_found(sandbox):
    with pytest.raises(ApiNotFound) as error:
        make_okta(sandbox).fetch_user("00unope")
    assert error.value.vendor_code == "E0000007"


def test_discover_fields_includes_profile_and_custom_attributes(sandbox):
    fields = {f.name: f for f in make_okta(sandbox).discover_fields("users")}
    assert fields["email"].path == "$.profile.email" and fields["email"].is_required
    assert {"managerId", "groups", "lastUpdated"} <= set(fields)
    assert fields["manager"].is_custom is True  # present on the users, not in the base list


def test_full_import_follows_link_paging_and_maps_people(sandbox):
    connector = make_okta(sandbox, page_size=7)
    records, pages = read_all(connector)
    assert len(pages) == 3 and [len(p.records) for p in pages] == [7, 7, 6]
    assert all(p.is_full_scan for p in pages) and pages[-1].cursor and all(p.cursor is None for p in pages[:-1])
    persons = {p["email"]: p for p in (connector.to_bastion("users", r) for r in records)}
    assert set(persons) == {row["email"] for row in people()}
    assert len({p["external_id"] for p in persons.values()}) == 20
    assert all(set(p) == PERSON_KEYS for p in persons.values())  # the contracts' person shape
    chloe = persons["chloe.dubois@acme.example"]
    assert chloe["name"] == "Chloé Dubois" and chloe["title"] == "Press Officer" and chloe["is_active"]
    assert chloe["manager_external_id"] == persons["liam.novak@acme.example"]["external_id"]
    assert chloe["groups"] == ["Everyone", "dept-communications"]
    assert "crisis-team" in persons["marcus.okafor@acme.example"]["groups"]


def test_incremental_sync_and_deactivation_as_deletion(sandbox):
    connector = make_okta(sandbox)
    records, pages = read_all(connector)
    cursor = pages[-1].cursor
    ids = {r["profile"]["email"]: r["id"] for r in records}

    # A profile change through the real API: the next incremental read returns just that user.
    requests.post(
        f"{sandbox}/okta/api/v1/users/{ids['emma.rossi@acme.example']}",
        json={"profile": {"title": "Lead Security Engineer"}},
        headers={"Authorization": f"SSWS {okta_token(sandbox)}"},
        timeout=5,
    ).raise_for_status()
    changed, pages = read_all(make_okta(sandbox), cursor=cursor)
    assert [r["profile"]["title"] for r in changed] == ["Lead Security Engineer"]
    assert pages[-1].is_full_scan is False and pages[-1].cursor > cursor
    cursor = pages[-1].cursor

    requests.post(
        f"{sandbox}/okta/api/v1/users/{ids['omar.haddad@acme.example']}/lifecycle/deactivate",
        headers={"Authorization": f"SSWS {okta_token(sandbox)}"},
        timeout=5,
    ).raise_for_status()
    changed, pages = read_all(make_okta(sandbox), cursor=cursor)
    assert changed == [] and pages[-1].deleted_ids == [ids["omar.haddad@acme.example"]]

    nothing, pages = read_all(make_okta(sandbox), cursor=pages[-1].cursor)
    assert nothing == [] and pages[-1].deleted_ids == [] and pages[-1].cursor is None

    full, pages = read_all(make_okta(sandbox))
    assert len(full) == 19 and ids["omar.haddad@acme.example"] not in {r["id"] for r in full} and pages[-1].is_full_scan


def test_groups_and_app_assignments(sandbox):
    connector = make_okta(sandbox, app_ids="0oabastion0demo0app1")
    groups, _ = read_all(connector, "groups")
    by_name = {g["profile"]["name"]: connector.to_bastion("groups", g) for g in groups}
    assert len(by_name["Everyone"]["members"]) == 20 and len(by_name["crisis-team"]["members"]) == 3
    assignments, pages = read_all(connector, "app_assignments")
    assert len(assignments) == 12 and pages[-1].is_full_scan
    assert {a["appId"] for a in assignments} == {"0oabastion0demo0app1"}


def test_low_remaining_budget_throttles_before_the_next_call(sandbox):
    connector = make_okta(sandbox)
    waits: list[float] = []
    connector._sleep = waits.append
    connector.test_connection()
    requests.post(f"{sandbox}/okta/_control/rate-limit", json={"remaining": 2, "reset_in": 3}, timeout=5).raise_for_status()
    connector.test_connection()  # sees X-Rate-Limit-Remaining: 1
    assert connector.rate["remaining"] == 1
    connector.test_connection()  # must wait for the window reset first
    assert len(waits) == 1 and 0 < waits[0] <= 3


def test_429_is_retried_after_the_reset_header(sandbox):
    sleeps: list[float] = []
    connector = make_okta(sandbox, sleeps=sleeps)
    requests.put(f"{sandbox}/_control/faults/okta", json={"rate_limit_next": 1, "retry_after": 2}, timeout=5).raise_for_status()
    records, _ = read_all(connector)
    assert len(records) == 20
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 2.5


# ------------------------------------------------------------------ event hooks


def hook_request(method: str, body: bytes = b"", **headers: str) -> WebhookRequest:
    return WebhookRequest(method=method, url="https://bastion.example/hooks/okta", headers=headers, body=body, received_at=datetime.now(UTC))


def test_verification_handshake_sets_the_challenge_response():
    request = hook_request("GET", **{"X-Okta-Verification-Challenge": "abc123", "Authorization": HOOK_SECRET})
    OktaConnector.verify_webhook(request, secret=HOOK_SECRET)
    [event] = OktaConnector.parse_webhook(request)
    assert event.challenge_response == {"verification": "abc123"}


def test_delivery_secret_is_checked():
    body = json.dumps({"eventId": "e1", "data": {"events": []}}).encode()
    OktaConnector.verify_webhook(hook_request("POST", body, Authorization=HOOK_SECRET), secret=HOOK_SECRET)
    with pytest.raises(WebhookRejected) as bad:
        OktaConnector.verify_webhook(hook_request("POST", body, Authorization="wrong"), secret=HOOK_SECRET)
    assert bad.value.status == 401
    with pytest.raises(WebhookRejected) as missing:
        OktaConnector.verify_webhook(hook_request("POST", body), secret=HOOK_SECRET)
    assert missing.value.status == 400
    with pytest.raises(WebhookRejected) as custom:
        OktaConnector.verify_webhook(hook_request("POST", body, Authorization=HOOK_SECRET), secret=HOOK_SECRET, config={"webhook_auth_header": "X-Hook-Key"})
    assert custom.value.status == 400
    with pytest.raises(WebhookRejected) as not_json:
        OktaConnector.parse_webhook(hook_request("POST", b"{nope", Authorization=HOOK_SECRET))
    assert not_json.value.status == 400


class Receiver:
    """A real HTTP endpoint that answers Okta like Bastion's intake would: verify, then parse."""

    def __init__(self, secret: str):
        self.events: list = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                request = WebhookRequest(self.command, self.path, dict(self.headers.items()), self.rfile.read(length), datetime.now(UTC))
                try:
                    OktaConnector.verify_webhook(request, secret=secret)
                    parsed = OktaConnector.parse_webhook(request)
                except WebhookRejected as rejected:
                    status, payload = rejected.status, {"error": rejected.code}
                else:
                    receiver.events += [e for e in parsed if e.challenge_response is None]
                    challenge = next((e.challenge_response for e in parsed if e.challenge_response), None)
                    status, payload = 200, challenge or {}
                receiver.statuses.append(status)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/okta"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    server = Receiver(HOOK_SECRET)
    yield server
    server.stop()


def register_hook(sandbox: str, url: str, secret: str) -> dict:
    token = okta_token(sandbox)
    hook = requests.post(
        f"{sandbox}/okta/api/v1/eventHooks",
        json={
            "name": "Bastion",
            "events": {"type": "EVENT_TYPE", "items": ["user.lifecycle.deactivate", "user.account.update_profile"]},
            "channel": {"type": "HTTP", "version": "1.0.0", "config": {"uri": url, "authScheme": {"type": "HEADER", "key": "Authorization", "value": secret}}},
        },
        headers={"Authorization": f"SSWS {token}"},
        timeout=5,
    ).json()
    assert "value" not in hook["channel"]["config"]["authScheme"]  # the secret is never echoed (nor shown as null: the spec types it string)
    return hook


def test_event_hook_end_to_end_verification_and_deliveries(sandbox, receiver):
    token = okta_token(sandbox)
    auth = {"Authorization": f"SSWS {token}"}
    hook = register_hook(sandbox, receiver.url, HOOK_SECRET)
    verified = requests.post(f"{sandbox}/okta/api/v1/eventHooks/{hook['id']}/lifecycle/verify", headers=auth, timeout=10).json()
    assert verified["verificationStatus"] == "VERIFIED"

    users = requests.get(f"{sandbox}/okta/api/v1/users", params={"search": 'profile.email eq "zara.ahmed@acme.example"'}, headers=auth, timeout=5).json()
    zara = users[0]["id"]
    requests.post(f"{sandbox}/okta/api/v1/users/{zara}/lifecycle/deactivate", headers=auth, timeout=5).raise_for_status()
    requests.post(f"{sandbox}/okta/_control/event-hooks/fire", json={"eventType": "user.account.update_profile", "userId": zara}, timeout=10).raise_for_status()
    wait_for(lambda: len(receiver.events) == 2, timeout=10, message="two Okta deliveries")
    delete, update = receiver.events
    assert (delete.action, delete.entity, delete.external_id, delete.event_type) == ("delete", "users", zara, "user.lifecycle.deactivate")
    assert (update.action, update.external_id) == ("sync", zara)
    assert delete.delivery_id != update.delivery_id and len(delete.delivery_id) == 32


def test_event_hook_with_the_wrong_secret_is_refused(sandbox, receiver):
    auth = {"Authorization": f"SSWS {okta_token(sandbox)}"}
    hook = register_hook(sandbox, receiver.url, "someone-elses-secret")
    answer = requests.post(f"{sandbox}/okta/api/v1/eventHooks/{hook['id']}/lifecycle/verify", headers=auth, timeout=10)
    assert answer.status_code == 400 and receiver.statuses == [401]
    assert receiver.events == []


@pytest.mark.django_db
def test_okta_through_a_stored_integration(sandbox, organization):
    from integrations.models import IntegrationStatus
    from integrations.services import build_connector, integration_connect

    integration = integration_connect(
        organization=organization, connector_key="okta", credentials={"api_token": okta_token(sandbox)}, base_url=f"{sandbox}/okta"
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED
    records, pages = read_all(build_connector(integration))
    assert len(records) == 20 and pages[-1].is_full_scan


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "okta"


def test_sandbox_users_and_groups_have_the_spec_example_shape(sandbox):
    spec_user = json.loads((FIXTURES / "users_list.json").read_text())[0]
    spec_group = json.loads((FIXTURES / "groups_list.json").read_text())[0]
    auth = {"Authorization": f"SSWS {okta_token(sandbox)}"}
    user = requests.get(f"{sandbox}/okta/api/v1/users", params={"limit": 1}, headers=auth, timeout=5).json()[0]
    group = requests.get(f"{sandbox}/okta/api/v1/groups", params={"limit": 1}, headers=auth, timeout=5).json()[0]
    assert set(spec_user) <= set(user) and set(spec_user["profile"]) - {"mobilePhone", "secondEmail"} <= set(user["profile"])
    assert set(spec_group) - {"_links"} <= set(group) and set(spec_group["profile"]) == set(group["profile"])
    person = OktaConnector().to_bastion("users", spec_user)
    assert (person["email"], person["name"], person["is_active"]) == ("alice.smith@example.com", "Alice Smith", True)


def test_recorded_multi_event_delivery_is_parsed_per_event():
    body = (FIXTURES / "event_hook_delivery.json").read_bytes()
    events = OktaConnector.parse_webhook(hook_request("POST", body, Authorization=HOOK_SECRET))
    # The group event is kept, as unsupported, so the inbox counts it instead of it vanishing.
    assert [(e.action, e.external_id) for e in events] == [("delete", "00u1omar0haddad00001"), ("sync", "00u1emma0rossi000001"), ("unsupported", "")]
    assert events[0].delivery_id == "b5a188b9-5ece-4636-b041-482ffda96311:f8b7bbd6-9f3d-11ee-8f2a-0d6a1c5f1f01"
    assert events[0].occurred_at.isoformat() == "2024-03-01T12:00:00+00:00"


def test_sandbox_supports_q_filter_and_rejects_bad_search(sandbox):
    auth = {"Authorization": f"SSWS {okta_token(sandbox)}"}
    found = requests.get(f"{sandbox}/okta/api/v1/users", params={"q": "gra"}, headers=auth, timeout=5).json()
    assert [u["profile"]["email"] for u in found] == ["grace.obrien@acme.example"]
    active = requests.get(f"{sandbox}/okta/api/v1/users", params={"filter": 'status eq "ACTIVE"'}, headers=auth, timeout=5).json()
    assert len(active) == 20
    bad = requests.get(f"{sandbox}/okta/api/v1/users", params={"search": "lastUpdated gt"}, headers=auth, timeout=5)
    assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000031"


def _okta_integration(sandbox: str, organization):
    from integrations.models import CredentialType
    from integrations.services import credential_store, integration_connect

    integration = integration_connect(
        organization=organization, connector_key="okta", credentials={"api_token": okta_token(sandbox)}, base_url=f"{sandbox}/okta"
    )
    credential_store(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": HOOK_SECRET})
    return integration


@pytest.mark.django_db(transaction=True)
def test_event_hook_through_bastions_webhook_intake(sandbox, live_server, organization):
    """Okta (stand-in) → Bastion's real intake over HTTP: handshake, a deactivation stored, processed, the record deleted."""
    from sync.models import DeliveryStatus, SyncRecord, WebhookDelivery
    from sync.services.jobs import data_sources_ensure, sync_start

    integration = _okta_integration(sandbox, organization)
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "users")
    sync_start(data_source=source, full_refresh=True)
    wait_for(lambda: SyncRecord.objects.filter(integration=integration, entity_type="users").count() == 20, message="initial Okta import")

    auth = {"Authorization": f"SSWS {okta_token(sandbox)}"}
    hook = register_hook(sandbox, f"{live_server.url}/api/webhooks/{integration.pk}", HOOK_SECRET)
    verified = requests.post(f"{sandbox}/okta/api/v1/eventHooks/{hook['id']}/lifecycle/verify", headers=auth, timeout=10).json()
    assert verified["verificationStatus"] == "VERIFIED"  # the GET handshake answered by Bastion's intake

    liam = SyncRecord.objects.get(integration=integration, entity_type="users", data__email="liam.novak@acme.example")
    requests.post(f"{sandbox}/okta/api/v1/users/{liam.external_id}/lifecycle/deactivate", headers=auth, timeout=10).raise_for_status()
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(integration=integration, status=DeliveryStatus.PROCESSED).first(), message="processed delivery")
    assert delivery.event_types == ["user.lifecycle.deactivate"]
    liam.refresh_from_db()
    assert liam.is_deleted is True


@pytest.mark.django_db
def test_sync_engine_full_then_incremental_with_deactivation(sandbox, organization, django_capture_on_commit_callbacks):
    from sync.models import DataSyncJob, JobStatus, SyncRecord
    from sync.services.jobs import data_sources_ensure, sync_start

    integration = _okta_integration(sandbox, organization)
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "users")
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source, full_refresh=True)
    assert DataSyncJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    grace = SyncRecord.objects.get(integration=integration, entity_type="users", data__email="grace.obrien@acme.example")
    requests.post(
        f"{sandbox}/okta/api/v1/users/{grace.external_id}/lifecycle/deactivate", headers={"Authorization": f"SSWS {okta_token(sandbox)}"}, timeout=5
    ).raise_for_status()
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source)
    job = DataSyncJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.deleted_count == 1 and job.records_processed == 0
    grace.refresh_from_db()
    assert grace.is_deleted is True
