"""One pipelined client connection: requests out, answers matched back to them by id.

The client's hot path is here, so it is built to cost little per request:

* **No lock and no syscall per request.** :meth:`Connection.call` encodes the frame into an
  outbox and returns; everything queued meanwhile goes out in one send (many requesters on
  one connection share one write, as the server's replies do), and one task of the whole run
  makes the sends of every connection (:mod:`raftkube.net.outbox`), so a pool of connections
  with one request in flight each does not pay a writer task switch per request. Answers
  over plain TCP are read by one task of the whole run too (:func:`raftkube.net.poller.
  shared_poller`), and those over a stream that hands its bytes over itself (the fuzzer's
  in-world streams, :class:`~raftkube.net.nowait.NotifyingStream`) by no task at all, not by
  a reading task woken per answer on each connection.
* **No channel and no cancel scope per request.** An answer is handed to its waiting task by a
  :class:`Reply` that reschedules that task directly. The request timeout is enforced by one
  timer task per connection rather than a deadline per request: every call on a connection has
  the same timeout, so the oldest unanswered call always expires first, and the timer sleeps
  until that one's deadline. A call does not wake the timer either: with no call left it looks
  again one timeout later, and a call made meanwhile is due after that (on a connection with
  one call at a time, waking it at each call and again at each answered call's deadline was
  two task switches per request). Deadlines are read on the client's
  :class:`~raftkube.clock.Clock`, so a simulated client host times out by its own time.

A range answer too large for one frame arrives as several frames of its id (``docs/
client-protocol.md``, "Large answers"): the KeyValues of those marked ``partial`` are decoded
as they arrive (so a million-key answer is never held as a million msgpack maps as well as a
million KeyValues) and held until the last frame, and the call is answered with all of them
joined into one body, so callers never see parts. The request timeout restarts with each
part that arrives: a large answer that keeps arriving is not a member that stopped answering
(rkctl's ``--command-timeout`` still bounds the whole command, as etcdctl's does).

Watches are long-lived streams of answers, so they keep a memory channel each. A watcher that
falls a whole channel behind is not fed further (the reader never waits on one slow consumer,
which would stall every call on the connection); its channel is closed and its id recorded in
:attr:`Connection.overflowed`, so that the watch ends with an error rather than silently
missing events.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]
import outcome
import trio

from raftkube.api import wire
from raftkube.clock import Clock, TrioClock
from raftkube.net.framing import FrameError, FrameReader, encode_frame
from raftkube.net.nowait import NotifyingStream, NowaitStream, read_pushed
from raftkube.net.outbox import Outbox
from raftkube.net.poller import ReadPoller, shared_poller
from raftkube.net.rawstream import RawSocketStream, fast_stream
from raftkube_spec.kv.types import KeyValue

MAX_FRAME: Final = 64 * 1024 * 1024
RECEIVE_CHUNK: Final = 65536
"""The most one read of a polled connection takes."""

Frame = dict[str, Any]


class BrokenError(Exception):
    """The connection died before the answer arrived."""


_BROKEN: Final[Frame] = {}
"""Delivered to a reply whose connection died (compared by identity)."""
_TIMED_OUT: Final[Frame] = {}
"""Delivered to a reply whose deadline passed (compared by identity)."""


class Reply:
    """The answer to one call: delivered once, awaited by at most one task."""

    __slots__ = ("_conn", "_msg", "_task", "deadline", "on_part", "rid")

    def __init__(
        self,
        conn: Connection,
        rid: int,
        deadline: float,
        on_part: Callable[[], None] | None = None,
    ) -> None:
        self._conn = conn
        self.rid = rid
        self.deadline = deadline
        self.on_part = on_part
        """Called as each part of a split answer arrives (a caller's progress deadline)."""
        self._msg: Frame | None = None
        self._task: trio.lowlevel.Task | None = None

    @property
    def answered(self) -> bool:
        return self._msg is not None

    def deliver(self, msg: Frame) -> None:
        if self._msg is not None:
            return
        self._msg = msg
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task, outcome.Value(None))

    async def wait(self) -> Frame:
        """The answer frame; raises :class:`BrokenError` if the connection died first and
        :class:`trio.TooSlowError` if the client's request timeout passed."""
        try:
            if self._msg is None:
                self._task = trio.lowlevel.current_task()

                def abort(_: object) -> trio.lowlevel.Abort:
                    self._task = None
                    return trio.lowlevel.Abort.SUCCEEDED

                await trio.lowlevel.wait_task_rescheduled(abort)
            else:
                await trio.lowlevel.checkpoint()
        finally:
            self._conn.calls.pop(self.rid, None)
        msg = self._msg
        assert msg is not None
        if msg is _BROKEN:
            raise BrokenError("connection closed")
        if msg is _TIMED_OUT:
            raise trio.TooSlowError
        return msg


def part_kvs(frame: Frame) -> list[KeyValue]:
    """The KeyValues of one ``partial`` frame; raises :class:`~raftkube.api.wire.WireError`
    naming the field if the frame is malformed."""
    body = frame.get("body")
    if not isinstance(body, dict):
        raise wire.WireError("body", "a partial answer carries a map")
    return wire.decode_kvs(body.get("kvs"), "body.kvs")


def join_parts(parts: list[KeyValue], last: Frame) -> Frame:
    """One answer from the KeyValues of a large range answer's ``partial`` frames and its
    last frame: all of them, in order, with the last frame's other fields (the codec takes
    decoded KeyValues as they are). A last frame that is an error (the member could not send
    the rest) is the answer as it is."""
    if not last.get("ok"):
        return last
    body = last.get("body")
    rest = body.get("kvs") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(rest, list):
        return last  # Malformed: the codec names what is wrong.
    return {**last, "body": {**body, "kvs": [*parts, *rest]}}


class Connection:
    """A connection to one endpoint; run :meth:`run` in a nursery, then call away."""

    def __init__(
        self,
        endpoint: str,
        stream: trio.abc.Stream,
        timeout: float,
        clock: Clock | None = None,
    ) -> None:
        if not timeout > 0:
            # The expiry timer looks again one timeout later while no call waits.
            raise ValueError(f"a request timeout must be positive, got {timeout}")
        self.endpoint = endpoint
        self.clock: Clock = clock if clock is not None else TrioClock()
        self.stream = fast_stream(stream)
        self.timeout = timeout
        self.scope = trio.CancelScope()
        self.calls: dict[int, Reply] = {}
        """Unanswered calls by request id, oldest first (so earliest deadline first)."""
        self.streams: dict[int, trio.MemorySendChannel[Frame]] = {}
        """Watches by request id."""
        self.overflowed: set[int] = set()
        """Watches whose consumer fell a whole channel behind: cut off, not fed further."""
        self.broken = False
        self._parts: dict[int, list[KeyValue]] = {}
        """The KeyValues received so far of answers still arriving, by request id."""
        self._bad_parts: dict[int, Frame] = {}
        """Answers whose parts were malformed: the error their call gets at the end."""
        self._outbox = Outbox()

    # --- sending ---------------------------------------------------------------------------

    def _queue(self, frame: Frame) -> None:
        if self.broken:
            raise BrokenError("connection closed")
        self._outbox.put(encode_frame(msgpack.packb(frame, use_bin_type=True), MAX_FRAME))

    def call(self, rid: int, frame: Frame, on_part: Callable[[], None] | None = None) -> Reply:
        """Queue ``frame`` (whose id is ``rid``); the answer arrives through the reply, and
        ``on_part`` is called for each part of it that arrives before the last."""
        self._queue(frame)
        reply = Reply(self, rid, self.clock.now() + self.timeout, on_part)
        self.calls[rid] = reply
        return reply

    def open_stream(
        self, rid: int, frame: Frame, capacity: int
    ) -> trio.MemoryReceiveChannel[Frame]:
        """Queue ``frame`` and return the channel of every answer to ``rid``."""
        self._queue(frame)
        send, recv = trio.open_memory_channel[Frame](capacity)
        self.streams[rid] = send
        return recv

    def send_nowait(self, frame: Frame) -> None:
        """Queue a frame whose answer nobody waits for."""
        self._queue(frame)

    def close(self) -> None:
        self.broken = True
        self.scope.cancel()

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Read answers, write the outbox and expire overdue calls until the connection
        breaks or is closed; then fail every waiting call.

        On a stream that can be read and written without waiting (plain TCP, the fuzzer's
        in-world streams) this is the connection's only task most of its life: the answers
        are handed over as they arrive, the run's flusher writes the outbox (a writer task
        is started only while the stream takes less than is queued), and this task expires
        the overdue calls meanwhile."""
        try:
            with self.scope:
                async with trio.open_nursery() as nursery:
                    stream = self.stream
                    if isinstance(stream, NowaitStream):
                        self._outbox.attach(stream, partial(self._start_writer, nursery))
                    else:
                        nursery.start_soon(self._write_loop, nursery.cancel_scope)
                    if not await self._read_pushed(stream):
                        nursery.start_soon(self._expire_loop)
                        await self._read_loop()
                    nursery.cancel_scope.cancel()
        finally:
            self.broken = True
            calls, self.calls = self.calls, {}
            for reply in calls.values():
                reply.deliver(_BROKEN)
            for chan in self.streams.values():
                chan.close()
            self.streams.clear()
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _read_pushed(self, stream: trio.abc.Stream) -> bool:
        """If answers can be handed to :meth:`_take` as they arrive, without a task woken
        for them (:func:`raftkube.net.nowait.read_pushed`), do so until the connection ends
        or breaks, expiring overdue calls meanwhile, and return True; return False at once
        if not. An answer that is not msgpack (ValueError) ends the connection; an
        unexpected error in handling one is raised here, in this connection's task."""
        if isinstance(stream, NotifyingStream):
            # The stream hands over its bytes itself (the fuzzer's in-world streams).
            watch: Callable[[Callable[[], None]], None] = stream.set_reader
            unwatch: Callable[[], None] = partial(stream.set_reader, None)
        elif isinstance(stream, RawSocketStream) and ReadPoller.available():
            # The run's one poller reads this connection (raftkube.net.poller).
            poller = shared_poller()
            fd = stream.fileno()
            watch, unwatch = partial(poller.register, fd), partial(poller.unregister, fd)
        else:
            return False
        await read_pushed(
            stream,
            watch,
            unwatch,
            self._take,
            max_frame=MAX_FRAME,
            chunk=RECEIVE_CHUNK,
            garbled=(ValueError,),
            meanwhile=self._expire_loop,
        )
        return True

    async def _read_loop(self) -> None:
        """Read answers with this task, for a stream nothing else can read (TLS)."""
        reader = FrameReader(self.stream, MAX_FRAME)
        try:
            while True:
                frame = await reader.receive_frame()
                if frame is None:
                    return
                self._take(frame)
        except (FrameError, trio.BrokenResourceError, trio.ClosedResourceError, ValueError):
            return

    def _take(self, frame: bytes) -> None:
        """Hand one answer frame to its call or watch; raises ValueError if it is not
        msgpack."""
        msg = msgpack.unpackb(frame, raw=False)
        if not isinstance(msg, dict):
            return
        rid = msg.get("id", -1)
        if msg.get("partial") is True:
            self._take_part(rid, msg)
            return
        reply = self.calls.pop(rid, None)
        if self._parts or self._bad_parts:  # Rare: a split answer is arriving.
            parts = self._parts.pop(rid, None)
            bad = self._bad_parts.pop(rid, None)
            if bad is not None:
                msg = bad
            elif parts is not None:
                msg = join_parts(parts, msg)
        if reply is not None:
            reply.deliver(msg)
            return
        chan = self.streams.get(rid)
        if chan is not None:
            try:
                chan.send_nowait(msg)
            except trio.WouldBlock:
                del self.streams[rid]
                self.overflowed.add(rid)
                chan.close()
            except trio.BrokenResourceError:
                del self.streams[rid]

    def _take_part(self, rid: Any, msg: Frame) -> None:
        """Keep the KeyValues of one ``partial`` frame for its call (a malformed one turns
        the whole answer into a ``bad_request`` error, given once the last frame arrives)."""
        if rid not in self.calls:
            self._parts.pop(rid, None)  # Its call timed out: nobody waits.
            self._bad_parts.pop(rid, None)
            return
        if rid in self._bad_parts:
            return
        try:
            kvs = part_kvs(msg)
        except wire.WireError as exc:
            self._parts.pop(rid, None)
            self._bad_parts[rid] = {
                "id": rid,
                "ok": False,
                "error": {"code": "bad_request", "message": f"malformed answer part: {exc}"},
            }
            return
        self._parts.setdefault(rid, []).extend(kvs)
        # Its timeout restarts; moved to the end of the calls, the youngest deadline, so the
        # calls stay in deadline order for the expiry timer.
        reply = self.calls.pop(rid)
        reply.deadline = self.clock.now() + self.timeout
        self.calls[rid] = reply
        if reply.on_part is not None:
            reply.on_part()

    async def _write_loop(self, scope: trio.CancelScope) -> None:
        try:
            await self._outbox.run(self.stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.broken = True
            scope.cancel()

    def _start_writer(self, nursery: trio.Nursery) -> None:
        """Start a writer for what the stream did not take at once (called by the run's
        flusher, which must not fail: nothing is started once the connection is done)."""
        if not self.broken:
            nursery.start_soon(self._drain, nursery.cancel_scope)

    async def _drain(self, scope: trio.CancelScope) -> None:
        try:
            await self._outbox.drain()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.broken = True
            scope.cancel()

    async def _expire_loop(self) -> None:
        """Time out the oldest call once its deadline passes. Every call has the same
        timeout, so deadlines grow with age and the timer needs only the oldest one."""
        while True:
            if not self.calls:
                # Look again one timeout from now instead of being woken by the next call:
                # any call made meanwhile is due after that.
                await self.clock.sleep_until(self.clock.now() + self.timeout)
                continue
            oldest = next(iter(self.calls.values()))
            if self.clock.now() >= oldest.deadline:
                del self.calls[oldest.rid]
                oldest.deliver(_TIMED_OUT)
                continue
            await self.clock.sleep_until(oldest.deadline)
