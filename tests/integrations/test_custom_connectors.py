"""Custom connectors: OpenAPI upload parsed safely, drafts from picked endpoints, versions refused with each problem's path,
hooks refused, publish → the registry resolves the organization's key, export, the live request console, org isolation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from accounts.models import AuditEvent, Role
from common.errors import ApplicationError
from integrations.custom import services
from integrations.custom.models import CustomConnector, CustomConnectorStatus
from integrations.custom.openapi import MAX_DOCUMENT_BYTES, openapi_parse, openapi_summary
from integrations.models import Integration, IntegrationStatus
from integrations.registry import UnknownConnector, get_connector_class

OPENAPI = Path(__file__).parent / "fixtures" / "asana_openapi_trimmed.yaml"
PAT = "sandbox-asana-pat"


def _page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _operation_index(connector: CustomConnector, operation_id: str) -> int:
    return [o["id"] for o in connector.openapi["operations"]].index(operation_id)


def _valid_spec(base_url: str = "https://app.asana.com/api/1.0") -> dict:
    return {
        "spec_version": 1,
        "key": "asana_custom",
        "name": "Asana (ours)",
        "category": "other",
        "description": "Tasks of one project.",
        "base_url": base_url,
        "credentials": [{"name": "token", "label": "API token", "secret": True, "required": True}],
        "config": [{"name": "project_gid", "label": "Project", "required": True}],
        "auth": {"kind": "bearer", "token": "{{ credentials.token }}"},
        "test_connection": {"request": {"method": "GET", "path": "/workspaces"}, "identity": "{{ body.data[0].name }}"},
        "entities": {
            "tasks": {
                "name": "Tasks",
                "bastion_type": "task",
                "read": {
                    "request": {"method": "GET", "path": "/projects/{{ config.project_gid }}/tasks"},
                    "records": "$.data[*]",
                    "paging": {"kind": "cursor", "param": "offset", "size_param": "limit", "size": 20, "next": "{{ body.next_page.offset }}"},
                },
                "id": "{{ record.gid }}",
            }
        },
    }


@pytest.fixture
def admin_user(users_by_role):
    return users_by_role[Role.ADMIN]


@pytest.fixture
def connector(organization, admin_user) -> CustomConnector:
    return services.custom_connector_create(organization=organization, name="Asana (ours)", openapi=OPENAPI.read_bytes(), actor=admin_user)


# The uploaded document -----------------------------------------------------------------------------------------------


def test_openapi_summary_lists_servers_auth_operations_and_record_shapes():
    summary = openapi_summary(openapi_parse(OPENAPI.read_bytes()))
    assert summary["title"] == "Asana"
    assert summary["servers"] == ["https://app.asana.com/api/1.0"]
    assert summary["auth"] == [{"name": "personalAccessToken", "kind": "bearer"}]
    operations = {o["id"]: o for o in summary["operations"]}
    assert set(operations) >= {"GET /tasks", "POST /tasks", "GET /users", "GET /projects/{project_gid}/tasks", "GET /workspaces"}
    listing = operations["GET /projects/{project_gid}/tasks"]
    assert listing["selector"] == "$.data[*]" and listing["path_params"] == ["project_gid"]
    assert {"limit", "offset"} <= set(listing["query_params"])
    assert "gid" in [f["name"] for f in listing["fields"]]
    create = operations["POST /tasks"]
    assert create["body_envelope"] == "data" and "name" in [f["name"] for f in create["body_fields"]]
    assert create["selector"] == "$.data"


def test_swagger_2_json_is_read_with_its_host_and_base_path():
    doc = {
        "swagger": "2.0",
        "host": "api.vendor.example",
        "basePath": "/v2",
        "schemes": ["https"],
        "paths": {"/things": {"get": {"responses": {"200": {"schema": {"type": "array", "items": {"properties": {"id": {"type": "string"}}}}}}}}},
    }
    summary = openapi_summary(openapi_parse(json.dumps(doc).encode()))
    assert summary["servers"] == ["https://api.vendor.example/v2"]
    assert summary["operations"][0]["selector"] == "$[*]" and summary["operations"][0]["fields"] == [{"name": "id", "type": "string"}]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"x" * (MAX_DOCUMENT_BYTES + 1), "limit is 4 MB"),
        (b"a: &a [1, 2]\nb: [*a, *a, *a]\nopenapi: '3.0.0'\npaths: {/x: {}}\n", "anchors and aliases"),
        (b"title: just some yaml\n", "not an OpenAPI 3 or Swagger 2.0 document"),
        (b"openapi: 3.0.0\npaths: {}\n", "lists no paths"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"openapi: 3.0.0\npaths: [unclosed\n", "neither valid JSON nor valid YAML"),
        (b"{" * 5000, "neither valid JSON nor valid YAML"),
        (b"!!python/object/apply:os.system ['true']\n", "neither valid JSON nor valid YAML"),
    ],
)
def test_hostile_or_wrong_documents_are_refused_with_a_reason(raw, says):
    with pytest.raises(ApplicationError) as caught:
        openapi_parse(raw)
    assert says in caught.value.message
    assert caught.value.fields == {"openapi": [caught.value.message]}


@pytest.mark.django_db
def test_upload_page_refuses_a_bad_document_with_400_and_creates_nothing(admin_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = _page(admin_user).post("/integrations/custom/", {"name": "Broken", "openapi": SimpleUploadedFile("x.yaml", b"title: nope\n")})
    assert response.status_code == 400
    assert b"not an OpenAPI 3 or Swagger 2.0 document" in response.content
    assert not CustomConnector.objects.exists()


@pytest.mark.django_db
def test_upload_creates_a_draft_with_the_vendor_base_url_and_auth(admin_user, organization):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = _page(admin_user).post("/integrations/custom/", {"name": "", "openapi": SimpleUploadedFile("asana.yaml", OPENAPI.read_bytes())})
    connector = CustomConnector.objects.get(organization=organization)
    assert response.status_code == 302 and response["Location"] == f"/integrations/custom/{connector.pk}/"
    assert connector.name == "Asana" and connector.key == "asana" and connector.status == CustomConnectorStatus.DRAFT
    draft = yaml.safe_load(connector.draft)
    assert draft["base_url"] == "https://app.asana.com/api/1.0"
    assert draft["auth"] == {"kind": "bearer", "token": "{{ credentials.token }}"}
    assert AuditEvent.objects.filter(action="custom_connector.create", target_id=str(connector.pk)).exists()
    page = _page(admin_user).get(f"/integrations/custom/{connector.pk}/")
    assert page.status_code == 200 and b"GET</span> <code>/projects/{project_gid}/tasks</code>" in page.content


# Drafts from picked endpoints ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_generate_builds_entities_and_actions_from_the_picked_endpoints(connector, admin_user):
    tasks = _operation_index(connector, "GET /projects/{project_gid}/tasks")
    create = _operation_index(connector, "POST /tasks")
    form = {
        "op": "generate",
        "auth_kind": "bearer",
        f"use_{tasks}": "entity",
        f"name_{tasks}": "Tasks",
        f"use_{create}": "action",
        f"name_{create}": "Create task",
    }
    response = _page(admin_user).post(f"/integrations/custom/{connector.pk}/", form)
    assert response.status_code == 302
    connector.refresh_from_db()
    draft = yaml.safe_load(connector.draft)
    entity = draft["entities"]["tasks"]
    assert entity["bastion_type"] == "task"
    assert entity["read"]["request"] == {"method": "GET", "path": "/projects/{{ config.project_gid }}/tasks"}
    assert entity["read"]["records"] == "$.data[*]" and entity["id"] == "{{ record.gid }}"
    assert entity["read"]["paging"]["kind"] == "cursor" and entity["read"]["paging"]["param"] == "offset"
    assert draft["test_connection"] == {"request": {"method": "GET", "path": "/users"}}  # needs no setting: tested before setup
    assert draft["config"] == [{"name": "project_gid", "label": "Project gid", "required": True}]
    action = draft["actions"]["create_task"]
    assert action["request"]["method"] == "POST" and action["request"]["path"] == "/tasks"
    assert action["request"]["json"] == {"data": "{{ input | compact }}"}  # only the inputs a step gives are sent
    assert list(action["input"]) == ["name", "notes", "workspace", "assignee"] and action["input"]["name"] == {}
    assert action["result"] == {"select": "$.data", "external_id": "{{ record.gid }}", "url": "{{ record.permalink_url }}"}


@pytest.mark.django_db
def test_api_key_header_auth_with_a_prefix_is_drafted_as_a_header():
    from integrations.custom.drafts import draft_from_picks

    text = draft_from_picks(
        key="status-page", name="Status", summary={"servers": []}, picks={}, auth={"kind": "api_key_header", "param": "Authorization", "prefix": "OAuth "}
    )
    doc = yaml.safe_load(text)
    assert doc["key"] == "status_page"
    assert doc["auth"] == {"kind": "header", "header": "Authorization", "value": "OAuth {{ credentials.api_key }}"}
    assert doc["credentials"][0]["secret"] is True


# Who may see and edit ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_only_organization_admins_open_the_builder(connector, users_by_role, role):
    client = _page(users_by_role[role])
    assert client.get("/integrations/custom/").status_code == 403
    assert client.get(f"/integrations/custom/{connector.pk}/").status_code == 403
    assert client.post(f"/integrations/custom/{connector.pk}/", {"op": "save_draft", "spec": "x: 1"}).status_code == 403
    connector.refresh_from_db()
    assert "x: 1" not in connector.draft


@pytest.mark.django_db
def test_another_organization_never_sees_the_connector(connector, outsider, api_for):
    client = _page(outsider)
    for url in ("", "export/", "connect/"):
        assert client.get(f"/integrations/custom/{connector.pk}/{url}").status_code == 404, url
    assert client.post(f"/integrations/custom/{connector.pk}/", {"op": "save_draft", "spec": "x: 1"}).status_code == 404
    assert connector.pk.hex not in client.get("/integrations/custom/").content.decode().replace("-", "")
    api = api_for(outsider)
    assert api.get("/api/custom-connectors").json()["results"] == []
    assert api.get(f"/api/custom-connectors/{connector.pk}/versions").status_code == 404
    assert api.post(f"/api/custom-connectors/{connector.pk}/versions", {"spec": "a: 1"}, format="json").status_code == 404


@pytest.mark.django_db
def test_an_unknown_builder_action_is_a_400(connector, admin_user):
    response = _page(admin_user).post(f"/integrations/custom/{connector.pk}/", {"op": "drop_tables"})
    assert response.status_code == 400 and b"Unknown action" in response.content


@pytest.mark.django_db
def test_a_spec_that_is_not_yaml_is_refused_with_its_line(connector, admin_user):
    response = _page(admin_user).post(f"/integrations/custom/{connector.pk}/", {"op": "save_version", "spec": "key: [unclosed\nname: x\n"})
    assert response.status_code == 400
    assert b"not valid YAML (line 3" in response.content or b"not valid YAML (line 2" in response.content
    assert not connector.versions.exists()


# Versions: validated, refused with paths, published, resolved, exported ---------------------------------------------------


def _post_spec(client: Client, connector: CustomConnector, spec: dict, op: str = "save_version", **extra):
    return client.post(f"/integrations/custom/{connector.pk}/", {"op": op, "spec": yaml.safe_dump(spec, sort_keys=False), **extra})


@pytest.mark.django_db
def test_a_broken_spec_is_refused_with_the_path_of_each_problem(connector, admin_user, api_for):
    spec = _valid_spec()
    spec["entities"]["tasks"]["read"]["request"]["method"] = "FETCH"
    spec["entities"]["tasks"]["read"]["paging"].pop("next")
    del spec["auth"]["token"]
    response = _post_spec(_page(admin_user), connector, spec)
    assert response.status_code == 400
    shown = response.content.decode()
    for path in ("entities[tasks].read.request.method", "entities[tasks].read.paging.next", "auth.token"):
        assert f'<code class="problem-path">{path}</code>' in shown, path
    answer = api_for(admin_user).post(f"/api/custom-connectors/{connector.pk}/versions", {"spec": yaml.safe_dump(spec)}, format="json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "spec_invalid"
    assert {"entities[tasks].read.request.method", "entities[tasks].read.paging.next", "auth.token"} <= set(answer.json()["error"]["fields"])
    assert not connector.versions.exists()


@pytest.mark.django_db
def test_a_spec_naming_python_hooks_is_refused(connector, admin_user):
    spec = {**_valid_spec(), "hooks": {"read:tasks": "read_tasks"}}
    response = _post_spec(_page(admin_user), connector, spec)
    assert response.status_code == 400
    assert b'<code class="problem-path">hooks[read:tasks]</code> Python hooks are not allowed' in response.content
    assert not connector.versions.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("base_url", "path"),
    [("http://169.254.169.254/latest", "base_url"), ("ftp://files.vendor.example/", "base_url"), ("http://metadata.google.internal/v1", "base_url")],
)
def test_every_url_of_a_spec_is_http_and_passes_the_ssrf_guard(connector, admin_user, base_url, path):
    response = _post_spec(_page(admin_user), connector, _valid_spec(base_url))
    assert response.status_code == 400
    assert f'<code class="problem-path">{path}</code>'.encode() in response.content
    assert not connector.versions.exists()


@pytest.mark.django_db
def test_publish_makes_the_key_resolve_and_export_gives_the_spec_back(connector, admin_user, organization, api_for):
    client = _page(admin_user)
    assert _post_spec(client, connector, _valid_spec(), notes="first").status_code == 302
    with pytest.raises(UnknownConnector):
        get_connector_class(connector.connector_key)  # saved, not published: nothing runs it yet
    assert client.post(f"/integrations/custom/{connector.pk}/", {"op": "publish"}).status_code == 302
    connector.refresh_from_db()
    assert connector.status == CustomConnectorStatus.PUBLISHED and connector.current_version.number == 1
    compiled = get_connector_class(connector.connector_key)
    assert compiled.manifest.key == connector.connector_key and compiled.manifest.name == "Asana (ours)"
    assert [e.key for e in compiled.manifest.entities] == ["tasks"]
    # A second version is saved, but integrations keep running the published one until it is published.
    second = {**_valid_spec(), "description": "Second take."}
    assert _post_spec(client, connector, second).status_code == 302
    assert get_connector_class(connector.connector_key).manifest.description == "Tasks of one project."
    exported = client.get(f"/integrations/custom/{connector.pk}/export/")
    assert exported.status_code == 200 and exported["Content-Disposition"] == 'attachment; filename="asana-ours-v1.yaml"'
    assert yaml.safe_load(exported.content) == _valid_spec()
    assert yaml.safe_load(client.get(f"/integrations/custom/{connector.pk}/export/?version=2").content)["description"] == "Second take."
    assert client.get(f"/integrations/custom/{connector.pk}/export/?version=9").status_code == 404
    listed = api_for(admin_user).get("/api/custom-connectors").json()["results"]
    assert listed == [{**listed[0], "connector_key": connector.connector_key, "status": "published", "published_version": 1}]
    actions = set(AuditEvent.objects.filter(target_id=str(connector.pk)).values_list("action", flat=True))
    assert {"custom_connector.create", "custom_connector.version_save", "custom_connector.publish"} <= actions


@pytest.fixture
def published(connector, admin_user, sandbox) -> CustomConnector:
    services.custom_connector_version_save(connector=connector, text=yaml.safe_dump(_valid_spec(f"{sandbox}/asana/api/1.0")), actor=admin_user)
    return services.custom_connector_publish(connector=connector, actor=admin_user)


@pytest.mark.django_db
def test_another_organization_cannot_connect_to_the_connector(published, other_organization, outsider, api_for):
    with pytest.raises(ApplicationError) as caught:
        services_integration_create(organization=other_organization, connector_key=published.connector_key)
    assert caught.value.code == "unknown_connector"
    answer = api_for(outsider).post(
        "/api/integrations/connect",
        {"connector_key": published.connector_key, "credential_type": "api_key", "credentials": {"token": PAT}, "config": {"project_gid": "1"}},
        format="json",
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "unknown_connector"
    assert not Integration.objects.filter(organization=other_organization).exists()


def services_integration_create(**kwargs):
    from integrations.services import integration_create

    return integration_create(**kwargs)


# The request console and a real connection -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_try_request_runs_live_and_shows_the_answer_and_records_never_the_token(connector, admin_user, sandbox, monkeypatch):
    monkeypatch.setattr(services, "TRIES_PER_MINUTE", 2)
    vendor = f"{sandbox}/asana/api/1.0"
    form = {"base_url": vendor, "request_name": "entity:tasks", "credential_token": PAT, "config": '{"project_gid": "1300000000000001"}', "params": "{}"}
    response = _post_spec(_page(admin_user), connector, _valid_spec(), op="try", **form)
    assert response.status_code == 200
    shown = response.content.decode()
    assert '<span id="try-status">200</span>' in shown
    assert '<span id="try-record-count">20</span>' in shown and "Seeded task 1" in shown
    assert PAT not in shown
    event = AuditEvent.objects.get(action="custom_connector.try_request", target_id=str(connector.pk))
    assert event.changes == {"request": "entity:tasks", "status": 200}
    refused = _post_spec(_page(admin_user), connector, _valid_spec(), op="try", **{**form, "credential_token": "not-the-token"})
    assert refused.status_code == 200 and '<span id="try-status">401</span>' in refused.content.decode()
    metadata = _post_spec(_page(admin_user), connector, _valid_spec(), op="try", **{**form, "base_url": "http://169.254.169.254/"})
    assert metadata.status_code == 400 and b"metadata" in metadata.content
    throttled = _post_spec(_page(admin_user), connector, _valid_spec(), op="try", **form)
    assert throttled.status_code == 429 and b"At most 2 tries a minute" in throttled.content


@pytest.mark.django_db
def test_an_integration_connects_to_the_published_version_and_imports_every_page(
    published, organization, admin_user, sandbox, django_capture_on_commit_callbacks
):
    from integrations.services import integration_connect
    from sync.models import SyncRecord
    from sync.services import sync_start

    integration = integration_connect(
        organization=organization,
        connector_key=published.connector_key,
        credentials={"token": PAT},
        config={"project_gid": "1300000000000001"},
        actor=admin_user,
    )
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    assert integration.external_account_id == "" and integration_test_identity(integration) == "Acme"
    stored = integration.credentials.get()
    assert stored.data == {"token": PAT}
    with connection.cursor() as cursor:  # encrypted at rest by the existing credentials service
        cursor.execute("SELECT data::text FROM integrations_integrationcredential WHERE id = %s", [stored.pk])
        assert PAT not in cursor.fetchone()[0]
    with django_capture_on_commit_callbacks(execute=True):  # the sync's pages run in-process (eager Celery)
        sync_start(data_source=integration.data_sources.get(entity_type="tasks"))
    records = SyncRecord.objects.filter(integration=integration, entity_type="tasks")
    names = project_task_names(f"{sandbox}/asana/api/1.0")
    assert len(names) > 40 and records.count() == len(names)
    assert set(records.values_list("raw__name", flat=True)) == names
    calls = list(integration.calls.order_by("created_at").values_list("path", flat=True))
    assert len([p for p in calls if p.endswith("/tasks")]) == -(-len(names) // 20)  # every page of 20, and no more


@pytest.mark.django_db
def test_the_admin_saves_a_draft_as_a_version_only_when_valid(connector, make_user):
    staff = make_user(None, is_staff=True, is_superuser=True)
    client = _page(staff)
    url = f"/admin/integrations/customconnector/{connector.pk}/change/"
    form = {
        "organization": str(connector.organization_id),
        "key": connector.key,
        "name": connector.name,
        "save_as_version": "on",
        "version_notes": "from the admin",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    broken = {**_valid_spec(), "hooks": {"read:tasks": "read_tasks"}}
    refused = client.post(url, {**form, "draft": yaml.safe_dump(broken)})
    assert refused.status_code == 200 and b"hooks[read:tasks]: Python hooks are not allowed" in refused.content
    assert not connector.versions.exists()
    saved = client.post(url, {**form, "draft": yaml.safe_dump(_valid_spec())})
    assert saved.status_code == 302
    assert connector.versions.get().notes == "from the admin"
    assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_the_admin_creates_a_connector_from_an_openapi_file(organization, make_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    staff = make_user(None, is_staff=True, is_superuser=True)
    management = {"versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0", "versions-MIN_NUM_FORMS": "0", "versions-MAX_NUM_FORMS": "1000"}
    form = {"organization": str(organization.pk), "key": "asana", "name": "Asana", "draft": "", **management}
    bad = _page(staff).post("/admin/integrations/customconnector/add/", {**form, "openapi_file": SimpleUploadedFile("x.yaml", b"a: &x 1\nb: *x\n")})
    assert bad.status_code == 200 and b"anchors and aliases are not accepted" in bad.content
    response = _page(staff).post("/admin/integrations/customconnector/add/", {**form, "openapi_file": SimpleUploadedFile("asana.yaml", OPENAPI.read_bytes())})
    assert response.status_code == 302
    connector = CustomConnector.objects.get(organization=organization, key="asana")
    assert len(connector.openapi["operations"]) >= 5 and yaml.safe_load(connector.draft)["base_url"] == "https://app.asana.com/api/1.0"
    assert AuditEvent.objects.filter(action="custom_connector.create", target_id=str(connector.pk), actor=staff).exists()


def integration_test_identity(integration) -> str:
    from integrations.services import integration_test

    return integration_test(integration=integration).identity


def project_task_names(vendor: str) -> set[str]:
    """What the sandbox holds for the project, read straight from it (pages of 100)."""
    import requests

    names: set[str] = set()
    params: dict[str, str | int] = {"limit": 100}
    while True:
        body = requests.get(f"{vendor}/projects/1300000000000001/tasks", params=params, headers={"Authorization": f"Bearer {PAT}"}, timeout=5).json()
        names |= {task["name"] for task in body["data"]}
        if not body.get("next_page"):
            return names
        params["offset"] = body["next_page"]["offset"]


@pytest.mark.django_db
def test_the_generated_action_creates_the_object_at_the_vendor_through_a_connected_integration(connector, organization, admin_user, sandbox):
    from integrations.services import build_connector, integration_connect, rate_limiter_for

    vendor = f"{sandbox}/asana/api/1.0"
    tasks, create = _operation_index(connector, "GET /projects/{project_gid}/tasks"), _operation_index(connector, "POST /tasks")
    picks = {
        connector.openapi["operations"][tasks]["id"]: {"as": "entity", "name": "Tasks"},
        connector.openapi["operations"][create]["id"]: {"as": "action", "name": "Create task"},
    }
    services.custom_connector_draft_generate(connector=connector, picks=picks, auth={"kind": "bearer"})
    doc = yaml.safe_load(connector.draft)
    doc["base_url"] = vendor
    doc["rate_limit"] = {"per_second": 5, "burst": 5}
    services.custom_connector_version_save(connector=connector, text=yaml.safe_dump(doc), actor=admin_user)
    services.custom_connector_publish(connector=connector, actor=admin_user)
    integration = integration_connect(
        organization=organization,
        connector_key=connector.connector_key,
        credentials={"token": PAT},
        config={"project_gid": "1300000000000001"},
        actor=admin_user,
    )
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    manifest = get_connector_class(connector.connector_key).manifest
    assert manifest.rate_limit is not None and rate_limiter_for(integration, manifest) is not None  # the shared Redis budget applies
    result = build_connector(integration).perform(
        "create_task", {"name": "Call the customer back", "workspace": "1100000000000001"}, idempotency_key="custom-connector-test-1"
    )
    assert result.external_id and result.url == f"https://app.asana.com/0/0/{result.external_id}"
    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw-Secret-123")
    assert _page(staff).post(f"/admin/integrations/customconnector/{connector.pk}/delete/", {"post": "yes"}).status_code == 403  # in use
    import requests

    created = requests.get(f"{vendor}/tasks/{result.external_id}", headers={"Authorization": f"Bearer {PAT}"}, timeout=5).json()["data"]
    assert created["name"] == "Call the customer back" and created["notes"] == ""  # unset optional inputs are not sent


@pytest.mark.django_db
def test_the_integration_admin_refuses_to_move_a_custom_integration_to_another_organization(published, organization, other_organization):
    from django.forms.models import model_to_dict

    from integrations.admin import IntegrationAdminForm
    from integrations.services import integration_create

    integration = integration_create(organization=organization, connector_key=published.connector_key, config={"project_gid": "1"})
    data = {k: v for k, v in model_to_dict(integration).items() if v is not None}
    data.update(config=json.dumps(integration.config), allowed_roles="[]", organization=str(other_organization.pk))
    moved = IntegrationAdminForm(data=data, instance=integration)
    assert not moved.is_valid() and moved.errors["connector_key"] == [f"No connector '{published.connector_key}' is installed."]
    stays = IntegrationAdminForm(data={**data, "organization": str(organization.pk)}, instance=integration)
    assert stays.is_valid(), stays.errors


@pytest.mark.django_db
def test_a_secret_written_into_the_spec_is_refused(connector, admin_user):
    spec = {**_valid_spec(), "auth": {"kind": "bearer", "token": "pat-1234567890"}, "default_headers": {"X-Api-Key": "k-123", "Accept": "application/json"}}
    response = _post_spec(_page(admin_user), connector, spec)
    assert response.status_code == 400
    assert b'<code class="problem-path">auth.token</code> write the secret as a credential field' in response.content
    assert b'<code class="problem-path">default_headers.X-Api-Key</code>' in response.content
    assert b"default_headers.Accept" not in response.content
    assert not connector.versions.exists()


@pytest.mark.django_db
def test_a_blank_spec_starts_valid_and_is_edited_by_hand(admin_user, organization):
    created = _page(admin_user).post("/integrations/custom/", {"name": "Partner tool"})
    connector = CustomConnector.objects.get(organization=organization, key="partner-tool")
    assert created.status_code == 302 and connector.openapi is None
    page = _page(admin_user).get(f"/integrations/custom/{connector.pk}/").content.decode()
    assert 'id="endpoints-section"' not in page and '<option value="entity:items">Read Items</option>' in page
    draft = yaml.safe_load(connector.draft)
    draft["entities"]["items"]["read"]["request"]["path"] = "/v2/things"
    assert _post_spec(_page(admin_user), connector, draft).status_code == 302
    assert connector.versions.get().spec["entities"]["items"]["read"]["request"]["path"] == "/v2/things"
    duplicate = _page(admin_user).post("/integrations/custom/", {"name": "Partner tool"})
    assert duplicate.status_code == 400 and b"already has a custom connector named" in duplicate.content
