"""/metrics: refused without the token or a staff session; after real vendor calls, a sync, webhooks and an activation it shows them."""
# ruff: noqa: F811 - fixtures imported from the sync and playbooks suites are parameters here

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from integrations.models import DataSource, IntegrationCall
from integrations.services import build_connector
from playbooks.models import RunStatus, StepStatus
from playbooks.services import playbook_activate
from sync.metrics import freshness_target_seconds
from sync.models import DataSyncJob, JobStatus
from tests.common.metrics_scrape import METRICS_TOKEN, delta, scrape, total, value
from tests.playbooks.conftest import actions_integration, crisis_playbook, crisis_template, make_scenario, on_commit  # noqa: F401 - fixtures
from tests.sync.conftest import _sync_settings, directory, make_directory, people_source, run_sync, set_faults  # noqa: F401 - fixtures
from tests.sync.test_webhooks import person_event, signed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.BASTION_METRICS_TOKEN = METRICS_TOKEN


def test_metrics_are_never_public(client, make_user, settings):
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert b"bastion_" not in anonymous.content and anonymous.json()["error"]["code"] == "authentication_required"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {METRICS_TOKEN}").status_code == 401

    member = Client()
    member.force_login(make_user(username="member"))
    refused = member.get("/metrics")
    assert refused.status_code == 403 and b"bastion_" not in refused.content

    staff = Client()
    staff.force_login(make_user(username="operator", is_staff=True))
    assert staff.get("/metrics").status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").status_code == 405

    # With no token configured, no bearer token opens it (an empty setting is not a password).
    settings.BASTION_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer x").status_code == 401


def test_a_real_sync_shows_vendor_calls_job_outcome_and_freshness(client, directory, people_source, run_sync):
    before = scrape(client)
    since = timezone.now()
    job = run_sync(people_source)
    assert job.status == JobStatus.SUCCEEDED and job.pages >= 2
    after = scrape(client)

    calls = IntegrationCall.objects.filter(integration=directory, created_at__gte=since)
    assert calls.count() == job.pages
    assert delta(before, after, "bastion_vendor_calls_total", connector="sandbox_directory", method="GET", status_class="2xx") == job.pages
    assert delta(before, after, "bastion_vendor_call_duration_seconds_count", connector="sandbox_directory", status_class="2xx") == job.pages
    assert delta(before, after, "bastion_sync_jobs_total", job_type="sync", connector="sandbox_directory", outcome="succeeded") == 1
    assert delta(before, after, "bastion_sync_job_duration_seconds_count", job_type="sync", connector="sandbox_directory", outcome="succeeded") == 1
    assert delta(before, after, "bastion_sync_records_total", connector="sandbox_directory", change="created") == job.created_count > 0

    source = DataSource.objects.select_related("schedule__interval").get(pk=people_source.pk)
    labels = {"organization": "acme", "integration": str(directory.pk), "connector": "sandbox_directory", "entity": "people"}
    assert value(after, "bastion_sync_source_target_seconds", **labels) == freshness_target_seconds(source.schedule.interval)
    assert 0 <= value(after, "bastion_sync_source_age_seconds", **labels) < value(after, "bastion_sync_source_target_seconds", **labels)
    assert value(after, "bastion_sync_sources_over_target", connector="sandbox_directory") == 0
    assert value(after, "bastion_sync_sources", connector="sandbox_directory") == DataSource.objects.filter(integration=directory, is_enabled=True).count()
    assert value(after, "bastion_integrations", connector="sandbox_directory", status="connected") == 1
    assert value(after, "bastion_sync_jobs_stalled") == 0
    assert value(after, "bastion_broker_up") == 1
    assert ("bastion_queue_depth", frozenset({("queue", "celery")})) in after


def test_a_source_never_synced_is_over_its_target(client, directory, people_source):
    DataSource.objects.filter(pk=people_source.pk).update(created_at=timezone.now() - timezone.timedelta(days=3))
    samples = scrape(client)
    assert value(samples, "bastion_sync_sources_over_target", connector="sandbox_directory") >= 1


def test_rate_limit_and_retry_are_counted_from_a_real_vendor_answer(client, directory, sandbox):
    connector = build_connector(directory)
    connector.client.max_retries = 2
    connector.client.sleep = lambda seconds: None  # Retry-After is honoured; the test does not wait it out
    set_faults(sandbox, rate_limit_next=1)
    before = scrape(client)
    page = connector.read("people", cursor=None, page=None)
    after = scrape(client)
    assert page.records
    assert delta(before, after, "bastion_vendor_rate_limited_total", connector="sandbox_directory") == 1
    assert delta(before, after, "bastion_vendor_retries_total", connector="sandbox_directory", error="ApiRateLimited") == 1
    assert delta(before, after, "bastion_vendor_calls_total", connector="sandbox_directory", status_class="4xx") == 1
    assert delta(before, after, "bastion_vendor_calls_total", connector="sandbox_directory", status_class="2xx") == 1


def test_a_failed_sync_is_counted_as_failed(client, people_source, run_sync, sandbox, settings):
    settings.BASTION_SYNC_MAX_ATTEMPTS = 1
    set_faults(sandbox, error_rate=1.0, error_status=500)
    before = scrape(client)
    job = run_sync(people_source)
    after = scrape(client)
    assert job.status == JobStatus.FAILED
    assert delta(before, after, "bastion_sync_jobs_total", job_type="sync", connector="sandbox_directory", outcome="failed") == 1
    assert delta(before, after, "bastion_sync_jobs_total", outcome="succeeded") == 0
    assert delta(before, after, "bastion_vendor_calls_total", connector="sandbox_directory", status_class="5xx") >= 1
    assert DataSyncJob.objects.filter(status=JobStatus.SUCCEEDED).count() == 0


def test_webhook_intake_and_processing_lag(client, directory, django_capture_on_commit_callbacks, settings):
    settings.BASTION_EVENT_HANDLERS = []
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        assert signed(client, directory, person_event(delivery_id="m-1")).status_code == 202
        assert signed(client, directory, person_event(delivery_id="m-1")).status_code == 200
    assert signed(client, directory, person_event(delivery_id="m-2"), secret="wrong-secret").status_code == 401
    after = scrape(client)
    assert delta(before, after, "bastion_webhook_intake_total", outcome="accepted", status="202") == 1
    assert delta(before, after, "bastion_webhook_intake_total", outcome="duplicate", status="200") == 1
    assert delta(before, after, "bastion_webhook_intake_total", outcome="rejected", status="401") == 1
    assert delta(before, after, "bastion_webhook_processed_total", connector="sandbox_directory", outcome="processed") == 1
    assert delta(before, after, "bastion_webhook_processing_lag_seconds_count", connector="sandbox_directory") == 1
    assert value(after, "bastion_webhook_backlog") == 0


def test_an_activation_shows_step_outcomes_and_run_duration(client, crisis_playbook, owner, on_commit):  # noqa: F811 - fixtures
    before = scrape(client)
    run, _ = on_commit(playbook_activate, playbook=crisis_playbook, actor=owner)
    run.refresh_from_db()
    after = scrape(client)
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    done = run.step_runs.filter(status=StepStatus.SUCCEEDED).exclude(action="").count()
    assert delta(before, after, "bastion_playbook_steps_total", outcome="succeeded") == done > 0
    assert delta(before, after, "bastion_playbook_step_duration_seconds_count", outcome="succeeded") == done
    assert delta(before, after, "bastion_playbook_steps_total", outcome="failed") == 0
    for step_run in run.step_runs.filter(status=StepStatus.SUCCEEDED):
        assert total(after, "bastion_playbook_steps_total", connector=step_run.connector_key, action=step_run.action, outcome="succeeded") >= 1
    assert delta(before, after, "bastion_playbook_runs_total", outcome="succeeded") == 1
    assert delta(before, after, "bastion_playbook_run_duration_seconds_count", outcome="succeeded") == 1
    # Every vendor call is counted: at least one per task the engine sent (a bulk step's chunk of items is one task).
    succeeded = list(run.step_runs.filter(status=StepStatus.SUCCEEDED).exclude(action=""))
    tasks = len({(s.step_key, s.item_index // s.bulk_chunk_size if s.is_bulk else s.item_index) for s in succeeded})
    assert delta(before, after, "bastion_vendor_calls_total", connector="sandbox_actions", status_class="2xx") >= tasks > 0


def test_per_source_series_off_gives_the_same_counts_from_one_query(client, directory, settings):
    sources = list(DataSource.objects.filter(integration=directory).order_by("entity_type"))
    assert len(sources) >= 2
    old = timezone.now() - timezone.timedelta(days=3)
    DataSource.objects.filter(pk=sources[0].pk).update(last_synced_at=old)  # stale: older than two ticks
    DataSource.objects.filter(pk=sources[1].pk).update(last_synced_at=timezone.now())  # fresh
    DataSource.objects.filter(pk__in=[s.pk for s in sources[2:]]).update(is_enabled=False)
    per_source = scrape(client)
    settings.BASTION_METRICS_PER_SOURCE = False
    counts_only = scrape(client)
    for name in ("bastion_sync_sources_over_target", "bastion_sync_sources"):
        assert value(counts_only, name, connector="sandbox_directory") == value(per_source, name, connector="sandbox_directory")
    assert value(counts_only, "bastion_sync_sources_over_target", connector="sandbox_directory") == 1
    assert value(counts_only, "bastion_sync_sources", connector="sandbox_directory") == 2
    assert total(per_source, "bastion_sync_source_age_seconds", connector="sandbox_directory") > 0
    assert not any(name == "bastion_sync_source_age_seconds" for name, _ in counts_only)
