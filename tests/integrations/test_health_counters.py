"""Health counters under parallel steps: every failure counts (atomic UPDATEs, never read-modify-write)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from integrations.errors import ApiHostError
from integrations.models import Integration, IntegrationStatus
from integrations.services import DEGRADED_AFTER_FAILURES, integration_create, integration_record_failure


@pytest.mark.django_db(transaction=True)
def test_parallel_failures_all_count_and_degrade_once(organization):
    integration = integration_create(organization=organization, connector_key="jira", config={})
    Integration.objects.filter(pk=integration.pk).update(status=IntegrationStatus.CONNECTED)
    workers, per_worker = 8, 5
    start = threading.Barrier(workers)

    def fail_repeatedly() -> None:
        try:
            start.wait()
            for _ in range(per_worker):
                # Each worker holds its own stale copy, as parallel Celery steps do.
                integration_record_failure(integration=Integration.objects.get(pk=integration.pk), error=ApiHostError("vendor 503"))
        finally:
            connection.close()

    threads = [threading.Thread(target=fail_repeatedly) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    integration.refresh_from_db()
    assert integration.error_count == workers * per_worker
    assert workers * per_worker >= DEGRADED_AFTER_FAILURES and integration.status == IntegrationStatus.DEGRADED
    assert integration.last_error == "vendor 503"


@pytest.mark.django_db
def test_a_successful_connection_test_clears_the_earlier_error(organization, sandbox):
    from integrations.models import CredentialType
    from integrations.services import integration_connect, integration_test
    from sandbox.vendors.sandbox_actions import DEMO_TOKEN

    integration = integration_connect(
        organization=organization,
        connector_key="sandbox_actions",
        credentials={"api_key": DEMO_TOKEN},
        credential_type=CredentialType.API_KEY,
        base_url=f"{sandbox}/sandbox_actions",
    )
    integration_record_failure(integration=integration, error=ApiHostError("vendor 503"))
    integration.refresh_from_db()
    assert integration.last_error == "vendor 503" and integration.last_error_at is not None

    assert integration_test(integration=integration).ok
    integration.refresh_from_db()
    assert integration.last_error == "" and integration.status == IntegrationStatus.CONNECTED
    assert integration.last_error_at is not None  # when it last failed stays known
