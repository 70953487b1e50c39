"""Statuspage connector against the sandbox over real HTTP: OAuth-key auth, paging, exactly-once incidents, 420/429, Django connect."""

from __future__ import annotations

import pytest
import requests

from integrations.connectors.statuspage import StatuspageConnector
from integrations.errors import ApiBadRequest, ApiUnauthorized
from integrations.http import HttpClient

PAGE = "acmest4tus01"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connector(sandbox, sleeps) -> StatuspageConnector:
    client = HttpClient(f"{sandbox}/statuspage/v1", sleep=sleeps.append, timeout=(2, 5))
    return StatuspageConnector(client=client, credentials={"api_key": "sandbox-statuspage-token"}, config={"page_id": PAGE, "page_size": 1})


def _created(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/created", params={"vendor": "statuspage"}, timeout=5).json()


def test_connection_and_bad_key(connector, sandbox):
    result = connector.test_connection()
    assert result.ok and result.identity == "Acme Status" and result.account_id == PAGE
    bad = StatuspageConnector(client=HttpClient(f"{sandbox}/statuspage/v1"), credentials={"api_key": "nope"}, config={"page_id": PAGE})
    with pytest.raises(ApiUnauthorized):
        bad.test_connection()


def test_incidents_page_and_transform(connector):
    first = connector.read("incidents")
    second = connector.read("incidents", page=first.next_page)
    assert first.next_page == {"page": 2} and len(first.records) == len(second.records) == 1
    assert connector.read("incidents", page=second.next_page).records == []
    assert connector.to_bastion("incidents", first.records[0]) == {
        "external_id": first.records[0]["id"],
        "title": "Login delays for some customers",
        "status": "resolved",
        "urgency": "minor",
        "service": "",
        "created_at": first.records[0]["created_at"],
        "url": first.records[0]["shortlink"],
    }
    assert {f.name for f in connector.discover_fields("components")} >= {"id", "name", "status", "position"}


def test_create_incident_exact_body_and_exactly_once(connector, sandbox):
    payload = {
        "name": "Degraded API",
        "status": "investigating",
        "body": "We are looking into errors.",
        "impact_override": "major",
        "component_ids": ["cmp000000001"],
    }
    first = connector.perform("create_incident", payload, idempotency_key="crisis-1")
    again = connector.perform("create_incident", payload, idempotency_key="crisis-1")
    assert first.created and not again.created and again.external_id == first.external_id
    incident = first.data
    assert incident["impact"] == "major" and [c["name"] for c in incident["components"]] == ["API"]
    assert incident["incident_updates"][0]["body"] == "We are looking into errors." and incident["metadata"]["bastion"]["idempotency_key"]
    # The incident is stored but the answer is lost (502): the connector searches before re-posting.
    requests.put(f"{sandbox}/statuspage/_sandbox/knobs", json={"fail_after_create": 1}, timeout=5)
    lost = connector.perform("create_incident", {**payload, "name": "Payments delayed"}, idempotency_key="crisis-2")
    assert not lost.created and lost.data["name"] == "Payments delayed"
    assert [c["summary"].split(" (")[0] for c in _created(sandbox)] == ["Degraded API", "Payments delayed"]


def test_update_incident_is_not_published_twice(connector):
    incident = connector.perform("create_incident", {"name": "Outage", "status": "investigating", "body": "Investigating"}, idempotency_key="u")
    update = {"incident_id": incident.external_id, "status": "resolved", "body": "Resolved at 14:02 UTC"}
    connector.perform("update_incident", update, idempotency_key="u1")
    final = connector.perform("update_incident", update, idempotency_key="u1")
    assert final.data["status"] == "resolved" and [u["status"] for u in final.data["incident_updates"]] == ["resolved", "investigating"]


@pytest.mark.parametrize("status", [420, 429])
def test_rate_limit_statuses_are_waited_out(connector, sandbox, sleeps, status):
    requests.put(f"{sandbox}/statuspage/_sandbox/knobs", json={"rate_limit_status": status}, timeout=5)
    requests.put(f"{sandbox}/_control/faults/statuspage", json={"rate_limit_next": 1, "retry_after": 2}, timeout=5)
    created = connector.perform("create_incident", {"name": "Rate limited", "status": "investigating", "body": "x"}, idempotency_key=f"rl-{status}")
    assert created.created and len(_created(sandbox)) == 1
    assert len(sleeps) == 1 and 2 <= sleeps[0] < 2.3


def test_invalid_status_is_refused_and_nothing_created(connector, sandbox):
    with pytest.raises(ApiBadRequest):
        connector.perform("create_incident", {"name": "Bad", "status": "on-fire", "body": "x"}, idempotency_key="bad")
    assert _created(sandbox) == []


@pytest.mark.django_db
def test_connect_through_django_then_test(organization, sandbox):
    from integrations.models import IntegrationStatus
    from integrations.services import integration_connect

    integration = integration_connect(
        organization=organization,
        connector_key="statuspage",
        credentials={"api_key": "sandbox-statuspage-token"},
        config={"page_id": PAGE},
        base_url=f"{sandbox}/statuspage/v1",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.external_account_id == PAGE
