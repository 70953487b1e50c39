"""A resolver outage during a sync: retried with backoff, then the source is stale; the integration is not misconfigured."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import requests

from integrations.models import DataSource, Integration, IntegrationStatus
from integrations.services import integration_connect
from sync import services as sync_services
from sync.models import JobStatus, SyncRecord
from tests.integrations.dns_outage import OutageDns

DIRECTORY_TOKEN = "sbx-directory-demo-token"  # the Sandbox Directory's demo token (as in tests/sync)
HOST = "directory.vendor.test"


@pytest.fixture
def dns(monkeypatch) -> OutageDns:
    fake = OutageDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(autouse=True)
def _sync_settings(settings):
    """As in tests/sync: no inline HTTP retries, no wait between the engine's own retries, three attempts."""
    settings.BASTION_SYNC_HTTP_RETRIES = 0
    settings.BASTION_SYNC_RETRY_BASE_SECONDS = 0
    settings.BASTION_SYNC_MAX_ATTEMPTS = 3
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the sandbox is on loopback


@pytest.fixture
def directory(sandbox, dns, organization) -> Integration:
    """The Sandbox Directory reached by a host name (resolved by the stub to the sandbox's loopback address)."""
    dns.answer(HOST, ["127.0.0.1"])
    integration = integration_connect(
        organization=organization,
        connector_key="sandbox_directory",
        credentials={"token": DIRECTORY_TOKEN},
        base_url=f"http://{HOST}:{urlsplit(sandbox).port}/sandbox_directory",
        config={"page_size": 7},
        display_name="Directory",
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED
    return integration


def run_sync(django_capture_on_commit_callbacks, data_source: DataSource):
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_services.sync_start(data_source=data_source)
    job.refresh_from_db()
    return job


def directory_requests(sandbox: str) -> int:
    return len(requests.get(f"{sandbox}/_control/requests", params={"vendor": "sandbox_directory"}, timeout=5).json())


def test_a_dns_outage_is_retried_then_marks_the_source_stale_not_the_integration_misconfigured(sandbox, dns, directory, django_capture_on_commit_callbacks):
    people = DataSource.objects.get(integration=directory, entity_type="people")
    assert run_sync(django_capture_on_commit_callbacks, people).status == JobStatus.SUCCEEDED
    stored = SyncRecord.objects.filter(integration=directory, is_deleted=False).count()
    seen_by_vendor = directory_requests(sandbox)
    lookups = dns.count(HOST)

    dns.fail(HOST, socket.EAI_AGAIN)
    job = run_sync(django_capture_on_commit_callbacks, people)

    assert job.status == JobStatus.FAILED and job.error_class == "transient"  # not "configuration"
    assert job.log_lines.filter(event="page.retry").count() == 2  # three attempts with backoff (BASTION_SYNC_MAX_ATTEMPTS = 3)
    assert "Cannot resolve the host name directory.vendor.test (Temporary failure in name resolution)" in job.last_error
    assert dns.count(HOST) == lookups + 3 and directory_requests(sandbox) == seen_by_vendor  # nothing reached the vendor
    people.refresh_from_db()
    assert people.is_stale and "Last sync failed (transient: Cannot resolve the host name" in people.stale_reason
    assert SyncRecord.objects.filter(integration=directory, is_deleted=False).count() == stored  # the last good data is kept
    directory.refresh_from_db()
    assert directory.status == IntegrationStatus.CONNECTED and directory.auth_failed_at is None
    assert "Cannot resolve the host name" in directory.last_error
    assert set(directory.calls.filter(is_ok=False).values_list("error", "vendor_code")) == {("ApiHostError", "dns_resolution_failed")}

    dns.answer(HOST, ["127.0.0.1"])  # the resolver is back
    assert run_sync(django_capture_on_commit_callbacks, people).status == JobStatus.SUCCEEDED
    people.refresh_from_db()
    assert not people.is_stale


def test_a_name_that_resolves_to_a_refused_address_fails_at_once_as_configuration(settings, sandbox, dns, directory, django_capture_on_commit_callbacks):
    people = DataSource.objects.get(integration=directory, entity_type="people")
    seen_by_vendor = directory_requests(sandbox)
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False

    job = run_sync(django_capture_on_commit_callbacks, people)

    assert job.status == JobStatus.FAILED and job.error_class == "configuration"
    assert job.log_lines.filter(event="page.retry").count() == 0 and "private" in job.last_error
    assert directory_requests(sandbox) == seen_by_vendor
