"""Amplitude, read only (integrations/connectors/amplitude/spec.yaml + a read hook for charts), over real HTTP against the
declared Amplitude stand-in served from sandbox/specs/amplitude.json (hand-written from Amplitude's docs): Basic
api_key:secret_key, saved charts' series and behavioral cohorts' sizes, polling only."""

from __future__ import annotations

import pytest
import requests

from integrations import registry
from integrations.connectors.base import Capability
from integrations.errors import ApiBadRequest
from integrations.models import IntegrationStatus
from integrations.services import integration_connect, shared_connector
from sync.models import JobStatus, SyncRecord
from sync.services.jobs import data_sources_ensure
from tests.conftest import run_sync

API_KEY, SECRET_KEY = "sandbox-amplitude-api-key", "sandbox-amplitude-secret-key"


def amplitude_requests(sandbox: str, path_part: str = "") -> list[dict]:
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "amplitude"}, timeout=5).json()
    return [r for r in log if path_part in r["path"]]


def connect(sandbox: str, organization, *, secret: str = SECRET_KEY, charts: str = "k2f7a9x, m4q8z1c", region: str = ""):
    integration = integration_connect(
        organization=organization,
        connector_key="amplitude",
        credentials={"api_key": API_KEY, "secret_key": secret},
        config={"charts": charts, "region": region},
        base_url=f"{sandbox}/amplitude",
    )
    integration.refresh_from_db()
    return integration


@pytest.fixture
def amplitude(sandbox, organization):
    integration = connect(sandbox, organization)
    assert integration.status == IntegrationStatus.CONNECTED, integration.last_error
    return integration


def test_amplitude_connects_with_basic_project_keys_and_is_read_only(amplitude, sandbox, organization):
    connector_class = registry.get_connector_class("amplitude")
    assert [e.key for e in connector_class.manifest.entities] == ["charts", "cohorts"] and connector_class.manifest.actions == ()
    assert not connector_class.supports(Capability.ACTIONS) and not connector_class.supports(Capability.WEBHOOKS)
    assert amplitude.external_account_id == "349021"  # the project (appId), not a credential
    assert SECRET_KEY not in amplitude.last_error + amplitude.external_account_id
    refused = connect(sandbox, organization, secret="wrong-secret")
    assert refused.status != IntegrationStatus.CONNECTED and "Invalid API key or secret key" in refused.last_error


@pytest.mark.django_db
def test_sync_reads_each_configured_chart_and_the_cohorts(amplitude, sandbox, django_capture_on_commit_callbacks):
    sources = {s.entity_type: s for s in data_sources_ensure(integration=amplitude)}
    job = run_sync(django_capture_on_commit_callbacks, sources["charts"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert len(amplitude_requests(sandbox, "/api/3/chart/")) == 2  # one page per chart
    signups = SyncRecord.objects.get(integration=amplitude, entity_type="charts", external_id="k2f7a9x").data
    assert signups["labels"] == ["Web", "iOS"] and signups["x_values"] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert signups["series"][0]["values"] == [120, 340, 910] and signups["latest"] == [910, 602]
    funnel = SyncRecord.objects.get(integration=amplitude, entity_type="charts", external_id="m4q8z1c").data
    assert funnel["latest"] == [5400, 1320, 610]

    job = run_sync(django_capture_on_commit_callbacks, sources["cohorts"], full_refresh=True)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    cohort = SyncRecord.objects.get(integration=amplitude, entity_type="cohorts", external_id="c0h0rt1").data
    assert (cohort["name"], cohort["size"], cohort["archived"]) == ("Launch week activated users", 1812, False)

    # The cohort grows overnight: the next poll reads the new size; a cohort removed in Amplitude is marked deleted.
    requests.patch(f"{sandbox}/amplitude/_sandbox/records/cohorts/c0h0rt1", json={"size": 2250}, timeout=5).raise_for_status()
    requests.delete(f"{sandbox}/amplitude/_sandbox/records/cohorts/c0h0rt2", timeout=5).raise_for_status()
    assert run_sync(django_capture_on_commit_callbacks, sources["cohorts"], full_refresh=True).status == JobStatus.SUCCEEDED
    assert SyncRecord.objects.get(integration=amplitude, entity_type="cohorts", external_id="c0h0rt1").data["size"] == 2250
    assert SyncRecord.objects.get(integration=amplitude, entity_type="cohorts", external_id="c0h0rt2").is_deleted


def test_chart_ids_are_checked_before_any_call_and_an_unknown_chart_is_a_clear_not_found(sandbox, organization):
    from integrations.errors import ApiNotFound

    integration = connect(sandbox, organization, charts="k2f7a9x, ../cohorts")
    connector = shared_connector(integration, purpose="sync")
    before = len(amplitude_requests(sandbox, "/api/3/chart/"))
    with pytest.raises(ApiBadRequest, match="letters and digits only"):
        connector.read("charts")
    assert len(amplitude_requests(sandbox, "/api/3/chart/")) == before
    missing = shared_connector(connect(sandbox, organization, charts="nosuch1"), purpose="sync")
    with pytest.raises(ApiNotFound, match="nosuch1"):
        missing.read("charts")


def test_an_eu_project_is_read_from_the_eu_host_and_an_unknown_region_is_refused_before_any_call(sandbox, organization):
    from integrations.http import HttpClient

    connector_class = registry.get_connector_class("amplitude")

    def host(base_url: str, region: str) -> str:
        connector = connector_class(client=HttpClient(base_url), config={"charts": "k2f7a9x", "region": region}, credentials={})
        return connector.scope()["vars"]["host"]

    assert host("https://amplitude.com", "EU") == "https://analytics.eu.amplitude.com/"
    assert host("https://amplitude.com", "") == host("https://amplitude.com", "us") == "https://amplitude.com/"
    assert host(f"{sandbox}/amplitude", "eu") == f"{sandbox}/amplitude/"  # a stand-in or proxy base URL is used as given
    connected = connect(sandbox, organization, region="eu")
    assert connected.status == IntegrationStatus.CONNECTED, connected.last_error

    before = len(amplitude_requests(sandbox))
    refused = connect(sandbox, organization, region="mars")
    assert refused.status != IntegrationStatus.CONNECTED and "region is us or eu" in refused.last_error
    assert len(amplitude_requests(sandbox)) == before
