"""The vendor call log commits without waiting for the disk, and only ever on a transaction of its own."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from integrations.http import CallRecord
from integrations.models import Integration, IntegrationCall
from integrations.services.health import record_call

CALL = CallRecord(method="GET", path="v1/people", status=200, latency_ms=12.5, ok=True, error="", attempt=1, vendor_code="")


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_call_logged_on_its_own_commits_asynchronously(organization, monkeypatch):
    integration = Integration.objects.create(organization=organization, connector_key="sandbox_directory", display_name="Directory")
    seen = []
    create = IntegrationCall.objects.create

    def create_and_look(**fields):
        seen.append(synchronous_commit())
        return create(**fields)

    monkeypatch.setattr(IntegrationCall.objects, "create", create_and_look)

    record_call(integration.pk, status=integration.status)(CALL)

    assert seen == ["off"]
    assert synchronous_commit() == "on"  # SET LOCAL: gone with the call log's transaction
    assert IntegrationCall.objects.filter(integration=integration, path="v1/people", is_ok=True).count() == 1
    assert Integration.objects.get(pk=integration.pk).calls_24h == 1


@pytest.mark.django_db(transaction=True)
def test_a_call_logged_inside_a_callers_transaction_leaves_its_commit_synchronous(organization):
    integration = Integration.objects.create(organization=organization, connector_key="sandbox_directory", display_name="Directory")

    with transaction.atomic():
        record_call(integration.pk, status=integration.status)(CALL)
        assert synchronous_commit() == "on"

    assert IntegrationCall.objects.filter(integration=integration).count() == 1
