"""A real worker rides out a restart of its Redis broker: it stays up, finishes the late-acked task it was running
exactly once (its ack reaches the restarted broker, so nothing is left to redeliver) and then takes new tasks."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from kombu import Connection

from bastion_site.celery import app
from tests.conftest import RedisServer, wait_for

HOLD_TASK = "tests.broker_restart.hold_until_released"


class WorkerLog:
    """Collect a worker's output lines as they come, so a test can wait for what the worker reports."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip())

    def waiting_for(self, process: subprocess.Popen, predicate):
        """`predicate`, failing at once if the worker process exits or is on its way out (the bug this test guards against)."""

        def check():
            if process.poll() is not None or self.count("Unrecoverable error"):
                raise AssertionError(f"the worker is exiting (exit code {process.poll()})")
            return predicate()

        return check

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def tail(self) -> str:
        return "\n".join(self.lines[-60:])


def _send(broker: RedisServer, markers: Path, token: str, *, hold: bool) -> None:
    with Connection(broker.url) as connection:
        app.send_task(HOLD_TASK, args=[str(markers), token, hold], connection=connection)


def _broker_idle(broker: RedisServer) -> bool:
    client = broker.client()
    return client.llen("celery") == 0 and client.hlen("unacked") == 0


def _runs(markers: Path, token: str, stage: str) -> list[Path]:
    return sorted(markers.glob(f"{token}.{stage}.*"))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_survives_broker_restart_and_finishes_in_flight_task_exactly_once(celery_worker_process, tmp_path):
    broker = RedisServer(data_dir=tmp_path / "redis")
    broker.data_dir.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    broker.start()
    worker = celery_worker_process(concurrency=2, extra_env={"REDIS_URL": broker.url}, extra_args=["--include", "tests.common.broker_restart_tasks"])
    log = WorkerLog(worker)
    try:
        wait_for(lambda: log.count("ready."), timeout=60, message="the worker to start")
        _send(broker, markers, "in-flight", hold=True)
        wait_for(lambda: _runs(markers, "in-flight", "started"), timeout=60, message="the task to start")
        assert broker.client().hlen("unacked") == 1, "the running task's message waits for its late ack"

        broker.kill()
        # The outage lasts until the worker has noticed it and failed to reconnect at least once.
        wait_for(log.waiting_for(worker, lambda: log.count("Cannot connect to")), timeout=60, message="the worker to find the broker down")
        broker.start()
        assert broker.client().hlen("unacked") == 1, "the restarted broker still holds the unacked message"
        wait_for(log.waiting_for(worker, lambda: log.count("Connected to") >= 2), timeout=60, message="the worker to reconnect")
        assert worker.poll() is None, "the worker process stays up"

        (markers / "release").touch()
        wait_for(lambda: _runs(markers, "in-flight", "completed"), timeout=60, message="the in-flight task to complete")
        wait_for(lambda: broker.client().hlen("unacked") == 0, timeout=30, message="the late ack to reach the restarted broker")

        _send(broker, markers, "after-restart", hold=False)
        wait_for(log.waiting_for(worker, lambda: _runs(markers, "after-restart", "completed")), timeout=60, message="a task sent after the restart to run")
        # Late acks follow completion: once nothing is queued or unacked, every copy that was ever delivered has finished.
        wait_for(lambda: _broker_idle(broker), timeout=30, message="the broker to hold no queued or unacked message")
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nworker log:\n{log.tail()}") from failure
    finally:
        broker.kill()

    assert worker.poll() is None, log.tail()
    assert log.count("Unrecoverable error") == 0, log.tail()
    # Exactly once: the in-flight task was neither cancelled and rerun nor restored to the queue beside the running copy.
    assert [len(_runs(markers, "in-flight", stage)) for stage in ("started", "completed")] == [1, 1]
    assert [len(_runs(markers, "after-restart", stage)) for stage in ("started", "completed")] == [1, 1]
