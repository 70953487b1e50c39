"""Benchmark: activate the crisis playbook against the sandbox with 150 ms on every vendor call, parallel vs one after another.

What runs: the shipped "Crisis response" template — a Slack channel, 20 invitations, a briefing message, 17 Jira issues
(bulk), a Google Calendar event with 20 attendees, 20 e-mail notifications — through the REAL Slack, Jira and Google
Calendar connectors against their sandbox stand-ins, and the REAL e-mail (SMTP) connector against a local aiosmtpd server
that also waits 150 ms per message. Every sandbox vendor gets the `latency_ms=150` fault knob.

Parallel: a real Celery worker pool (`celery worker -P threads -c 16`, Redis broker), timed from the activate call to
the run's last step. Sequential: the same template for a second scenario (fresh idempotency keys), run in this process
with tasks executed eagerly — every step one after another — in the same run. Writes benchmarks/results/activation.md.

Needs DATABASE_URL (PostgreSQL, migrated) and REDIS_URL. Usage: python benchmarks/bench_activation.py
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.models import Organization  # noqa: E402
from bastion_site.celery import app  # noqa: E402
from benchmarks.summary import write_summary  # noqa: E402
from integrations.models import CredentialType  # noqa: E402
from integrations.services import integration_connect  # noqa: E402
from playbooks.models import PlaybookRun, PlaybookTemplate, RunStatus, StepStatus  # noqa: E402
from playbooks.services import playbook_activate, playbook_create  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sandbox.vendors._people import people  # noqa: E402
from scenarios.models import Scenario, ScenarioDataModel  # noqa: E402

LATENCY_MS = 150
WORKERS = 16
RESULTS = ROOT / "benchmarks" / "results" / "activation.md"
VENDORS = ("slack", "jira", "google_calendar")
# The first recorded result (commit 6672278), kept for comparison.
BEFORE = "6.58 s parallel (create_channel 1.3 s, post_briefing 1.26 s, Jira chunks 2.6 s) vs 22.32 s sequential, 76 vendor HTTP calls per run"


class SlowSmtp:
    """aiosmtpd handler: accepts every message after the same 150 ms the HTTP vendors get."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        await asyncio.sleep(LATENCY_MS / 1000)
        self.count += 1
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def token(sandbox: str, vendor: str, **extra) -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": vendor, **extra}, timeout=5).json()["token"]


def connect(organization: Organization, sandbox: str, smtp_port: int) -> dict[str, str]:
    from integrations.connectors import slack as slack_module

    slack_scopes = list(slack_module.SCOPE_PURPOSES) + list(slack_module.OPTIONAL_SCOPE_PURPOSES)
    slack = integration_connect(
        organization=organization,
        connector_key="slack",
        credentials={"access_token": token(sandbox, "slack", scopes=slack_scopes)},
        credential_type=CredentialType.OAUTH,
        base_url=f"{sandbox}/slack/api",
    )
    jira = integration_connect(
        organization=organization,
        connector_key="jira",
        credentials={"email": "jira.admin@acme.example", "api_token": token(sandbox, "jira", subject="jira.admin@acme.example")},
        base_url=f"{sandbox}/jira",
    )
    calendar = integration_connect(
        organization=organization,
        connector_key="google_calendar",
        credentials={"access_token": "sandbox-google-calendar-token", "scope": "https://www.googleapis.com/auth/calendar"},
        credential_type=CredentialType.OAUTH,
        base_url=f"{sandbox}/google_calendar/calendar/v3/",
    )
    email = integration_connect(
        organization=organization,
        connector_key="email",
        credentials={},
        config={"host": "127.0.0.1", "port": smtp_port, "from_email": "bastion@acme.example"},
    )
    bindings = {"slack": slack, "jira": jira, "google_calendar": calendar, "email": email}
    for key, integration in bindings.items():
        integration.refresh_from_db()
        if integration.status != "connected":
            raise SystemExit(f"{key} did not connect: {integration.last_error}")
    return {key: str(integration.pk) for key, integration in bindings.items()}


def make_playbook(organization: Organization, bindings: dict[str, str], title: str):
    team = [{"person_id": f"p{p['index']}", "name": p["name"], "email": p["email"], "role": p["title"], "source": "directory"} for p in people()]
    scenario = Scenario.objects.create(
        organization=organization,
        data_model=ScenarioDataModel.objects.filter(scenario_type="crisis_management").order_by("-version").first(),
        scenario_type="crisis_management",
        title=title,
        values={
            "title": title,
            "crisis_type": "outage",
            "severity": "sev2",
            "incident_commander": {"person_id": "p19", "name": team[19]["name"], "email": team[19]["email"]},
            "stakeholders": team,
            "war_room_meeting_at": "2026-11-25T15:00:00+00:00",
            "jira_project_key": "OPS",
            "summary": "Primary database cluster is down in eu-west.",
        },
    )
    template = PlaybookTemplate.objects.get(scenario_type="crisis_management", name="Crisis response")
    return playbook_create(organization=organization, scenario=scenario, template=template, integration_bindings=bindings)


def vendor_calls(sandbox: str) -> dict[str, int]:
    """Requests the sandbox has answered so far, by vendor and path."""
    counts: dict[str, int] = {}
    for vendor in VENDORS:
        for entry in requests.get(f"{sandbox}/_control/requests", params={"vendor": vendor}, timeout=5).json():
            name = f"{entry['method']} {entry['path']}"
            counts[name] = counts.get(name, 0) + 1
    return counts


def subtract(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: count - before.get(name, 0) for name, count in after.items() if count > before.get(name, 0)}


def describe(run: PlaybookRun) -> dict:
    step_runs = list(run.step_runs.all())
    done = [s for s in step_runs if s.status == StepStatus.SUCCEEDED]
    groups: dict[str, list[int]] = {}
    for s in done:
        groups.setdefault(s.step_key, []).append(s.duration_ms or 0)
    return {
        "status": run.status,
        "actions": len(done),
        "failed": [f"{s.step_key}: {s.last_error}" for s in step_runs if s.status == StepStatus.FAILED],
        "groups": groups,
    }


def dependent_call_floor(run: PlaybookRun, sandbox: str) -> tuple[float, list[tuple[str, int]]]:
    """The least any engine could take: the longest chain of dependent vendor calls × the latency of one call.

    The calls of each item are counted in the sequential run, where items run one at a time: every request the sandbox
    logged (with its time) falls in exactly one item's window from claim to result; an e-mail item is one SMTP message.
    Items of one step are independent of each other, so a step costs its busiest item; dependencies are the template's
    `depends_on`.
    """
    logged = [entry["at"] for vendor in VENDORS for entry in requests.get(f"{sandbox}/_control/requests", params={"vendor": vendor}, timeout=5).json()]
    calls: dict[str, int] = {}
    for step_run in run.step_runs.filter(status=StepStatus.SUCCEEDED).exclude(started_at=None).exclude(finished_at=None):
        start, end = step_run.started_at.timestamp(), step_run.finished_at.timestamp()
        count = 1 if step_run.connector_key == "email" else sum(1 for at in logged if start <= at <= end)
        calls[step_run.step_key] = max(calls.get(step_run.step_key, 0), count)
    depends = {step.key: list(step.depends_on or []) for step in run.playbook.template.steps.all()}
    chains: dict[str, list[tuple[str, int]]] = {}

    def chain(key: str) -> list[tuple[str, int]]:
        if key not in chains:
            before = max((chain(d) for d in depends.get(key, []) if d in calls), key=lambda c: sum(n for _, n in c), default=[])
            chains[key] = [*before, (key, calls[key])]
        return chains[key]

    longest = max((chain(key) for key in calls), key=lambda c: sum(n for _, n in c))
    return sum(n for _, n in longest) * LATENCY_MS / 1000, longest


def main() -> None:
    if not os.environ.get("REDIS_URL") or not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("Set DATABASE_URL (PostgreSQL) and REDIS_URL.")
    server = SandboxServer().start()
    sandbox = server.url
    for vendor in VENDORS:
        requests.put(f"{sandbox}/_control/faults/{vendor}", json={"latency_ms": LATENCY_MS}, timeout=5).raise_for_status()
    smtp = SlowSmtp()
    smtp_port = free_port()
    controller = Controller(smtp, hostname="127.0.0.1", port=smtp_port)
    controller.start()

    stamp = int(time.time())
    organization = Organization.objects.create(name=f"Bench {stamp}", slug=f"bench-{stamp}")
    bindings = connect(organization, sandbox, smtp_port)
    parallel_playbook = make_playbook(organization, bindings, f"DB outage {stamp} parallel")
    sequential_playbook = make_playbook(organization, bindings, f"DB outage {stamp} sequential")

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bastion_site",
            "worker",
            "-P",
            "threads",
            "-c",
            str(WORKERS),
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # Warm the pool (imports, DB connections) with a ping so the first activation is not timing worker start-up.
        app.control.ping(timeout=30)
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=1) and time.monotonic() < deadline:
            time.sleep(0.2)

        app.conf.task_always_eager = False
        load_before = os.getloadavg()
        calls_before = vendor_calls(sandbox)
        started = time.perf_counter()
        run, _ = playbook_activate(playbook=parallel_playbook)
        while PlaybookRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists():
            if time.perf_counter() - started > 120:
                raise SystemExit("The parallel run did not finish within 2 minutes.")
            time.sleep(0.02)
        parallel_wall = time.perf_counter() - started
        parallel_calls = subtract(vendor_calls(sandbox), calls_before)
        run.refresh_from_db()
        parallel = describe(run)
        parallel_recorded = run.duration_ms
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    app.conf.task_always_eager = True  # every task runs inline: the same steps one after another
    calls_before = vendor_calls(sandbox)
    started = time.perf_counter()
    seq_run, _ = playbook_activate(playbook=sequential_playbook)
    sequential_wall = time.perf_counter() - started
    sequential_calls = subtract(vendor_calls(sandbox), calls_before)
    load_after = os.getloadavg()
    seq_run.refresh_from_db()
    sequential = describe(seq_run)
    floor_s, floor_chain = dependent_call_floor(seq_run, sandbox)

    created = requests.get(f"{sandbox}/_control/created", timeout=5).json()
    kinds: dict[str, int] = {}
    for obj in created:
        kinds[f"{obj['vendor']}/{obj['kind']}"] = kinds.get(f"{obj['vendor']}/{obj['kind']}", 0) + 1
    controller.stop()
    server.stop()

    lines = [
        "# Playbook activation benchmark",
        "",
        f"Command: `python benchmarks/bench_activation.py` · Python {platform.python_version()} · {platform.machine()} · "
        f"{os.cpu_count()} CPUs · PostgreSQL + Redis (`{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}`).",
        "",
        f"The shipped crisis template: Slack channel + 20 invitations + briefing message, 17 Jira issues (bulk), a Google Calendar "
        f"event with 20 attendees, 20 e-mail notifications — {parallel['actions']} actions through the real Slack, Jira, Google "
        f"Calendar and e-mail (SMTP) connectors. Every sandbox vendor call waits {LATENCY_MS} ms (fault knob `latency_ms`); the "
        f"local SMTP server waits {LATENCY_MS} ms per message.",
        "",
        "| Mode | Wall time | Recorded by the run | Actions | Status |",
        "|---|---|---|---|---|",
        f"| Parallel: Celery worker pool (threads, -c {WORKERS}) | **{parallel_wall:.2f} s** | {parallel_recorded} ms | {parallel['actions']} | {parallel['status']} |",
        f"| Sequential: same steps one after another, same run | {sequential_wall:.2f} s | {seq_run.duration_ms} ms | {sequential['actions']} | {sequential['status']} |",
        f"| Floor: longest chain of dependent vendor calls × {LATENCY_MS} ms ({' → '.join(f'{key} ({n})' for key, n in floor_chain)}) "
        f"| {floor_s:.2f} s | — | — | — |",
        "",
        f"Speed-up: {sequential_wall / parallel_wall:.1f}×; the parallel run is {parallel_wall / floor_s:.1f}× the floor "
        f"({parallel_wall - floor_s:.2f} s above it). Goal: whole activation < 1 s → {'met' if parallel_wall < 1 else '**not met**'}. "
        "Manual baseline (seed): 2 hours. Calls per step for the floor are counted in the sequential run (each vendor request the "
        "sandbox logged falls in one item's window; an e-mail is one SMTP message); items of one step are independent, so a step costs its "
        "busiest item.",
        "",
        f"Before the engine changes of 2026-11-25 this benchmark measured {BEFORE}.",
        "",
        f"Machine load (1/5/15-min averages, 2 CPUs shared with other work): {' '.join(f'{x:.2f}' for x in load_before)} before the parallel run, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} after the sequential one.",
        "",
        "Vendor HTTP calls per run (each waits 150 ms; e-mails go over SMTP and are not counted here):",
        "",
        "| Call | Parallel | Sequential |",
        "|---|---|---|",
        *[f"| {name} | {parallel_calls.get(name, 0)} | {sequential_calls.get(name, 0)} |" for name in sorted(set(parallel_calls) | set(sequential_calls))],
        "",
        "Per step in the parallel run (items, and the slowest item from claim to recorded result, ms):",
        "",
        "| Step | Items | Slowest item ms |",
        "|---|---|---|",
        *[f"| {key} | {len(durations)} | {max(durations)} |" for key, durations in parallel["groups"].items()],
        "",
        f"Objects the sandbox recorded (both runs): {', '.join(f'{k}: {v}' for k, v in sorted(kinds.items()))}; e-mails accepted by SMTP: {smtp.count}.",
    ]
    if parallel["failed"] or sequential["failed"]:
        lines += ["", "Failures: " + "; ".join(parallel["failed"] + sequential["failed"])]
    write_summary(
        "activation",
        [
            {
                "what": f"Crisis activation ({parallel['actions']} actions) at {LATENCY_MS} ms per vendor call",
                "now": f"{parallel_wall:.2f} s",
                "reference": f"floor (longest dependent chain × {LATENCY_MS} ms) {floor_s:.2f} s; sequential {sequential_wall:.2f} s",
                "goal": "< 1 s",
                "verdict": "met" if parallel_wall < 1 else "**not met**",
            }
        ],
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
