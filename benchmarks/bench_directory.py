"""Benchmark: sync a 10,000-person directory from a real OpenLDAP slapd, from the click to the job's final status.

Starts a real slapd (tests/ldap_server.py) with 10,000 inetOrgPerson entries (a manager per 50 people) and 40 groups of
250 members (memberOf kept by slapd's overlay), a scratch PostgreSQL database (`<db>_bench_directory`) and a real Celery
worker (prefork, 2 processes) on Redis. Measured, each beside the reference in the same run:

- What a person waits for: "Sync now" on the LDAP integration (`sync_integration_start`: users and groups) until every
  job reached its final status: records store, people merge, groups, manager links. The first full sync, an incremental
  sync with nothing changed, and a second full sync (nothing changed, every entry read again).
- The reference: a bare ldap3 paged search of the same entries over StartTLS (the wire alone).
- As context: the connector alone (`LdapConnector.read` + `to_bastion`, no database), as the earlier benchmark measured.

Writes benchmarks/results/directory.md. BENCH_DIRECTORY_ENTRIES sets the size (the test suite runs it at 300).
"""

from __future__ import annotations

import base64
import gc
import os
import platform
import resource
import secrets
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")
# Credentials in the scratch database are sealed with an ephemeral key, shared with the worker through the environment.
os.environ["BASTION_ENCRYPTION_KEYS"] = "bench:" + base64.b64encode(secrets.token_bytes(32)).decode()

import django  # noqa: E402

django.setup()

import ldap3  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.summary import write_summary  # noqa: E402
from integrations.connectors.ldap import LdapConnector  # noqa: E402
from tests.ldap_server import SERVICE_DN, SERVICE_PASSWORD, SUFFIX, SlapdServer, bulk_ldif  # noqa: E402

ENTRIES = int(os.environ.get("BENCH_DIRECTORY_ENTRIES", 10_000))
PAGE_SIZE = 500
GROUPS = 40
WORKER_PROCESSES = int(os.environ.get("BENCH_DIRECTORY_WORKER_PROCESSES", 2))
BULK_BASE = f"ou=bulk,{SUFFIX}"
GROUP_BASE = f"ou=scratch,{SUFFIX}"
GOAL_FACTOR = 4.0  # end to end ≤ 4 × bare ldap3
INCREMENTAL_GOAL_SECONDS = 1.0


def ldap_config(server: SlapdServer) -> dict:
    return {
        "server_url": server.ldap_url,
        "base_dn": BULK_BASE,
        "group_base_dn": GROUP_BASE,
        "flavor": "openldap",
        "ca_cert": server.cert_path.read_text(),
        "page_size": PAGE_SIZE,
    }


def add_groups(server: SlapdServer) -> None:
    """40 groupOfNames of 250 members each, added through the running server so memberOf is maintained on every member."""
    entries = []
    for group in range(GROUPS):
        members = [f"uid=user{index:05d},{BULK_BASE}" for index in range(group, ENTRIES, GROUPS)]
        entries.append((f"cn=team{group:02d},{GROUP_BASE}", {"objectClass": ["groupOfNames"], "cn": f"team{group:02d}", "member": members}))
    server.add_entries(entries)


def import_through_connector(server: SlapdServer) -> tuple[int, int, int]:
    """Context row: stream every page and transform each record, keeping only counts (no database)."""
    connector = LdapConnector(config=ldap_config(server), credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD})
    count = pages = with_manager = 0
    for page in connector.iter_all("users"):
        pages += 1
        for record in page.records:
            person = connector.to_bastion("users", record)
            count += 1
            with_manager += bool(person["manager_external_id"])
    connector.close()
    return count, pages, with_manager


def reference_paged_search(server: SlapdServer) -> int:
    """Bare ldap3 paged search over StartTLS: the wire cost without mapping, groups, manager resolution or any write."""
    import ssl

    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_data=server.cert_path.read_text())
    conn = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=server.ldap_port, tls=tls, get_info=ldap3.NONE),
        SERVICE_DN,
        SERVICE_PASSWORD,
        auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND,
    )
    count = 0
    for _entry in conn.extend.standard.paged_search(BULK_BASE, "(objectClass=inetOrgPerson)", attributes=["*", "entryUUID", "entryCSN"], paged_size=PAGE_SIZE):
        count += 1
    conn.unbind()
    return count


def timed(fn, *args):
    gc.collect()
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def traced_peak(fn, *args) -> int:
    gc.collect()
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def start_worker(database_name: str) -> subprocess.Popen:
    """A real Celery worker on the scratch database, as production runs it; returns once it consumes."""
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database_name}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bastion_site",
            "worker",
            "-l",
            "warning",
            "-P",
            "prefork",
            "-c",
            str(WORKER_PROCESSES),
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    from bastion_site.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return process
        if process.poll() is not None:
            raise RuntimeError("The Celery worker exited at start-up.")
    process.kill()
    raise RuntimeError("The Celery worker did not answer a ping within 60 s.")


def sync_now(integration, *, full_refresh: bool = False) -> tuple[float, list]:
    """Press "Sync now" and wait for every job's final status; seconds from the press to the last job's completion."""
    from sync import services
    from sync.models import ACTIVE_JOB_STATUSES, DataSyncJob

    started_at = datetime.now(UTC)
    jobs = services.sync_integration_start(integration=integration, full_refresh=full_refresh)
    ids = [job.pk for job in jobs]
    deadline = time.monotonic() + 600
    while DataSyncJob.objects.filter(pk__in=ids, status__in=ACTIVE_JOB_STATUSES).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("The sync did not finish within 10 minutes.")
        time.sleep(0.02)
    finished = list(DataSyncJob.objects.filter(pk__in=ids).select_related("data_source"))
    assert all(job.status == "succeeded" for job in finished), [(job.data_source.entity_type, job.status, job.last_error) for job in finished]
    return (max(job.completed_at for job in finished) - started_at).total_seconds(), finished


def bench_end_to_end(server: SlapdServer) -> dict:
    from accounts.models import Organization
    from integrations.models import CredentialType
    from integrations.services import integration_connect
    from people.models import Person
    from sync.models import SyncRecord

    organization = Organization.objects.create(name="Bench Directory", slug="bench-directory")
    integration = integration_connect(
        organization=organization,
        connector_key="ldap",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
        config=ldap_config(server),
        display_name="Corporate directory",
    )
    first, jobs = sync_now(integration)
    people = Person.objects.filter(organization=organization)
    assert people.count() == ENTRIES, people.count()
    managed = people.filter(manager__isnull=False).count()
    grouped = people.exclude(groups=[]).count()
    assert managed == ENTRIES - (ENTRIES + 49) // 50 and grouped == ENTRIES, (managed, grouped)
    assert SyncRecord.objects.filter(integration=integration, entity_type="groups").count() == GROUPS
    by_entity = {job.data_source.entity_type: job for job in jobs}
    incremental, incremental_jobs = sync_now(integration)
    assert all(not job.is_full_refresh for job in incremental_jobs if job.data_source.entity_type == "users")
    again, again_jobs = sync_now(integration, full_refresh=True)
    assert sum(job.created_count + job.updated_count for job in again_jobs) == 0
    return {
        "first": first,
        "incremental": incremental,
        "again": again,
        "pages": by_entity["users"].pages,
        "managed": managed,
        "grouped": grouped,
        "jobs": {entity: job for entity, job in by_entity.items()},
        "incremental_jobs": {job.data_source.entity_type: job for job in incremental_jobs},
    }


def main() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("bench_directory needs PostgreSQL: set DATABASE_URL=postgres://...")
    settings.DEBUG = False
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True  # the slapd is on loopback
    original = settings.DATABASES["default"]["NAME"]
    scratch = f"{original}_bench_directory"
    settings.DATABASES["default"]["TEST"].update(NAME=scratch)
    started = time.perf_counter()
    server = SlapdServer.start_new(bulk_ldif=bulk_ldif(ENTRIES))
    add_groups(server)
    setup = time.perf_counter() - started
    worker = None
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        worker = start_worker(scratch)
        reference_count, reference_seconds = timed(reference_paged_search, server)
        end_to_end = bench_end_to_end(server)
        (count, pages, with_manager), connector_seconds = timed(import_through_connector, server)
        second_reference_count, second_reference_seconds = timed(reference_paged_search, server)
        peak = traced_peak(import_through_connector, server)
        reference_peak = traced_peak(reference_paged_search, server)
    finally:
        if worker is not None:
            os.killpg(worker.pid, 9)
            worker.wait(timeout=10)
        server.stop()
        connection.creation.destroy_test_db(original, verbosity=0)
    assert count == ENTRIES == reference_count == second_reference_count, (count, reference_count)
    reference = min(reference_seconds, second_reference_seconds)
    first, incremental, again = end_to_end["first"], end_to_end["incremental"], end_to_end["again"]
    users_job, groups_job = end_to_end["jobs"]["users"], end_to_end["jobs"]["groups"]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    def job_seconds(job) -> float:
        return (job.completed_at - (job.started_at or job.created_at)).total_seconds()

    lines = [
        f"## Directory sync (LDAP, {ENTRIES:,} people): from the click to the job's final status",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}). "
        f"Real OpenLDAP slapd on loopback, StartTLS, paged results ({PAGE_SIZE} per page), {ENTRIES:,} inetOrgPerson entries with manager DNs "
        f"(one manager per 50 people) and {GROUPS} groups of {ENTRIES // GROUPS:,} members (memberOf kept by slapd). Bastion runs as in production: "
        f'PostgreSQL, Redis, a real Celery worker (prefork, {WORKER_PROCESSES} processes); the benchmark presses "Sync now" on the integration '
        "(`sync_integration_start`: the users and groups data sources) and waits for every job's final status.",
        "",
        "| What a person waits for | time (s) | entries/s | × bare ldap3 | goal |",
        "|---|---:|---:|---:|---|",
        f"| First full sync: records store, people merge, groups, managers (users {users_job.pages} pages, groups {groups_job.pages}) "
        f"| {first:.2f} | {ENTRIES / first:,.0f} | {first / reference:.1f}× | ≤ {GOAL_FACTOR:.0f}× bare ldap3 — {verdict(first <= GOAL_FACTOR * reference)} |",
        f"| Incremental sync, nothing changed | {incremental:.2f} | — | — | < {INCREMENTAL_GOAL_SECONDS:.0f} s — {verdict(incremental < INCREMENTAL_GOAL_SECONDS)} |",
        f"| Second full sync, nothing changed (every entry read and hash-compared) | {again:.2f} | {ENTRIES / again:,.0f} | {again / reference:.1f}× | — |",
        f"| **Reference: bare ldap3 paged search of the same entries** (best of two runs: {reference_seconds:.2f} s, {second_reference_seconds:.2f} s) "
        f"| {reference:.2f} | {ENTRIES / reference:,.0f} | 1.0× | |",
        f"| Context: the LDAP connector alone (`read` + `to_bastion`, no database), {pages} pages | {connector_seconds:.2f} | {count / connector_seconds:,.0f} "
        f"| {connector_seconds / reference:.1f}× | |",
        "",
        f"Inside the first sync: the users job ran {job_seconds(users_job):.2f} s from its start (queue wait excluded), the groups job "
        f"{job_seconds(groups_job):.2f} s; {end_to_end['managed']:,} people linked to their manager and {end_to_end['grouped']:,} with their groups. "
        f"The incremental users job read {end_to_end['incremental_jobs']['users'].records_processed:,} entries in "
        f"{end_to_end['incremental_jobs']['users'].pages} page(s).",
        "",
        f"Peak traced memory (tracemalloc) of the connector alone: {peak / 2**20:.1f} MiB; of the bare ldap3 search: {reference_peak / 2**20:.1f} MiB. "
        f"Server setup (slapadd of {ENTRIES:,} entries + start + {GROUPS} groups) took {setup:.2f} s and is not timed; benchmark process max RSS "
        f"{rss_mb:.0f} MiB. Load averages at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs shared with other work: "
        "treat times as upper bounds.",
        "",
    ]
    write_summary(
        "directory",
        [
            {
                "what": f"{ENTRIES:,}-person directory (LDAP), full sync into records, people, groups, managers: click → final status",
                "now": f"{first:.2f} s",
                "reference": f"bare ldap3 paged search {reference:.2f} s ({first / reference:.1f}×)",
                "goal": f"≤ {GOAL_FACTOR:.0f}× bare ldap3",
                "verdict": verdict(first <= GOAL_FACTOR * reference),
            },
            {
                "what": "same, incremental with nothing changed",
                "now": f"{incremental:.2f} s",
                "reference": f"second full sync, nothing changed: {again:.2f} s",
                "goal": f"< {INCREMENTAL_GOAL_SECONDS:.0f} s",
                "verdict": verdict(incremental < INCREMENTAL_GOAL_SECONDS),
            },
        ],
    )
    out = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "benchmarks" / "results") / "directory.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
