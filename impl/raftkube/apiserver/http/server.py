"""An HTTP/1.1 server on Trio: h11 parses and frames, this module only moves bytes and time.

Theory of operation. One task serves one connection (:meth:`HTTPServer.serve_stream`): TLS
handshake first when configured, then a loop of request, handler, response while the
connection stays reusable (keep-alive). Each request is read whole into a :class:`Request`
before the handler runs, so handlers never see a half-read body; a :class:`Response` is sent
with ``Content-Length`` and a :class:`StreamingResponse` with chunked transfer encoding, each
chunk written (and so flushed) as the producer yields it. While a stream is sent, a second
task in the same connection's nursery reads from the client: end of file means the client went
away, so the stream is cancelled and its iterator closed, as Go's server cancels a request's
context when its connection closes.

Timeouts follow kube-apiserver's ``http.Server`` (``secure_serving.go``): the request head
(request line and header fields) must arrive within ``header_timeout`` (32 s upstream, which
Go also applies to the TLS handshake), a kept-alive connection may sit idle between requests
for ``idle_timeout`` (90 s), and header fields may total 1 MiB (``MaxHeaderBytes``). A request
body gets ``idle_timeout`` between two reads, a simplification of upstream, which bounds whole
requests with its 60 s request timeout in a filter of its own. Every wait is measured on the
server's :class:`~raftkube.clock.Clock`, so a simulated host times out by its own clock.

Bodies are limited to ``max_body`` (3 MiB, upstream's ``MaxRequestBodyBytes``): a declared
length over it is refused before reading, a chunked body once it passes it, each with 413 and
the connection closed, because the rest of the body is still on the wire.

``Date`` is not sent: the server's only notion of time is its clock, which under simulation is
no wall clock (HTTP allows an origin server without a clock to omit it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import ssl
from collections.abc import Sequence

import attrs
import trio

from raftkube.apiserver.http.connection import (
    CLOSE_GRACE,
    RECEIVE_SIZE,
    Connection,
    remote_of,
)
from raftkube.apiserver.request import Handler
from raftkube.clock import Clock, TrioClock, move_on_after, sleep_for
from raftkube.net.streams import Network, TcpNetwork, bound_address

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 3 * 1024 * 1024
"""kube-apiserver's ``MaxRequestBodyBytes`` default."""

_LINGER = 0.5
"""How long a connection closed while the client may still be sending is drained first (Go's
``rstAvoidanceDelay``): closing a socket with unread data makes the kernel send a reset, which
can destroy the error response before the client reads it."""

_LINGER_BYTES = 4 * 1024 * 1024

_ACCEPT_BACKOFF = 0.1
"""Pause after ``accept`` fails for lack of descriptors or memory (as ``trio.serve_listeners``)."""

_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


@attrs.frozen
class HTTPServer:
    """Serves ``handler`` over HTTP/1.1, over TLS when ``ssl_context`` is set.

    ``ssl_context`` is typically :func:`~raftkube.apiserver.http.tls.server_ssl_context`: the
    client certificate it verified reaches the handler as ``Request.peer_certificate`` (DER).
    """

    handler: Handler
    ssl_context: ssl.SSLContext | None = None
    clock: Clock = attrs.field(factory=TrioClock)
    max_body: int = DEFAULT_MAX_BODY
    idle_timeout: float = 90.0
    header_timeout: float = 32.0

    async def serve_network(
        self,
        network: Network,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen on ``host:port`` of ``network`` (the stream seam: Trio TCP in production,
        in-world streams in the simulator) until cancelled; reports the bound port, which for
        ``port=0`` is the first listener's."""
        listeners = await network.open_listeners(host, port)
        bound = bound_address(listeners[0])[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(self.serve, listeners)
            task_status.started(bound)

    async def serve_tcp(
        self,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """:meth:`serve_network` on Trio's TCP."""
        await self.serve_network(TcpNetwork(), host, port, task_status=task_status)

    async def serve(
        self,
        listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept on every listener until cancelled, each connection in its own task of this
        call's nursery (so cancelling the caller's scope ends them all). The listeners are
        closed when this returns."""
        try:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(self._accept_loop, listener, nursery)
                task_status.started()
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await trio.aclose_forcefully(listener)

    async def _accept_loop(
        self, listener: trio.abc.Listener[trio.abc.Stream], nursery: trio.Nursery
    ) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _CAPACITY_ERRNOS:
                    raise
                logger.error("accept failed (%s); pausing before the next accept", exc)
                await sleep_for(self.clock, _ACCEPT_BACKOFF)
                continue
            nursery.start_soon(self.serve_stream, stream, remote_of(stream))

    async def serve_stream(self, stream: trio.abc.Stream, remote: str = "") -> None:
        """Serve one connection until the client closes it, it idles out, or a response ends
        it; always closes ``stream``. Never raises for what a client does (a failure here would
        cancel every other connection of :meth:`serve`)."""
        peer_certificate: bytes | None = None
        try:
            if self.ssl_context is not None:
                tls = trio.SSLStream(
                    stream, self.ssl_context, server_side=True, https_compatible=True
                )
                stream = tls
                with move_on_after(self.clock, self.header_timeout) as slow:
                    try:
                        await tls.do_handshake()
                    except trio.BrokenResourceError as exc:
                        logger.debug("TLS handshake with %s failed: %s", remote, exc.__cause__)
                        return
                if slow.cancelled_caught:
                    logger.debug("TLS handshake with %s timed out", remote)
                    return
                peer_certificate = tls.getpeercert(binary_form=True)
            connection = Connection(self, stream, remote, peer_certificate)
            await connection.run()
            if connection.must_linger:
                await self._linger(stream)
        except Exception:
            logger.exception("connection from %s failed", remote)
        finally:
            with move_on_after(self.clock, CLOSE_GRACE) as scope:
                scope.shield = True
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.aclose()

    async def _linger(self, stream: trio.abc.Stream) -> None:
        """Half-close where the stream can, then drain what the client still sends for a short
        while, so the last response is read before the connection is torn down."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            drained = 0
            with move_on_after(self.clock, _LINGER):
                while drained < _LINGER_BYTES:
                    data = await stream.receive_some(RECEIVE_SIZE)
                    if not data:
                        break
                    drained += len(data)
