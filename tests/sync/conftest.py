"""Fixtures for the sync engine: a Sandbox Directory integration over real HTTP, a webhook secret, sync helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from integrations.models import CredentialType, DataSource, Integration, IntegrationStatus
from integrations.services import credential_store, integration_connect
from sync import services
from sync.models import DataSyncJob

DIRECTORY_TOKEN = "sbx-directory-demo-token"
WEBHOOK_SECRET = "whsec-directory-test"


@pytest.fixture(autouse=True)
def _sync_settings(settings, tmp_path):
    """Fast, deterministic engine settings for tests (no inline HTTP retries; the engine's own retries have no wait)."""
    settings.BASTION_SYNC_HTTP_RETRIES = 0
    settings.BASTION_SYNC_RETRY_BASE_SECONDS = 0
    settings.BASTION_SYNC_MAX_ATTEMPTS = 3
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test users only; keeps setup fast


def directory_control(sandbox: str, path: str, method: str = "POST", **body) -> dict:
    response = requests.request(method, f"{sandbox}/sandbox_directory{path}", json=body or None, timeout=30)
    response.raise_for_status()
    return response.json()


def set_faults(sandbox: str, **knobs) -> None:
    requests.put(f"{sandbox}/_control/faults/sandbox_directory", json=knobs, timeout=5).raise_for_status()


@pytest.fixture
def make_directory(sandbox) -> Callable[..., Integration]:
    def make(organization, *, page_size: int = 7, name: str = "Directory") -> Integration:
        integration = integration_connect(
            organization=organization,
            connector_key="sandbox_directory",
            credentials={"token": DIRECTORY_TOKEN},
            base_url=f"{sandbox}/sandbox_directory",
            config={"page_size": page_size},
            display_name=name,
            test=True,
        )
        integration.refresh_from_db()
        assert integration.status == IntegrationStatus.CONNECTED
        credential_store(integration=integration, credential_type=CredentialType.WEBHOOK_SECRET, data={"secret": WEBHOOK_SECRET})
        services.data_sources_ensure(integration=integration)
        return integration

    return make


@pytest.fixture
def directory(make_directory, organization) -> Integration:
    return make_directory(organization)


@pytest.fixture
def people_source(directory) -> DataSource:
    return DataSource.objects.get(integration=directory, entity_type="people")


@pytest.fixture
def run_sync(django_capture_on_commit_callbacks) -> Callable[..., DataSyncJob]:
    """Start a sync and run it in-process to completion (or to its pause), returning the refreshed job."""

    def run(data_source: DataSource, **kwargs) -> DataSyncJob:
        with django_capture_on_commit_callbacks(execute=True):
            job = services.sync_start(data_source=data_source, **kwargs)
        job.refresh_from_db()
        return job

    return run


@pytest.fixture
def reap(django_capture_on_commit_callbacks) -> Callable[..., list[str]]:
    def run(**kwargs) -> list[str]:
        with django_capture_on_commit_callbacks(execute=True):
            return services.sync_jobs_reap(**kwargs)

    return run
