"""Scheduled syncs go through one dispatcher: due sources found by next_sync_at, started once, planned forward."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from integrations.models import DataSource, IntegrationStatus
from sync.models import DataSyncJob, JobTrigger
from sync.scheduler import SyncDispatchingScheduler
from sync.services.jobs import data_source_schedule_set
from sync.services.schedules import next_run, sync_schedules_dispatch

pytestmark = pytest.mark.django_db


def scheduled_jobs(source: DataSource) -> int:
    return DataSyncJob.objects.filter(data_source=source, trigger=JobTrigger.SCHEDULE).count()


def test_a_new_schedule_is_planned_one_period_on_and_started_only_when_due(people_source):
    data_source_schedule_set(data_source=people_source, every_seconds=300)
    people_source.refresh_from_db()
    now = timezone.now()
    assert now + timedelta(seconds=290) < people_source.next_sync_at <= now + timedelta(seconds=301)

    assert sync_schedules_dispatch(now=now) == 0 and scheduled_jobs(people_source) == 0
    due_at = people_source.next_sync_at + timedelta(seconds=1)
    assert sync_schedules_dispatch(now=due_at) == 1
    assert scheduled_jobs(people_source) == 1
    people_source.refresh_from_db()
    assert people_source.next_sync_at == due_at + timedelta(seconds=300), "the next run is one period after this start"
    assert PeriodicTask.objects.get(pk=people_source.schedule_id).last_run_at == due_at
    assert sync_schedules_dispatch(now=due_at) == 0, "a second tick at the same moment starts nothing"


def test_paused_disabled_and_auth_failed_sources_are_not_started(people_source, directory):
    data_source_schedule_set(data_source=people_source, every_seconds=60)
    later = timezone.now() + timedelta(hours=1)
    PeriodicTask.objects.filter(pk=people_source.schedule_id).update(enabled=False)
    assert sync_schedules_dispatch(now=later) == 0
    PeriodicTask.objects.filter(pk=people_source.schedule_id).update(enabled=True)
    type(directory).objects.filter(pk=directory.pk).update(status=IntegrationStatus.AUTH_FAILED)
    assert sync_schedules_dispatch(now=later) == 0
    type(directory).objects.filter(pk=directory.pk).update(status=IntegrationStatus.CONNECTED)
    DataSource.objects.filter(pk=people_source.pk).update(is_enabled=False)
    assert sync_schedules_dispatch(now=later) == 0
    assert scheduled_jobs(people_source) == 0


def test_editing_the_schedule_row_anywhere_moves_the_next_sync(people_source):
    data_source_schedule_set(data_source=people_source, every_seconds=3600)
    task = PeriodicTask.objects.get(pk=people_source.schedule_id)
    task.last_run_at = timezone.now() - timedelta(minutes=10)
    task.interval = IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)[0]
    task.save()  # what the admin's change form does
    people_source.refresh_from_db()
    assert abs((people_source.next_sync_at - (task.last_run_at + timedelta(minutes=5))).total_seconds()) < 1
    task.enabled = False
    task.save()
    people_source.refresh_from_db()
    assert people_source.next_sync_at is None


def test_sources_scheduled_before_the_dispatcher_are_planned_from_their_last_run_without_a_stampede(people_source):
    data_source_schedule_set(data_source=people_source, every_seconds=600)
    now = timezone.now()
    PeriodicTask.objects.filter(pk=people_source.schedule_id).update(last_run_at=now - timedelta(seconds=60))
    DataSource.objects.filter(pk=people_source.pk).update(next_sync_at=None)
    assert sync_schedules_dispatch(now=now) == 0
    people_source.refresh_from_db()
    assert abs((people_source.next_sync_at - (now + timedelta(seconds=540))).total_seconds()) < 1


def test_a_full_batch_starts_the_most_overdue_first(make_directory, organization):
    sources = []
    for index in range(3):
        integration = make_directory(organization, name=f"Directory {index}")
        source = DataSource.objects.get(integration=integration, entity_type="people")
        data_source_schedule_set(data_source=source, every_seconds=300)
        sources.append(source)
    now = timezone.now()
    for minutes, source in zip((5, 30, 10), sources, strict=True):
        DataSource.objects.filter(integration=source.integration).update(next_sync_at=now + timedelta(days=1))
        DataSource.objects.filter(pk=source.pk).update(next_sync_at=now - timedelta(minutes=minutes))
    assert sync_schedules_dispatch(now=now, limit=2) == 2
    assert [scheduled_jobs(s) for s in sources] == [0, 1, 1]
    assert sync_schedules_dispatch(now=now, limit=2) == 1 and scheduled_jobs(sources[0]) == 1


def test_crontab_schedules_run_at_their_next_match():
    task = PeriodicTask(name="sync:x", task="sync.tasks.sync_data_source_scheduled")
    task.crontab = CrontabSchedule.objects.create(minute="30", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC")
    after = timezone.now().replace(hour=1, minute=0, second=0, microsecond=0)
    when = next_run(task, after)
    assert (when.hour, when.minute) == (3, 30) and when.date() == after.date()


def test_beat_keeps_every_entry_but_the_per_source_ones_and_runs_the_dispatcher_itself(people_source):
    from bastion_site.celery import app

    data_source_schedule_set(data_source=people_source, every_seconds=300)
    scheduler = SyncDispatchingScheduler(app=app, lazy=True)
    names = set(scheduler.enabled_models_qs().values_list("name", flat=True))
    assert "sync:reaper" in names
    assert f"sync:{people_source.pk}" not in names and PeriodicTask.objects.filter(name=f"sync:{people_source.pk}", enabled=True).exists()
    assert "sync:dispatch-due-schedules" not in names, "not sent as a task: it would wait behind the work it meters"

    DataSource.objects.filter(pk=people_source.pk).update(next_sync_at=timezone.now() - timedelta(seconds=1))
    PeriodicTask.objects.filter(name="sync:dispatch-due-schedules").update(enabled=False)
    assert scheduler.dispatch_run() == 10 and scheduled_jobs(people_source) == 0, "a disabled dispatcher row starts nothing"
    PeriodicTask.objects.filter(name="sync:dispatch-due-schedules").update(enabled=True)
    assert scheduler.dispatch_run() == 10, "the row's interval"
    assert scheduled_jobs(people_source) == 1


def test_one_failed_start_in_a_chunk_does_not_skip_the_others(people_source, caplog):
    from sync.tasks import sync_data_sources_scheduled

    sync_data_sources_scheduled(["not-a-data-source-id", str(people_source.pk)])  # the first start raises (not a UUID)
    assert scheduled_jobs(people_source) == 1
    assert any(r.message == "sync.scheduled_start_failed" for r in caplog.records)
