"""`make bench` must not rot between runs: the sync and directory benchmarks run end to end at a small size.

They run as the Makefile runs them (a subprocess each, their own scratch database or slapd) and write their reports into a
temporary directory, so the committed results are left alone. Sizes are tiny: these check that the scripts work, not speed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, tmp_path: Path, **sizes: str) -> str:
    env = {**os.environ, "BENCH_RESULTS_DIR": str(tmp_path), **sizes}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # as from `make bench`: each script sets itself up
    done = subprocess.run([sys.executable, f"benchmarks/{script}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr[-3000:])
    return done.stdout


def test_sync_benchmark_runs_and_reports_every_phase(tmp_path):
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.fail("DATABASE_URL must point at PostgreSQL (the README's test command sets it).")
    run_benchmark("bench_sync.py", tmp_path, BENCH_SYNC_PEOPLE="1000", BENCH_SYNC_READER_ROWS="2000")
    report = (tmp_path / "sync.md").read_text()
    for phase in ("PostgreSQL `COPY`", "CSV import end to end", "Sandbox API import end to end", "Re-sync of the same records", "Streaming CSV reader"):
        assert phase in report
    assert "| 1,000 |" in report and "Re-sync of unchanged records ≤ 1/5 of the first import" in report


def test_directory_benchmark_runs_against_a_real_slapd(tmp_path):
    if not shutil.which("slapd") and not Path("/usr/sbin/slapd").exists():
        pytest.fail("slapd is missing: scripts/system-deps.sh installs it.")
    run_benchmark("bench_directory.py", tmp_path, BENCH_DIRECTORY_ENTRIES="300")
    report = (tmp_path / "directory.md").read_text()
    for row in ("First full sync: records store, people merge, groups, managers", "Incremental sync, nothing changed", "Reference: bare ldap3 paged search"):
        assert row in report
    assert "300 people linked" not in report and "294 people linked to their manager and 300 with their groups" in report
