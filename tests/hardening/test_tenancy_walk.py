"""Walk every URL pattern as a user of another organization and as each role: nothing leaks, nothing is changed.

New endpoints are covered automatically: a route with an id in its path is called with the ids of another
organization's rows and must answer 404 (or 405); a write as a viewer must answer 403 (or 404/405).
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Role
from tests.hardening.tenant_objects import build, routes, tenant_models

# Routes outside tenancy by design, with the reason.
EXEMPT_PREFIXES = {
    "admin/": "Django admin: staff only, sees every organization by design",
    "accounts/": "allauth sign-in pages",
    "api/schema/": "public schema",
    "api/docs/": "public docs",
    "api/webhooks/": "vendor webhooks: no user; authenticated by the vendor's signature (see test_webhook_hardening)",
    "api/inbound/": "generic signed webhook: no user; authenticated by the endpoint's HMAC signature (see tests/playbooks/human/test_triggers.py)",
    "api/<str:vendor>/interactions/": "chat button presses: no user; the vendor's signature, then only the member the buttons were sent to (test_slack_buttons)",
    "api/template-files/schema.json": "the published JSON Schema of template files",
    "approvals/": "one-time signed links: the token names the person and the step; GET only shows a page (test_human_steps)",
    "static/": "static files",
    "healthz": "health check",
}
# Writes a viewer may perform (they change nothing): route pattern regex → reason.
VIEWER_WRITE_ALLOWED = {
    r"validate": "validates without saving",
    r"preview": "computes a preview without saving",
    r"csv/preview": "parses a CSV without saving",
    r"query": "live read of a data source (a read)",
    r"logout": "signs out",
    r"invitations/accept": "joins the organization an invitation names: any signed-in user holding its e-mailed token (test_invitations)",
}
UUID_PARAM = re.compile(r"<(?:uuid:)?(?P<name>\w+)>")
WRITE_METHODS = ["post", "put", "patch", "delete"]


def _exempt(pattern: str) -> bool:
    return any(pattern.startswith(prefix) for prefix in EXEMPT_PREFIXES) or "<format>" in pattern or "<drf_format_suffix" in pattern


def _fill(pattern: str, value: str) -> str | None:
    path = pattern
    for match in re.finditer(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>", pattern):
        conv = match.group("conv") or "str"
        if conv == "uuid" or match.group("name") in ("pk", "id") or match.group("name").endswith("_id"):
            replacement = value
        elif match.group("name") in ("scenario_type", "type"):
            replacement = "crisis_management"
        elif match.group("name") in ("connector_key", "key"):
            replacement = "slack"
        else:
            replacement = "x"
        path = path.replace(match.group(0), replacement, 1)
    return "/" + path


def _id_routes():
    return [r for r in routes() if r.params and not _exempt(r.pattern) and any(p in ("pk", "id") or p.endswith("_id") for p in r.params)]


@pytest.fixture(autouse=True)
def _page_rate_out_of_the_way(settings):
    # The walk posts to every page route as one user; the page rate limit has its own test (tests/common/test_page_rate_limit.py).
    settings.BASTION_PAGE_RATE = "1000000/minute"


@pytest.fixture
def foreign_rows(other_organization):
    cache: dict = {}
    rows = []
    for model in tenant_models():
        try:
            rows.append(build(model, other_organization, cache))
        except Exception as exc:  # noqa: BLE001 - reported with the model name
            raise AssertionError(f"Could not build a {model._meta.label} row for the tenancy walk: {exc}")
    return rows


def _candidate_ids(route, rows):
    model = getattr(getattr(getattr(route.callback, "cls", None), "queryset", None), "model", None)
    matching = [r for r in rows if model is not None and isinstance(r, model)]
    return [str(r.pk) for r in (matching or rows)]


@pytest.mark.django_db
def test_another_organizations_rows_are_404_everywhere(foreign_rows, users_by_role):
    owner = users_by_role[Role.OWNER]
    api = APIClient()
    api.force_authenticate(owner)
    pages = Client()
    pages.force_login(owner)
    failures = []
    checked = 0
    for route in _id_routes():
        client = api if route.pattern.startswith("api/") else pages
        for object_id in _candidate_ids(route, foreign_rows):
            path = _fill(route.pattern, object_id)
            for method in ["get", *WRITE_METHODS]:
                response = getattr(client, method)(path, {}, format="json") if client is api else getattr(client, method)(path)
                checked += 1
                if response.status_code not in (404, 405):
                    failures.append(f"{method.upper()} {path} ({route.name}) → {response.status_code}")
    # Nothing of the other organization was changed or deleted.
    for row in foreign_rows:
        assert type(row)._default_manager.filter(pk=row.pk).exists(), f"{row._meta.label} {row.pk} was deleted by another organization's user"
    assert not failures, "Cross-organization access not refused:\n" + "\n".join(failures)
    assert checked > 0


@pytest.mark.django_db
def test_viewers_cannot_write_anywhere(users_by_role, organization):
    viewer = users_by_role[Role.VIEWER]
    api = APIClient()
    api.force_authenticate(viewer)
    failures = []
    for route in routes():
        if _exempt(route.pattern) or not route.pattern.startswith("api/"):
            continue
        if any(re.search(p, route.pattern) for p in VIEWER_WRITE_ALLOWED):
            continue
        path = _fill(route.pattern, str(uuid.uuid4()))
        for method in WRITE_METHODS:
            response = getattr(api, method)(path, {}, format="json")
            if response.status_code not in (403, 404, 405):
                failures.append(f"{method.upper()} {path} ({route.name}) → {response.status_code}")
    assert not failures, "Viewer writes not refused:\n" + "\n".join(failures)


@pytest.mark.django_db
def test_users_without_organization_see_nothing(make_user):
    loner = make_user(None, username="loner")
    api = APIClient()
    api.force_authenticate(loner)
    failures = []
    for route in routes():
        if _exempt(route.pattern) or not route.pattern.startswith("api/") or route.params:
            continue
        response = api.get(_fill(route.pattern, str(uuid.uuid4())))
        if response.status_code not in (403, 404, 405) and not (response.status_code == 200 and route.pattern in ("api/organizations/", "api/connectors")):
            failures.append(f"GET /{route.pattern} ({route.name}) → {response.status_code}")
    assert not failures, "\n".join(failures)


def _refusal(response, role: str, integration_name: str) -> str:
    """ "" when the answer is the allowed_roles 403 naming the integration and the role, else what was wrong."""
    if response.status_code != 403:
        return f"→ {response.status_code}"
    message = response.json()["error"]["message"]
    if integration_name not in message or f"({role})" not in message:
        return f"→ 403 without naming the integration and the role: {message!r}"
    return ""


@pytest.mark.django_db
def test_restricted_integrations_are_refused_on_every_use(restricted_integrations, users_by_role):
    """allowed_roles=["admin"] on every integration a scenario field reads from: viewers and editors get a 403 that names the
    integration and their role on options, imports, refreshes, syncs, live reads, pushes, bindings and activation."""
    from playbooks.models import PlaybookRun
    from sync.models import DataSyncJob

    restricted = restricted_integrations
    failures = []
    checked = 0
    for role in (Role.VIEWER, Role.EDITOR):
        api = APIClient()
        api.force_authenticate(users_by_role[role])
        for scenario_type, field_key, connector_key in restricted.fields:
            name = restricted.integrations[connector_key].display_name
            base = f"/api/scenarios/{scenario_type}/fields/{field_key}"
            uses = [("GET options", api.get(f"{base}/options", {"connector": connector_key}))]
            # Every source of the field is restricted: these name the first one.
            everything = [api.get(f"{base}/options")] + ([api.post(f"{base}/refresh", {}, format="json")] if role == Role.EDITOR else [])
            for response in everything:
                checked += 1
                if response.status_code != 403 or "Restricted " not in response.json()["error"]["message"]:
                    failures.append(f"{response.request['REQUEST_METHOD']} {response.request['PATH_INFO']} as {role} → {response.status_code}")
            if role == Role.EDITOR:
                uses += [("POST import", api.post(f"{base}/import", {"connector": connector_key}, format="json"))]
            for what, response in uses:
                checked += 1
                if problem := _refusal(response, role, name):
                    failures.append(f"{what} {base} as {role} {problem}")
        for integration in restricted.integrations.values():
            uses = []
            if role == Role.EDITOR:  # a viewer is refused these by role already
                uses += [("POST query", api.post(f"/api/data-sources/{ds.pk}/query", {}, format="json")) for ds in integration.data_sources.all()]
                uses.append(("POST integration sync", api.post(f"/api/integrations/{integration.pk}/sync", {}, format="json")))
                uses += [("POST data source sync", api.post(f"/api/data-sources/{ds.pk}/sync", {}, format="json")) for ds in integration.data_sources.all()]
                push = {"action": "x", "record": {}, "idempotency_key": "k"}
                uses += [("POST push", api.post(f"/api/data-sources/{ds.pk}/push", push, format="json")) for ds in integration.data_sources.all()]
                bindings = {"integration_bindings": {integration.connector_key: str(integration.pk)}}
                uses.append(("PATCH playbook bindings", api.patch(f"/api/playbooks/{restricted.playbook.pk}/", bindings, format="json")))
            for what, response in uses:
                checked += 1
                if problem := _refusal(response, role, integration.display_name):
                    failures.append(f"{what} {integration.connector_key} as {role} {problem}")
        export = api.get("/api/people/export.csv")  # every person, some known only through restricted integrations
        checked += 1
        if export.status_code != 403 or "Restricted " not in export.json()["error"]["message"]:
            failures.append(f"GET /api/people/export.csv as {role} → {export.status_code}")
        if role == Role.EDITOR:
            response = api.post(f"/api/playbooks/{restricted.playbook.pk}/activate/", {}, format="json")
            checked += 1
            if response.status_code != 403 or "Restricted" not in response.json()["error"]["message"]:
                failures.append(f"POST activate as editor → {response.status_code} {response.content[:200]!r}")
    pages = Client()
    pages.force_login(users_by_role[Role.EDITOR])
    for scenario_type in sorted({scenario_type for scenario_type, _key, _connector in restricted.fields}):
        page = pages.get(f"/scenarios/new/{scenario_type}/")  # selects fed by a source are filled server-side
        checked += 1
        if page.status_code != 200 or "Secret " in page.content.decode():
            failures.append(f"GET /scenarios/new/{scenario_type}/ as editor → {page.status_code}, restricted records shown")
    assert not failures, "Restricted integrations used by a role they do not allow:\n" + "\n".join(failures)
    assert checked > 50
    assert not DataSyncJob.objects.exists() and not PlaybookRun.objects.exists()


@pytest.mark.django_db
def test_every_write_route_on_a_restricted_integration_refuses_an_editor(restricted_integrations, users_by_role):
    """Generated: every API write route whose id is a restricted integration or one of its data sources refuses an editor,
    so a new endpoint that uses an integration cannot forget allowed_roles."""
    from integrations.models import DataSource, Integration

    api = APIClient()
    api.force_authenticate(users_by_role[Role.EDITOR])
    rows = [*restricted_integrations.integrations.values()]
    rows += list(DataSource.objects.filter(integration__in=rows))
    failures = []
    checked = 0
    for route in _id_routes():
        if not route.pattern.startswith("api/"):
            continue
        model = getattr(getattr(getattr(route.callback, "cls", None), "queryset", None), "model", None)
        if model not in (Integration, DataSource):
            continue
        for row in [r for r in rows if isinstance(r, model)]:
            path = _fill(route.pattern, str(row.pk))
            for method in WRITE_METHODS:
                response = getattr(api, method)(path, {}, format="json")
                checked += 1
                if 200 <= response.status_code < 300:
                    failures.append(f"{method.upper()} {path} ({route.name}) → {response.status_code}")
    assert not failures, "An editor used an integration restricted to admins:\n" + "\n".join(failures)
    assert checked > 0


@pytest.mark.django_db
def test_admins_still_use_restricted_integrations(restricted_integrations, users_by_role):
    api = APIClient()
    api.force_authenticate(users_by_role[Role.ADMIN])
    response = api.get("/api/scenarios/crisis_management/fields/incident_history/options", {"connector": "pagerduty"})
    assert response.status_code == 200
    assert [r["label"] for r in response.json()["results"]] == ["Secret pagerduty incidents"]
    pages = Client()
    pages.force_login(users_by_role[Role.ADMIN])
    assert "Secret pagerduty incidents" in pages.get("/scenarios/new/crisis_management/").content.decode()
    export = api.get("/api/people/export.csv")
    assert export.status_code == 200 and "secret.pagerduty@acme.example" in b"".join(export.streaming_content).decode()
