"""The client listener: the protocol of ``docs/client-protocol.md`` on top of a :class:`Member`.

One task reads frames from a connection (one task reads them all for plain TCP connections:
:mod:`raftkube.net.poller`; none does for a stream that hands over its bytes itself, such as
the fuzzer's in-world streams: :mod:`raftkube.net.nowait`). Writes are handed to
:meth:`Member.submit` right there and answered from its callback; reads (which may wait for
a ReadIndex round) and the other requests get a task each in the connection's nursery.
Either way requests are pipelined and answered by id in completion order, and whatever
answers have accumulated go out in one write, in order (:mod:`raftkube.net.outbox`: one task
of the whole process writes every connection's answers of a scheduler pass, and a
connection's own writer task only what its socket would not take at once), so responses
never interleave on the stream.

A range answer too large for one frame is split into several frames of the same id, all
carrying the one revision it was read at (see "Large answers" in ``docs/client-protocol.md``):
etcd serves such ranges (its clients accept up to 2 GiB), so refusing them, or dropping the
connection as a plain over-limit frame does, would leave a new user unable to list a big
prefix. The range itself is read a step at a time at one revision
(:mod:`raftkube.mvcc.reader`), yielding to the event loop between steps so heartbeats keep
flowing, and each part is sent as soon as it is full, after the previous one was written: an
answer of a million keys never sits in memory, read or encoded, all at once.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import trio

from raftkube.api import wire
from raftkube.clock import move_on_after
from raftkube.mvcc.reader import RangeReader, open_range
from raftkube.net.framing import FrameError, FrameReader, FrameTooLargeError, encode_frame
from raftkube.net.nowait import NotifyingStream, NowaitStream, read_pushed
from raftkube.net.outbox import Outbox
from raftkube.net.poller import ReadPoller
from raftkube.net.rawstream import RawSocketStream, fast_stream
from raftkube.net.streams import (
    Listener,
    Network,
    TcpNetwork,
    TlsNetwork,
    bound_address,
    handshake,
)
from raftkube.server.entries import REGISTER_OP, decode_session_tag
from raftkube.server.member import Member, MemberError, WriteOutcome
from raftkube.server.member_ops import MEMBER_OPS, serve_member_op
from raftkube_spec.kv.errors import KVError
from raftkube_spec.kv.requests import RangeRequest
from raftkube_spec.kv.watch import WatchFilter

logger = logging.getLogger(__name__)

MAX_FRAME: int = 8 * 1024 * 1024
"""The largest frame read or written. Requests above 1.5 MiB get a polite refusal, larger
frames cost the connection; range answers above it are split (:func:`_send_range`), other
answers above it are refused with ``response_too_large``."""
KV_OVERHEAD: int = 128
"""An upper bound on the bytes one encoded KeyValue takes beyond its key and value (field
names, four integers, two length prefixes: about 100)."""
RESPONSE_TOO_LARGE: str = "response_too_large"
RANGE_PART_BYTES: int = 1024 * 1024
"""The most a part of a split range answer holds (by the estimate)."""
MAX_QUEUED_FRAMES: int = 4096
"""Answers waiting to be written, beyond which a connection's answers are dropped."""
RECEIVE_CHUNK: int = 65536
"""The most one read of a polled connection takes (the poller reads each ready connection
once per turn)."""
HANDSHAKE_TIMEOUT: float = 10.0
"""Seconds (on the member's clock) a client has to finish its TLS handshake."""
WRITE_OPS = frozenset(op for op in wire.KV_OPS if op != "range")
"""Ops answered from :meth:`Member.submit`'s callback, without a task of their own."""


@attrs.define(eq=False)
class _Connection:
    """One client connection's state. Answers are queued as encoded frames in ``outbox``,
    all that accumulated written in one send (:mod:`raftkube.net.outbox`)."""

    member: Member
    scope: trio.CancelScope
    max_frame: int = MAX_FRAME
    watches: dict[int, trio.CancelScope] = attrs.Factory(dict)
    outbox: Outbox = attrs.Factory(Outbox)
    closed: bool = False

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame. Never raises: write answers are sent from the member's apply
        path, which must not fail because of one connection. A frame over the limit costs
        the connection (a watch must not silently lose events); answers go through
        :meth:`answer`, which refuses an oversized one by name instead."""
        # A client that does not read its answers loses its connection's answers.
        if self.closed or len(self.outbox) >= MAX_QUEUED_FRAMES:
            return
        try:
            data = encode_frame(msgpack.packb(frame, use_bin_type=True), self.max_frame)
        except FrameTooLargeError as exc:
            logger.warning("client connection dropped: answer %s: %s", frame.get("id"), exc)
            self.closed = True
            self.scope.cancel()
            return
        self.outbox.put(data)

    def answer(self, frame: dict[str, Any]) -> bool:
        """Queue the answer to one request; one too large to frame is replaced by a
        ``response_too_large`` error for that request (False is returned), and the
        connection carries on."""
        if self.closed or len(self.outbox) >= MAX_QUEUED_FRAMES:
            return False
        fits = True
        payload = msgpack.packb(frame, use_bin_type=True)
        if len(payload) > self.max_frame:
            rid = frame.get("id", 0)
            logger.warning("client answer %s refused: %d bytes", rid, len(payload))
            payload = msgpack.packb(
                wire.error_frame(
                    rid,
                    RESPONSE_TOO_LARGE,
                    f"raftkube: the answer is {len(payload)} bytes, over the maximum frame "
                    f"size of {self.max_frame} bytes; ask for less (set a limit on its "
                    "ranges, etcdctl --limit)",
                ),
                use_bin_type=True,
            )
            fits = False
        self.outbox.put(encode_frame(payload, self.max_frame))
        return fits


async def serve_client(
    member: Member,
    stream: trio.abc.Stream,
    max_frame: int = MAX_FRAME,
    poller: ReadPoller | None = None,
) -> None:
    """Serve one client connection until it closes; ``max_frame`` bounds every frame read or
    written (tests lower it to split answers without writing megabytes). A plain TCP
    connection is read by ``poller`` if given (one task reading every connection), anything
    else by a task of its own."""
    stream = fast_stream(stream)
    conn: _Connection | None = None
    try:
        async with trio.open_nursery() as nursery:
            conn = _Connection(member, nursery.cancel_scope, max_frame)
            if isinstance(stream, NowaitStream):
                # The run's flusher writes; a writer task only while the stream is full.
                conn.outbox.attach(stream, partial(_start_writer, nursery, conn))
            else:
                nursery.start_soon(_writer, stream, conn)
            if isinstance(stream, NotifyingStream):
                # The stream hands over its bytes itself (the fuzzer's in-world streams).
                watched = stream
                await _read_pushed(
                    conn, nursery, stream, stream.set_reader, lambda: watched.set_reader(None)
                )
            elif poller is not None and isinstance(stream, RawSocketStream):
                fd = stream.fileno()
                await _read_pushed(
                    conn,
                    nursery,
                    stream,
                    partial(poller.register, fd),
                    partial(poller.unregister, fd),
                )
            else:
                await _read(conn, nursery, stream)
            nursery.cancel_scope.cancel()
    finally:
        if conn is not None:
            conn.closed = True
        if isinstance(stream, NowaitStream):
            # Closing a plain socket or an in-world stream cannot block: no bound needed.
            with trio.CancelScope(shield=True):
                await stream.aclose()
        else:
            # A TLS stream's close sends a close_notify, which a stalled peer may not take.
            with move_on_after(member.clock, 0.1) as cleanup:
                cleanup.shield = True
                await stream.aclose()


async def _read(conn: _Connection, nursery: trio.Nursery, stream: trio.abc.Stream) -> None:
    """Read and dispatch requests until the stream ends or breaks."""
    reader = FrameReader(stream, conn.max_frame)
    while True:
        try:
            frame = await reader.receive_frame()
        except (FrameError, trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if frame is None:
            return
        _dispatch(conn, nursery, frame)


async def _read_pushed(
    conn: _Connection,
    nursery: trio.Nursery,
    stream: NowaitStream,
    watch: Callable[[Callable[[], None]], None],
    unwatch: Callable[[], None],
) -> None:
    """Have the requests dispatched as they arrive, from the poller's task or the code that
    delivers the stream's bytes (:func:`raftkube.net.nowait.read_pushed`), as :func:`_read`
    would, until the stream ends or breaks; this task only waits for that."""
    await read_pushed(
        stream,
        watch,
        unwatch,
        partial(_dispatch, conn, nursery),
        max_frame=conn.max_frame,
        chunk=RECEIVE_CHUNK,
    )


async def _writer(stream: trio.abc.Stream, conn: _Connection) -> None:
    try:
        await conn.outbox.run(stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        conn.scope.cancel()


def _start_writer(nursery: trio.Nursery, conn: _Connection) -> None:
    """Start a writer for what the stream did not take at once (called by the run's
    flusher, which must not fail: nothing is started once the connection is done)."""
    if not conn.closed:
        nursery.start_soon(_drain, conn)


async def _drain(conn: _Connection) -> None:
    try:
        await conn.outbox.drain()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        conn.scope.cancel()


def _dispatch(conn: _Connection, nursery: trio.Nursery, frame: bytes) -> None:
    try:
        raw = msgpack.unpackb(frame, raw=False)
    except Exception:
        conn.send(wire.error_frame(0, "bad_request", "raftkube: frame is not msgpack"))
        return
    rid = raw.get("id", 0) if isinstance(raw, dict) else 0
    rid = rid if type(rid) is int else 0
    if len(frame) > wire.MAX_REQUEST_BYTES:
        conn.send(wire.error_frame(rid, "request_too_large", wire.REQUEST_TOO_LARGE))
        return
    try:
        req = wire.decode_request_frame(raw)
    except wire.WireError as exc:
        conn.send(wire.error_frame(rid, "bad_request", str(exc)))
        return
    if req.op == "watch":
        scope = trio.CancelScope()
        conn.watches[req.id] = scope
        nursery.start_soon(_watch, conn, req, scope)
    elif req.op == "watch_cancel":
        _cancel_watch(conn, req)
    elif req.op in WRITE_OPS:
        _submit(conn, req)
    else:
        nursery.start_soon(_serve, conn, req)


def _submit(conn: _Connection, req: wire.RequestFrame) -> None:
    """Start a write; its answer is sent when it is applied (or fails, or times out)."""
    rid = req.id

    def answer(outcome: WriteOutcome) -> None:
        if isinstance(outcome, MemberError):
            conn.send(_member_error(conn, rid, outcome))
        else:
            conn.answer(_kv_frame(conn, rid, outcome))

    try:
        body = dict(req.body)
        session = decode_session_tag(body.pop("session", None))
        conn.member.submit(wire.decode_request(req.op, body), session, answer)
    except wire.WireError as exc:
        conn.send(wire.error_frame(rid, "bad_request", str(exc)))
    except MemberError as exc:
        conn.send(_member_error(conn, rid, exc))


def _member_error(conn: _Connection, rid: int, err: MemberError) -> dict[str, Any]:
    leader = None
    if err.leader is not None:
        leader = conn.member.client_endpoints.get(err.leader)
    return wire.error_frame(rid, err.code, err.message, leader=leader)


def _kv_frame(conn: _Connection, rid: int, result: Any) -> dict[str, Any]:
    if isinstance(result, KVError):
        return wire.error_frame(
            rid, result.code.name, result.message, revision=result.header.revision
        )
    return wire.ok_frame(
        rid, conn.member.header(result.header.revision), wire.encode_response(result)
    )


async def _serve(conn: _Connection, req: wire.RequestFrame) -> None:
    member = conn.member
    try:
        if req.op == "status":
            conn.send(wire.ok_frame(req.id, member.header(), _status(member)))
            return
        if req.op in MEMBER_OPS:
            body = await serve_member_op(member, req.op, dict(req.body))
            conn.send(wire.ok_frame(req.id, member.header(), body))
            return
        if req.op == REGISTER_OP:
            client_id = await member.register_session()
            conn.send(wire.ok_frame(req.id, member.header(), {"client_id": client_id}))
            return
        body = dict(req.body)
        serializable = body.pop("serializable", False)
        if type(serializable) is not bool:
            raise wire.WireError("body.serializable", "expected a boolean")
        kv = wire.decode_request(req.op, body)
        if not serializable:
            await member.linearizable_barrier()
        if not isinstance(kv, RangeRequest):
            conn.answer(_kv_frame(conn, req.id, member.read_local(kv)))
            return
        budget = min(conn.max_frame // 2, RANGE_PART_BYTES)
        reader = open_range(member.mvcc, kv, part_bytes=budget, overhead=KV_OVERHEAD)
        if not isinstance(reader, RangeReader):
            conn.answer(_kv_frame(conn, req.id, reader))
            return
        with reader:
            await _send_range(conn, req.id, reader)
    except wire.WireError as exc:
        conn.send(wire.error_frame(req.id, "bad_request", str(exc)))
    except MemberError as exc:
        conn.send(_member_error(conn, req.id, exc))


async def _send_range(conn: _Connection, rid: int, reader: RangeReader) -> None:
    """Answer a range as it is read, in several frames if one would exceed the frame limit.

    Every frame but the last carries ``"partial": true`` and only ``kvs``; the last carries
    the rest of ``kvs`` with ``more`` and ``count`` (known only once every key was visited),
    and every frame the same header, since the whole answer is read at one revision. The
    reader visits a bounded number of keys per step and this task yields between steps, so
    the read never holds the event loop for long; a part holds at most the reader's part size
    (:data:`RANGE_PART_BYTES`, and half the frame limit, leaving room for the envelope and the
    estimate's slack), so encoding one holds it for tens of milliseconds, not the seconds a
    whole large answer takes. Each part after the first is read only once the one before was
    written, so the member holds about one part of the answer."""
    encoded_header: dict[str, Any] | None = None
    while True:
        part = reader.step()
        if part is None:
            await trio.lowlevel.checkpoint()
            continue
        if encoded_header is None:
            header = conn.member.header(reader.header_revision)
            encoded_header = wire.encode_header(header)
        if reader.done:
            body = wire.encode_response(reader.response(tuple(part)))
            conn.answer({"id": rid, "ok": True, "header": encoded_header, "body": body})
            return
        body = {"kvs": [wire.encode_kv(kv) for kv in part]}
        frame = {"id": rid, "ok": True, "header": encoded_header, "body": body, "partial": True}
        flushed = conn.outbox.flushed
        if not conn.answer(frame):
            return
        await flushed.wait()


def _status(member: Member) -> dict[str, Any]:
    leader = member.leader
    fault = member.disk_fault
    return {
        # A fenced member takes no part in Raft: whom it last knew as leader means nothing.
        "leader": -1 if leader is None or fault is not None else leader,
        "is_leader": member.is_leader and fault is None,
        # etcd's StatusResponse.isLearner: in the configuration this member has.
        "is_learner": member.id in member.node.membership.learners,
        "raft_index": member.node.last_index,
        "raft_applied_index": member.applied,
        "revision": member.mvcc.revision,
        # etcd's StatusResponse.errors (where its NOSPACE alarm shows).
        "errors": [] if fault is None else [f"{fault.code}: {fault.message}"],
    }


def _cancel_watch(conn: _Connection, req: wire.RequestFrame) -> None:
    wid = req.body.get("watch_id")
    scope = conn.watches.get(wid) if type(wid) is int else None
    if scope is None:
        conn.send(wire.error_frame(req.id, "bad_request", f"no watch {wid!r}"))
        return
    scope.cancel()
    conn.send(wire.ok_frame(req.id, conn.member.header(), {"watch_id": wid, "canceled": True}))


def _watch_args(body: dict[str, Any]) -> tuple[bytes, bytes, int, bool, frozenset[WatchFilter]]:
    r = wire.FieldReader(body, "body")
    key = r.by("key", None)
    range_end = r.by("range_end")
    start = r.i("start_revision", minimum=0)
    prev_kv = r.b("prev_kv")
    filters = set()
    for where, raw in r.items("filters"):
        if not isinstance(raw, str) or raw not in WatchFilter.__members__:
            raise wire.WireError(where, f"unknown filter {raw!r}")
        filters.add(WatchFilter[raw])
    r.done()
    return key, range_end, start, prev_kv, frozenset(filters)


async def _watch(conn: _Connection, req: wire.RequestFrame, scope: trio.CancelScope) -> None:
    member = conn.member
    try:
        key, range_end, start, prev_kv, filters = _watch_args(req.body)
    except wire.WireError as exc:
        conn.watches.pop(req.id, None)
        conn.send(wire.error_frame(req.id, "bad_request", str(exc)))
        return
    wid = member.watches.watch(key, range_end, start, prev_kv, filters)
    conn.send(
        wire.ok_frame(req.id, member.header(), {"watch_id": req.id, "created": True, "events": []})
    )
    try:
        with scope:
            while True:
                await member.watch_event(wid).wait()
                taken = member.watches.take(wid)
                if isinstance(taken, tuple):
                    if taken:
                        conn.send(
                            wire.ok_frame(
                                req.id,
                                member.header(),
                                {
                                    "watch_id": req.id,
                                    "events": [wire.encode_event(e) for e in taken],
                                },
                            )
                        )
                    continue
                conn.send(
                    wire.ok_frame(
                        req.id,
                        member.header(),
                        {
                            "watch_id": req.id,
                            "events": [],
                            "canceled": True,
                            "compact_revision": taken.compact_revision,
                        },
                    )
                )
                return
    finally:
        conn.watches.pop(req.id, None)
        member.forget_watch(wid)


async def serve_clients(
    member: Member,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: ssl.SSLContext | None = None,
    network: Network | None = None,
    listeners: Sequence[Listener] | None = None,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    max_frame: int = MAX_FRAME,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve clients until cancelled; reports the bound ``(host, port)``.

    The connections come from ``listeners`` if given, else from listeners bound at
    ``host:port`` on ``network`` (TCP by default). With ``ssl_context`` that network's
    connections are TLS (see :mod:`raftkube.tls`); a client that fails the handshake
    (plaintext, untrusted, without a required certificate, or too slow by the member's clock)
    only loses its own connection, because the handshake happens in the connection's task.
    ``max_frame`` is every connection's frame limit (:data:`MAX_FRAME`). Plain TCP
    connections on listeners bound here are all read by one task (:mod:`raftkube.net.poller`);
    others (TLS, given ``listeners``) each by a task of its own."""
    poller: ReadPoller | None = None
    if listeners is None:
        net: Network = network if network is not None else TcpNetwork()
        if ssl_context is not None:
            net = TlsNetwork(net, member.clock, server_context=ssl_context)
        elif type(net) is TcpNetwork and ReadPoller.available():
            # Plain sockets: all read by one task (raftkube.net.poller).
            poller = ReadPoller()
        listeners = await net.open_listeners(host, port)
    bound = bound_address(listeners[0])

    async def handler(stream: trio.abc.Stream) -> None:
        try:
            await handshake(stream, member.clock, handshake_timeout)
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.aclose_forcefully(stream)
            return
        await serve_client(member, stream, max_frame, poller)

    async with trio.open_nursery() as nursery:
        if poller is not None:
            nursery.start_soon(poller.run)
        await nursery.start(trio.serve_listeners, handler, list(listeners))
        task_status.started(bound)
