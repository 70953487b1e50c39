"""Benchmark: does Bastion scale out through PostgreSQL, Redis and more Celery worker processes?

Three parts, in a scratch database (`<db>_bench_scale`), against the sandbox as the simulated vendor (latency and 429s):

1. Scheduled syncs with real processes: a real celery beat (django-celery-beat's DatabaseScheduler) fires every data source
   on its interval; real Celery workers with 1, then 3, processes run the syncs (each a real Sandbox Directory sync over
   HTTP: records store, people merge). Measured: syncs completed per minute, the longest any organization's data went
   without a successful sync (in schedule ticks; goal ≤ 2), and the broker's queue depth every 2 s.
2. Beat at full size: 50,000 data sources in 500 organizations on a 5-minute schedule (their periodic tasks staggered as in
   a steady state), scheduled by the DatabaseScheduler in this process for 20 s: schedule load time, tick time, tasks sent
   per second against the 167/s the schedule asks for. The messages go to a queue no worker reads (deleted afterwards).
   The /metrics scrape over the same 50,000 sources is timed too.
3. 100 playbook activations at once (a regional outage hitting many customers), 3 worker processes: p50/p95/max time from
   the activation to the run's last step.

Part 1 cannot run at full size on one small machine (50,000 sources / 5 min is 167 syncs/s): it runs a scaled size with the
same shape and the report says so. Sizes: BENCH_SCALE_SOURCES, BENCH_SCALE_ORGS, BENCH_SCALE_INTERVAL, BENCH_SCALE_TICKS,
BENCH_SCALE_BEAT_SOURCES, BENCH_SCALE_BEAT_ORGS, BENCH_SCALE_ACTIVATIONS. Writes benchmarks/results/scale.md.
"""

from __future__ import annotations

import base64
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")
os.environ["BASTION_ENCRYPTION_KEYS"] = "bench:" + base64.b64encode(secrets.token_bytes(32)).decode()

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.scale_config import (  # noqa: E402
    ACTIVATION_LATENCY_MS,
    ACTIVATIONS,
    BEAT_INTERVAL,
    BEAT_ORGS,
    BEAT_SECONDS,
    BEAT_SOURCES,
    DISCARD_QUEUE,
    DISPATCH_EVERY,
    DISPATCH_SECONDS,
    INTERVAL,
    LATENCY_MS,
    ORGS,
    PARTS,
    PEOPLE,
    RATE_LIMITED,
    SOURCES,
    STAKEHOLDERS,
    TICKS,
)
from benchmarks.scale_report import write_report  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sandbox() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--smtp-port", "0"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/_control/health", timeout=1).ok:
                return process, url
        except requests.RequestException:  # not listening yet
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("The sandbox did not start.")


def process_env(database_name: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database_name}",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def start_workers(database_name: str, processes: int, *, pool: str = "prefork", threads: int = 16) -> list[subprocess.Popen]:
    """`processes` worker processes: one prefork worker with -c N, or N thread-pool workers of `threads` each (activations)."""
    if pool == "prefork":
        commands = [["-P", "prefork", "-c", str(processes), "-n", f"scale-{uuid.uuid4().hex[:6]}@%h"]]
    else:
        commands = [["-P", "threads", "-c", str(threads), "-n", f"scale{i}-{uuid.uuid4().hex[:6]}@%h"] for i in range(processes)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bastion_site", "worker", "-l", "error", "--without-gossip", "--without-mingle", *args],
            cwd=ROOT,
            env=process_env(database_name),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for args in commands
    ]
    from bastion_site.celery import app

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=0.5)) >= len(workers):
            return workers
    stop(workers)
    raise RuntimeError("The Celery workers did not answer a ping within 90 s.")


def start_beat(database_name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bastion_site",
            "beat",
            "-l",
            "error",
            "-S",
            "sync.scheduler:SyncDispatchingScheduler",
            "--max-interval",
            "1",
            "-s",
            "/dev/null",
        ],
        cwd=ROOT,
        env=process_env(database_name),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def queue_depth(client: redis.Redis) -> int:
    with client.pipeline(transaction=False) as pipe:
        for name in ["celery", *(f"celery\x06\x16{level}" for level in (3, 6, 9))]:
            pipe.llen(name)
        return sum(pipe.execute())


def purge_broker(client: redis.Redis) -> None:
    """Drop every queued message, and with them the dispatcher's record of starts sent and completions counted."""
    from sync.services import backpressure

    client.delete("celery", *(f"celery\x06\x16{level}" for level in (3, 6, 9)), "unacked", "unacked_index", DISCARD_QUEUE)
    client.delete(backpressure.SENT_KEY, backpressure.STATE_KEY, *client.scan_iter(f"{backpressure.COMPLETED_PREFIX}*"))


# ---------------------------------------------------------------------------------------------------- part 1: scheduled syncs


def simulation_setup(sandbox: str) -> list:
    from accounts.models import Organization
    from integrations.models import CredentialType, DataSource, Integration, IntegrationStatus
    from integrations.services import credential_store, integration_create
    from sync import services

    requests.post(f"{sandbox}/sandbox_directory/_control/load", json={"count": PEOPLE, "prefix": "s"}, timeout=60).raise_for_status()
    organizations = [Organization.objects.create(name=f"Scale {i:03d}", slug=f"scale-{i:03d}") for i in range(ORGS)]
    integrations_needed = max(1, SOURCES // 2)
    for index in range(integrations_needed):
        integration = integration_create(
            organization=organizations[index % ORGS],
            connector_key="sandbox_directory",
            base_url=f"{sandbox}/sandbox_directory",
            config={"page_size": 10},
            display_name=f"Directory {index:04d}",
        )
        credential_store(integration=integration, credential_type=CredentialType.API_KEY, data={"token": "sbx-directory-demo-token"})
        Integration.objects.filter(pk=integration.pk).update(status=IntegrationStatus.CONNECTED)
        for source in services.data_sources_ensure(integration=integration):
            services.data_source_schedule_set(data_source=source, every_seconds=INTERVAL)
    return list(DataSource.objects.filter(integration__connector_key="sandbox_directory").values_list("pk", flat=True))


def stagger(source_ids: list) -> datetime:
    """Steady state: each source last ran (and last succeeded) at a random moment within the past tick."""
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from integrations.models import DataSource

    now = timezone.now()
    for source_id in source_ids:
        at = now - timedelta(seconds=random.uniform(0, INTERVAL))
        DataSource.objects.filter(pk=source_id).update(last_synced_at=at, is_stale=False, next_sync_at=at + timedelta(seconds=INTERVAL))
        PeriodicTask.objects.filter(name=f"sync:{source_id}").update(last_run_at=at, total_run_count=0)
    PeriodicTasks.update_changed()
    return now


def run_configuration(database_name: str, source_ids: list, processes: int) -> dict:
    from integrations.models import DataSource
    from sync.models import DataSyncJob, JobStatus, JobTrigger
    from sync.services import backpressure

    client = broker()
    purge_broker(client)
    DataSyncJob.objects.all().delete()
    started_at = stagger(source_ids)
    workers = start_workers(database_name, processes)
    beat = start_beat(database_name)
    window = INTERVAL * TICKS
    began = time.monotonic()
    depth: list[tuple[float, int]] = []
    held: list[tuple[float, int, int]] = []  # (elapsed, due sources held back, bound) at the dispatcher's last tick
    worst: dict[str, float] = {}
    try:
        while (elapsed := time.monotonic() - began) < window:
            now = timezone.now()
            depth.append((elapsed, queue_depth(client)))
            state = backpressure.dispatch_state()
            held.append((elapsed, int(state.get("held_back", 0)), int(state.get("bound", 0))))
            for org, synced in DataSource.objects.values_list("organization__slug", "last_synced_at"):
                worst[org] = max(worst.get(org, 0.0), (now - synced).total_seconds())
            time.sleep(2.0)
    finally:
        stop([beat, *workers])
    ended_at = started_at + timedelta(seconds=window)
    done = DataSyncJob.objects.filter(trigger=JobTrigger.SCHEDULE, completed_at__gte=started_at, completed_at__lte=ended_at)
    succeeded = done.filter(status=JobStatus.SUCCEEDED).count()
    failed = done.filter(status=JobStatus.FAILED).count()
    purge_broker(client)
    longest = max(worst.values())
    return {
        "processes": processes,
        "succeeded": succeeded,
        "failed": failed,
        "per_minute": succeeded / (window / 60),
        "longest_ticks": longest / INTERVAL,
        "longest_seconds": longest,
        "depth": depth,
        "max_depth": max(d for _, d in depth),
        "held": held,
        "max_held": max((h for _, h, _ in held), default=0),
        "window": window,
    }


# ------------------------------------------------------------------------------------------------ part 2: beat at full size


def beat_setup() -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from accounts.models import Organization
    from integrations.models import DataSource, Integration, IntegrationStatus

    organizations = Organization.objects.bulk_create([Organization(name=f"Beat {i:03d}", slug=f"beat-{i:03d}") for i in range(BEAT_ORGS)])
    per_org = BEAT_SOURCES // BEAT_ORGS
    interval, _ = IntervalSchedule.objects.get_or_create(every=BEAT_INTERVAL, period=IntervalSchedule.SECONDS)
    now = timezone.now()
    for organization in organizations:
        integrations = Integration.objects.bulk_create(
            [
                Integration(organization=organization, connector_key="sandbox_directory", display_name=f"Source {i}", status=IntegrationStatus.CONNECTED)
                for i in range(per_org)
            ]
        )
        sources = DataSource.objects.bulk_create(
            [
                DataSource(organization=organization, integration=integration, entity_type="people", last_synced_at=now - timedelta(seconds=ago))
                for integration, ago in ((integration, random.uniform(0, BEAT_INTERVAL)) for integration in integrations)
            ]
        )
        tasks = PeriodicTask.objects.bulk_create(
            [
                PeriodicTask(
                    name=f"sync:{source.pk}",
                    task="sync.tasks.sync_data_source_scheduled",
                    args=json.dumps([str(source.pk)]),
                    interval=interval,
                    queue=DISCARD_QUEUE,
                    last_run_at=source.last_synced_at,
                )
                for source in sources
            ]
        )
        for source, task in zip(sources, tasks, strict=True):
            source.schedule_id = task.pk
            source.next_sync_at = source.last_synced_at + timedelta(seconds=BEAT_INTERVAL)
        DataSource.objects.bulk_update(sources, ["schedule", "next_sync_at"])


def started_in(client: redis.Redis) -> int:
    """Sources named by the dispatcher's messages waiting in the discard queue (each message starts a chunk); emptied after."""
    total = 0
    for raw in client.lrange(DISCARD_QUEUE, 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        total += len(args[0])
    client.delete(DISCARD_QUEUE)
    return total


def dispatcher_measure() -> dict:
    """Bastion's dispatcher over the same sources, on its own 10 s tick: starts sent, tick time, what is left due.

    No worker runs these starts, so backpressure is off here: this measures how fast the dispatcher can send (part 1
    measures what it holds back when real workers fall short).
    """
    from django.db import connection

    from integrations.models import DataSource
    from sync.services.schedules import sync_schedules_dispatch

    settings.BASTION_SYNC_DISPATCH_BACKPRESSURE = False
    client = broker()
    client.delete(DISCARD_QUEUE)
    ticks: list[tuple[float, int, int]] = []
    with connection.cursor() as cursor:  # steady state from now: each source next due at a random moment of the coming interval
        cursor.execute(
            f"UPDATE {DataSource._meta.db_table} SET next_sync_at = now() + random() * make_interval(secs => %s) WHERE schedule_id IS NOT NULL",
            [BEAT_INTERVAL],
        )
    began = time.monotonic()
    try:
        while time.monotonic() - began < DISPATCH_SECONDS - 1:
            time.sleep(DISPATCH_EVERY)
            tick_started = time.perf_counter()
            started = sync_schedules_dispatch(queue=DISCARD_QUEUE)
            elapsed = time.perf_counter() - tick_started
            ticks.append((elapsed, started, DataSource.objects.filter(next_sync_at__lte=timezone.now(), schedule__enabled=True).count()))
        window = time.monotonic() - began
        sent = started_in(client)
        # Catch-up: every source due at once (an outage of the dispatcher itself): one full batch.
        DataSource.objects.filter(schedule__enabled=True).update(next_sync_at=timezone.now() - timedelta(seconds=1))
        catch_started = time.perf_counter()
        sync_schedules_dispatch(queue=DISCARD_QUEUE)
        catch_up = (started_in(client), time.perf_counter() - catch_started)
    finally:
        client.delete(DISCARD_QUEUE)
    return {"ticks": ticks, "sent": sent, "elapsed": window, "catch_up": catch_up}


def beat_measure() -> dict:
    from django_celery_beat.models import PeriodicTasks
    from django_celery_beat.schedulers import DatabaseScheduler

    from bastion_site.celery import app
    from sync.metrics import SyncStateCollector

    PeriodicTasks.update_changed()
    client = broker()
    client.delete(DISCARD_QUEUE)
    started = time.perf_counter()
    scheduler = DatabaseScheduler(app=app, lazy=False)
    loaded = time.perf_counter() - started
    ticks: list[float] = []
    began = time.monotonic()
    while time.monotonic() - began < BEAT_SECONDS:
        tick_started = time.perf_counter()
        wait = scheduler.tick()
        ticks.append(time.perf_counter() - tick_started)
        time.sleep(max(0.0, min(wait, BEAT_SECONDS - (time.monotonic() - began))))
    elapsed = time.monotonic() - began
    scheduler.sync()
    sent = int(client.llen(DISCARD_QUEUE))
    client.delete(DISCARD_QUEUE)
    scrapes = {}
    for per_source in (True, False):
        started = time.perf_counter()
        families = list(SyncStateCollector(per_source=per_source).collect())
        scrapes[per_source] = (time.perf_counter() - started, sum(len(f.samples) for f in families))
    return {"loaded": loaded, "ticks": ticks, "sent": sent, "elapsed": elapsed, "scrapes": scrapes}


# ----------------------------------------------------------------------------------------- part 3: activations at once


def activation_setup(sandbox: str) -> list:
    from accounts.models import Organization
    from integrations.models import CredentialType
    from integrations.services import integration_connect
    from playbooks.models import PlaybookTemplate
    from playbooks.services import playbook_create
    from sandbox.vendors._people import people
    from sandbox.vendors.sandbox_actions import DEMO_TOKEN
    from scenarios.models import Scenario, ScenarioDataModel

    requests.put(f"{sandbox}/_control/faults/sandbox_actions", json={"latency_ms": ACTIVATION_LATENCY_MS}, timeout=5).raise_for_status()
    template = PlaybookTemplate.objects.get(scenario_type="crisis_management", name="Crisis response")
    data_model = ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first()
    team = [{"person_id": f"p{p['index']}", "name": p["name"], "email": p["email"], "role": p["title"], "source": "directory"} for p in people()[:STAKEHOLDERS]]
    playbooks = []
    for index in range(ACTIVATIONS):
        organization = Organization.objects.create(name=f"Outage {index:03d}", slug=f"outage-{index:03d}")
        target = integration_connect(
            organization=organization,
            connector_key="sandbox_actions",
            credentials={"api_key": DEMO_TOKEN},
            credential_type=CredentialType.API_KEY,
            base_url=f"{sandbox}/sandbox_actions",
            test=False,
        )
        from integrations.models import Integration, IntegrationStatus

        Integration.objects.filter(pk=target.pk).update(status=IntegrationStatus.CONNECTED)
        scenario = Scenario.objects.create(
            organization=organization,
            data_model=data_model,
            scenario_type="crisis_management",
            title=f"Regional outage {index}",
            values={
                "title": f"Regional outage {index}",
                "crisis_type": "outage",
                "severity": "sev1",
                "incident_commander": {"person_id": team[0]["person_id"], "name": team[0]["name"], "email": team[0]["email"]},
                "stakeholders": team,
                "communication_channels": [],
                "war_room_meeting_at": "2099-11-25T15:00:00+00:00",
                "jira_project_key": "OPS",
                "summary": "eu-west is down.",
            },
        )
        bindings = {key: str(target.pk) for key in ("slack", "jira", "google_calendar", "email")}
        playbooks.append(playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings=bindings))
    return playbooks


def activations_measure(database_name: str, playbooks: list) -> dict:
    from playbooks.models import PlaybookRun, RunStatus
    from playbooks.services import playbook_activate

    workers = start_workers(database_name, 3, pool="threads", threads=16)
    try:
        started = {}
        began = time.perf_counter()
        for playbook in playbooks:
            run, _ = playbook_activate(playbook=playbook)
            started[run.pk] = datetime.now(UTC)
        dispatched = time.perf_counter() - began
        deadline = time.monotonic() + 240
        while PlaybookRun.objects.filter(pk__in=list(started), status__in=[RunStatus.PENDING, RunStatus.RUNNING]).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("The activations did not finish within 4 minutes.")
            time.sleep(0.1)
        wall = time.perf_counter() - began
    finally:
        stop(workers)
    runs = list(PlaybookRun.objects.filter(pk__in=list(started)))
    times = sorted((run.finished_at - started[run.pk]).total_seconds() for run in runs)
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.status] = statuses.get(run.status, 0) + 1
    actions = sum(run.step_runs.count() for run in runs)
    return {
        "times": times,
        "p50": statistics.median(times),
        "p95": times[max(0, int(round(0.95 * len(times))) - 1)],
        "max": times[-1],
        "wall": wall,
        "dispatched": dispatched,
        "statuses": statuses,
        "actions": actions,
    }


# ------------------------------------------------------------------------------------------------------------------ report


def main() -> None:
    if connection.vendor != "postgresql" or not settings.CELERY_BROKER_URL.startswith("redis"):
        raise SystemExit("bench_scale needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL).")
    settings.DEBUG = False
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped benchmark still stops its workers and drops its database
    original = settings.DATABASES["default"]["NAME"]
    scratch = f"{original}_bench_scale"
    settings.DATABASES["default"]["TEST"].update(NAME=scratch)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    sandbox_process, sandbox = start_sandbox()
    load_before = os.getloadavg()
    try:
        setup_started = time.perf_counter()
        source_ids = simulation_setup(sandbox) if "syncs" in PARTS else []
        simulation_setup_s = time.perf_counter() - setup_started
        requests.put(
            f"{sandbox}/_control/faults/sandbox_directory",
            json={"latency_ms": LATENCY_MS, "error_rate": RATE_LIMITED, "error_status": 429, "error_retry_after": 1},
            timeout=5,
        ).raise_for_status()
        configurations = []
        for processes in (1, 3) if "syncs" in PARTS else ():
            result = run_configuration(scratch, source_ids, processes)
            configurations.append(result)
            print(f"{processes} worker process(es): {result['per_minute']:.0f} syncs/min, longest wait {result['longest_ticks']:.2f} ticks", flush=True)
        from django_celery_beat.models import PeriodicTask

        PeriodicTask.objects.filter(name__startswith="sync:").update(enabled=False)  # part 1's schedules stay out of part 2
        activations: dict | None = None
        if ACTIVATIONS and "activations" in PARTS:
            try:
                activations = activations_measure(scratch, activation_setup(sandbox))
                print(f"{ACTIVATIONS} activations at once: p95 {activations['p95']:.2f} s", flush=True)
            except Exception as error:  # noqa: BLE001 - reported in the results, so the other parts' figures are not lost
                activations = {"error": f"{type(error).__name__}: {error}"}
                print(f"activations failed: {activations['error']}", flush=True)
        beat_started = time.perf_counter()
        beat_setup() if "beat" in PARTS else None
        beat_setup_s = time.perf_counter() - beat_started
        beat = beat_measure() if "beat" in PARTS else {}
        if beat:
            beat["dispatcher"] = dispatcher_measure()
        if beat:
            print(f"beat: {BEAT_SOURCES} sources, schedule loaded in {beat['loaded']:.2f} s, {beat['sent'] / beat['elapsed']:.0f} tasks/s", flush=True)
    finally:
        sandbox_process.kill()
        sandbox_process.wait()
        purge_broker(broker())
        connection.creation.destroy_test_db(original, verbosity=0)
    load_after = os.getloadavg()
    write_report(configurations, beat, activations, simulation_setup_s, beat_setup_s, load_before, load_after)


if __name__ == "__main__":
    main()
