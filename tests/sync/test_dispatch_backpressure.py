"""The dispatcher's backpressure: it starts only what the workers can take soon; what it holds back stays due and goes first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import DataSource, Integration, IntegrationStatus
from sync.metrics import SyncStateCollector
from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob, JobStatus, JobTrigger
from sync.services import backpressure
from sync.services.jobs import data_source_schedule_set
from sync.services.schedules import sync_schedules_dispatch

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _backpressure(settings):
    settings.BASTION_SYNC_DISPATCH_BACKPRESSURE = True
    settings.BASTION_SYNC_DISPATCH_AHEAD_SECONDS = 20.0
    settings.BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = 3
    settings.BASTION_SYNC_DISPATCH_MAX_IN_FLIGHT_PER_ORG = 100
    assert backpressure.is_enabled(), "these tests need REDIS_URL (the bound is shared through Redis)"


def make_sources(organization, count: int, *, every_seconds: int = 300, name: str = "Directory") -> list[DataSource]:
    sources = []
    for index in range(count):
        integration = Integration.objects.create(
            organization=organization, connector_key="sandbox_directory", display_name=f"{name} {index}", status=IntegrationStatus.CONNECTED
        )
        source = DataSource.objects.create(organization=organization, integration=integration, entity_type="people")
        data_source_schedule_set(data_source=source, every_seconds=every_seconds)
        sources.append(source)
    return sources


def overdue(source: DataSource, now, seconds: float) -> None:
    DataSource.objects.filter(pk=source.pk).update(next_sync_at=now - timedelta(seconds=seconds))


def started(sources: list[DataSource]) -> list[int]:
    """Scheduled jobs per source, in the order given."""
    return [DataSyncJob.objects.filter(data_source=s, trigger=JobTrigger.SCHEDULE).count() for s in sources]


def workers_finish_everything(now) -> int:
    """What the workers would do between ticks: every active sync ends (and is counted as a completion)."""
    finished = DataSyncJob.objects.filter(status__in=ACTIVE_JOB_STATUSES).update(status=JobStatus.SUCCEEDED, completed_at=now, phase="done")
    return finished


def test_held_back_sources_stay_due_and_go_first_next_tick(organization, settings):
    settings.BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = 2  # no completions measured yet: the floor is the bound
    sources = make_sources(organization, 5)
    now = timezone.now()
    for minutes, source in zip((5, 4, 3, 2, 1), sources, strict=True):
        overdue(source, now, minutes * 60)
    planned = dict(DataSource.objects.filter(pk__in=[s.pk for s in sources]).values_list("pk", "next_sync_at"))

    assert sync_schedules_dispatch(now=now) == 2
    assert started(sources) == [1, 1, 0, 0, 0], "the two most overdue"
    for source in sources[2:]:
        source.refresh_from_db()
        assert source.next_sync_at == planned[source.pk], "held back: still due, its deadline unchanged"
    assert backpressure.dispatch_state()["held_back"] == 3

    assert sync_schedules_dispatch(now=now) == 0, "the two started syncs fill the bound until they end"
    assert started(sources) == [1, 1, 0, 0, 0]

    newcomer = make_sources(organization, 1, name="Newcomer")[0]
    overdue(newcomer, now, 10)  # due later than every held-back source
    workers_finish_everything(now)
    assert sync_schedules_dispatch(now=now) == 2
    assert started([*sources, newcomer]) == [1, 1, 1, 1, 0, 0], "the held-back sources go first, most overdue first"
    workers_finish_everything(now)
    assert sync_schedules_dispatch(now=now) == 2
    assert started([*sources, newcomer]) == [1, 1, 1, 1, 1, 1]


def test_no_source_is_skipped_forever_under_sustained_overload(organization, settings):
    """12 sources due every tick, room for 4 a tick: each is started every third tick, none waits longer."""
    settings.BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = 6
    sources = make_sources(organization, 12, every_seconds=30)
    for long_run in make_sources(organization, 2, name="Large directory"):  # two long manual syncs hold 2 of the 6 all along
        DataSyncJob.objects.create(organization=organization, integration=long_run.integration, data_source=long_run, status=JobStatus.RUNNING)
    now = timezone.now()
    for index, source in enumerate(sources):
        overdue(source, now, 60 + index)
    starts: dict[str, list[int]] = {str(s.pk): [] for s in sources}
    for tick in range(9):
        at = now + timedelta(seconds=30 * tick)  # every source started at a tick is due again at the next one
        before = set(DataSyncJob.objects.values_list("pk", flat=True))
        assert sync_schedules_dispatch(now=at) == 4
        for source_id in DataSyncJob.objects.exclude(pk__in=before).values_list("data_source_id", flat=True):
            starts[str(source_id)].append(tick)
        DataSyncJob.objects.filter(trigger=JobTrigger.SCHEDULE, status__in=ACTIVE_JOB_STATUSES).update(status=JobStatus.SUCCEEDED, completed_at=at)
    for source_id, ticks in starts.items():
        assert ticks[0] <= 2, f"{source_id} first started at tick {ticks[0]}"
        assert len(ticks) == 3 and all(later - earlier == 3 for earlier, later in zip(ticks, ticks[1:], strict=False)), (source_id, ticks)


def test_the_bound_follows_the_measured_completion_rate_and_the_settings(organization, settings):
    from datetime import UTC, datetime

    settings.BASTION_SYNC_DISPATCH_AHEAD_SECONDS = 10.0
    sources = make_sources(organization, 15)
    current = int(timezone.now().timestamp() // backpressure.BUCKET_SECONDS)
    start_of_bucket = current * backpressure.BUCKET_SECONDS
    now = datetime.fromtimestamp(start_of_bucket + 5, tz=UTC)
    for index, source in enumerate(sources):
        overdue(source, now, 100 - index)
    for bucket in range(current - 3, current):  # 10 syncs ended in each of the last three full buckets
        for _ in range(10):
            backpressure.sync_completion_record(at=bucket * backpressure.BUCKET_SECONDS + 0.5)
    assert backpressure.completion_rate(at=start_of_bucket) == pytest.approx(1.0), "the last two full buckets: 20 in 20 s"
    for _ in range(5):  # and 5 in the first 5 seconds of the current bucket
        backpressure.sync_completion_record(at=start_of_bucket + 1)
    assert backpressure.completion_rate(at=now.timestamp()) == pytest.approx(1.0), "25 in the last 25 s"
    assert backpressure.in_flight_bound(rate=1.0) == 10

    assert sync_schedules_dispatch(now=now) == 10, "10 s of work at 1 sync/s"
    assert started(sources) == [1] * 10 + [0] * 5
    state = backpressure.dispatch_state()
    assert (state["due"], state["held_back"], state["in_flight"], state["bound"]) == (15, 5, 10, 10)

    settings.BASTION_SYNC_DISPATCH_AHEAD_SECONDS = 13.0
    assert sync_schedules_dispatch(now=now) == 3, "a longer look-ahead raises the bound by 3 s of work"
    settings.BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = 14
    assert sync_schedules_dispatch(now=now) == 1, "the floor wins over the rate"
    settings.BASTION_SYNC_DISPATCH_BACKPRESSURE = False
    assert sync_schedules_dispatch(now=now) == 1 and started(sources) == [1] * 15, "off: every due source is sent"


def test_after_a_quiet_spell_the_bound_catches_up_with_workers_that_finish_everything_sent(organization, settings):
    settings.BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = 4
    sources = make_sources(organization, 60)
    now = timezone.now()
    for index, source in enumerate(sources):
        overdue(source, now, 600 - index)
    sent = []
    for tick in range(3):
        sent.append(sync_schedules_dispatch(now=now + timedelta(seconds=10 * tick)))
        workers_finish_everything(now)  # every start ended before the next tick: the workers ran dry
    assert sent == [4, 16, 40], "the floor, then 4× while the workers run dry and sources wait, until nothing is left"


def test_in_steady_overload_the_bound_is_the_look_ahead_at_the_drained_rate(organization, settings):
    settings.BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = 10
    sources = make_sources(organization, 40)
    now = timezone.now()
    for index, source in enumerate(sources):
        overdue(source, now, 600 - index)
    assert sync_schedules_dispatch(now=now) == 10
    finished = DataSyncJob.objects.filter(status__in=ACTIVE_JOB_STATUSES).order_by("created_at")[:6]
    DataSyncJob.objects.filter(pk__in=[job.pk for job in finished]).update(status=JobStatus.SUCCEEDED, completed_at=now)
    # 6 of 10 ended in 10 s: 0.6/s, 20 s of work is 12 in flight; 4 still are, so 8 start (not 4×: the workers did not run dry)
    assert sync_schedules_dispatch(now=now + timedelta(seconds=10)) == 8
    assert backpressure.dispatch_state()["bound"] == 12


def test_paused_jobs_hold_no_room_but_sent_starts_do(organization, settings):
    """A job paused by a rate limit holds no worker; a start sent and not yet run does, until it is taken as lost."""
    sources = make_sources(organization, 4)
    now = timezone.now()
    for index, source in enumerate(sources):
        overdue(source, now, 100 - index)
    assert sync_schedules_dispatch(now=now) == 3
    DataSyncJob.objects.filter(status__in=ACTIVE_JOB_STATUSES).update(phase="paused", resume_at=now + timedelta(hours=1))
    assert backpressure.in_flight(now=now).total == 0

    other = make_sources(organization, 1, name="Other")[0]
    backpressure.starts_sent_record(sources=[(organization.pk, other.pk)], at=now.timestamp())
    flight = backpressure.in_flight(now=now)
    assert (flight.total, flight.by_organization[str(organization.pk)]) == (1, 1)
    assert sync_schedules_dispatch(now=now) == 1 and started(sources) == [1, 1, 1, 1], "room for 2, one source left due"
    later = now + timedelta(seconds=backpressure.SENT_HORIZON_SECONDS + 1)
    assert backpressure.in_flight(now=later).total == 1, "the lost start no longer counts; the one still in flight does"


def test_one_organization_with_many_due_sources_does_not_fill_the_bound(organization, other_organization, settings):
    from accounts.models import Organization

    settings.BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = 10
    settings.BASTION_SYNC_DISPATCH_MAX_IN_FLIGHT_PER_ORG = 4
    crowd = make_sources(organization, 30, name="Crowd")
    now = timezone.now()
    for index, source in enumerate(crowd):
        overdue(source, now, 3600 - index)  # all more overdue than anyone else
    singles = []
    for index, org in enumerate([other_organization, *(Organization.objects.create(name=f"Small {i}", slug=f"small-{i}") for i in range(3))]):
        single = make_sources(org, 1, name=f"Single {index}")[0]
        overdue(single, now, 60)
        singles.append(single)

    assert sync_schedules_dispatch(now=now) == 8
    assert sum(started(crowd)) == 4 and started(crowd)[:4] == [1, 1, 1, 1], "its most overdue, up to its cap"
    assert started(singles) == [1, 1, 1, 1], "every small organization in the same tick"
    assert sync_schedules_dispatch(now=now) == 0, "the large organization is at its cap; the others have nothing due"
    workers_finish_everything(now)
    assert sync_schedules_dispatch(now=now) == 4 and sum(started(crowd)) == 8


def test_metrics_show_what_the_dispatcher_held_back(organization, settings):
    settings.BASTION_SYNC_DISPATCH_MIN_IN_FLIGHT = 2
    sources = make_sources(organization, 5)
    now = timezone.now()
    for index, source in enumerate(sources):
        overdue(source, now, 100 - index)
    sync_schedules_dispatch(now=now)
    families = {family.name: family for family in SyncStateCollector(per_source=False, now=now).collect()}
    value = {name: families[name].samples[0].value for name in families if name.startswith("bastion_sync_dispatch_")}
    assert value["bastion_sync_dispatch_due"] == 5
    assert value["bastion_sync_dispatch_held_back"] == 3
    assert value["bastion_sync_dispatch_in_flight"] == 2
    assert value["bastion_sync_dispatch_bound"] == 2
    assert value["bastion_sync_dispatch_last_tick_age_seconds"] == 0
