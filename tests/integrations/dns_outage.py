"""A scripted resolver that can also fail a name the way getaddrinfo does (socket.gaierror), for DNS-outage tests."""

from __future__ import annotations

import socket
from typing import Any

from tests.integrations.dns_stub import FakeDns

# glibc's gai_strerror texts, so messages read as they would on a server.
GAI_MESSAGES = {
    socket.EAI_AGAIN: "Temporary failure in name resolution",
    socket.EAI_NONAME: "Name or service not known",
    socket.EAI_FAIL: "Non-recoverable failure in name resolution",
}


class OutageDns(FakeDns):
    """FakeDns whose `fail(name, code)` makes lookups of `name` raise socket.gaierror until `answer(name, ...)` is called again."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[str, int] = {}

    def fail(self, name: str, code: int = socket.EAI_AGAIN) -> None:
        self.failures[name] = code

    def answer(self, name: str, *answers: list[str]) -> None:
        self.failures.pop(name, None)
        super().answer(name, *answers)

    def __call__(self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> list[tuple]:  # noqa: A002
        name = host.rstrip(".").lower() if isinstance(host, str) else host
        if name in self.failures:
            self.lookups.append(name)
            code = self.failures[name]
            raise socket.gaierror(code, GAI_MESSAGES.get(code, "Name resolution failed"))
        return super().__call__(host, port, family, type, proto, flags)
