"""The sandbox's in-memory, thread-safe state: what Bastion created at each vendor, tokens, faults."""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Faults:
    latency_ms: int = 0
    rate_limit_next: int = 0  # answer the next N requests with the vendor's rate-limit response
    retry_after: int = 1
    error_rate: float = 0.0  # fraction of requests answered with `error_status`
    error_next: int = 0  # answer the next N requests with `error_status`
    error_status: int = 503
    error_retry_after: int | None = None  # send Retry-After with injected errors (a 503 that says when to come back)
    down: bool = False  # refuse every API request with 503
    revoked: bool = False  # every token of this vendor is refused (401 / vendor equivalent)
    quota_remaining: int | None = None  # daily-quota style budget (Salesforce); None = unlimited

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CreatedObject:
    vendor: str
    kind: str
    id: str
    summary: str
    url: str = ""
    created_at: float = field(default_factory=time.time)


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.collections: dict[str, dict[str, OrderedDict[str, Any]]] = {}
            self.faults: dict[str, Faults] = {}
            self.created: list[CreatedObject] = []
            self.tokens: dict[str, dict[str, Any]] = {}
            self.refresh_tokens: dict[str, dict[str, Any]] = {}
            self.codes: dict[str, dict[str, Any]] = {}
            self.request_log: list[dict[str, Any]] = []
            self.spec_mismatches: list[dict[str, Any]] = []  # requests/answers that disagree with the vendor's spec (spec_check)
            self.webhook_subscriptions: dict[str, list[dict[str, Any]]] = {}
            self._ids = itertools.count(10001)

    def next_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def collection(self, vendor: str, name: str) -> OrderedDict[str, Any]:
        with self.lock:
            return self.collections.setdefault(vendor, {}).setdefault(name, OrderedDict())

    def faults_for(self, vendor: str) -> Faults:
        with self.lock:
            return self.faults.setdefault(vendor, Faults())

    def record_created(self, vendor: str, kind: str, object_id: str, summary: str, url: str = "") -> None:
        with self.lock:
            self.created.append(CreatedObject(vendor, kind, str(object_id), summary, url))

    def created_by(self, vendor: str | None = None, kind: str | None = None) -> list[CreatedObject]:
        with self.lock:
            return [c for c in self.created if (vendor is None or c.vendor == vendor) and (kind is None or c.kind == kind)]

    def log_request(self, vendor: str, method: str, path: str, status: int) -> None:
        with self.lock:
            self.request_log.append({"vendor": vendor, "method": method, "path": path, "status": status, "at": time.time()})
            if len(self.request_log) > 5000:
                del self.request_log[:1000]


STORE = Store()
