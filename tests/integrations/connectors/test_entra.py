"""The Microsoft Entra ID connector over real HTTP against the Graph stand-in: client credentials, nextLink, delta, 429."""

from __future__ import annotations

import pytest
import requests

from integrations.connectors.entra import EntraConnector
from integrations.errors import ApiBadRequest, ApiNotFound, ApiUnauthorized
from integrations.http import HttpClient
from integrations.registry import get_connector_class
from sandbox.vendors._people import people

TENANT = "acme-tenant"

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


def make_entra(sandbox: str, secret: str = "entra-secret", sleeps: list | None = None, **config) -> EntraConnector:
    client = HttpClient(f"{sandbox}/entra/v1.0", sleep=(sleeps.append if sleeps is not None else lambda s: None))
    settings = {"tenant_id": TENANT, "login_base_url": f"{sandbox}/entra", **config}
    return EntraConnector(client=client, config=settings, credentials={"client_id": "bastion-demo", "client_secret": secret})


def read_all(connector: EntraConnector, entity: str = "users", cursor=None):
    pages = [connector.read(entity, cursor=cursor)]
    while pages[-1].next_page is not None:
        pages.append(connector.read(entity, cursor=cursor, page=pages[-1].next_page))
    return [r for p in pages for r in p.records], pages


def graph(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    token = requests.post(
        f"{sandbox}/entra/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y", "scope": "https://graph.microsoft.com/.default"},
        timeout=5,
    ).json()["access_token"]
    return requests.request(method, f"{sandbox}/entra/v1.0/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5, **kwargs)


def test_manifest_and_connection_via_client_credentials(sandbox):
    assert get_connector_class("entra").manifest.name == "Microsoft Entra ID"
    connector = make_entra(sandbox)
    result = connector.test_connection()
    assert result.ok and result.identity == "Acme (sandbox)" and result.account_id
    assert connector.client.auth.fetches == 1
    connector.test_connection()
    assert connector.client.auth.fetches == 1  # the app-only token is reused until shortly before it expires


def test_wrong_client_secret_is_unauthorized(sandbox):
    with pytest.raises(ApiUnauthorized, match="AADSTS7000215"):
        make_entra(sandbox, secret="wrong-secret").test_connection()


def test_missing_tenant_is_a_configuration_error(sandbox):
    with pytest.raises(ApiBadRequest, match="tenant"):
        make_entra(sandbox, tenant_id="")


def test_graph_error_envelope_and_manager_lookup(sandbox):
    connector = make_entra(sandbox)
    records, _ = read_all(connector)
    by_email = {r["mail"]: r["id"] for r in records}
    manager = connector.manager_of(by_email["emma.rossi@acme.example"])
    assert manager["mail"] == "marcus.okafor@acme.example"
    assert connector.manager_of(by_email["ava.chen@acme.example"]) is None
    with pytest.raises(ApiNotFound) as error:
        connector.client.get("users/00000000-0000-0000-0000-000000000000")
    assert error.value.vendor_code == "Request_ResourceNotFound"


def test_discover_fields():
    fields = {f.name: f for f in EntraConnector(config={"tenant_id": TENANT}).discover_fields("users")}
    assert {"mail", "jobTitle", "department", "manager", "groups", "onPremisesSamAccountName"} <= set(fields)
    assert fields["accountEnabled"].type == "boolean"


def test_full_import_pages_with_next_link_and_maps_people(sandbox):
    connector = make_entra(sandbox, page_size=6)
    records, pages = read_all(connector)
    assert [len(p.records) for p in pages] == [6, 6, 6, 2]
    assert all(p.is_full_scan for p in pages) and "$deltatoken" in pages[-1].cursor and all(p.cursor is None for p in pages[:-1])
    persons = {p["email"]: p for p in (connector.to_bastion("users", r) for r in records)}
    assert set(persons) == {row["email"] for row in people()}
    assert all(set(p) == PERSON_KEYS for p in persons.values())  # the contracts' person shape
    hannah = persons["hannah.muller@acme.example"]
    assert hannah["name"] == "Hannah Müller" and hannah["title"] == "HR Business Partner" and hannah["phone"].startswith("+1 555")
    assert hannah["manager_external_id"] == persons["ava.chen@acme.example"]["external_id"]
    # Legal team is nested inside Crisis Response: its members inherit the outer group.
    assert persons["priya.raman@acme.example"]["groups"] == ["Crisis Response", "Legal team"]
    assert persons["marcus.okafor@acme.example"]["groups"] == ["Crisis Response", "Security team"]


def test_delta_returns_only_changes_and_removals(sandbox):
    _, pages = read_all(make_entra(sandbox))
    delta_link = pages[-1].cursor
    records, _ = read_all(make_entra(sandbox))
    ids = {r["mail"]: r["id"] for r in records}

    graph(sandbox, "PATCH", f"users/{ids['yuki.tanaka@acme.example']}", json={"jobTitle": "Staff SRE"}).raise_for_status()
    graph(sandbox, "DELETE", f"users/{ids['jonas.berg@acme.example']}").raise_for_status()
    graph(sandbox, "PATCH", f"users/{ids['lucas.silva@acme.example']}", json={"accountEnabled": False}).raise_for_status()

    changed, pages = read_all(make_entra(sandbox), cursor=delta_link)
    assert [r["jobTitle"] for r in changed] == ["Staff SRE"]
    assert sorted(pages[-1].deleted_ids) == sorted([ids["jonas.berg@acme.example"], ids["lucas.silva@acme.example"]])
    assert pages[-1].is_full_scan is False and pages[-1].cursor != delta_link

    nothing, later = read_all(make_entra(sandbox), cursor=pages[-1].cursor)
    assert nothing == [] and later[-1].deleted_ids == []

    full, pages = read_all(make_entra(sandbox))
    assert len(full) == 18 and pages[-1].is_full_scan  # the deleted and the disabled user are gone from a full scan


def test_groups_entity(sandbox):
    connector = make_entra(sandbox)
    records, pages = read_all(connector, "groups")
    groups = {g["displayName"]: connector.to_bastion("groups", g) for g in records}
    assert pages[-1].is_full_scan and groups["Legal team"]["external_id"] in groups["Crisis Response"]["members"]
    assert len(groups["Engineering team"]["members"]) == 4


def test_429_with_retry_after_is_retried(sandbox):
    sleeps: list[float] = []
    connector = make_entra(sandbox, sleeps=sleeps)
    connector.test_connection()
    requests.put(f"{sandbox}/_control/faults/entra", json={"rate_limit_next": 1, "retry_after": 3}, timeout=5).raise_for_status()
    records, _ = read_all(connector)
    assert len(records) == 20
    assert len(sleeps) == 1 and 3 <= sleeps[0] <= 3.25  # Retry-After honoured (plus jitter)


@pytest.mark.django_db
def test_entra_through_a_stored_integration_with_a_version_less_base_url(sandbox, organization):
    from integrations.models import CredentialType, IntegrationStatus
    from integrations.services import build_connector, integration_connect

    integration = integration_connect(
        organization=organization,
        connector_key="entra",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"client_id": "bastion-demo", "client_secret": "bastion-demo-secret"},
        config={"tenant_id": TENANT},
        base_url=f"{sandbox}/entra",  # what the demo pre-fills: the token endpoint and /v1.0 are found beside it
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.external_account_id
    records, pages = read_all(build_connector(integration))
    assert len(records) == 20 and "$deltatoken" in pages[-1].cursor


def test_recorded_delta_page_maps_changes_and_removals(sandbox):
    import json
    from pathlib import Path

    body = json.loads((Path(__file__).parent / "fixtures" / "entra" / "users_delta_changes.json").read_text())
    connector = make_entra(sandbox)
    page = connector.delta_page(body, incremental=True)
    assert page.deleted_ids == ["a0b1c2d3-0000-4000-8000-00000000dead"] and page.cursor == body["@odata.deltaLink"]
    [person] = [connector.to_bastion("users", r) for r in page.records]
    assert person["manager_external_id"] == "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0" and person["title"] == "Staff SRE"

    # The stand-in's delta answers have the same layout as the recorded one.
    _, pages = read_all(connector)
    graph(sandbox, "DELETE", "users/ava.chen@acme.example").raise_for_status()
    live = graph(sandbox, "GET", pages[-1].cursor.split("/v1.0/", 1)[1]).json()
    assert set(live) == set(body) and live["value"][0].keys() == body["value"][1].keys() and live["value"][0]["@removed"] == {"reason": "changed"}


@pytest.mark.django_db
def test_sync_engine_delta_rounds(sandbox, organization, django_capture_on_commit_callbacks):
    """The real sync engine: the initial delta round is a full scan; the stored deltaLink brings only changes and removals."""
    from integrations.models import CredentialType
    from integrations.services import integration_connect
    from sync.models import DataSyncJob, JobStatus, SyncRecord
    from sync.services.jobs import data_sources_ensure, sync_start

    integration = integration_connect(
        organization=organization,
        connector_key="entra",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"client_id": "bastion-demo", "client_secret": "bastion-demo-secret"},
        config={"tenant_id": TENANT, "page_size": 7},
        base_url=f"{sandbox}/entra/v1.0",
    )
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "users")
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source, full_refresh=True)
    job = DataSyncJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.pages == 3 and job.created_count == 20
    graph(sandbox, "DELETE", "users/daniel.kim@acme.example").raise_for_status()
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source)
    job = DataSyncJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.deleted_count == 1
    assert SyncRecord.objects.get(integration=integration, data__email="daniel.kim@acme.example").is_deleted is True
