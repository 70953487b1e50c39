"""Custom connectors: OpenAPI upload parsed safely, drafts from picked endpoints, versions refused with each problem's path,
hooks refused, publish → the registry resolves the organization's key, export, the live request console, org isolation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
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
    assert draft["config"] == [{"name": "project_gid", "label": "Project gid", "required": True}]
    action = draft["actions"]["create_task"]
    assert action["request"]["method"] == "POST" and action["request"]["path"] == "/tasks"
    assert action["request"]["json"] == {"data": "{{ input | compact }}"}  # only the inputs a step gives are sent
    assert list(action["input"]) == ["name", "notes", "workspace", "assignee"] and action["input"]["name"] == {}
    assert action["result"] == {"select": "$.data", "external_id": "{{ result.gid }}"}


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
    assert api.get("/api/custom-connectors").json() == []
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
