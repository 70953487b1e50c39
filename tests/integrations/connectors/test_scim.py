"""The generic SCIM 2.0 connector over real HTTP against the sandbox service provider."""

from __future__ import annotations

import pytest
import requests

from integrations.connectors.scim import ENTERPRISE, ScimConnector
from integrations.errors import ApiBadRequest, ApiNotFound, ApiUnauthorized
from integrations.http import HttpClient
from sandbox.vendors._people import people

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

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


def scim_token(sandbox: str) -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": "scim"}, timeout=5).json()["token"]


def make_scim(sandbox: str, token: str | None = None, sleeps: list | None = None, **config) -> ScimConnector:
    client = HttpClient(f"{sandbox}/scim/v2", sleep=(sleeps.append if sleeps is not None else lambda s: None))
    return ScimConnector(client=client, credentials={"token": token or scim_token(sandbox)}, config=config)


def read_all(connector: ScimConnector, entity: str = "users", cursor=None):
    pages = [connector.read(entity, cursor=cursor)]
    while pages[-1].next_page is not None:
        pages.append(connector.read(entity, cursor=cursor, page=pages[-1].next_page))
    return [r for p in pages for r in p.records], pages


def scim(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox}/scim/v2/{path}", headers={"Authorization": f"Bearer {scim_token(sandbox)}"}, timeout=5, **kwargs)


def test_connection_and_content_type(sandbox):
    result = make_scim(sandbox).test_connection()
    assert result.ok and result.identity == "SCIM service with 20 users" and result.detail == {"filter": True, "patch": True}
    answer = scim(sandbox, "GET", "Users", params={"count": 1})
    assert answer.headers["Content-Type"] == "application/scim+json"


def test_bad_token_gets_a_scim_error(sandbox):
    with pytest.raises(ApiUnauthorized):
        make_scim(sandbox, token="nope").test_connection()
    body = requests.get(f"{sandbox}/scim/v2/Users", headers={"Authorization": "Bearer nope"}, timeout=5).json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "401"


def test_invalid_filter_is_a_bad_request_with_scim_type(sandbox):
    connector = make_scim(sandbox, user_filter='userName eq "unterminated')
    with pytest.raises(ApiBadRequest) as error:
        connector.read("users")
    assert error.value.vendor_code == "invalidFilter"


def test_unknown_user_is_not_found(sandbox):
    with pytest.raises(ApiNotFound):
        make_scim(sandbox).client.get("Users/does-not-exist")


def test_discover_fields_from_schemas(sandbox):
    fields = {f.name: f for f in make_scim(sandbox).discover_fields("users")}
    assert fields["userName"].is_required and fields["emails"].type == "array" and fields["active"].type == "boolean"
    assert fields["name.givenName"].path == "$.name.givenName"
    assert fields["department"].is_custom and fields["manager.value"].path == f'$["{ENTERPRISE}"].manager.value'


def test_full_import_pages_through_the_list_response(sandbox):
    connector = make_scim(sandbox, page_size=8)
    records, pages = read_all(connector)
    assert [len(p.records) for p in pages] == [8, 8, 4] and all(p.is_full_scan for p in pages) and pages[-1].cursor
    persons = {p["email"]: p for p in (connector.to_bastion("users", r) for r in records)}
    assert set(persons) == {row["email"] for row in people()}
    assert all(set(p) == PERSON_KEYS for p in persons.values())  # the contracts' person shape
    zara = persons["zara.ahmed@acme.example"]
    assert zara["department"] == "Legal" and zara["manager_external_id"] == persons["priya.raman@acme.example"]["external_id"]
    assert zara["groups"] == ["Crisis Team", "Legal"]  # nested: Legal ⊂ Crisis Team
    assert persons["chloe.dubois@acme.example"]["name"] == "Chloé Dubois"


def test_filter_by_user_name(sandbox):
    user = make_scim(sandbox).find_user("Emma.Rossi@acme.example")  # attribute values compare case-insensitively
    assert user["displayName"] == "Emma Rossi"
    assert make_scim(sandbox).find_user('nobody"@acme.example') is None


def test_incremental_by_last_modified_and_deactivation(sandbox):
    records, pages = read_all(make_scim(sandbox))
    cursor = pages[-1].cursor
    ids = {r["userName"]: r["id"] for r in records}
    scim(
        sandbox,
        "PATCH",
        f"Users/{ids['noah.fischer@acme.example']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Director of IT"}]},
    ).raise_for_status()
    changed, pages = read_all(make_scim(sandbox), cursor=cursor)
    assert [r["title"] for r in changed] == ["Director of IT"] and pages[-1].is_full_scan is False
    cursor = pages[-1].cursor

    scim(
        sandbox,
        "PATCH",
        f"Users/{ids['mateo.lopez@acme.example']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    changed, pages = read_all(make_scim(sandbox), cursor=cursor)
    assert changed == [] and pages[-1].deleted_ids == [ids["mateo.lopez@acme.example"]]

    nothing, pages = read_all(make_scim(sandbox), cursor=pages[-1].cursor)
    assert nothing == [] and pages[-1].cursor is None


def test_deleted_users_disappear_from_full_scans(sandbox):
    records, _ = read_all(make_scim(sandbox))
    victim = next(r["id"] for r in records if r["userName"] == "isabel.costa@acme.example")
    assert scim(sandbox, "DELETE", f"Users/{victim}").status_code == 204
    after, pages = read_all(make_scim(sandbox))
    assert len(after) == 19 and victim not in {r["id"] for r in after} and pages[-1].is_full_scan


def test_groups_entity(sandbox):
    connector = make_scim(sandbox)
    records, _ = read_all(connector, "groups")
    groups = {g["displayName"]: connector.to_bastion("groups", g) for g in records}
    assert groups["Legal"]["external_id"] in groups["Crisis Team"]["members"] and len(groups["Legal"]["members"]) == 3


def test_429_is_retried(sandbox):
    sleeps: list[float] = []
    connector = make_scim(sandbox, sleeps=sleeps)
    requests.put(f"{sandbox}/_control/faults/scim", json={"rate_limit_next": 1, "retry_after": 1}, timeout=5).raise_for_status()
    records, _ = read_all(connector)
    assert len(records) == 20 and len(sleeps) == 1 and 1 <= sleeps[0] <= 1.25


@pytest.mark.django_db
def test_sync_engine_full_then_incremental(sandbox, organization, django_capture_on_commit_callbacks):
    from integrations.services import integration_connect
    from sync.models import DataSyncJob, JobStatus, SyncRecord
    from sync.services.jobs import data_sources_ensure, sync_start

    integration = integration_connect(
        organization=organization, connector_key="scim", credentials={"token": scim_token(sandbox)}, config={"page_size": 8}, base_url=f"{sandbox}/scim"
    )
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "users")
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source, full_refresh=True)
    job = DataSyncJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.pages == 3 and job.created_count == 20
    emma = SyncRecord.objects.get(integration=integration, data__email="emma.rossi@acme.example")
    scim(sandbox, "PATCH", f"Users/{emma.external_id}", json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "CISO deputy"}]})
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source)
    job = DataSyncJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.records_processed == 1 and job.updated_count == 1
    emma.refresh_from_db()
    assert emma.data["title"] == "CISO deputy"
