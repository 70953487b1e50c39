"""Run the README's demo command itself (`python -m bastion_site.demo`) on free ports and a throw-away data folder.

Tests that use it exercise the demo's own configuration: embedded PostgreSQL and Redis, its Celery worker pool and
beat, gunicorn with DEBUG off, the sandbox with its SMTP sink. They talk to it only over HTTP (pages, API, sandbox).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo-Config-Pass-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DemoProcess:
    """The demo supervisor as a child process; `url`, `sandbox` and an authenticated `api` session once started."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port, self.sandbox_port, self.smtp_port, self.pg_port, self.redis_port = (free_port() for _ in range(5))
        self.url = f"http://127.0.0.1:{self.port}"
        self.sandbox = f"http://127.0.0.1:{self.sandbox_port}"
        self.output: list[str] = []
        self.process: subprocess.Popen | None = None
        self.ready_seconds: float | None = None

    def start(self, timeout: float = 240) -> DemoProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
        env.update(BASTION_DEMO_PASSWORD=PASSWORD, PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "bastion_site.demo", "--port", str(self.port), "--sandbox-port", str(self.sandbox_port)]
        command += ["--smtp-port", str(self.smtp_port), "--pg-port", str(self.pg_port), "--redis-port", str(self.redis_port)]
        command += ["--data-dir", str(self.data_dir)]
        started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        ready = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip())
                if line.startswith("Bastion is ready"):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("The demo did not start:\n" + "\n".join(self.output[-60:]))
        self.ready_seconds = time.monotonic() - started
        return self

    def log(self, name: str) -> str:
        path = self.data_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def api(self) -> requests.Session:
        """A session signed in as the demo admin through the login page (CSRF included), for the API and pages."""
        session = requests.Session()
        login = session.get(f"{self.url}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        answer = session.post(
            f"{self.url}/accounts/login/",
            data={"login": "admin", "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{self.url}/accounts/login/"},
            timeout=10,
        )
        assert answer.ok and "sessionid" in session.cookies, answer.status_code
        session.headers["X-CSRFToken"] = session.cookies.get("csrftoken", "")
        session.headers["Referer"] = self.url + "/"
        return session

    def worker_pids(self) -> list[int]:
        """The Celery worker's main process and its pool children."""
        assert self.process is not None
        supervisor = psutil.Process(self.process.pid)
        for child in supervisor.children():
            if "worker" in child.cmdline() and "celery" in " ".join(child.cmdline()):
                return [child.pid] + [c.pid for c in child.children(recursive=True)]
        return []

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
