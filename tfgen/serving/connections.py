"""REST connection hygiene aiohttp leaves to the deployment: a cap and a read timeout.

aiohttp waits forever for a request's headers or body, and takes every connection it is
offered, so a thousand idle sockets holding half a request exhaust the process's file
descriptors and gRPC stops answering too. `GuardedConnections` is the protocol factory
of the REST port, wrapping aiohttp's own request handler:

- at most `max_connections` open at once; further ones are closed as they arrive;
- a connection must deliver a complete request (headers and body) within
  `read_timeout` of opening, or of its previous response, or it is closed.

Each condition is logged on its first occurrence and then at most once a minute with a
count, never once per connection.
"""

import asyncio
import logging
import resource
import time

log = logging.getLogger("tfgen.serving")

LOG_EVERY_SECONDS = 60.0


def default_max_connections():
    """Half the process's file descriptor limit, at most 1024: gRPC keeps the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(16, min(1024, soft // 2))


class _Condition:
    """A warning logged once, then at most once per LOG_EVERY_SECONDS with a count."""

    def __init__(self, message):
        self.message = message
        self.count = 0
        self.logged_at = None

    def happened(self):
        self.count += 1
        now = time.monotonic()
        if self.logged_at is None or now - self.logged_at >= LOG_EVERY_SECONDS:
            log.warning("%s (%d time(s) since last reported)", self.message, self.count)
            self.count = 0
            self.logged_at = now


class GuardedConnections:
    """Protocol factory for `loop.create_server`: aiohttp's handler plus the guards.

    Args:
      handler_factory: aiohttp's `web.Server` (calling it makes a RequestHandler).
      max_connections: open REST connections allowed at once.
      read_timeout: seconds a connection may take to deliver a complete request.
    """

    def __init__(self, handler_factory, max_connections, read_timeout):
        self.handler_factory = handler_factory
        self.max_connections = max_connections
        self.read_timeout = read_timeout
        self.open = {}  # transport -> _Connection
        self.refused = _Condition(
            f"REST: refusing connections beyond {max_connections} open "
            "(--rest_max_connections)"
        )
        self.timed_out = _Condition(
            f"REST: closed connections that sent no complete request within "
            f"{read_timeout:g} s (--rest_read_timeout_seconds)"
        )

    def __call__(self):
        return _Connection(self)

    def request_started(self, transport):
        """The REST handler got a request's headers: its own timeouts apply now."""
        connection = self.open.get(transport)
        if connection:
            connection.busy(True)

    def request_finished(self, transport):
        connection = self.open.get(transport)
        if connection:
            connection.busy(False)


class _Connection(asyncio.Protocol):
    def __init__(self, guard):
        self.guard = guard
        self.handler = None
        self.transport = None
        self.timer = None

    def connection_made(self, transport):
        guard = self.guard
        if len(guard.open) >= guard.max_connections:
            guard.refused.happened()
            transport.abort()
            return
        self.transport = transport
        guard.open[transport] = self
        self.handler = guard.handler_factory()
        self.handler.connection_made(transport)
        self.busy(False)

    def busy(self, busy):
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if not busy and self.guard.read_timeout:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.guard.read_timeout, self._expire)

    def _expire(self):
        self.timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.guard.timed_out.happened()
            self.transport.abort()

    def data_received(self, data):
        if self.handler:
            self.handler.data_received(data)

    def eof_received(self):
        return self.handler.eof_received() if self.handler else False

    def pause_writing(self):
        if self.handler:
            self.handler.pause_writing()

    def resume_writing(self):
        if self.handler:
            self.handler.resume_writing()

    def connection_lost(self, exc):
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.guard.open.pop(self.transport, None)
        if self.handler:
            self.handler.connection_lost(exc)
