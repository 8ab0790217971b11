"""A connection's queued outgoing frames, written together, most often without its own task.

Every connection (a member's client connection, a client's connection to a member) queues its
frames from many places (a member's apply path answers writes, a client's requesters send
calls) and writes everything queued meanwhile in one ``send``. Each connection had a writer
task woken by an event for that: one task switch per connection per scheduler pass with
something to send. Over one connection carrying 64 requests that is shared by them all; over
64 connections with one request in flight each (``raftkube bench put --conns 64 --clients
64``) it is one task switch per request, on the member and on the client
(docs/performance.md, "Writes per connection").

So a connection on a :class:`~raftkube.net.nowait.NowaitStream` (a plain TCP stream, or the
fuzzer's in-world streams) is flushed by one task per Trio run (:class:`_Flusher`, a system
task started on first use): queueing a frame puts the connection on its list, and on its next
turn it writes each listed connection's frames in one non-blocking send: one task switch for
every connection that queued something in a pass, and the batching per connection stays as it
was. Only what the stream does not take at once (a full socket buffer: a slow reader, a large
answer; a paused simulated host) is left to the connection's own writer task, which then owns
the connection's writes until its queue is empty, so frames never interleave or reorder. Other
streams (TLS) have no non-blocking send: their writer task does everything.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from raftkube.net.nowait import NowaitStream


class _Flusher:
    """The connections with frames queued since this task's last turn, flushed in one turn."""

    def __init__(self) -> None:
        self._due: list[Outbox] = []
        self._wake = trio.Event()

    def add(self, box: Outbox) -> None:
        self._due.append(box)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            due, self._due = self._due, []
            for box in due:
                box._flush_now()


_FLUSHER: trio.lowlevel.RunVar[_Flusher] = trio.lowlevel.RunVar("raftkube_outbox_flusher")


def _flusher() -> _Flusher:
    try:
        return _FLUSHER.get()
    except LookupError:
        flusher = _Flusher()
        _FLUSHER.set(flusher)
        # A system task: it serves every connection of the run, whichever nursery opened
        # them, and ends with the run. It must never raise (that would crash the run), so
        # _flush_now hands every failure to the connection's own writer.
        trio.lowlevel.spawn_system_task(flusher.run, name="raftkube outbox flusher")
        return flusher


class Outbox:
    """One connection's queued frames. Either :meth:`run` (the connection's writer task)
    must run for them to be written, or, on a :class:`~raftkube.net.nowait.NowaitStream`,
    :meth:`attach` makes the run's flusher write them, and a writer task (:meth:`drain`) is
    started only while the stream does not take them at once: a connection then has no
    writer task most of its life (a task fewer to create, park and cancel per connection)."""

    def __init__(self) -> None:
        self._frames: list[bytes] = []
        self._wake = trio.Event()
        self._raw: NowaitStream | None = None
        self._start_writer: Callable[[], None] | None = None
        """Starts a task running :meth:`drain` (set by :meth:`attach`)."""
        self._writing = False
        """The writer task owns the writes (it is sending, or was woken to): none direct."""
        self._due = False
        """The connection is on the flusher's list."""
        self.flushed = trio.Event()
        """Set (and replaced) each time everything queued so far has been handed to the
        kernel: a large answer's next part waits for it rather than queueing every part."""

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, frame: bytes) -> None:
        """Queue an encoded frame; it is written on a later turn of the event loop."""
        self._frames.append(frame)
        if self._raw is None or self._writing:
            self._wake.set()
        elif not self._due:
            self._due = True
            _flusher().add(self)

    def _flush_now(self) -> None:
        """Write the queue with one non-blocking send; what the kernel does not take (or
        any failure, which the writer's own send then meets and reports) goes to the
        writer task."""
        self._due = False
        raw = self._raw
        if self._writing or not self._frames or raw is None:
            return
        frames, self._frames = self._frames, []
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        try:
            sent = raw.send_nowait(data)
        except Exception:  # Broken or closed: the writer's send_all raises it properly.
            sent = 0
        if sent < len(data):
            self._frames.insert(0, data[sent:])
            self._writing = True
            if self._start_writer is not None:
                try:
                    self._start_writer()
                except RuntimeError:
                    # Its nursery is closed: the connection is gone, nobody is to be
                    # written to, and the flusher (the run's system task) must not fail.
                    self._start_writer = None
            else:
                self._wake.set()
            return
        self.flushed.set()
        self.flushed = trio.Event()

    def attach(self, stream: NowaitStream, start_writer: Callable[[], None]) -> None:
        """Have the run's flusher write the queue to ``stream``; ``start_writer`` is called
        (from the flusher: it must not raise) when the stream does not take everything at
        once, and must start a task that awaits :meth:`drain`, or do nothing if the
        connection is closing."""
        self._raw = stream
        self._start_writer = start_writer
        if self._frames and not self._due:
            self._due = True
            _flusher().add(self)

    async def drain(self) -> None:
        """Write what the flusher left, and whatever is queued meanwhile, until nothing is
        left; then the flusher writes again. Raises what a write raises
        (``trio.BrokenResourceError``, ``trio.ClosedResourceError``), and the connection is
        then broken: nothing more is written."""
        stream = self._raw
        assert stream is not None, "drain needs an attached stream"
        await self._write_queued(stream)

    async def _write_queued(self, stream: trio.abc.SendStream) -> None:
        """Write every queued frame, and whatever is queued meanwhile, then say so
        (``flushed``)."""
        while self._frames:
            frames, self._frames = self._frames, []
            await stream.send_all(frames[0] if len(frames) == 1 else b"".join(frames))
        self._writing = False
        self.flushed.set()
        self.flushed = trio.Event()

    async def run(self, stream: trio.abc.Stream) -> None:
        """Write queued frames to ``stream`` until cancelled; raises what a write raises
        (``trio.BrokenResourceError``, ``trio.ClosedResourceError``)."""
        self._raw = stream if isinstance(stream, NowaitStream) else None
        try:
            while True:
                # Frames queued before this task started woke it already (no direct path).
                await self._wake.wait()
                self._wake = trio.Event()
                self._writing = True
                await self._write_queued(stream)
        finally:
            self._raw = None  # Nothing direct once the writer is gone.
