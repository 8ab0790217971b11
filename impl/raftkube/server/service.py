"""The client listener: the protocol of ``docs/client-protocol.md`` on top of a :class:`Member`.

One task reads frames from a connection. Writes are handed to :meth:`Member.submit` right there
and answered from its callback; reads (which may wait for a ReadIndex round) and the other
requests get a task each in the connection's nursery. Either way requests are pipelined and
answered by id in completion order, and a single writer task sends whatever answers have
accumulated in one write, so responses never interleave on the stream.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import trio

from raftkube.api import wire
from raftkube.clock import move_on_after
from raftkube.net.framing import FrameError, FrameReader, FrameTooLargeError, encode_frame
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
from raftkube_spec.kv.errors import KVError
from raftkube_spec.kv.watch import WatchFilter

logger = logging.getLogger(__name__)

MAX_FRAME: int = 8 * 1024 * 1024
"""Frames above this cost the connection; those above 1.5 MiB get a polite refusal."""
MAX_QUEUED_FRAMES: int = 4096
"""Answers waiting to be written, beyond which a connection's answers are dropped."""
HANDSHAKE_TIMEOUT: float = 10.0
"""Seconds (on the member's clock) a client has to finish its TLS handshake."""
WRITE_OPS = frozenset(op for op in wire.KV_OPS if op != "range")
"""Ops answered from :meth:`Member.submit`'s callback, without a task of their own."""


@attrs.define(eq=False)
class _Connection:
    """One client connection's state. Answers are queued as encoded frames in ``outbox`` and
    written by one writer task, all that accumulated in one ``send_all``."""

    member: Member
    scope: trio.CancelScope
    watches: dict[int, trio.CancelScope] = attrs.Factory(dict)
    outbox: list[bytes] = attrs.Factory(list)
    ready: trio.Event = attrs.Factory(trio.Event)
    closed: bool = False

    def send(self, frame: dict[str, Any]) -> None:
        """Queue an answer. Never raises: write answers are sent from the member's apply
        path, which must not fail because of one connection."""
        # A client that does not read its answers loses its connection's answers.
        if self.closed or len(self.outbox) >= MAX_QUEUED_FRAMES:
            return
        try:
            data = encode_frame(msgpack.packb(frame, use_bin_type=True), MAX_FRAME)
        except FrameTooLargeError as exc:
            logger.warning("client connection dropped: answer %s: %s", frame.get("id"), exc)
            self.closed = True
            self.scope.cancel()
            return
        self.outbox.append(data)
        self.ready.set()


async def serve_client(member: Member, stream: trio.abc.Stream) -> None:
    """Serve one client connection until it closes."""
    reader = FrameReader(stream, MAX_FRAME)
    conn: _Connection | None = None
    try:
        async with trio.open_nursery() as nursery:
            conn = _Connection(member, nursery.cancel_scope)
            nursery.start_soon(_writer, stream, conn)
            while True:
                try:
                    frame = await reader.receive_frame()
                except (FrameError, trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if frame is None:
                    break
                _dispatch(conn, nursery, frame)
            nursery.cancel_scope.cancel()
    finally:
        if conn is not None:
            conn.closed = True
        with move_on_after(member.clock, 0.1) as cleanup:
            cleanup.shield = True
            await stream.aclose()


async def _writer(stream: trio.abc.Stream, conn: _Connection) -> None:
    try:
        while True:
            await conn.ready.wait()
            conn.ready = trio.Event()
            batch, conn.outbox = conn.outbox, []
            await stream.send_all(batch[0] if len(batch) == 1 else b"".join(batch))
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
            conn.send(_kv_frame(conn, rid, outcome))

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
        if req.op == "member_list":
            endpoints = sorted(member.client_endpoints.items())
            members = [{"ID": mid, "clientURLs": [ep]} for mid, ep in endpoints]
            conn.send(wire.ok_frame(req.id, member.header(), {"members": members}))
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
        conn.send(_kv_frame(conn, req.id, member.read_local(kv)))
    except wire.WireError as exc:
        conn.send(wire.error_frame(req.id, "bad_request", str(exc)))
    except MemberError as exc:
        conn.send(_member_error(conn, req.id, exc))


def _status(member: Member) -> dict[str, Any]:
    leader = member.leader
    return {
        "leader": -1 if leader is None else leader,
        "is_leader": member.is_leader,
        "raft_index": member.node.last_index,
        "raft_applied_index": member.applied,
        "revision": member.mvcc.revision,
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
    r = wire._Reader(body, "body")
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
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve clients until cancelled; reports the bound ``(host, port)``.

    The connections come from ``listeners`` if given, else from listeners bound at
    ``host:port`` on ``network`` (TCP by default). With ``ssl_context`` that network's
    connections are TLS (see :mod:`raftkube.tls`); a client that fails the handshake
    (plaintext, untrusted, without a required certificate, or too slow by the member's clock)
    only loses its own connection, because the handshake happens in the connection's task."""
    if listeners is None:
        net: Network = network if network is not None else TcpNetwork()
        if ssl_context is not None:
            net = TlsNetwork(net, member.clock, server_context=ssl_context)
        listeners = await net.open_listeners(host, port)
    bound = bound_address(listeners[0])

    async def handler(stream: trio.abc.Stream) -> None:
        try:
            await handshake(stream, member.clock, handshake_timeout)
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.aclose_forcefully(stream)
            return
        await serve_client(member, stream)

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, list(listeners))
        task_status.started(bound)
