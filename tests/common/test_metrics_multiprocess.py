"""Multiprocess mode: a real Celery worker's pool processes write their samples to PROMETHEUS_MULTIPROC_DIR; /metrics adds them up."""
# ruff: noqa: F811 - fixtures imported from the sync suite are parameters here

from __future__ import annotations

import pytest

from integrations.models import DataSource, IntegrationCall
from sync import services
from sync.models import DataSyncJob, JobStatus
from tests.common.metrics_scrape import METRICS_TOKEN, scrape, total, value
from tests.conftest import wait_for
from tests.sync.conftest import _sync_settings, make_directory  # noqa: F401 - fixtures


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_processes_counters_reach_the_scrape(celery_worker_process, make_directory, organization, client, settings, tmp_path, monkeypatch):
    settings.BASTION_METRICS_TOKEN = METRICS_TOKEN
    shared = tmp_path / "prometheus"
    shared.mkdir()
    integration = make_directory(organization, page_size=10)
    source = DataSource.objects.get(integration=integration, entity_type="people")
    calls_before = IntegrationCall.objects.filter(integration=integration).count()
    celery_worker_process(concurrency=2, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(shared)})

    job = services.sync_start(data_source=source)
    wait_for(lambda: DataSyncJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED, timeout=90, message="the sync to succeed in the worker")
    job.refresh_from_db()
    assert list(shared.glob("*.db")), "the pool processes wrote their samples"

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    samples = scrape(client)
    worker_calls = IntegrationCall.objects.filter(integration=integration).count() - calls_before
    # Only the worker's processes wrote there: exactly this sync's calls and job, summed over the pool's processes.
    assert total(samples, "bastion_vendor_calls_total", connector="sandbox_directory") == worker_calls == job.pages
    assert value(samples, "bastion_sync_jobs_total", job_type="sync", connector="sandbox_directory", outcome="succeeded") == 1
    assert value(samples, "bastion_sync_job_duration_seconds_count", job_type="sync", connector="sandbox_directory", outcome="succeeded") == 1
    # The state read at scrape time is there too.
    labels = {"organization": organization.slug, "integration": str(integration.pk), "connector": "sandbox_directory", "entity": "people"}
    assert value(samples, "bastion_sync_source_age_seconds", **labels) < value(samples, "bastion_sync_source_target_seconds", **labels)
