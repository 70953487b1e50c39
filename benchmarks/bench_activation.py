"""Benchmark: activate the crisis playbook against the sandbox with 150 ms on every vendor call, parallel vs one after another.

What runs: the shipped "Crisis response" template — the collaboration channel, 20 invitations, a briefing message, 17
Jira issues (bulk), the meeting with 20 attendees, 20 e-mail notifications — twice, side by side: on Slack + Google
Calendar and on Microsoft Teams + Outlook (the template names roles; each organization's tools play them), through the
REAL connectors against their sandbox stand-ins, and the REAL e-mail (SMTP) connector against a local aiosmtpd server
that also waits 150 ms per message. Every sandbox vendor gets the `latency_ms=150` fault knob.

Parallel: a real Celery worker pool (`celery worker -P threads -c 16`, Redis broker), timed from the activate call to
the run's last step. Sequential: the same template for a second scenario (fresh idempotency keys), run in this process
with tasks executed eagerly — every step one after another — in the same run. Writes benchmarks/results/activation.md.

Needs DATABASE_URL (PostgreSQL, migrated) and REDIS_URL. Usage: python benchmarks/bench_activation.py
"""

from __future__ import annotations

import asyncio
import itertools
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import datetime
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
from integrations.models import CredentialType, Integration  # noqa: E402
from integrations.services import integration_connect  # noqa: E402
from playbooks.contract import OUTPUT_EARLY_KEY  # noqa: E402
from playbooks.models import PlaybookRun, PlaybookTemplate, RunStatus, StepStatus  # noqa: E402
from playbooks.services import playbook_activate, playbook_create  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sandbox.vendors._people import people  # noqa: E402
from scenarios.models import Scenario, ScenarioDataModel  # noqa: E402

LATENCY_MS = 150
WORKERS = 16
MEETING_DAYS = itertools.count(2)
REPEATS = 3  # measured activations per stack (next activations on a running worker); the median is reported
RESULTS = ROOT / "benchmarks" / "results" / "activation.md"
VENDORS = ("slack", "jira", "google_calendar", "microsoft365")
STACKS = ("Slack + Google Calendar", "Teams + Outlook")
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


def connect_microsoft(organization: Organization, sandbox: str) -> Integration:
    """Microsoft 365 signed in as a delegate through the stand-in's consent page, on the incident response team."""
    from integrations.connectors.microsoft365 import MANIFEST
    from integrations.services import build_connector
    from tests.integrations.connectors.microsoft365.test_connection import TEAM_NAME, TENANT_ID, sign_in

    integration = integration_connect(
        organization=organization,
        connector_key="microsoft365",
        credentials=sign_in(sandbox, MANIFEST.oauth.scopes),
        credential_type=CredentialType.OAUTH,
        base_url=f"{sandbox}/microsoft365",
        config={"tenant_id": TENANT_ID},
    )
    team = next(value for value, label in build_connector(integration).config_choices("team_id") if label == TEAM_NAME)
    Integration.objects.filter(pk=integration.pk).update(config={**integration.config, "team_id": team})
    return integration


def connect(organization: Organization, sandbox: str, smtp_port: int, stack: str) -> dict[str, str]:
    """The stack's integrations, bound by connector key: the template's role steps (@chat, @meeting) find them."""
    from integrations.connectors import slack as slack_module

    bindings: dict[str, Integration] = {}
    if stack == STACKS[1]:
        bindings["microsoft365"] = connect_microsoft(organization, sandbox)
    else:
        bindings["slack"] = integration_connect(
            organization=organization,
            connector_key="slack",
            credentials={"access_token": token(sandbox, "slack", scopes=list(slack_module.SCOPE_PURPOSES) + list(slack_module.OPTIONAL_SCOPE_PURPOSES))},
            credential_type=CredentialType.OAUTH,
            base_url=f"{sandbox}/slack/api",
        )
        bindings["google_calendar"] = integration_connect(
            organization=organization,
            connector_key="google_calendar",
            credentials={"access_token": "sandbox-google-calendar-token", "scope": "https://www.googleapis.com/auth/calendar"},
            credential_type=CredentialType.OAUTH,
            base_url=f"{sandbox}/google_calendar/calendar/v3/",
        )
    bindings["jira"] = integration_connect(
        organization=organization,
        connector_key="jira",
        credentials={"email": "jira.admin@acme.example", "api_token": token(sandbox, "jira", subject="jira.admin@acme.example")},
        base_url=f"{sandbox}/jira",
    )
    bindings["email"] = integration_connect(
        organization=organization,
        connector_key="email",
        credentials={},
        config={"host": "127.0.0.1", "port": smtp_port, "from_email": "bastion@acme.example"},
    )
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
            # A day of its own per playbook: every activation books a time its attendees are free, as the first one does.
            "war_room_meeting_at": f"2026-11-{next(MEETING_DAYS):02d}T15:00:00+00:00",
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


def rounds(finished_at: list[float]) -> int:
    """Round trips one after another among calls that ended at these times: calls an item made side by side (lookups,
    a $batch's inner requests) end within one latency of each other and count once."""
    count, last = 0, None
    for at in sorted(finished_at):
        if last is None or at - last >= LATENCY_MS / 1000 * 0.8:
            count, last = count + 1, at
    return count


def dependent_call_floor(run: PlaybookRun, sandbox: str) -> tuple[float, list[tuple[str, int]]]:
    """The least any engine could take: the longest chain of dependent vendor calls × the latency of one call.

    The calls of each item are counted in the sequential run, where items run one at a time: every request the sandbox
    logged (with its time) falls in exactly one item's window from claim to result, and calls made side by side count as
    one round trip; an e-mail item (or a chunk sent side by side) is one SMTP round.
    Items of one step are independent of each other, so a step costs its busiest item; dependencies are the template's
    `depends_on`.
    """
    logged = sorted(entry["at"] for vendor in VENDORS for entry in requests.get(f"{sandbox}/_control/requests", params={"vendor": vendor}, timeout=5).json())
    calls: dict[str, int] = {}
    to_output: dict[str, int] = {}
    done = list(run.step_runs.filter(status=StepStatus.SUCCEEDED).exclude(started_at=None).exclude(finished_at=None))
    windows = [(s.pk, s.started_at.timestamp(), s.finished_at.timestamp()) for s in done]
    for step_run in done:
        start, end = step_run.started_at.timestamp(), step_run.finished_at.timestamp()
        # A step that reported its object early ran its dependents inline (eager tasks) inside its own window: theirs are not its calls.
        nested = [(a, b) for pk, a, b in windows if pk != step_run.pk and start < a and b <= end]
        own = [at for at in logged if start <= at <= end and not any(a <= at <= b for a, b in nested)]
        count = 1 if step_run.connector_key == "email" else rounds(own)
        calls[step_run.step_key] = max(calls.get(step_run.step_key, 0), count)
        early = (step_run.result or {}).get(OUTPUT_EARLY_KEY)
        # Its dependents needed only the calls up to the moment it reported its object (kit.progress.output_ready).
        upto = datetime.fromisoformat(early).timestamp() if early else end
        before_output = 1 if step_run.connector_key == "email" else rounds([at for at in own if at <= upto])
        to_output[step_run.step_key] = max(to_output.get(step_run.step_key, 0), before_output)
    depends = {step.key: list(step.depends_on or []) for step in run.playbook.template.steps.all()}
    chains: dict[str, list[tuple[str, int]]] = {}

    def chain(key: str) -> list[tuple[str, int]]:
        """The calls before `key`'s object exists: its dependencies' chains to their objects, then its own calls to its output."""
        if key not in chains:
            before = max((chain(d) for d in depends.get(key, []) if d in calls), key=lambda c: sum(n for _, n in c), default=[])
            chains[key] = [*before, (key, to_output[key])]
        return chains[key]

    def whole(key: str) -> list[tuple[str, int]]:
        return [*chain(key)[:-1], (key, calls[key])]

    longest = max((whole(key) for key in calls), key=lambda c: sum(n for _, n in c))
    return sum(n for _, n in longest) * LATENCY_MS / 1000, longest


def start_worker() -> subprocess.Popen:
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
    # Warm the pool (imports, DB connections) with a ping so the first activation is not timing worker start-up.
    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=1) and time.monotonic() < deadline:
        time.sleep(0.2)
    return worker


def run_parallel(playbook, sandbox: str) -> dict:
    calls_before = vendor_calls(sandbox)
    started = time.perf_counter()
    run, _ = playbook_activate(playbook=playbook)
    while PlaybookRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists():
        if time.perf_counter() - started > 120:
            raise SystemExit("The parallel run did not finish within 2 minutes.")
        time.sleep(0.02)
    wall = time.perf_counter() - started
    run.refresh_from_db()
    return {"wall": wall, "calls": subtract(vendor_calls(sandbox), calls_before), "run": run, **describe(run)}


def run_sequential(playbook, sandbox: str) -> dict:
    calls_before = vendor_calls(sandbox)
    started = time.perf_counter()
    run, _ = playbook_activate(playbook=playbook)
    wall = time.perf_counter() - started
    run.refresh_from_db()
    floor_s, floor_chain = dependent_call_floor(run, sandbox)
    return {"wall": wall, "calls": subtract(vendor_calls(sandbox), calls_before), "run": run, "floor": floor_s, "chain": floor_chain, **describe(run)}


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
    playbooks: dict[str, tuple] = {}
    for index, stack in enumerate(STACKS):
        organization = Organization.objects.create(name=f"Bench {stamp} {index}", slug=f"bench-{stamp}-{index}")
        bindings = connect(organization, sandbox, smtp_port, stack)
        playbooks[stack] = (
            make_playbook(organization, bindings, f"DB outage {stamp} parallel"),
            make_playbook(organization, bindings, f"DB outage {stamp} sequential"),
            make_playbook(organization, bindings, f"DB outage {stamp} first"),
            [make_playbook(organization, bindings, f"DB outage {stamp} parallel {n}") for n in range(2, REPEATS + 1)],
        )

    load_before = os.getloadavg()
    parallel: dict[str, dict] = {}
    worker = start_worker()
    try:
        app.conf.task_always_eager = False
        # Each organization's first activation on this worker opens its connections and fills the connectors' caches (Slack
        # user ids, Graph's signed-in user and rooms); it is reported on its own. The measured run is the next activation,
        # as on a running server.
        first = {stack: run_parallel(playbooks[stack][2], sandbox) for stack in STACKS}
        repeats: dict[str, list[dict]] = {stack: [] for stack in STACKS}
        for playbook_index in range(REPEATS):  # the stacks alternate, so both see the same moments of the machine
            for stack in STACKS:
                playbook = playbooks[stack][0] if playbook_index == 0 else playbooks[stack][3][playbook_index - 1]
                repeats[stack].append(run_parallel(playbook, sandbox))
        for stack in STACKS:  # the median run is the figure; every run's time is reported beside it
            ordered = sorted(repeats[stack], key=lambda r: r["wall"])
            parallel[stack] = {**ordered[len(ordered) // 2], "walls": [r["wall"] for r in repeats[stack]]}
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    app.conf.task_always_eager = True  # every task runs inline: the same steps one after another
    sequential = {stack: run_sequential(playbooks[stack][1], sandbox) for stack in STACKS}
    load_after = os.getloadavg()

    created = requests.get(f"{sandbox}/_control/created", timeout=5).json()
    kinds: dict[str, int] = {}
    for obj in created:
        kinds[f"{obj['vendor']}/{obj['kind']}"] = kinds.get(f"{obj['vendor']}/{obj['kind']}", 0) + 1
    controller.stop()
    server.stop()
    write_report(parallel, sequential, first, kinds, smtp.count, load_before, load_after)


def write_report(
    parallel: dict[str, dict], sequential: dict[str, dict], first_runs: dict[str, dict], kinds: dict[str, int], emails: int, load_before, load_after
) -> None:
    first = STACKS[0]
    lines = [
        "# Playbook activation benchmark",
        "",
        f"Command: `python benchmarks/bench_activation.py` · Python {platform.python_version()} · {platform.machine()} · "
        f"{os.cpu_count()} CPUs · PostgreSQL + Redis (`{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}`).",
        "",
        "The shipped crisis template, unchanged, on two stacks side by side: the collaboration channel + 20 invitations + "
        "briefing, 17 Jira issues (bulk), the meeting with 20 attendees, 20 e-mail notifications — "
        f"{parallel[first]['actions']} actions through the real connectors. On Slack + Google Calendar the channel is a Slack "
        "channel and the meeting a Google Calendar event; on Teams + Outlook a Teams channel (briefing as an Adaptive Card) and "
        f"an Outlook event with a Teams link and a free room (checked with getSchedule first). Every sandbox vendor call waits "
        f"{LATENCY_MS} ms (fault knob `latency_ms`); the local SMTP server waits {LATENCY_MS} ms per message. Each organization's "
        "first activation on the fresh worker (connections opened, connector caches empty: Slack user ids, Graph's signed-in "
        "user and rooms) is reported beside the next ones: three further activations per stack, the stacks alternating, whose "
        "median is the measured figure (a running server's state); the call counts and step times are the median run's.",
        "",
        "| Stack | Parallel (Celery threads, -c 16) | First activation on the worker | Sequential (same steps one after another) | "
        "Floor: longest dependent chain × 150 ms | Actions | Status |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {stack} | **{parallel[stack]['wall']:.2f} s** median of {len(parallel[stack]['walls'])} "
            f"({', '.join(f'{w:.2f}' for w in parallel[stack]['walls'])} s; {parallel[stack]['run'].duration_ms} ms recorded) | {first_runs[stack]['wall']:.2f} s | "
            f"{sequential[stack]['wall']:.2f} s | "
            f"{sequential[stack]['floor']:.2f} s ({' → '.join(f'{key} ({n})' for key, n in sequential[stack]['chain'])}) | "
            f"{parallel[stack]['actions']} | {parallel[stack]['status']} |"
            for stack in STACKS
        ],
        "",
        *[
            f"{stack}: speed-up {sequential[stack]['wall'] / parallel[stack]['wall']:.1f}×; the parallel run is "
            f"{parallel[stack]['wall'] / sequential[stack]['floor']:.1f}× the floor. Goal: whole activation < 1 s → "
            f"{'met' if parallel[stack]['wall'] < 1 else '**not met**'}."
            for stack in STACKS
        ],
        "",
        "Manual baseline (seed): 2 hours. Calls per step for the floor are counted in the sequential run (each vendor request the "
        "sandbox logged falls in one item's window, and calls made side by side count as one round trip; an e-mail is one SMTP "
        "message); items of one step are independent, so a step costs its busiest item. The per-person invitations and e-mails are "
        "bulk steps (one task per chunk), so the sequential run makes the same calls as the parallel one, one task after another. "
        f"Before the engine changes of 2026-11-25 this benchmark measured {BEFORE}.",
        "",
        f"Machine load (1/5/15-min averages, 2 CPUs shared with other work): {' '.join(f'{x:.2f}' for x in load_before)} before the parallel runs, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} after the sequential ones.",
    ]
    for stack in STACKS:
        calls_p, calls_s = parallel[stack]["calls"], sequential[stack]["calls"]
        lines += [
            "",
            f"## {stack}",
            "",
            "Vendor HTTP calls per run (each waits 150 ms; e-mails go over SMTP and are not counted here):",
            "",
            "| Call | Parallel | First activation | Sequential |",
            "|---|---|---|---|",
            *[
                f"| {name} | {calls_p.get(name, 0)} | {first_runs[stack]['calls'].get(name, 0)} | {calls_s.get(name, 0)} |"
                for name in sorted(set(calls_p) | set(calls_s) | set(first_runs[stack]["calls"]))
            ],
            "",
            "| Step (parallel run) | Items | Slowest item ms |",
            "|---|---|---|",
            *[f"| {key} | {len(durations)} | {max(durations)} |" for key, durations in parallel[stack]["groups"].items()],
        ]
    lines += ["", f"Objects the sandbox recorded (all runs): {', '.join(f'{k}: {v}' for k, v in sorted(kinds.items()))}; e-mails accepted by SMTP: {emails}."]
    failures = [f"{stack}: {failure}" for stack in STACKS for failure in parallel[stack]["failed"] + sequential[stack]["failed"]]
    if failures:
        lines += ["", "Failures: " + "; ".join(failures)]
    write_summary(
        "activation",
        [
            {
                "what": f"Crisis activation on {stack} ({parallel[stack]['actions']} actions) at {LATENCY_MS} ms per vendor call",
                "now": f"{parallel[stack]['wall']:.2f} s",
                "reference": f"floor (longest dependent chain × {LATENCY_MS} ms) {sequential[stack]['floor']:.2f} s; "
                f"first activation on the worker {first_runs[stack]['wall']:.2f} s; sequential {sequential[stack]['wall']:.2f} s",
                "goal": "< 1 s",
                "verdict": "met" if parallel[stack]["wall"] < 1 else "**not met**",
            }
            for stack in STACKS
        ],
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
