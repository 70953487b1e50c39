"""Fixtures for the connector framework tests: demo-vendor tokens, an HttpClient with a recorded sleep, connected integrations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from integrations.http import CallRecord, HttpClient


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users are created per test; the production hasher's cost only slows the suite down here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo_base(sandbox) -> str:
    return f"{sandbox}/demo"


@pytest.fixture
def demo_token(sandbox) -> str:
    """A static API token the demo vendor accepts."""
    response = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "demo", "scopes": ["people:read", "people:write", "projects:read"]}, timeout=5)
    response.raise_for_status()
    return response.json()["token"]


class SleepRecorder:
    """An injected sleep: records waits instead of sleeping, so tests are fast and not timing sensitive."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_client(demo_base, demo_token, sleeps) -> Callable[..., tuple[HttpClient, list[CallRecord]]]:
    from integrations.http import BearerAuth

    def make(**kwargs: Any) -> tuple[HttpClient, list[CallRecord]]:
        calls: list[CallRecord] = []
        options: dict[str, Any] = {"auth": BearerAuth(demo_token), "recorder": calls.append, "sleep": sleeps, "timeout": (2.0, 5.0)}
        options.update(kwargs)
        return HttpClient(options.pop("base_url", demo_base), **options), calls

    return make


def hits(sandbox: str) -> dict[str, int]:
    return requests.get(f"{sandbox}/demo/_hits", timeout=5).json()


def sandbox_requests(sandbox: str, path_suffix: str) -> list[dict]:
    return [r for r in requests.get(f"{sandbox}/_control/requests", params={"vendor": "demo"}, timeout=5).json() if r["path"].endswith(path_suffix)]
