"""A plain TCP stream read and written without Trio's scheduler pass on every call.

Trio makes every socket call a checkpoint: a ``send_all`` or ``receive_some`` that succeeds at
once still yields to the scheduler afterwards, behind a cancellation check and an async
context manager. On a client connection that carries one request at a time (``raftkube bench
put --conns 64 --clients 64``: one request in flight per connection) that is paid for every
message, on the member and on the client: measured on this machine, a request and its answer
over a socket pair cost about 40 µs of CPU through ``trio.SocketStream`` against about 6 µs in
plain syscalls (docs/performance.md, "Writes per connection").

:class:`RawSocketStream` calls the socket directly and waits (``wait_readable`` /
``wait_writable``) only when the kernel says it would block, which is what Trio itself does
after its first attempt. It stays fair and cancellable by taking a checkpoint every
:data:`CALLS_PER_CHECKPOINT` calls that did not wait, so a peer that keeps the socket full
cannot keep its reader from ever yielding.

It wraps the stream's own file descriptor (no second descriptor): closing goes through the
wrapped stream, whose ``aclose`` wakes any task of ours waiting on it. Only plain
``trio.SocketStream`` s qualify (:func:`fast_stream`); TLS and the simulator's in-world streams
keep their own implementation.
"""

from __future__ import annotations

import socket
from typing import Final

import trio

from raftkube.net.nowait import NowaitStream

CALLS_PER_CHECKPOINT: Final = 16
"""Socket calls that may succeed in a row before one yields to the scheduler anyway."""
_ERRORS = (ConnectionError, OSError)


class RawSocketStream(NowaitStream):
    """``stream`` read and written with direct non-blocking socket calls; see the module."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._sock = socket.socket(fileno=stream.socket.fileno())
        self._sock.setblocking(False)
        self._unyielded = 0
        self._drained = False
        """The last receive got less than it asked for: the kernel had nothing more then."""

    async def _pace(self) -> None:
        self._unyielded += 1
        if self._unyielded >= CALLS_PER_CHECKPOINT:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        size = 65536 if max_bytes is None else max_bytes
        if self._drained:
            # The last read emptied the kernel's buffer, so a read now would most likely
            # fail with EAGAIN (a request-answer connection: the peer sends again only once
            # answered): wait first and save that syscall and its exception. Readiness is
            # level-triggered, so bytes that came meanwhile end the wait at once.
            self._drained = False
            self._unyielded = 0
            await self._wait_readable()
        while True:
            if self._sock.fileno() == -1:
                raise trio.ClosedResourceError("the stream was closed")
            try:
                data = self._sock.recv(size)
            except BlockingIOError:
                self._unyielded = 0
                await self._wait_readable()
                continue
            except _ERRORS as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            self._drained = 0 < len(data) < size
            await self._pace()
            return data

    async def _wait_readable(self) -> None:
        if self._sock.fileno() == -1:
            raise trio.ClosedResourceError("the stream was closed")
        await trio.lowlevel.wait_readable(self._sock)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                if self._sock.fileno() == -1:
                    raise trio.ClosedResourceError("the stream was closed")
                try:
                    sent += self._sock.send(view[sent:])
                except BlockingIOError:
                    self._unyielded = 0
                    await trio.lowlevel.wait_writable(self._sock)
                except _ERRORS as exc:
                    raise trio.BrokenResourceError(str(exc)) from exc
        await self._pace()

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive_nowait(self, max_bytes: int) -> bytes | None:
        """What the kernel has, up to ``max_bytes``, without waiting or yielding: ``b""`` at
        the end of the stream, None if nothing is there yet. Raises as :meth:`receive_some`."""
        if self._sock.fileno() == -1:
            raise trio.ClosedResourceError("the stream was closed")
        try:
            return self._sock.recv(max_bytes)
        except BlockingIOError:
            return None
        except _ERRORS as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """Send what the kernel takes at once, without waiting or yielding; how many bytes it
        took (0 if the socket buffer is full). Raises ``trio.ClosedResourceError`` or
        ``trio.BrokenResourceError`` as :meth:`send_all` would."""
        if self._sock.fileno() == -1:
            raise trio.ClosedResourceError("the stream was closed")
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0
        except _ERRORS as exc:
            raise trio.BrokenResourceError(str(exc)) from exc

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self._sock)

    def __del__(self) -> None:
        # The descriptor is the wrapped stream's to close: a socket object collected while
        # still holding it would close it, perhaps after it was reused by another socket.
        sock = getattr(self, "_sock", None)  # None if __init__ failed before setting it
        if sock is not None and sock.fileno() != -1:
            sock.detach()

    async def aclose(self) -> None:
        """Close the wrapped stream (which wakes a task of ours waiting on the socket); our
        socket object only lets go of the descriptor, which the stream closes."""
        if self._sock.fileno() != -1:
            self._sock.detach()
        await self._stream.aclose()


def fast_stream(stream: trio.abc.Stream) -> trio.abc.Stream:
    """``stream`` as a :class:`RawSocketStream` if it is a plain TCP stream, else as it is."""
    if type(stream) is trio.SocketStream:
        return RawSocketStream(stream)
    return stream
