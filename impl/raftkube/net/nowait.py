"""Streams read and written without a task waking per connection, and the reading loop they share.

A connection that waits for bytes in a task of its own pays a task switch for every message it
receives, and one for every batch it sends if its writer is a task too. The client library and
the client listener avoid both where the stream allows it: one task of the whole process writes
every connection's queued frames (:mod:`raftkube.net.outbox`), and the bytes that arrive are
handed to the connection's frame handler by whatever learns of them, without waking the
connection's task (:func:`read_pushed`). Two kinds of stream allow it:

* :class:`NowaitStream`: it can be read and written without waiting
  (:meth:`~NowaitStream.receive_nowait`, :meth:`~NowaitStream.send_nowait`). A plain TCP
  stream (:class:`~raftkube.net.rawstream.RawSocketStream`) is one; *when* it has bytes is
  learnt from a :class:`~raftkube.net.poller.ReadPoller`, one task polling them all.
* :class:`NotifyingStream`: a :class:`NowaitStream` that says itself when it may have become
  readable (:meth:`~NotifyingStream.set_reader`), because the bytes are put into it by code in
  the same process rather than by a kernel: the fuzzer's in-world streams are one. Nothing
  polls it at all.

Either way the connection's own task only waits for the connection to end, and an error in
handling a frame is raised there, in that connection's task, never in the poller's or in the
code that delivered the bytes (which must not fail because of one connection).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable

import trio

from raftkube.net.framing import FrameError, FrameSplitter


class NowaitStream(trio.abc.Stream):
    """A stream whose bytes can be taken and given without waiting."""

    @abc.abstractmethod
    def receive_nowait(self, max_bytes: int) -> bytes | None:
        """What has arrived, up to ``max_bytes``, without waiting or yielding: ``b""`` at
        the end of the stream, None if nothing is there yet. Raises
        ``trio.BrokenResourceError`` or ``trio.ClosedResourceError`` as ``receive_some``
        would."""

    @abc.abstractmethod
    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """Send what can be taken at once, without waiting or yielding; how many bytes were
        taken (0 if none could be). Raises as ``send_all`` would."""


class NotifyingStream(NowaitStream):
    """A :class:`NowaitStream` that calls its reader back whenever it may have become
    readable, so that nothing needs to poll it."""

    @abc.abstractmethod
    def set_reader(self, handler: Callable[[], None] | None) -> None:
        """Call ``handler`` (None: nobody) synchronously whenever :meth:`receive_nowait` may
        return something other than None (bytes, the end, or an error), and at once if it
        may already. Level-triggered: while bytes are left unread it is called again. The
        handler must not raise."""


async def read_pushed(
    stream: NowaitStream,
    watch: Callable[[Callable[[], None]], None],
    unwatch: Callable[[], None],
    take: Callable[[bytes], None],
    *,
    max_frame: int,
    chunk: int,
    garbled: tuple[type[Exception], ...] = (),
    meanwhile: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Hand every frame read from ``stream`` to ``take``, from a handler that ``watch``
    registers to be called when the stream is readable, until the stream ends, breaks or
    carries a malformed frame (or ``take`` raises one of ``garbled``: the peer sent
    garbage); the calling task only waits for that, running ``meanwhile`` (if given; it is
    cancelled then) so that a connection's other chores need no task of their own. Each call
    of the handler reads at most ``chunk`` bytes. Any other exception ``take`` raises ends
    the reading too and is raised here, in the calling task."""
    splitter = FrameSplitter(max_frame)
    ending: tuple[type[Exception], ...] = (
        FrameError,
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        *garbled,
    )
    ended = trio.Event()
    waiting = trio.CancelScope()
    failures: list[Exception] = []

    def on_readable() -> None:
        try:
            data = stream.receive_nowait(chunk)
            if data is None:
                return
            if data:
                for frame in splitter.feed(data):
                    take(frame)
                return
        except ending:
            pass  # A broken, closed or garbled connection ends.
        except Exception as exc:
            failures.append(exc)
        unwatch()
        ended.set()
        if meanwhile is not None:
            waiting.cancel()

    with waiting:
        watch(on_readable)
        try:
            if meanwhile is not None:
                await meanwhile()
            await ended.wait()
        finally:
            unwatch()
    if failures:
        raise failures[0]
