"""The byte-stream seam: every component dials and listens through one :class:`Network`.

Production components never call ``trio.open_tcp_stream`` or ``trio.open_tcp_listeners``
themselves; they take a :class:`Network`, so the deterministic simulator can hand them
in-world streams (latency, stalls, resets, partitions) instead of sockets, and run the very
same client library and client listener. :class:`TcpNetwork` is Trio's TCP;
:class:`TlsNetwork` adds TLS on top of any network, with the handshake bounded on the
component's own :class:`~raftkube.clock.Clock`.

Addresses are ``(host, port)`` pairs as for TCP; a simulated network gives them the meaning
it likes (a host's name and a port it listens on).
"""

from __future__ import annotations

import ssl
from typing import Protocol, runtime_checkable

import attrs
import trio

from raftkube.clock import Clock, fail_after

Listener = trio.abc.Listener[trio.abc.Stream]


@runtime_checkable
class Network(Protocol):
    """Where a component's byte streams come from.

    ``open_stream`` raises :class:`OSError` when nobody listens at the address (a refused or
    unreachable connection) and may raise :class:`trio.TooSlowError` when it gives up; a
    stream that breaks later raises :class:`trio.BrokenResourceError` from ``send_all`` or
    ``receive_some``, as a TCP stream does."""

    async def open_stream(self, host: str, port: int) -> trio.abc.Stream:
        """A connected stream to ``host:port``."""
        ...

    async def open_listeners(self, host: str, port: int) -> list[Listener]:
        """Listeners bound at ``host:port`` (port 0: any free port; see
        :func:`bound_address`)."""
        ...


@runtime_checkable
class AddressedListener(Protocol):
    """A listener that knows the address it is bound to (the simulated ones do)."""

    @property
    def address(self) -> tuple[str, int]: ...


def bound_address(listener: Listener) -> tuple[str, int]:
    """The ``(host, port)`` a listener accepts on: a TCP socket's name, a TLS listener's
    transport's, or an :class:`AddressedListener`'s own."""
    if isinstance(listener, TlsListener):
        return bound_address(listener.transport_listener)
    if isinstance(listener, AddressedListener):
        return listener.address
    if isinstance(listener, trio.SocketListener):
        host, port = listener.socket.getsockname()[:2]
        return str(host), int(port)
    raise TypeError(f"cannot tell the address of {listener!r}")


@attrs.frozen
class TcpNetwork:
    """Trio's TCP: the production network."""

    async def open_stream(self, host: str, port: int) -> trio.abc.Stream:
        return await trio.open_tcp_stream(host, port)

    async def open_listeners(self, host: str, port: int) -> list[Listener]:
        return list(await trio.open_tcp_listeners(port, host=host))


class TlsListener(trio.abc.Listener[trio.abc.Stream]):
    """Server-side TLS over another network's listener.

    ``accept`` wraps each connection without handshaking: a slow or hostile client must not
    hold up the accept loop, so the handshake happens in the connection's own task, bounded
    by :func:`handshake` (or on its first read, unbounded, if nobody calls it)."""

    def __init__(self, transport_listener: Listener, context: ssl.SSLContext) -> None:
        self.transport_listener = transport_listener
        self.context = context

    async def accept(self) -> trio.abc.Stream:
        stream = await self.transport_listener.accept()
        return trio.SSLStream(stream, self.context, server_side=True, https_compatible=False)

    async def aclose(self) -> None:
        await self.transport_listener.aclose()


async def handshake(stream: trio.abc.Stream, clock: Clock, seconds: float) -> None:
    """Finish a TLS stream's handshake within ``seconds`` on ``clock`` (nothing to do for a
    plain stream). Raises :class:`trio.TooSlowError` or :class:`trio.BrokenResourceError`
    (a client that is not TLS, not trusted, or sends no certificate when one is required)."""
    if isinstance(stream, trio.SSLStream):
        with fail_after(clock, seconds):
            await stream.do_handshake()


@attrs.frozen
class TlsNetwork:
    """TLS over ``inner``: dialled streams are handshaken (within ``handshake_timeout`` on
    ``clock``) as the client with ``client_context``, verified against the dialled host or
    ``server_hostname``; listeners are :class:`TlsListener` with ``server_context``. A side
    without its context refuses to be used."""

    inner: Network
    clock: Clock
    client_context: ssl.SSLContext | None = None
    server_context: ssl.SSLContext | None = None
    handshake_timeout: float = 10.0
    server_hostname: str | None = None

    async def open_stream(self, host: str, port: int) -> trio.abc.Stream:
        if self.client_context is None:
            raise ValueError("this TLS network has no client context")
        stream = await self.inner.open_stream(host, port)
        tls = trio.SSLStream(
            stream, self.client_context, server_hostname=self.server_hostname or host
        )
        try:
            await handshake(tls, self.clock, self.handshake_timeout)
        except BaseException:
            await trio.aclose_forcefully(tls)
            raise
        return tls

    async def open_listeners(self, host: str, port: int) -> list[Listener]:
        if self.server_context is None:
            raise ValueError("this TLS network has no server context")
        listeners = await self.inner.open_listeners(host, port)
        return [TlsListener(li, self.server_context) for li in listeners]
