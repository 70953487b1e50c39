"""Input Bastion cannot use is the sender's error, never a 500 (issue 13, Low: the probe's list, each fixed as a class).

One JSON reader for every API body and webhook (depth limit, NUL refused), one size limit for parsed bodies, one
middleware and one API handler for malformed ids and values the database cannot store, schedule checks in the service.
"""

from __future__ import annotations

import importlib
import inspect
import json
import time
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import parsers as drf_parsers

from accounts.models import Role
from sync.models import WebhookDelivery
from tests.hardening.conftest import webhook_for
from tests.sync.conftest import directory, make_directory, people_source  # noqa: F401

pytestmark = pytest.mark.django_db


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_4xx(response, status: int = 400) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    if response["Content-Type"].startswith("application/json"):
        error = response.json()["error"]
        assert error["code"] and error["message"]
        return error
    return {}


# --- One JSON reader --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [101, 1000, 100_000])
def test_deeply_nested_json_is_400_on_every_api(api, depth):
    body = '{"scenario_type": "crisis_management", "values": {"summary": ' + nested(depth) + "}}"
    error = assert_4xx(api.post("/api/scenarios/", data=body, content_type="application/json"))
    assert "nested" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"scenario_type": "crisis_management", "values": {"title": "Outage\u0000"}},
        {"scenario_type": "crisis_management", "values": {"title\u0000": "Outage"}},
        {"scenario_type": "crisis_management", "values": {"stakeholders": [{"name": "A\u0000"}]}},
    ],
)
def test_nul_in_scenario_values_is_400(api, body):
    error = assert_4xx(api.post("/api/scenarios/", data=json.dumps(body), content_type="application/json"))
    assert "NUL" in error["message"]


def test_nul_in_integration_config_is_400(api_for, users_by_role):
    body = {"connector_key": "demo", "credentials": {"api_key": "x"}, "config": {"workspace": "a\u0000b"}}
    response = api_for(users_by_role[Role.ADMIN]).post("/api/integrations/connect", data=json.dumps(body), content_type="application/json")
    assert "NUL" in assert_4xx(response)["message"]


def test_nan_is_not_json(api):
    response = api.post("/api/scenarios/", data='{"scenario_type": "crisis_management", "values": {"n": NaN}}', content_type="application/json")
    assert_4xx(response)


def test_nul_in_a_validly_signed_webhook_is_400_and_nothing_is_stored(client, connect_one, organization, settings):
    settings.BASTION_EVENT_HANDLERS = []
    item = connect_one(organization, "sandbox_directory")
    url = f"/api/webhooks/{item.integration.pk}"
    payload = json.loads(webhook_for(item.key, secret=item.webhook_secret, url=f"http://testserver{url}").body)
    payload["data"]["name"] = "Hook\u0000Person"
    signed = webhook_for(item.key, secret=item.webhook_secret, url=f"http://testserver{url}", body=json.dumps(payload).encode())
    response = client.post(url, data=signed.body, content_type=signed.content_type, **signed.headers)
    assert_4xx(response)
    assert not WebhookDelivery.objects.exists()


def test_every_view_naming_its_parsers_uses_the_safe_json_reader():
    """A view that lists rest_framework's JSONParser itself would skip the depth and NUL checks."""
    offenders = []

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
                for parser in getattr(view, "parser_classes", None) or []:
                    if parser is drf_parsers.JSONParser:
                        offenders.append(f"{view.__module__}.{view.__name__}")

    walk(get_resolver().url_patterns)
    assert offenders == []
    assert importlib.import_module("common.parsers").JSONParser.__mro__[1] is drf_parsers.JSONParser
    assert "common.parsers.JSONParser" in inspect.getsource(importlib.import_module("bastion_site.settings"))


# --- One size limit for parsed bodies ---------------------------------------------------------------------------------


def forty_megabytes() -> bytes:
    return json.dumps({"field": "stakeholders", "external_ids": ["x" * 1000] * 40_000}).encode()


def test_a_40_mb_json_body_on_populate_field_is_413(api):
    response = api.post(f"/api/scenarios/{uuid.uuid4()}/populate-field", data=forty_megabytes(), content_type="application/json")
    assert assert_4xx(response, 413)["code"] == "payload_too_large"


def test_a_40_mb_json_body_on_field_import_is_413(api):
    response = api.post("/api/scenarios/crisis_management/fields/stakeholders/import", data=forty_megabytes(), content_type="application/json")
    assert assert_4xx(response, 413)["code"] == "payload_too_large"


# --- Malformed ids and unstorable values ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["scenario_id", "template_id"])
def test_a_malformed_id_on_the_new_playbook_page_is_400(users_by_role, field):
    client = Client()
    client.force_login(users_by_role[Role.EDITOR])
    data = {"scenario_id": str(uuid.uuid4()), "template_id": str(uuid.uuid4()), field: "not-a-uuid"}
    response = client.post("/playbooks/new/", data)
    assert response.status_code in (302, 400), response.status_code  # 302: a well-formed but unknown scenario goes back with a message
    if field == "scenario_id":
        assert response.status_code == 400 and b"not a valid UUID" in response.content


def test_a_malformed_template_id_with_a_real_scenario_is_400(users_by_role, organization):
    from scenarios.models import Scenario, ScenarioDataModel

    model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    scenario = Scenario.objects.create(organization=organization, data_model=model, scenario_type="crisis_management", title="S", values={})
    client = Client()
    client.force_login(users_by_role[Role.EDITOR])
    response = client.post("/playbooks/new/", {"scenario_id": str(scenario.pk), "template_id": "not-a-uuid"})
    assert response.status_code == 400 and b"not a valid UUID" in response.content


# --- Schedules --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"every_seconds": 10**30},
        {"every_seconds": 10**12},
        {"crontab": "99 99 99 99 99"},
        {"crontab": "61 * * * *"},
        {"crontab": "* 24 * * *"},
        {"crontab": "* * 32 * *"},
        {"crontab": "* * * 13 *"},
        {"crontab": "* * * * 8"},
    ],
)
def test_impossible_schedules_are_400(api_for, users_by_role, people_source, body):  # noqa: F811
    from django_celery_beat.models import PeriodicTask

    before = PeriodicTask.objects.filter(name=f"sync:{people_source.pk}").values_list("interval_id", "crontab_id").first()
    response = api_for(users_by_role[Role.ADMIN]).put(f"/api/data-sources/{people_source.pk}/schedule", body, format="json")
    assert_4xx(response)
    assert PeriodicTask.objects.filter(name=f"sync:{people_source.pk}").values_list("interval_id", "crontab_id").first() == before


def test_possible_schedules_still_work(api_for, users_by_role, people_source):  # noqa: F811
    admin = api_for(users_by_role[Role.ADMIN])
    for body in ({"every_seconds": 3600}, {"crontab": "*/15 9-17 * * 1-5"}, {"every_seconds": 366 * 24 * 3600}):
        assert admin.put(f"/api/data-sources/{people_source.pk}/schedule", body, format="json").status_code == 200, body


# --- Base URLs --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", ["http://[::1", "http://[", "https://exa mple.com", "http://example.com:99999", "http://\u0000x"])
def test_a_malformed_base_url_is_400(api_for, users_by_role, base_url):
    body = {"connector_key": "demo", "credentials": {"api_key": "x"}, "base_url": base_url}
    started = time.monotonic()
    response = api_for(users_by_role[Role.ADMIN]).post("/api/integrations/connect", data=json.dumps(body), content_type="application/json")
    assert_4xx(response)
    assert time.monotonic() - started < 60  # refused, not attempted
