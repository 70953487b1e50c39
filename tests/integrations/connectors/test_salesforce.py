"""Salesforce connector against the Salesforce stand-in over real HTTP: OAuth instance_url, describe, SOQL paging, incremental, actions, limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.connectors.salesforce import ApiUsage, SalesforceConnector, parse_limit_info, soql_datetime, soql_string, split_emails
from integrations.errors import ApiBadRequest, ApiQuotaExhausted, ApiUnauthorized
from integrations.http import BearerAuth, HttpClient
from sandbox.vendors._people import people

FIXTURES = Path(__file__).parent / "fixtures" / "salesforce"
UNREACHABLE_LOGIN_HOST = "https://login.salesforce.invalid"  # proves calls go to instance_url, not the client's base URL


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def issue_token(sandbox: str) -> str:
    response = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "salesforce"}, timeout=5)
    response.raise_for_status()
    return response.json()["token"]


def set_faults(sandbox: str, **knobs) -> None:
    requests.put(f"{sandbox}/_control/faults/salesforce", json=knobs, timeout=5).raise_for_status()


def created(sandbox: str, kind: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "salesforce", "kind": kind}, timeout=5).json()


def query(connector: SalesforceConnector, soql: str) -> list[dict]:
    return connector.client.get(connector._url("/query"), params={"q": soql}).json()["records"]


@pytest.fixture
def salesforce(sandbox, sleeps) -> SalesforceConnector:
    client = HttpClient(UNREACHABLE_LOGIN_HOST, auth=BearerAuth(issue_token(sandbox)), sleep=sleeps, timeout=(2.0, 5.0))
    return SalesforceConnector(client=client, credentials={"instance_url": f"{sandbox}/salesforce"}, config={"batch_size": 200})


def read_all(connector: SalesforceConnector, entity: str, cursor=None):
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


# ---- OAuth, connection, limits ----------------------------------------------------------------------------------------


def test_oauth_token_response_carries_instance_url_and_the_connector_uses_it(sandbox, sleeps):
    redirect = "http://127.0.0.1/callback"
    consent = requests.post(
        f"{sandbox}/salesforce/services/oauth2/authorize",
        data={"client_id": "bastion-demo", "redirect_uri": redirect, "scope": "api refresh_token", "state": "s", "response_type": "code", "decision": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    token = requests.post(
        f"{sandbox}/salesforce/services/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect, "client_id": "bastion-demo", "client_secret": "bastion-demo-secret"},
        timeout=5,
    ).json()
    assert token["instance_url"] == f"{sandbox}/salesforce" and token["token_type"] == "Bearer" and "expires_in" not in token
    expected = base64.b64encode(hmac.new(b"bastion-demo-secret", (token["id"] + token["issued_at"]).encode(), hashlib.sha256).digest()).decode()
    assert token["signature"] == expected
    refreshed = requests.post(
        f"{sandbox}/salesforce/oauth/token",  # the generic path Bastion uses with config["oauth_base_url"] answers the same way
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "bastion-demo", "client_secret": "bastion-demo-secret"},
        timeout=5,
    ).json()
    assert refreshed["instance_url"] == token["instance_url"] and "refresh_token" not in refreshed
    connector = SalesforceConnector(client=HttpClient(UNREACHABLE_LOGIN_HOST, sleep=sleeps), credentials=token)
    result = connector.test_connection()
    assert (result.ok, result.account_id, result.identity) == (True, "00D5g000004ACMEEA2", "ava.chen@acme.example")
    assert result.scopes == ["api", "refresh_token"]
    assert result.detail["daily_api_requests"] == {"max": 15000, "remaining": 14999}
    assert connector.last_api_usage == ApiUsage(used=1, limit=15000)


def test_api_version_is_configurable_and_validated(salesforce):
    salesforce.config["api_version"] = "v58.0"
    assert salesforce.data_url.endswith("/services/data/v58.0")
    assert salesforce.test_connection().ok
    salesforce.config["api_version"] = "latest"
    with pytest.raises(ApiBadRequest):
        salesforce.test_connection()


def test_an_invalid_session_is_unauthorized(sandbox, sleeps):
    connector = SalesforceConnector(client=HttpClient(f"{sandbox}/salesforce", sleep=sleeps), credentials={"access_token": "00Dxx!expired"})
    with pytest.raises(ApiUnauthorized) as caught:
        connector.read("users")
    assert caught.value.vendor_code == "INVALID_SESSION_ID"


def test_daily_limit_header_is_tracked_and_request_limit_exceeded_is_quota_exhausted(salesforce, sandbox, sleeps):
    set_faults(sandbox, quota_remaining=2)
    salesforce.read("accounts")
    assert salesforce.last_api_usage == ApiUsage(used=14999, limit=15000)
    salesforce.read("accounts")
    assert salesforce.last_api_usage.remaining == 0
    with pytest.raises(ApiQuotaExhausted) as caught:
        salesforce.read("accounts")
    assert caught.value.vendor_code == "REQUEST_LIMIT_EXCEEDED" and caught.value.retry_after >= 60
    assert sleeps.waits == []  # a spent daily quota is never slept on inline
    assert salesforce.last_api_usage == ApiUsage(used=15000, limit=15000)


def test_limit_info_parsing():
    assert parse_limit_info("api-usage=25/15000") == ApiUsage(25, 15000)
    assert parse_limit_info("api-usage=18/5000; per-app-api-usage=17/250(appName=sample)") == ApiUsage(18, 5000)
    assert parse_limit_info(None) is None and parse_limit_info("api-bursts=1/2") is None


def test_transient_errors_are_retried(salesforce, sandbox, sleeps):
    set_faults(sandbox, error_next=2, error_status=503)
    records, _, _, _ = read_all(salesforce, "accounts")
    assert len(records) == 5 and len(sleeps.waits) == 2


# ---- discovery and reads ----------------------------------------------------------------------------------------------


def test_describe_discovers_fields_and_flags_custom_ones(salesforce):
    fields = {f.name: f for f in salesforce.discover_fields("opportunities")}
    assert {name for name, f in fields.items() if f.is_custom} == {"Team__c", "Deal_Type__c", "Bastion_Key__c"}
    assert (fields["Amount"].type, fields["CloseDate"].type, fields["Name"].path) == ("number", "date", "$.Name")
    assert not fields["Name"].is_custom


def test_complete_import_follows_next_records_url(salesforce, sandbox):
    requests.post(
        f"{sandbox}/salesforce/_sandbox/bulk/Opportunity",
        json={"count": 450, "fields": {"Name": "Synthetic deal {n}", "StageName": "Prospecting", "CloseDate": "2026-01-31", "Amount": 1000}},
        timeout=30,
    ).raise_for_status()
    records, pages, cursor, _ = read_all(salesforce, "opportunities")
    assert [len(p.records) for p in pages] == [200, 200, 62]
    assert len({r["Id"] for r in records}) == 462
    assert all(p.is_full_scan for p in pages) and all(p.cursor for p in pages)
    seeds = [salesforce.to_bastion("opportunities", r) for r in records if not r["Name"].startswith("Synthetic")]
    assert len(seeds) == 12 and sum(1 for d in seeds if d["value"] > 10_000_000) == 1
    assert cursor == max(p.cursor for p in pages)


def test_users_are_the_shared_people_with_managers(salesforce):
    users, _, _, _ = read_all(salesforce, "users")
    persons = {p["email"]: p for p in (salesforce.to_bastion("users", u) for u in users)}
    assert sorted(persons) == sorted(p["email"] for p in people())
    by_id = {p["external_id"]: p for p in persons.values()}
    emma = persons["emma.rossi@acme.example"]
    assert by_id[emma["manager_external_id"]]["email"] == "marcus.okafor@acme.example"
    assert (emma["username"], emma["title"], emma["is_active"]) == ("emma.rossi@acme.example", "Security Engineer", True)
    contacts, _, _, _ = read_all(salesforce, "contacts")
    assert "" in {salesforce.to_bastion("contacts", c)["email"] for c in contacts}  # a contact without email still imports


def test_incremental_resync_returns_changes_and_deletions(salesforce, sandbox):
    _, _, cursor, _ = read_all(salesforce, "opportunities")
    assert cursor == "2025-01-06T12:11:00Z"
    falcon = "0065g0000000001AAA"
    salesforce.perform("update_record", {"sobject": "Opportunity", "id": falcon, "fields": {"StageName": "Closed Won"}}, idempotency_key="u")
    salesforce.client.delete(salesforce._url("/sobjects/Opportunity/0065g0000000005AAA"))
    records, pages, new_cursor, deleted = read_all(salesforce, "opportunities", cursor=cursor)
    assert falcon in {r["Id"] for r in records}
    assert {r["Id"] for r in records} <= {falcon, "0065g0000000012AAA"}  # the boundary second may be re-read
    assert deleted == ["0065g0000000005AAA"]
    assert not any(p.is_full_scan for p in pages) and new_cursor > cursor
    assert salesforce.to_bastion("opportunities", next(r for r in records if r["Id"] == falcon))["stage"] == "won"
    now = datetime.now(tz=UTC)
    window = ((now - timedelta(hours=1)).isoformat(), (now + timedelta(minutes=1)).isoformat())
    assert salesforce.deleted_between("opportunities", *window) == ["0065g0000000005AAA"]
    with pytest.raises(ApiBadRequest) as too_old:  # the delete log only reaches 15 days back
        salesforce.deleted_between("opportunities", cursor, window[1])
    assert too_old.value.vendor_code == "INVALID_REPLICATION_DATE"
    assert read_all(salesforce, "opportunities", cursor="2030-01-01T00:00:00Z")[0] == []


# ---- actions ----------------------------------------------------------------------------------------------------------


def test_create_record_with_a_marker_field_is_created_once_under_retries(salesforce, sandbox):
    payload = {"sobject": "Task", "fields": {"Subject": "Falcon: prepare data room", "WhatId": "0065g0000000001AAA", "Priority": "High"}}
    requests.post(f"{sandbox}/salesforce/_sandbox/settings", json={"fail_after_create_next": 1}, timeout=5).raise_for_status()
    first = salesforce.perform("create_record", payload, idempotency_key="run-9:task")
    second = salesforce.perform("create_record", payload, idempotency_key="run-9:task")
    assert first.external_id == second.external_id and second.created is False
    assert [c["id"] for c in created(sandbox, "Task")] == [first.external_id]
    assert query(salesforce, "SELECT Id, Bastion_Key__c FROM Task")[0]["Bastion_Key__c"] == "run-9:task"


def test_create_record_by_external_id_upsert_is_idempotent(salesforce, sandbox):
    salesforce.config["external_id_field"] = {"Opportunity": "Bastion_Key__c"}
    payload = {"sobject": "Opportunity", "fields": {"Name": "Project Kestrel", "StageName": "Prospecting", "CloseDate": "2026-03-31", "Amount": 2500000}}
    first = salesforce.perform("create_record", payload, idempotency_key="run-3:opp")
    second = salesforce.perform("create_record", payload, idempotency_key="run-3:opp")
    assert (first.created, second.created, second.external_id) == (True, False, first.external_id)
    assert len(created(sandbox, "Opportunity")) == 1
    assert first.url.endswith(f"/lightning/r/Opportunity/{first.external_id}/view")


def test_create_record_errors_are_clear_and_create_nothing(salesforce, sandbox):
    with pytest.raises(ApiBadRequest) as caught:
        salesforce.perform("create_record", {"sobject": "Opportunity", "fields": {"Name": "No stage"}}, idempotency_key="bad")
    assert caught.value.vendor_code == "REQUIRED_FIELD_MISSING" and "StageName" in caught.value.message
    with pytest.raises(ApiBadRequest):
        salesforce.perform("create_record", {"sobject": "Opportunity; DROP", "fields": {}}, idempotency_key="bad2")
    assert created(sandbox, "Opportunity") == []


def test_update_record_writes_fields(salesforce):
    salesforce.perform("update_record", {"sobject": "Opportunity", "id": "0065g0000000002AAA", "fields": {"Amount": 510000}}, idempotency_key="x")
    assert query(salesforce, "SELECT Amount FROM Opportunity WHERE Id = '0065g0000000002AAA'")[0]["Amount"] == 510000


# ---- transformers -----------------------------------------------------------------------------------------------------


def test_the_seeds_salesforce_transformer_example():
    connector = SalesforceConnector()
    assert connector.to_bastion("opportunities", fixture("opportunity.json")) == {
        "external_id": "0065g00000AbCdEAAZ",
        "dealName": "Project Falcon: acquisition of Northwind Analytics",
        "value": 12500000.0,
        "currency": "USD",
        "closeDate": "2025-09-30",
        "stage": "negotiating",
        "owner_email": "ava.chen@acme.example",
        "stakeholders": ["ava.chen@acme.example", "grace.obrien@acme.example", "priya.raman@acme.example"],
    }
    assert connector.from_bastion(
        "opportunities", {"dealName": "Falcon", "value": 1.5, "closeDate": "2025-10-01", "stage": "won", "stakeholders": ["a@x", "b@x"]}
    ) == {
        "Name": "Falcon",
        "Amount": 1.5,
        "CloseDate": "2025-10-01",
        "StageName": "Closed Won",
        "Team__c": "a@x;b@x",
    }
    for stage, expected in [
        ("Prospecting", "qualifying"),
        ("Qualification", "qualifying"),
        ("Negotiation/Review", "negotiating"),
        ("Closed Lost", "lost"),
        ("Odd", "open"),
    ]:
        assert connector.map_stage(stage) == expected
    custom = SalesforceConnector(config={"stage_map": {"Due Diligence": "diligence"}, "default_currency": "EUR"})
    deal = custom.to_bastion("opportunities", {**fixture("opportunity.json"), "StageName": "Due Diligence", "Amount": None, "Owner": None})
    assert (deal["stage"], deal["value"], deal["currency"], deal["owner_email"]) == ("diligence", None, "EUR", "")
    person = connector.to_bastion("users", fixture("user.json"))
    assert (person["manager_external_id"], person["is_active"], person["groups"]) == ("0055g0000000002AAA", False, [])


def test_soql_literals_and_team_parsing():
    assert soql_string("O'Brien\\x") == "'O\\'Brien\\\\x'"
    assert soql_datetime("2025-03-02T10:11:12.000+0000") == "2025-03-02T10:11:12Z"
    assert soql_datetime("2025-03-02T12:11:12+02:00") == "2025-03-02T10:11:12Z"
    assert split_emails(" a@x.example;B@x.example, a@x.example\n\n") == ["a@x.example", "B@x.example"]


# ---- through the Django layer -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_integration_connect_with_oauth_credentials_uses_instance_url(sandbox, organization, settings):
    from integrations.models import CredentialType, IntegrationStatus
    from integrations.services import integration_connect

    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the sandbox listens on loopback
    integration = integration_connect(
        organization=organization,
        connector_key="salesforce",
        credentials={"access_token": issue_token(sandbox), "instance_url": f"{sandbox}/salesforce", "token_type": "Bearer"},
        credential_type=CredentialType.OAUTH,
    )
    integration.refresh_from_db()
    assert integration.base_url == ""  # no per-integration base URL: the credential's instance_url is the API base
    assert integration.status == IntegrationStatus.CONNECTED
    assert integration.external_account_id == "00D5g000004ACMEEA2"
