"""HubSpot connector against the HubSpot stand-in over real HTTP: auth, discovery, paged and incremental reads, actions, webhooks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.connectors.base import WebhookRequest
from integrations.connectors.hubspot import HubSpotConnector, sign_v3
from integrations.errors import ApiNotFound, ApiUnauthorized, WebhookRejected
from integrations.http import BearerAuth, HttpClient
from sandbox.vendors._people import people
from tests.conftest import wait_for

FIXTURES = Path(__file__).parent / "fixtures" / "hubspot"
SCOPES = ["crm.objects.deals.read", "crm.objects.deals.write", "crm.objects.contacts.read", "crm.objects.companies.read", "crm.objects.owners.read"]
CLIENT_SECRET = "hubspot-app-client-secret"


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def issue_token(sandbox: str, scopes: list[str] | None = None) -> str:
    response = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "hubspot", "scopes": scopes if scopes is not None else SCOPES}, timeout=5)
    response.raise_for_status()
    return response.json()["token"]


def set_faults(sandbox: str, **knobs) -> None:
    requests.put(f"{sandbox}/_control/faults/hubspot", json=knobs, timeout=5).raise_for_status()


def sandbox_settings(sandbox: str, **values) -> None:
    requests.post(f"{sandbox}/hubspot/_sandbox/settings", json=values, timeout=5).raise_for_status()


def created(sandbox: str, kind: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "hubspot", "kind": kind}, timeout=5).json()


def api_requests(sandbox: str, suffix: str) -> list[dict]:
    return [r for r in requests.get(f"{sandbox}/_control/requests", params={"vendor": "hubspot"}, timeout=5).json() if r["path"].endswith(suffix)]


@pytest.fixture
def hubspot(sandbox, sleeps) -> HubSpotConnector:
    client = HttpClient(f"{sandbox}/hubspot", auth=BearerAuth(issue_token(sandbox)), sleep=sleeps, timeout=(2.0, 5.0))
    return HubSpotConnector(client=client, config={"page_size": 5})


def read_all(connector: HubSpotConnector, entity: str, cursor=None):
    """Drive read() the way the sync engine does; return (records, pages, final cursor, deleted ids)."""
    records, pages, deleted, page, last_cursor = [], [], [], None, cursor
    while True:
        result = connector.read(entity, cursor=cursor, page=page)
        pages.append(result)
        records.extend(result.records)
        deleted.extend(result.deleted_ids)
        last_cursor = result.cursor or last_cursor
        if result.next_page is None:
            return records, pages, last_cursor, deleted
        page = result.next_page


# ---- connection and auth ----------------------------------------------------------------------------------------------


def test_private_app_token_connection_reports_the_portal(hubspot):
    result = hubspot.test_connection()
    assert (result.ok, result.account_id, result.identity) == (True, "4242424", "HubSpot portal 4242424")
    assert result.detail["companyCurrency"] == "USD"


def test_oauth_code_flow_gives_30_minute_tokens_and_introspected_scopes(sandbox, sleeps):
    redirect = "http://127.0.0.1/callback"
    consent = requests.post(
        f"{sandbox}/hubspot/oauth/authorize",
        data={"client_id": "bastion-demo", "redirect_uri": redirect, "scope": " ".join(SCOPES), "state": "s1", "decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    token = requests.post(
        f"{sandbox}/hubspot/oauth/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": "bastion-demo", "client_secret": "bastion-demo-secret"},
        timeout=5,
    ).json()
    assert token["expires_in"] == 1800
    refreshed = [
        requests.post(
            f"{sandbox}/hubspot/oauth/v1/token",
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "bastion-demo", "client_secret": "bastion-demo-secret"},
            timeout=5,
        ).json()
        for _ in range(2)
    ]
    assert all("access_token" in r and "refresh_token" not in r for r in refreshed)  # the refresh token is not rotated: still valid
    connector = HubSpotConnector(
        client=HttpClient(f"{sandbox}/hubspot", sleep=sleeps),
        credentials={"access_token": refreshed[1]["access_token"], "refresh_token": token["refresh_token"]},
    )
    result = connector.test_connection()
    assert result.account_id == "4242424"
    assert sorted(result.scopes) == sorted(SCOPES)


def test_a_bad_token_is_unauthorized_with_hubspots_envelope(sandbox, sleeps):
    connector = HubSpotConnector(client=HttpClient(f"{sandbox}/hubspot", sleep=sleeps), credentials={"access_token": "not-a-token"})
    with pytest.raises(ApiUnauthorized) as caught:
        connector.test_connection()
    assert caught.value.vendor_code == "INVALID_AUTHENTICATION"


# ---- discovery and reads ----------------------------------------------------------------------------------------------


def test_property_discovery_flags_custom_properties(hubspot):
    fields = {f.name: f for f in hubspot.discover_fields("deals")}
    assert fields["bastion_deal_type"].is_custom and fields["bastion_board_sponsor"].is_custom
    assert not fields["dealname"].is_custom
    assert (fields["amount"].type, fields["closedate"].type, fields["dealname"].path) == ("number", "datetime", "$.properties.dealname")
    assert {f.name for f in hubspot.discover_fields("contacts") if f.is_custom} == {"department"}


def test_deals_import_completely_in_small_pages_with_stakeholders(hubspot, sandbox):
    records, pages, cursor, _ = read_all(hubspot, "deals")
    assert len(pages) == 3 and [len(p.records) for p in pages] == [5, 5, 2]
    assert len({r["id"] for r in records}) == 12
    assert all(p.is_full_scan for p in pages)
    assert [p.cursor for p in pages[:-1]] == [None, None]  # list order is by id: the cursor moves only at the end
    assert cursor == "2025-01-08T02:00:00.000Z"
    deals = {d["dealName"]: d for d in (hubspot.to_bastion("deals", r) for r in records)}
    falcon = deals["Project Falcon: acquisition of Northwind Analytics"]
    assert falcon == {
        "external_id": "9001",
        "dealName": "Project Falcon: acquisition of Northwind Analytics",
        "value": 12500000.0,
        "currency": "USD",
        "closeDate": "2025-09-30",
        "stage": "negotiating",
        "owner_email": "ava.chen@acme.example",
        "stakeholders": ["ava.chen@acme.example", "priya.raman@acme.example", "grace.obrien@acme.example", "mateo.lopez@acme.example"],
    }
    assert sum(1 for d in deals.values() if d["value"] > 10_000_000) == 1
    # Associations and owners cost one batch call per page, not one per deal.
    assert len(api_requests(sandbox, "/crm/v4/associations/deals/contacts/batch/read")) == 3
    assert len(api_requests(sandbox, "/crm/v3/owners")) == 1


def test_contacts_are_the_shared_people_and_owners_are_people(hubspot):
    contacts, _, _, _ = read_all(hubspot, "contacts")
    persons = [hubspot.to_bastion("contacts", c) for c in contacts]
    assert sorted(p["email"] for p in persons) == sorted(p["email"] for p in people())
    chloe = next(p for p in persons if p["given_name"] == "Chloé")
    assert (chloe["name"], chloe["title"], chloe["department"], chloe["is_active"]) == ("Chloé Dubois", "Press Officer", "Communications", True)
    owners, _, _, _ = read_all(hubspot, "owners")
    owner = hubspot.to_bastion("owners", owners[0])
    assert owner["email"] == "mateo.lopez@acme.example" and owner["groups"] == ["Corporate Development"] and owner["manager_external_id"] == ""


def test_incremental_resync_returns_changes_then_deletions(hubspot, sandbox):
    _, _, cursor, _ = read_all(hubspot, "deals")
    hubspot.perform("update_deal", {"deal_id": "9003", "properties": {"dealstage": "closedlost"}}, idempotency_key="u1")
    requests.post(f"{sandbox}/hubspot/_sandbox/deals/9005/delete", timeout=5).raise_for_status()
    records, pages, new_cursor, deleted = read_all(hubspot, "deals", cursor=cursor)
    ids = {r["id"] for r in records}
    assert "9003" in ids and "9005" not in ids
    assert ids <= {"9003", "9012"}  # the boundary record may be re-read (GTE), nothing older
    assert deleted == ["9005"]
    assert not any(p.is_full_scan for p in pages)
    assert new_cursor > cursor
    assert hubspot.to_bastion("deals", next(r for r in records if r["id"] == "9003"))["stage"] == "lost"
    search = [r for r in api_requests(sandbox, "/crm/v3/objects/deals/search")]
    assert search and all(r["status"] == 200 for r in search)


def test_search_restarts_from_the_last_modified_date_at_the_result_ceiling(hubspot, sandbox):
    sandbox_settings(sandbox, search_result_ceiling=4)
    hubspot.config.update(page_size=2, search_result_ceiling=4)  # the real ceiling is 10,000; both sides shrink it alike
    records, pages, cursor, _ = read_all(hubspot, "deals", cursor="2024-12-31T00:00:00.000Z")
    assert {r["id"] for r in records} == {str(9001 + i) for i in range(12)}
    assert all(r["status"] == 200 for r in api_requests(sandbox, "/crm/v3/objects/deals/search"))  # never paged past the ceiling
    assert cursor == "2025-01-08T02:00:00.000Z"


def test_429_with_hubspot_rate_limit_body_is_waited_out(hubspot, sandbox, sleeps):
    set_faults(sandbox, rate_limit_next=1, retry_after=2)
    assert hubspot.test_connection().ok
    assert sleeps.waits and sleeps.waits[0] >= 2
    assert hubspot.last_rate_limit["daily_limit"] == 250000 and hubspot.last_rate_limit["daily_remaining"] < 250000


# ---- actions ----------------------------------------------------------------------------------------------------------


def test_update_deal_patches_and_unknown_deal_is_not_found(hubspot):
    first = hubspot.perform("update_deal", {"deal_id": "9002", "properties": {"amount": "500000"}}, idempotency_key="k")
    again = hubspot.perform("update_deal", {"deal_id": "9002", "properties": {"amount": "500000"}}, idempotency_key="k")
    assert (first.external_id, first.created, again.data["properties"]["amount"]) == ("9002", False, "500000")
    with pytest.raises(ApiNotFound) as caught:
        hubspot.perform("update_deal", {"deal_id": "1", "properties": {"amount": "1"}}, idempotency_key="x")
    assert caught.value.vendor_code == "OBJECT_NOT_FOUND"


def test_create_note_twice_with_the_same_key_makes_one_note(hubspot, sandbox):
    first = hubspot.perform("create_note", {"deal_id": "9001", "body": "Board briefed on Falcon."}, idempotency_key="run-1:note")
    second = hubspot.perform("create_note", {"deal_id": "9001", "body": "Board briefed on Falcon."}, idempotency_key="run-1:note")
    other = hubspot.perform("create_note", {"deal_id": "9001", "body": "Second note."}, idempotency_key="run-1:note-2")
    assert (first.created, second.created, second.external_id) == (True, False, first.external_id)
    assert other.external_id != first.external_id
    assert len(created(sandbox, "note")) == 2


def test_create_note_survives_a_5xx_after_hubspot_created_it(hubspot, sandbox):
    sandbox_settings(sandbox, fail_after_create_next=1)
    result = hubspot.perform("create_note", {"deal_id": "9001", "contact_id": "501", "body": "Falcon war room opened."}, idempotency_key="run-2:note")
    assert len(created(sandbox, "note")) == 1
    assert result.external_id == created(sandbox, "note")[0]["id"]


def test_create_task_without_a_deal_is_found_by_search_under_retries(hubspot, sandbox):
    sandbox_settings(sandbox, fail_after_create_next=1)
    due = (datetime.now(tz=UTC) + timedelta(days=2)).isoformat()
    first = hubspot.perform("create_task", {"subject": "Prepare data room", "body": "NDA first", "owner_id": "70101", "due": due}, idempotency_key="t1")
    second = hubspot.perform("create_task", {"subject": "Prepare data room", "owner_id": "70101"}, idempotency_key="t1")
    assert first.external_id == second.external_id and not second.created
    assert len(created(sandbox, "task")) == 1


# ---- webhooks ---------------------------------------------------------------------------------------------------------


def _signed(url: str, body: bytes, secret: str = CLIENT_SECRET, age_ms: int = 0) -> WebhookRequest:
    now = datetime.now(tz=UTC)
    timestamp = str(int(now.timestamp() * 1000) - age_ms)
    headers = {"X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, timestamp), "X-HubSpot-Request-Timestamp": timestamp}
    return WebhookRequest("POST", url, headers, body, now)


def test_webhook_signature_accepted_wrong_stale_and_missing():
    url = "https://bastion.example/hooks/hubspot/abc?x=1"
    body = json.dumps(fixture("webhook_events.json")).encode()
    HubSpotConnector.verify_webhook(_signed(url, body), secret=CLIENT_SECRET)
    with pytest.raises(WebhookRejected) as wrong:
        HubSpotConnector.verify_webhook(_signed(url, body, secret="other"), secret=CLIENT_SECRET)
    with pytest.raises(WebhookRejected) as stale:
        HubSpotConnector.verify_webhook(_signed(url, body, age_ms=6 * 60 * 1000), secret=CLIENT_SECRET)
    tampered = _signed(url, body)
    tampered.body = body.replace(b"closedwon", b"closedlost")
    with pytest.raises(WebhookRejected) as changed:
        HubSpotConnector.verify_webhook(tampered, secret=CLIENT_SECRET)
    with pytest.raises(WebhookRejected) as missing:
        HubSpotConnector.verify_webhook(WebhookRequest("POST", url, {}, body, datetime.now(tz=UTC)), secret=CLIENT_SECRET)
    assert (wrong.value.status, stale.value.status, changed.value.status, missing.value.status) == (401, 409, 401, 400)


def test_webhook_events_become_bastion_events():
    request = _signed("https://bastion.example/hooks/hubspot", json.dumps(fixture("webhook_events.json")).encode())
    events = HubSpotConnector.parse_webhook(request)
    summary = [(e.delivery_id, e.entity, e.external_id, e.action) for e in events]
    assert summary == [
        ("1001", "deals", "9001", "sync"),
        ("1002", "deals", "9002", "delete"),
        ("1003", "contacts", "601", "sync"),
        ("1005", "contacts", "601", "sync"),
        ("1005:602", "contacts", "602", "delete"),
    ]  # ticket events are not a Bastion entity and are skipped
    assert events[0].occurred_at == datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(WebhookRejected) as caught:
        HubSpotConnector.parse_webhook(WebhookRequest("POST", "u", {}, b'{"eventId": 1}', datetime.now(tz=UTC)))
    assert caught.value.status == 400


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((self.path, dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/hubspot/7f3a", _Receiver.received
    server.shutdown()


def test_sandbox_deal_change_delivers_a_signed_webhook_over_http(hubspot, sandbox, receiver):
    url, received = receiver
    requests.post(f"{sandbox}/hubspot/_sandbox/webhooks", json={"target_url": url, "client_secret": CLIENT_SECRET}, timeout=5).raise_for_status()
    answer = requests.post(f"{sandbox}/hubspot/_sandbox/deals/9001/modify", json={"properties": {"dealstage": "closedwon"}}, timeout=5).json()
    wait_for(lambda: received, timeout=10, message="the HubSpot webhook delivery")
    _path, headers, body = received[0]
    request = WebhookRequest("POST", url, headers, body, datetime.now(tz=UTC))
    HubSpotConnector.verify_webhook(request, secret=CLIENT_SECRET)
    with pytest.raises(WebhookRejected):
        HubSpotConnector.verify_webhook(request, secret="wrong-secret")
    [event] = HubSpotConnector.parse_webhook(request)
    assert (event.delivery_id, event.entity, event.external_id, event.action, event.event_type) == (
        str(answer["events"][0]["eventId"]),
        "deals",
        "9001",
        "sync",
        "deal.propertyChange",
    )
    assert answer["deliveries"][0]["status"] == 204
    records, _, _, _ = read_all(hubspot, "deals", cursor="2025-06-01T00:00:00.000Z")
    assert [hubspot.to_bastion("deals", r)["stage"] for r in records] == ["won"]


# ---- transformers -----------------------------------------------------------------------------------------------------


def test_transformers_both_ways_from_recorded_payloads():
    connector = HubSpotConnector(config={"stage_map": {"contractsent": "diligence"}})
    deal = connector.to_bastion("deals", fixture("deal.json"))
    assert deal == {
        "external_id": "18726492811",
        "dealName": "Project Falcon: acquisition of Northwind Analytics",
        "value": 12500000.0,
        "currency": "EUR",
        "closeDate": "2025-09-30",
        "stage": "diligence",
        "owner_email": "ava.chen@acme.example",
        "stakeholders": ["ava.chen@acme.example", "grace.obrien@acme.example"],
    }
    assert connector.updated_at("deals", fixture("deal.json")) == "2025-03-02T10:11:12.345Z"
    assert connector.from_bastion("deals", {"dealName": "Falcon", "value": 13000000, "closeDate": "2025-10-31", "stage": "won"}) == {
        "dealname": "Falcon",
        "amount": "13000000",
        "closedate": "2025-10-31",
        "dealstage": "closedwon",
    }
    assert connector.from_bastion("deals", {"stage": "diligence"}) == {"dealstage": "contractsent"}
    person = connector.to_bastion("contacts", fixture("contact.json"))
    assert (person["email"], person["name"], person["department"], person["phone"]) == ("Lucas.Silva@acme.example", "Lucas Silva", "Product", "+1 415 555 0112")
    assert connector.from_bastion("contacts", {"given_name": "Lucas", "title": "CPO"}) == {"firstname": "Lucas", "jobtitle": "CPO"}
    no_amount = {**fixture("deal.json"), "properties": {"dealname": "Empty", "dealstage": "custom-stage-123"}}
    assert (connector.to_bastion("deals", no_amount)["value"], connector.to_bastion("deals", no_amount)["stage"]) == (None, "open")


# ---- through the Django layer -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_integration_connect_and_test_store_the_portal_id(sandbox, organization, settings):
    from integrations.models import CredentialType, IntegrationStatus
    from integrations.services import integration_connect, integration_test

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the sandbox listens on loopback
    integration = integration_connect(
        organization=organization,
        connector_key="hubspot",
        credentials={"access_token": issue_token(sandbox)},
        credential_type=CredentialType.API_KEY,
        base_url=f"{sandbox}/hubspot",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED
    assert integration.external_account_id == "4242424"
    assert integration_test(integration=integration).ok
