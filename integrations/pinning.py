"""Connections that go only to addresses the SSRF guard vetted: a requests adapter whose sockets come from the guard.

Resolving once, vetting every answer and connecting to a vetted address closes the DNS-rebinding window between the check
and the connection. Used by integrations.http.HttpClient whenever its url_guard can pin.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import requests
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager
from urllib3.util.timeout import _DEFAULT_TIMEOUT


@runtime_checkable
class PinningGuard(Protocol):
    """A url_guard that also opens the sockets, so a connection only reaches addresses it vetted (integrations.ssrf.UrlGuard)."""

    def __call__(self, url: str) -> None: ...

    def check_target(self, url: str) -> None:
        """The checks that need no DNS, run on every request and redirect hop."""
        ...

    def connect(
        self,
        address: tuple[str, int],
        timeout: float | None = None,
        *,
        source_address: tuple[str, int] | None = None,
        socket_options: Sequence[tuple[int, int, int | bytes]] | None = None,
    ) -> socket.socket:
        """Resolve once, vet every answer, connect to a vetted address."""
        ...


class _PinnedConnectionMixin:
    """urllib3 connection whose socket comes from the guard; Host header, SNI and certificate checks keep the hostname."""

    def __init__(self, *args: Any, pinning_guard: PinningGuard, **kwargs: Any):
        self._pinning_guard = pinning_guard
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        # urllib3's own _new_conn, with create_connection swapped for the guard's (which raises UnsafeBaseUrl).
        timeout = socket.getdefaulttimeout() if self.timeout is _DEFAULT_TIMEOUT else self.timeout
        try:
            sock = self._pinning_guard.connect((self._dns_host, self.port), timeout, source_address=self.source_address, socket_options=self.socket_options)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedPoolManager(PoolManager):
    def __init__(self, pinning_guard: PinningGuard, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pinning_guard = pinning_guard
        self.pool_classes_by_scheme = {"http": _PinnedHTTPConnectionPool, "https": _PinnedHTTPSConnectionPool}

    def _new_pool(self, scheme: str, host: str, port: int, request_context: dict[str, Any] | None = None) -> HTTPConnectionPool:
        # Added after the pool key is computed: the guard reaches each connection without being part of the key.
        context = dict(self.connection_pool_kw if request_context is None else request_context, pinning_guard=self.pinning_guard)
        return super()._new_pool(scheme, host, port, context)


class PinnedAdapter(HTTPAdapter):
    """A requests transport adapter whose connections go only to addresses the guard vetted (no DNS-rebinding window)."""

    __attrs__ = [*HTTPAdapter.__attrs__, "guard"]

    def __init__(self, guard: PinningGuard, *, pool_connections: int = DEFAULT_POOLSIZE, pool_maxsize: int = DEFAULT_POOLSIZE):
        self.guard = guard
        super().__init__(pool_connections=pool_connections, pool_maxsize=pool_maxsize)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: Any) -> None:
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = _PinnedPoolManager(self.guard, num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if select_proxy(request.url or "", kwargs.get("proxies")):
            # Through an egress proxy the proxy opens the connection: the name is vetted here, the proxy must pin it.
            self.guard(request.url or "")
        return super().send(request, *args, **kwargs)
