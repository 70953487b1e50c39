"""A real worker is SIGKILLed mid-activation; a new worker resumes the run and nothing is created twice."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from playbooks.models import PlaybookRun, RunStatus, StepStatus
from playbooks.services import playbook_activate, playbook_run_resume
from tests.conftest import wait_for
from tests.playbooks.conftest import created, set_faults

EXPECTED = {"channel": 1, "message": 1, "issue": 17, "event": 1, "email": 20}


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _kill_worker(process) -> None:
    """SIGKILL the worker and its pool processes at once: no graceful shutdown, no acks."""
    for pid in [*_descendants(process.pid), process.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)


def _kinds(sandbox: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for obj in created(sandbox):
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    return counts


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_activation_creates_nothing_twice(crisis_playbook, owner, sandbox, celery_worker_process):
    set_faults(sandbox, latency_ms=250)
    run, _ = playbook_activate(playbook=crisis_playbook, actor=owner)  # commits: the first advance goes to Redis
    first = celery_worker_process(concurrency=4)
    wait_for(lambda: len(created(sandbox)) >= 1, timeout=60, message="the first object at the vendor")
    _kill_worker(first)

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    at_kill = len(created(sandbox))
    assert at_kill < sum(EXPECTED.values())  # the kill happened mid-activation
    interrupted = run.step_runs.filter(status__in=[StepStatus.RUNNING, StepStatus.QUEUED]).count()
    assert interrupted > 0

    playbook_run_resume(run=run, force=True)  # an operator (or the reaper, once leases expire) resumes the run
    celery_worker_process(concurrency=4)
    try:
        wait_for(lambda: PlaybookRun.objects.get(pk=run.pk).status != RunStatus.RUNNING, timeout=90, message="the resumed run to finish")
    except AssertionError as error:
        # Say where it stalled: which steps are in which state (and how often they were tried).
        states = sorted(run.step_runs.values_list("step_key", "status", "attempts").distinct())
        raise AssertionError(f"{error}; steps (key, status, attempts): {states}") from error

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary
    assert _kinds(sandbox) == EXPECTED  # one channel, 17 issues, one event, 20 e-mails: nothing twice
    assert run.step_runs.filter(status=StepStatus.SUCCEEDED).count() == 60
    assert len(set(run.step_runs.exclude(external_id="").values_list("external_id", flat=True))) == 40  # the invite acts on the channel
