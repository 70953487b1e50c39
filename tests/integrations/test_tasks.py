"""Periodic integration tasks: token keep-alive for idle connections and the 24-hour counters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts.models import Role
from integrations import tasks
from integrations.models import CredentialType, Integration, IntegrationCredential
from tests.integrations.oauth_helpers import oauth_connect, token_calls


@pytest.mark.django_db
def test_schedules_are_installed():
    # Transactional tests elsewhere flush the tables, so (re)apply the data migration's installer first.
    import importlib

    from django.apps import apps

    importlib.import_module("integrations.migrations.0003_periodic_tasks").install(apps, None)
    importlib.import_module("integrations.migrations.0004_webhook_refresh_schedule").install(apps, None)
    names = set(PeriodicTask.objects.filter(name__startswith="integrations:").values_list("task", flat=True))
    assert names == {"integrations.tasks.oauth_keepalive", "integrations.tasks.integration_health_refresh", "integrations.tasks.integration_webhooks_refresh"}


@pytest.mark.django_db(transaction=True)
def test_keepalive_refreshes_idle_connections_about_to_expire(users_by_role, sandbox):
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    oauth_connect(client, sandbox)
    integration = Integration.objects.get()
    assert tasks.oauth_keepalive() == 0  # a fresh demo token lives 15 minutes: beyond the keep-alive window
    credential = IntegrationCredential.objects.get(integration=integration, credential_type=CredentialType.OAUTH)
    before = credential.data["access_token"]
    when = timezone.now() + timedelta(minutes=4)
    credential.data = {**credential.data, "expires_at": when.isoformat()}
    credential.expires_at = when
    credential.save()
    calls = token_calls(sandbox)
    assert tasks.oauth_keepalive() == 1
    assert token_calls(sandbox) == calls + 1
    assert IntegrationCredential.objects.get(pk=credential.pk).data["access_token"] != before
