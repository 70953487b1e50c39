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
