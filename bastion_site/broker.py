"""kombu's Redis transport, fixed so a worker survives its broker restarting while late-acked tasks are in flight.

On connection loss Celery 5.7's consumer first `collect()`s the broken connection, which detaches the transport from
its `kombu.Connection` (`transport.client = None`), and then `close()`s it again. When the first close was cut short
by the dead socket, the second one tries to restore the unacked messages, needs the broker address from
`transport.client`, and raises `AttributeError: 'NoneType' object has no attribute 'hostname'`. That is not a
connection error, so the worker logs "Unrecoverable error" and exits. The late ack of a task that was running during
the outage goes through the same path and is lost too, leaving its message to be redelivered a second time.
"""

from __future__ import annotations

from typing import Any

from kombu import transport as kombu_transports
from kombu.transport import redis


class Channel(redis.Channel):
    """A Redis channel that still knows its broker's address after the consumer has detached its transport."""

    def __init__(self, connection: redis.Transport, *args: Any, **kwargs: Any) -> None:
        self._broker_connection = connection.client
        super().__init__(connection, *args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            # Re-attach only this channel's orphaned transport: the consumer has already moved on to a new one.
            self.connection.client = self._broker_connection
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    """The `redis://` and `rediss://` broker transport, with `Channel` above."""

    Channel = Channel


def transport_register() -> None:
    """Serve `redis://` and `rediss://` broker URLs with `Transport` (kombu keeps the scheme, so TLS defaults still apply)."""
    for scheme in ("redis", "rediss"):
        kombu_transports.TRANSPORT_ALIASES[scheme] = f"{__name__}:Transport"
        kombu_transports._transport_cache.pop(scheme, None)
