"""Shared fixtures: organizations, users of every role, API clients, the sandbox, a real Celery worker."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.models import Membership, Organization, Role

ROOT = Path(__file__).resolve().parent.parent
# A fixed, valid AES-256 test keyring (32 bytes), whatever the environment says.
TEST_ENCRYPTION_KEYS = "test1:" + base64.b64encode(b"bastion-test-key-0123456789abcde").decode()
os.environ["BASTION_ENCRYPTION_KEYS"] = TEST_ENCRYPTION_KEYS
settings.BASTION_ENCRYPTION_KEYS = TEST_ENCRYPTION_KEYS
# Password hashing is not under test here; the default PBKDF2 makes every user fixture slow.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


TRANSACTIONAL_FIXTURES = ("transactional_db", "live_server", "django_db_reset_sequences", "django_db_serialized_rollback")


def pytest_collection_modifyitems(items):
    """Transactional tests restore the data migrations' rows (shipped definitions, templates, schedules) after their flush.

    Also those that are transactional only through a fixture (no mark): flushed without serialized rollback, their teardown
    re-creates content types that the next serialized test then inserts again (duplicate key at its setup).
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        by_fixture = any(name in getattr(item, "fixturenames", ()) for name in TRANSACTIONAL_FIXTURES)
        transactional = bool(marker and marker.kwargs.get("transaction")) or by_fixture
        if transactional and not (marker and "serialized_rollback" in marker.kwargs):
            args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
            item.add_marker(pytest.mark.django_db(*args, **{**kwargs, "transaction": True, "serialized_rollback": True}), append=False)


@pytest.fixture
def organization(db) -> Organization:
    return Organization.objects.create(name="Acme", slug="acme")


@pytest.fixture
def other_organization(db) -> Organization:
    return Organization.objects.create(name="Globex", slug="globex")


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    counter = {"n": 0}

    def make(role: str | None = Role.OWNER, organization: Organization | None = None, **extra):
        counter["n"] += 1
        user = get_user_model().objects.create_user(
            username=extra.pop("username", f"user{counter['n']}"), email=f"user{counter['n']}@example.com", password="pw-Secret-123", **extra
        )
        if role and organization is not None:
            Membership.objects.create(user=user, organization=organization, role=role)
        return user

    return make


@pytest.fixture
def users_by_role(organization, make_user) -> dict[str, object]:
    return {role: make_user(role, organization, username=f"{role}-user") for role in Role.values}


@pytest.fixture
def owner(users_by_role):
    return users_by_role[Role.OWNER]


@pytest.fixture
def outsider(other_organization, make_user):
    """A user who belongs only to another organization."""
    return make_user(Role.OWNER, other_organization, username="outsider")


@pytest.fixture
def api_for() -> Callable[[object], APIClient]:
    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def api(owner, api_for) -> APIClient:
    return api_for(owner)


@pytest.fixture(scope="session")
def sandbox_server():
    """The vendor sandbox over real HTTP on a free loopback port (session-wide)."""
    from sandbox.server import SandboxServer

    server = SandboxServer().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """A freshly reset sandbox; returns its base URL."""
    import requests

    requests.post(f"{sandbox_server.url}/_control/reset", timeout=5).raise_for_status()
    return sandbox_server.url


def run_sync(capture_on_commit, source, **kwargs):
    """Start a sync of a data source and run it in-process to its final status (capture_on_commit: Django's fixture)."""
    from sync.models import DataSyncJob
    from sync.services.jobs import sync_start

    with capture_on_commit(execute=True):
        job = sync_start(data_source=source, **kwargs)
    return DataSyncJob.objects.get(pk=job.pk)


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Poll until predicate() is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")


class RedisServer:
    """Our own redis-server on a free loopback port. Without `data_dir` a restart loses every key (queued messages
    included); with it, every write is fsynced to an append-only file there and survives a kill, as a production broker's do.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=5)

    def start(self) -> None:
        persistence = ["--appendonly", "no"]
        if self.data_dir is not None:
            persistence = ["--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always"]
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence, "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        wait_for(lambda: self._ping(client), timeout=10, message="redis-server to accept connections")
        client.close()

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def celery_worker_process(transactional_db, settings) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start real `celery worker` processes against the test database and Redis; killed at teardown."""
    if not os.environ.get("REDIS_URL"):
        pytest.fail("REDIS_URL must be set for worker tests (the README's test command sets it).")
    from django.db import connection

    processes: list[subprocess.Popen] = []

    def start(concurrency: int = 2, queues: str = "celery", extra_env: dict[str, str] | None = None, extra_args: Sequence[str] = ()) -> subprocess.Popen:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bastion_site",
                "worker",
                "-l",
                "info",
                "-P",
                "prefork",
                "-c",
                str(concurrency),
                "-Q",
                queues,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                *extra_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, so teardown reaches the pool children too
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        # Pool children outlive a killed main process (a test may kill it on purpose) and keep their database connections.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(autouse=True)
def _eager_celery_by_default(request):
    """Tasks run in-process unless a test starts a real worker (marked `worker`)."""
    from bastion_site.celery import app

    eager = request.node.get_closest_marker("worker") is None
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = eager
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _clean_cache():
    """Rate-limit counters, locks and cached values never leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page(monkeypatch):
    """A page in Debian's Chromium (never a downloaded browser), driven by Playwright."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls made here afterwards are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(20000)
        page = context.new_page()
        yield page
        context.close()
        browser.close()
        # ORM calls made while Playwright's event loop runs get their own database connections (Django keeps them per
        # context); left open they keep the test database busy and its teardown fails ("being accessed by other users").
        connections.close_all()


@pytest.fixture(autouse=True)
def _fresh_shared_connectors():
    """Connectors shared within a worker process never carry over from one test to the next."""
    from integrations.services import shared_connectors_forget

    shared_connectors_forget()
    yield
    shared_connectors_forget()
