"""The Data Source Registry API over real HTTP to the demo vendor: org scoping, roles, write-only credentials, health, audit."""

from __future__ import annotations

import json

import pytest
import requests

from accounts.models import AuditEvent, Role
from integrations.models import DataSource, Integration, IntegrationCall, IntegrationCredential, IntegrationStatus


@pytest.fixture
def connect(api_for, users_by_role, sandbox, demo_token):
    def make(**overrides):
        body = {"connector_key": "demo", "display_name": "Demo", "base_url": f"{sandbox}/demo", "credentials": {"api_key": demo_token}, **overrides}
        return api_for(users_by_role[Role.ADMIN]).post("/api/integrations/connect", body, format="json")

    return make


@pytest.fixture
def integration(connect) -> Integration:
    response = connect()
    assert response.status_code == 201, response.json()
    return Integration.objects.get(pk=response.json()["integration"]["id"])


def people_source(integration: Integration) -> DataSource:
    return integration.data_sources.get(entity_type="people")


def test_catalog_lists_connectors_with_this_orgs_status(api_for, users_by_role, connect, outsider):
    viewer = api_for(users_by_role[Role.VIEWER])
    catalog = {c["key"]: c for c in viewer.get("/api/connectors").json()}
    demo = catalog["demo"]
    assert demo["connection_status"] == "not_connected" and demo["source"] == "builtin"
    assert demo["scopes"][0] == {"scope": "people:read", "purpose": "Read people to pre-fill stakeholders in scenario forms."}
    assert [f["name"] for f in demo["credential_fields"]] == ["api_key"] and demo["entities"][0]["key"] == "people"
    connect()
    assert {c["key"]: c for c in viewer.get("/api/connectors").json()}["demo"]["connection_status"] == "connected"
    other = {c["key"]: c for c in api_for(outsider).get("/api/connectors").json()}["demo"]
    assert other["connection_status"] == "not_connected" and other["integrations"] == []
    Integration.objects.update(status=IntegrationStatus.AUTH_FAILED)
    assert {c["key"]: c for c in viewer.get("/api/connectors").json()}["demo"]["connection_status"] == "needs_attention"


def test_connect_tests_the_credential_never_returns_it_and_shows_the_webhook_secret_once(connect, api, demo_token):
    response = connect()
    body = response.json()
    assert response.status_code == 201
    assert body["test"]["ok"] is True and body["test"]["account_id"] == "demo-acct-0001"
    assert body["integration"]["status"] == "connected" and body["integration"]["external_account_id"] == "demo-acct-0001"
    assert body["integration"]["credential_types"] == ["api_key", "webhook_secret"]
    secret = body["webhook_secret"]
    assert secret and len(secret) >= 40
    integration_id = body["integration"]["id"]
    detail = api.get(f"/api/integrations/{integration_id}").content.decode()
    listing = api.get("/api/integrations").content.decode()
    for text in (detail, listing, json.dumps(body["integration"])):
        assert demo_token not in text and secret not in text
    audit = json.dumps(list(AuditEvent.objects.values("action", "changes")))
    assert demo_token not in audit and secret not in audit
    stored = IntegrationCredential.objects.get(integration_id=integration_id, credential_type="webhook_secret")
    assert stored.data == {"secret": secret}
    assert {ds.entity_type for ds in DataSource.objects.filter(integration_id=integration_id)} == {"people"}


def test_connect_with_bad_input_writes_nothing(connect):
    missing = connect(credentials={})
    assert missing.status_code == 400 and missing.json()["error"]["fields"] == {"credentials.api_key": ["This field is required."]}
    unknown = connect(connector_key="nope")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_connector"
    wrong_type = connect(credential_type="service_account")
    assert wrong_type.status_code == 400 and "credential_type" in wrong_type.json()["error"]["fields"]
    bad_roles = connect(allowed_roles=["king"])
    assert bad_roles.status_code == 400
    assert not Integration.objects.exists() and not IntegrationCredential.objects.exists()


def test_connect_with_a_wrong_key_is_saved_but_not_connected(connect):
    response = connect(credentials={"api_key": "wrong"})
    assert response.status_code == 201
    assert response.json()["test"]["ok"] is False and response.json()["integration"]["status"] == "auth_failed"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_only_admins_connect_and_manage(api_for, users_by_role, integration, role, sandbox):
    client = api_for(users_by_role[role])
    assert client.post("/api/integrations/connect", {"connector_key": "demo", "credentials": {"api_key": "x"}}, format="json").status_code == 403
    assert client.patch(f"/api/integrations/{integration.pk}", {"display_name": "X"}, format="json").status_code == 403
    assert client.delete(f"/api/integrations/{integration.pk}").status_code == 403
    assert client.put(f"/api/integrations/{integration.pk}/config", {"config": {"project": "OPS"}}, format="json").status_code == 403
    assert client.post(f"/api/integrations/{integration.pk}/test").status_code == 403
    assert client.post(f"/api/data-sources/{people_source(integration).pk}/discover").status_code == 403
    assert client.get(f"/api/integrations/{integration.pk}").status_code == 200  # reading is fine
    assert Integration.objects.get().display_name == "Demo"


def test_another_organizations_objects_are_404(api_for, outsider, integration):
    client = api_for(outsider)
    ds = people_source(integration)
    for method, url in [
        ("get", f"/api/integrations/{integration.pk}"),
        ("patch", f"/api/integrations/{integration.pk}"),
        ("delete", f"/api/integrations/{integration.pk}"),
        ("post", f"/api/integrations/{integration.pk}/test"),
        ("get", f"/api/integrations/{integration.pk}/data-sources"),
        ("get", f"/api/data-sources/{ds.pk}/fields"),
        ("post", f"/api/data-sources/{ds.pk}/query"),
        ("post", f"/api/data-sources/{ds.pk}/push"),
    ]:
        assert getattr(client, method)(url, {}, format="json").status_code == 404, url
    assert client.get("/api/integrations").json()["results"] == []
    assert Integration.objects.filter(pk=integration.pk).exists()


def test_update_put_patch_delete_are_audited(api, integration, settings):
    response = api.patch(f"/api/integrations/{integration.pk}", {"display_name": "Demo EU", "allowed_roles": ["editor", "admin"]}, format="json")
    assert response.status_code == 200 and response.json()["allowed_roles"] == ["editor", "admin"]
    assert api.put(f"/api/integrations/{integration.pk}", {"base_url": integration.base_url}, format="json").status_code == 400  # PUT needs the name
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    refused = api.patch(f"/api/integrations/{integration.pk}", {"base_url": "http://10.0.0.7/api"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "unsafe_base_url"
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    update = AuditEvent.objects.filter(action="integration.update").first()
    assert update.changes["display_name"] == ["Demo", "Demo EU"]
    assert api.delete(f"/api/integrations/{integration.pk}").status_code == 204
    assert not Integration.objects.exists() and AuditEvent.objects.filter(action="integration.delete").exists()


def test_config_and_mapping(api, integration):
    ds = people_source(integration)
    api.post(f"/api/data-sources/{ds.pk}/discover")
    response = api.put(
        f"/api/integrations/{integration.pk}/config",
        {
            "config": {"project": "OPS"},
            "data_sources": [{"entity_type": "people", "field_mapping": {"email": "email", "given_name": "first_name"}}],
            "finish": True,
        },
        format="json",
    )
    assert response.status_code == 200 and response.json()["config"]["project"] == "OPS"
    ds.refresh_from_db()
    assert ds.field_mapping == {"email": "email", "given_name": "first_name"}
    bad = api.put(
        f"/api/integrations/{integration.pk}/config", {"data_sources": [{"entity_type": "people", "field_mapping": {"email": "no_such"}}]}, format="json"
    )
    assert bad.status_code == 400 and "no_such" in bad.json()["error"]["message"]
    missing = api.put(f"/api/integrations/{integration.pk}/config", {"config": {"project": ""}, "finish": True}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["fields"] == {"project": ["This setting is required."]}
    ds.refresh_from_db()
    assert ds.field_mapping == {"email": "email", "given_name": "first_name"}
    assert Integration.objects.get().config["project"] == "OPS"


def test_discovered_fields_are_kept_with_suggestions(api_for, users_by_role, integration):
    ds = people_source(integration)
    viewer = api_for(users_by_role[Role.VIEWER])
    assert viewer.get(f"/api/data-sources/{ds.pk}/fields").json()["fields"] == []
    discovered = api_for(users_by_role[Role.ADMIN]).post(f"/api/data-sources/{ds.pk}/discover").json()
    names = {f["name"]: f["type"] for f in discovered["fields"]}
    assert names["email"] == "email" and names["active"] == "boolean" and names["updated_at"] == "datetime" and names["manager_id"] == "user"
    fields = viewer.get(f"/api/data-sources/{ds.pk}/fields").json()
    assert fields["discovered_at"] and fields["bastion_type"] == "person" and len(fields["fields"]) == len(discovered["fields"])
    suggested = {s["bastion_field"]: s["source_field"] for s in fields["suggestions"]}
    assert suggested["email"] == "email"
    assert suggested["given_name"] == "first_name" and suggested["family_name"] == "last_name"
    assert suggested["title"] == "job_title" and suggested["external_id"] == "id"
    assert suggested["manager_external_id"] == "manager_id" and suggested["is_active"] == "active"
    assert len(set(suggested.values())) == len(suggested)  # one source field per Bastion field


def test_query_reads_one_live_page_for_editors(api_for, users_by_role, integration):
    ds = people_source(integration)
    editor = api_for(users_by_role[Role.EDITOR])
    first = editor.post(f"/api/data-sources/{ds.pk}/query", {"limit": 4}, format="json")
    assert first.status_code == 200
    body = first.json()
    assert len(body["records"]) == 4 and body["truncated"] is True and body["next_page"] is None
    assert body["bastion"][0]["email"].endswith("@acme.example") and body["bastion"][0]["external_id"] == body["records"][0]["id"]
    full = editor.post(f"/api/data-sources/{ds.pk}/query", {"limit": 50}, format="json").json()
    assert len(full["records"]) == 10 and full["next_page"] == "10"
    second = editor.post(f"/api/data-sources/{ds.pk}/query", {"limit": 50, "page": full["next_page"]}, format="json").json()
    assert {r["id"] for r in second["records"]}.isdisjoint({r["id"] for r in full["records"]})
    assert api_for(users_by_role[Role.VIEWER]).post(f"/api/data-sources/{ds.pk}/query", {}, format="json").status_code == 403
    assert editor.post(f"/api/data-sources/{ds.pk}/query", {"limit": 0}, format="json").status_code == 400


def test_allowed_roles_restrict_query_and_push(api_for, users_by_role, integration):
    ds = people_source(integration)
    api_for(users_by_role[Role.ADMIN]).patch(f"/api/integrations/{integration.pk}", {"allowed_roles": ["admin"]}, format="json")
    editor = api_for(users_by_role[Role.EDITOR])
    refused = editor.post(f"/api/data-sources/{ds.pk}/query", {}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    push = editor.post(
        f"/api/data-sources/{ds.pk}/push", {"action": "create_person", "record": {"email": "x@acme.example"}, "idempotency_key": "k1"}, format="json"
    )
    assert push.status_code == 403
    assert api_for(users_by_role[Role.ADMIN]).post(f"/api/data-sources/{ds.pk}/query", {}, format="json").status_code == 200
    assert requests.get(f"{integration.base_url}/_hits", timeout=5).json() == {}  # no create reached the vendor


def test_push_is_idempotent_per_key(api_for, users_by_role, integration, sandbox):
    ds = people_source(integration)
    editor = api_for(users_by_role[Role.EDITOR])
    body = {
        "action": "create_person",
        "record": {"email": "new.person@acme.example", "name": "New Person", "title": "Analyst"},
        "idempotency_key": "onboard-42",
    }
    first = editor.post(f"/api/data-sources/{ds.pk}/push", body, format="json")
    again = editor.post(f"/api/data-sources/{ds.pk}/push", body, format="json")
    assert first.status_code == 201 and first.json()["created"] is True
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["external_id"] == first.json()["external_id"]
    assert first.json()["data"]["first_name"] == "New" and first.json()["data"]["job_title"] == "Analyst"
    created = requests.get(f"{sandbox}/_control/created", params={"vendor": "demo"}, timeout=5).json()
    assert [c["summary"] for c in created] == ["new.person@acme.example"]
    unknown = editor.post(f"/api/data-sources/{ds.pk}/push", {**body, "action": "explode"}, format="json")
    assert unknown.status_code == 400 and "create_person" in unknown.json()["error"]["message"]
    assert AuditEvent.objects.filter(action="data_source.push").count() == 2


def test_health_fields_call_log_and_degraded_status(api, integration, sandbox, demo_token):
    ds = people_source(integration)
    before = api.get(f"/api/integrations/{integration.pk}").json()
    assert before["calls_24h"] >= 1 and before["failures_24h"] == 0 and before["error_rate"] == 0.0
    requests.put(f"{sandbox}/_control/faults/demo", json={"error_next": 6, "error_status": 400}, timeout=5).raise_for_status()
    for _ in range(6):
        assert api.post(f"/api/data-sources/{ds.pk}/query", {}, format="json").status_code == 502
    health = api.get(f"/api/integrations/{integration.pk}").json()
    assert health["status"] == "degraded" and health["failures_24h"] == 6 and health["error_rate"] > 0.5
    assert health["error_count"] == 6 and "injected failure" in health["last_error"] and health["last_error_at"]
    calls = list(IntegrationCall.objects.filter(integration=integration, is_ok=False).values("method", "path", "status", "error"))
    assert calls[0] == {"method": "GET", "path": "/demo/api/people", "status": 400, "error": "ApiBadRequest"}
    logged = json.dumps(list(IntegrationCall.objects.values()), default=str)
    assert demo_token not in logged and "limit=" not in logged and "acme.example" not in logged
    for _ in range(7):  # calls succeed again: the integration recovers by itself
        assert api.post(f"/api/data-sources/{ds.pk}/query", {}, format="json").status_code == 200
    assert api.get(f"/api/integrations/{integration.pk}").json()["status"] == "connected"
    transitions = list(
        AuditEvent.objects.filter(action__in=["integration.degraded", "integration.recovered"]).order_by("created_at").values_list("action", flat=True)
    )
    assert transitions == ["integration.degraded", "integration.recovered"]


def test_health_refresh_recomputes_24h_counters(integration):
    from datetime import timedelta

    from django.utils import timezone

    from integrations.services import integration_health_refresh

    IntegrationCall.objects.create(integration=integration, method="GET", path="/old", status=500, is_ok=False)
    IntegrationCall.objects.filter(path="/old").update(created_at=timezone.now() - timedelta(hours=30))
    Integration.objects.filter(pk=integration.pk).update(calls_24h=999, failures_24h=999)
    integration_health_refresh()
    integration.refresh_from_db()
    recent = IntegrationCall.objects.filter(integration=integration, created_at__gte=timezone.now() - timedelta(hours=24))
    assert integration.calls_24h == recent.count() and integration.failures_24h == 0


def test_reconnect_with_a_new_credential_keeps_mappings(api, integration, sandbox):
    ds = people_source(integration)
    api.post(f"/api/data-sources/{ds.pk}/discover")
    api.put(f"/api/integrations/{integration.pk}/config", {"data_sources": [{"entity_type": "people", "field_mapping": {"email": "email"}}]}, format="json")
    requests.put(f"{sandbox}/_control/faults/demo", json={"revoked": True}, timeout=5).raise_for_status()
    assert api.post(f"/api/integrations/{integration.pk}/test").json()["ok"] is False
    assert Integration.objects.get().status == "auth_failed"
    requests.put(f"{sandbox}/_control/faults/demo", json={"revoked": False}, timeout=5).raise_for_status()
    new_key = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "demo"}, timeout=5).json()["token"]
    response = api.post(f"/api/integrations/{integration.pk}/reconnect", {"credential_type": "api_key", "credentials": {"api_key": new_key}}, format="json")
    assert response.status_code == 200 and response.json()["test"]["ok"] is True and response.json()["integration"]["status"] == "connected"
    assert new_key not in response.content.decode()
    ds.refresh_from_db()
    assert ds.field_mapping == {"email": "email"} and ds.discovered_fields


def test_oauth_connect_via_api_returns_the_authorize_page(api, sandbox):
    response = api.post("/api/integrations/connect", {"connector_key": "demo", "base_url": f"{sandbox}/demo", "credential_type": "oauth"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["authorize_url"] == f"/integrations/{body['integration']['id']}/authorize/" and body["test"] is None
    assert body["integration"]["status"] == "disconnected"


def test_sandbox_base_url_gets_the_sandbox_oauth_server(organization, settings, sandbox):
    from integrations.oauth import oauth_endpoints
    from integrations.registry import get_connector_class
    from integrations.services import integration_create

    settings.BASTION_SANDBOX_URL = sandbox
    integration = integration_create(organization=organization, connector_key="demo", base_url=f"{sandbox}/demo")
    assert integration.config["oauth_base_url"] == f"{sandbox}/demo"
    spec = get_connector_class("demo").manifest.oauth
    assert oauth_endpoints(integration, spec).token_url == f"{sandbox}/demo/oauth/token"
