"""HTTP/1.1 client connections to one server, kept alive and reused (h11 on Trio streams).

Every connection is opened through ``dial(host, port)``, the seam the simulated network plugs
into, then wrapped in TLS when the pool has an ``ssl_context``. At most ``max_connections``
are in use at once (a watch holds one for its whole life, as it does over HTTP/1.1 in
client-go); a caller beyond that waits for one to be released. A connection whose exchange
ended cleanly on both sides goes back to the pool; one idle longer than ``idle_timeout`` is
closed instead of reused, which keeps the pool clear of connections the server is about to
drop (kube-apiserver closes idle ones after 90 s, so the default here is 60 s).

The pool runs no tasks of its own: connections are only touched by the task using them.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import h11
import trio

from raftkube.clock import Clock, fail_after
from raftkube.kubeclient.errors import KubeConnectionError

Dial = Callable[[str, int], Awaitable[trio.abc.Stream]]

_RECEIVE_SIZE = 64 * 1024
_MAX_HEAD = 1 << 20


@attrs.define(eq=False)
class Connection:
    """One HTTP/1.1 connection; ``reused`` tells whether it served an earlier exchange, and
    ``answered`` whether the current exchange has received any bytes (a reused connection that
    breaks before that was most likely closed by the server while idle)."""

    stream: trio.abc.Stream
    protocol: h11.Connection = attrs.field(
        factory=lambda: h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
    )
    reused: bool = False
    answered: bool = False
    idle_since: float = 0.0

    async def send_request(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes | None
    ) -> None:
        fields = list(headers)
        if body is not None:
            fields.append(("Content-Length", str(len(body))))
        request = h11.Request(
            method=method,
            target=target.encode("ascii"),
            headers=[(n.encode("ascii"), v.encode("utf-8")) for n, v in fields],
        )
        # One write for the whole request: one system call (one TLS record) instead of three.
        body_events = (h11.Data(data=body),) if body else ()
        await self._send(request, *body_events, h11.EndOfMessage())

    async def receive_response(self) -> h11.Response:
        """The final response's head (1xx interim answers are skipped)."""
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise KubeConnectionError(f"unexpected {type(event).__name__} before a response")

    async def receive_data(self) -> bytes | None:
        """The next piece of the response body, or None once it is complete."""
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return None
            else:
                raise KubeConnectionError(f"unexpected {type(event).__name__} in a response body")

    async def receive_body(self) -> bytes:
        parts = []
        while (part := await self.receive_data()) is not None:
            parts.append(part)
        return b"".join(parts)

    def finish(self) -> bool:
        """After a complete exchange: ready the connection for the next one if both sides
        allow it (no ``Connection: close``, response read to its end)."""
        if self.protocol.our_state is h11.DONE and self.protocol.their_state is h11.DONE:
            self.protocol.start_next_cycle()
            self.reused = True
            self.answered = False
            return True
        return False

    async def _send(self, *events: Any) -> None:
        data = b"".join(self.protocol.send(event) or b"" for event in events)
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise KubeConnectionError(f"connection broke while sending: {exc}") from exc

    async def _next_event(self) -> Any:
        while True:
            try:
                event = self.protocol.next_event()
            except h11.RemoteProtocolError as exc:
                raise KubeConnectionError(f"bad response from the server: {exc}") from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self.stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise KubeConnectionError(f"connection broke while receiving: {exc}") from exc
            if data:
                self.answered = True
            self.protocol.receive_data(bytes(data))


@attrs.define
class ConnectionPool:
    """Keep-alive connections to ``host:port``; see the module docstring."""

    host: str
    port: int
    dial: Dial
    clock: Clock
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    max_connections: int = 100
    idle_timeout: float = 60.0
    connect_timeout: float = 30.0
    opened: int = 0
    """How many connections were dialled so far (reuse shows as this staying low)."""
    _idle: list[Connection] = attrs.field(factory=list)
    _slots: trio.Semaphore = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._slots = trio.Semaphore(self.max_connections)

    async def acquire(self) -> Connection:
        """A connection for one exchange: the most recently used idle one still fresh, else a
        new one. Waits while ``max_connections`` are in use."""
        try:
            # Most of the time a slot is free: take it without a trip through the scheduler
            # (the exchange that follows checkpoints on its first read or write anyway).
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            await self._slots.acquire()
        try:
            now = self.clock.now()
            while self._idle:
                conn = self._idle.pop()
                if now - conn.idle_since < self.idle_timeout:
                    return conn
                await trio.aclose_forcefully(conn.stream)
            return await self._open()
        except BaseException:
            self._slots.release()
            raise

    async def release(self, conn: Connection, reusable: bool) -> None:
        """Give back a connection from :meth:`acquire`; it is kept only if ``reusable`` and its
        exchange finished cleanly."""
        try:
            if reusable and conn.finish():
                conn.idle_since = self.clock.now()
                self._idle.append(conn)
            else:
                await trio.aclose_forcefully(conn.stream)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Close the idle connections (those in use are closed by their users)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await trio.aclose_forcefully(conn.stream)

    async def _open(self) -> Connection:
        try:
            with fail_after(self.clock, self.connect_timeout):
                stream = await self.dial(self.host, self.port)
                if self.ssl_context is not None:
                    tls = trio.SSLStream(
                        stream,
                        self.ssl_context,
                        server_hostname=self.server_hostname or self.host,
                        https_compatible=True,
                    )
                    try:
                        await tls.do_handshake()
                    except BaseException:
                        await trio.aclose_forcefully(tls)
                        raise
                    stream = tls
        except trio.TooSlowError:
            raise KubeConnectionError(
                f"connecting to {self.host}:{self.port} timed out after {self.connect_timeout} s",
                sent=False,
            ) from None
        except (OSError, trio.BrokenResourceError) as exc:
            cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
            raise KubeConnectionError(
                f"cannot connect to {self.host}:{self.port}: {cause}", sent=False
            ) from exc
        self.opened += 1
        return Connection(stream)
