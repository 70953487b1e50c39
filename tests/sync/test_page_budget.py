"""A connector whose paging lives in its worker process (LDAP's paged-search cookie) has a run's pages read by one task;
any other connector's sync re-enqueues after each page (so tenants interleave page by page)."""
# ruff: noqa: F811 - the slapd fixture is imported from the LDAP suite

from __future__ import annotations

import pytest
import redis
from django.conf import settings as django_settings

from integrations.models import CredentialType, DataSource
from integrations.services import integration_connect
from sync import services
from sync.models import DataSyncJob, JobStatus
from sync.tasks import sync_job_step
from tests.integrations.connectors.test_ldap import slapd  # noqa: F401 - fixture
from tests.ldap_server import PEOPLE_BASE, SERVICE_DN, SERVICE_PASSWORD

# Not eager: what a task enqueues goes to the real broker, where this test counts it (no worker consumes it).
pytestmark = [pytest.mark.worker, pytest.mark.django_db]


def queued() -> int:
    return int(redis.Redis.from_url(django_settings.CELERY_BROKER_URL).llen("celery"))


def purge_job_messages(job_id) -> None:
    """Drop this test's enqueued continuation, so no later worker test picks it up."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    for raw in client.lrange("celery", 0, -1):
        if str(job_id).encode() in raw:
            client.lrem("celery", 0, raw)


def test_ldap_run_is_read_in_one_task(slapd, organization, settings):
    settings.BASTION_SYNC_PROCESS_BOUND_PAGE_BUDGET_SECONDS = 600  # far more than the run needs: the test does not race a clock
    integration = integration_connect(
        organization=organization,
        connector_key="ldap",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
        config={"server_url": slapd.ldap_url, "base_dn": PEOPLE_BASE, "flavor": "openldap", "ca_cert": slapd.cert_path.read_text(), "page_size": 5},
    )
    services.data_sources_ensure(integration=integration)
    source = DataSource.objects.get(integration=integration, entity_type="users")
    job = services.sync_start(data_source=source)  # its first task is not sent: the test runs it
    before = queued()
    sync_job_step.run(str(job.pk))
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.pages >= 4, (job.status, job.pages, job.last_error)
    assert queued() == before  # no continuation was enqueued: every page was read by this one task


def test_other_connectors_re_enqueue_after_each_page(make_directory, organization):
    integration = make_directory(organization, page_size=5)
    source = DataSource.objects.get(integration=integration, entity_type="people")
    job = services.sync_start(data_source=source)
    before = queued()
    try:
        sync_job_step.run(str(job.pk))
        job = DataSyncJob.objects.get(pk=job.pk)
        assert job.status == JobStatus.RUNNING and job.pages == 1
        assert queued() == before + 1  # the next page waits in the broker behind other tenants' work
    finally:
        purge_job_messages(job.pk)
