"""A Trio client for the raftkube client protocol (``docs/client-protocol.md``).

``async with Client(["127.0.0.1:2379", ...]) as c`` sends to its current endpoint over one
pipelined connection: many requests may be in flight, each answered by id. On a connection
error, ``unavailable`` or ``not_leader`` it moves to the leader hint (or the next endpoint) and
retries, a bounded number of times. Connections are kept per endpoint: moving away after a
``not_leader`` leaves the old one open for when the client comes back (as a gRPC client keeps a
sub-connection per address); only a broken or timed-out one is closed.

Retrying a write is safe only when it cannot apply twice:

* With a session (:meth:`Client.open_session`) every write carries ``(client_id, sequence,
  lowest_unacked)``, every retry repeats its sequence, and the cluster applies it once (Raft
  dissertation, section 6.3). Such a write is also retried after the client's own request
  timeout, on the next endpoint: that is how its outcome is learnt.
* Without one, a write retried after a broken connection may be applied twice, as with etcd's
  client; ``at_most_once=True`` instead sends it again only after failures that prove it was
  not applied (no connection, ``not_leader``) and otherwise raises
  :class:`IndeterminateError`, which is what etcd's clientv3 does for its non-repeatable
  requests.

A write that fails after an attempt whose fate is unknown always raises
:class:`IndeterminateError`: the caller must not assume it did not happen.

Why one module: :class:`Client` is one job, retrying one request across endpoints, leader
changes and sessions, and those rules share the client's state; the wire codec, the
connections and the watch stream already live in their own modules.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import Any, Final

import attrs
import trio

from raftkube.api import wire
from raftkube.client.connection import BrokenError, Connection
from raftkube.client.errors import (
    ClientError,
    IndeterminateError,
    KVRequestError,
    WatchCompactedError,
    WatchEvents,
)
from raftkube.clock import Clock, TrioClock, fail_after, sleep_for
from raftkube.net.streams import Network, TcpNetwork, TlsNetwork
from raftkube_spec.kv.requests import (
    CompactionRequest,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    PutRequest,
    RangeRequest,
    Request,
    TxnRequest,
)
from raftkube_spec.kv.responses import (
    CompactionResponse,
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutResponse,
    RangeResponse,
    Response,
    TxnResponse,
)
from raftkube_spec.kv.types import Event

_REFUSED = frozenset({"not_leader", "no_space", "disk_failed"})
"""Refusals a member gives before proposing anything: the request was not applied. The disk
ones are that member's alone (it fenced itself, see ``raftkube.server.disk_faults``), so
another member may take the request; with none left, the error is what the caller sees."""
_RETRYABLE = frozenset({"unavailable", "timeout"}) | _REFUSED


WATCH_BUFFER: Final = 1024
"""Messages a watch holds for a consumer that has not read them yet (each carries one or
more events); one that falls further behind is cut off with a ``watch_overflow`` error."""


def _is_read(req: Request) -> bool:
    """A Range, or a Txn whose branches only read: nothing to apply twice."""
    if isinstance(req, RangeRequest):
        return True
    if isinstance(req, TxnRequest):
        return all(_is_read(op) for op in (*req.success, *req.failure))
    return False


def _parse_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host or "127.0.0.1", int(port)


@attrs.define(eq=False)
class _Session:
    """This client's session: the id the cluster gave it and the sequences in flight."""

    client_id: int
    next_sequence: int = 1
    unacked: set[int] = attrs.Factory(set)

    def tag(self) -> tuple[int, dict[str, int]]:
        """A fresh sequence and the ``session`` field for it. ``lowest_unacked`` is the lowest
        sequence still awaiting its answer, so the cluster may forget the results below."""
        sequence = self.next_sequence
        self.next_sequence += 1
        self.unacked.add(sequence)
        lowest = min(self.unacked)
        return sequence, {
            "client_id": self.client_id,
            "sequence": sequence,
            "lowest_unacked": lowest,
        }


class Client:
    """An async client of a raftkube cluster; use as ``async with``."""

    _session: _Session | None = None
    """Set by :meth:`open_session`; None means untagged writes (etcd's semantics)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        attempts: int = 20,
        retry_delay: float = 0.1,
        request_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
        network: Network | None = None,
        at_most_once: bool = False,
    ) -> None:
        """``ssl_context`` (e.g. :func:`raftkube.tls.client_context`) makes every connection
        TLS, verified against the endpoint's host; a failed handshake counts as a broken
        connection, so it is retried and then reported like an unreachable member. ``clock``
        (by default Trio's) is what request timeouts and retry delays are measured on.
        ``network`` (by default TCP) is where connections come from: the simulator passes
        its in-world streams; TLS, if asked for, is layered on top of it. ``at_most_once``: see
        the module docstring."""
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        if not request_timeout > 0:
            raise ValueError(f"request_timeout must be positive, got {request_timeout}")
        self.endpoints = list(endpoints)
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.request_timeout = request_timeout
        self.ssl_context = ssl_context
        self.at_most_once = at_most_once
        self.clock: Clock = clock if clock is not None else TrioClock()
        net: Network = network if network is not None else TcpNetwork()
        if ssl_context is not None:
            net = TlsNetwork(
                net, self.clock, client_context=ssl_context, handshake_timeout=request_timeout
            )
        self.network = net
        self._current = 0
        self._conns: dict[str, Connection] = {}
        """Open connections by endpoint."""
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._connecting = trio.Lock()

    async def __aenter__(self) -> Client:
        self._nursery_cm = trio.open_nursery()
        self._nursery = await self._nursery_cm.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        try:
            return await self._nursery_cm.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # The connections' tasks end quietly (a broken connection fails its calls, it
            # does not raise), so a group holding only the body's own exception is Trio's
            # wrapping of it: raise it as itself, so a caller's `except ClientError` around
            # the `async with` works as with any client, and keep its own context.
            if exc is None or list(group.exceptions) != [exc]:
                raise
            context = exc.__context__
            try:
                raise exc
            finally:
                exc.__context__ = context
        finally:
            self._nursery = None

    @property
    def endpoint(self) -> str:
        return self.endpoints[self._current]

    @property
    def _conn(self) -> Connection | None:
        """The usable connection to the current endpoint, if there is one."""
        conn = self._conns.get(self.endpoint)
        return conn if conn is not None and not conn.broken else None

    # --- connections -----------------------------------------------------------------------

    async def _connection(self) -> Connection:
        async with self._connecting:
            endpoint = self.endpoint
            current = self._conn
            if current is not None:
                return current
            assert self._nursery is not None, "use the Client in `async with`"
            host, port = _parse_endpoint(endpoint)
            try:
                # A partitioned or paused member never answers a connect: bound it as a request.
                with fail_after(self.clock, self.request_timeout):
                    stream = await self._dial(host, port)
            except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
                raise BrokenError(str(exc) or type(exc).__name__) from None
            conn = Connection(endpoint, stream, self.request_timeout, self.clock)
            self._nursery.start_soon(conn.run)
            self._conns[endpoint] = conn
            return conn

    async def _dial(self, host: str, port: int) -> trio.abc.Stream:
        return await self.network.open_stream(host, port)

    def use_endpoint(self, endpoint: str) -> None:
        """Send the following requests to ``endpoint`` (added to the endpoints if new), e.g.
        to read from one member in particular; requests in flight elsewhere carry on."""
        if endpoint not in self.endpoints:
            self.endpoints.append(endpoint)
        self._current = self.endpoints.index(endpoint)

    def _fail_over(
        self, failed: Connection | None, leader: str | None = None, *, close: bool = False
    ) -> None:
        """Move on from ``failed`` (None: a connection that could not be made) to ``leader``
        or the next endpoint; with ``close`` (it broke or timed out) close it first. If
        another request already moved the client off ``failed``'s endpoint, stay where it
        went."""
        if failed is not None:
            if close:
                failed.close()
                if self._conns.get(failed.endpoint) is failed:
                    del self._conns[failed.endpoint]
            if failed.endpoint != self.endpoint:
                return
        if leader:
            if leader not in self.endpoints:
                self.endpoints.append(leader)
            self._current = self.endpoints.index(leader)
        else:
            self._current = (self._current + 1) % len(self.endpoints)

    async def call(
        self,
        op: str,
        body: dict[str, Any],
        *,
        write: bool = False,
        on_part: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Send one request, failing over as needed; returns the whole ``ok`` frame.
        ``on_part`` is called as each part of a split answer arrives (see
        :mod:`raftkube.client.connection`).

        ``write``: the request changes state, so an attempt whose answer is lost may have
        been applied; it is retried as the module docstring says (a ``session`` in ``body``
        makes it safe to), and fails with :class:`IndeterminateError` if some attempt's fate
        is unknown."""
        tagged = write and "session" in body
        once = write and not tagged and self.at_most_once
        unknown = False
        """Some attempt of this write may have been applied."""
        last: ClientError | None = None
        for attempt in range(self.attempts):
            if attempt:
                await sleep_for(self.clock, self.retry_delay)
            conn = self._conn
            try:
                if conn is None or conn.broken:
                    conn = await self._connection()
            except BrokenError as exc:
                last = ClientError("unavailable", f"no connection: {exc}")
                self._fail_over(None)
                continue
            rid = next(self._ids)
            try:
                msg = await conn.call(rid, {"id": rid, "op": op, "body": body}, on_part).wait()
            except BrokenError as exc:
                unknown = unknown or write
                last = ClientError("unavailable", f"connection lost: {exc}")
                self._fail_over(conn, close=True)
                if once:
                    raise IndeterminateError(last.code, last.message) from None
                continue
            except trio.TooSlowError:
                if not write:
                    raise
                unknown = True
                last = ClientError("timeout", "no answer within the request timeout")
                if not tagged:
                    if once:
                        raise IndeterminateError(last.code, last.message) from None
                    raise
                self._fail_over(conn, close=True)
                continue
            if msg.get("ok"):
                return msg
            err = msg.get("error") or {}
            code, message = str(err.get("code")), str(err.get("message"))
            if wire.is_kv_error_code(code):
                raise KVRequestError(wire.decode_kv_error(err))
            error = ClientError(code, message, err.get("leader"))
            if code in _RETRYABLE:
                # A member refuses with not_leader (or a disk fault) before proposing; the
                # others may come after the write reached the log.
                if code not in _REFUSED:
                    unknown = unknown or write
                    if once:
                        raise IndeterminateError(code, message, err.get("leader"))
                last = error
                self._fail_over(conn, err.get("leader"))
                continue
            if unknown:
                raise IndeterminateError(code, message, err.get("leader"))
            raise error
        if last is None:
            last = ClientError("unavailable", "no member answered")
        if unknown:
            raise IndeterminateError(last.code, last.message, last.leader)
        raise last

    async def open_session(self) -> int:
        """Register a client session (a write through the Raft log) and tag every later write
        with it, so that retries apply at most once; returns the session id.

        The registration itself is not deduplicated: a retried one may leave an unused
        session behind, which the cluster expires in least-recently-used order.
        """
        msg = await self.call("session_register", {})
        client_id = int(msg["body"]["client_id"])
        self._session = _Session(client_id)
        return client_id

    @property
    def session_id(self) -> int | None:
        return None if self._session is None else self._session.client_id

    async def request(self, req: Request, *, serializable: bool = False) -> Response:
        op = wire.request_op(req)
        body = wire.encode_request(req)
        if serializable:
            body["serializable"] = True
        write = not _is_read(req)
        session = self._session if write else None
        if session is None:
            msg = await self.call(op, body, write=write)
        else:
            # call() resends this same body on every retry, so the sequence stays the same.
            sequence, body["session"] = session.tag()
            try:
                msg = await self.call(op, body, write=True)
            finally:
                session.unacked.discard(sequence)
        header = wire.decode_header(msg["header"])
        return wire.decode_response(op, msg["body"], header.revision)

    # --- KV --------------------------------------------------------------------------------

    async def put(
        self, key: bytes, value: bytes, *, lease: int = 0, prev_kv: bool = False
    ) -> PutResponse:
        resp = await self.request(PutRequest(key, value, lease=lease, prev_kv=prev_kv))
        assert isinstance(resp, PutResponse)
        return resp

    async def get(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        serializable: bool = False,
    ) -> RangeResponse:
        req = RangeRequest(key, range_end, limit=limit, revision=revision)
        resp = await self.request(req, serializable=serializable)
        assert isinstance(resp, RangeResponse)
        return resp

    async def delete(
        self, key: bytes, range_end: bytes = b"", *, prev_kv: bool = False
    ) -> DeleteRangeResponse:
        resp = await self.request(DeleteRangeRequest(key, range_end, prev_kv))
        assert isinstance(resp, DeleteRangeResponse)
        return resp

    async def txn(self, txn: TxnRequest) -> TxnResponse:
        resp = await self.request(txn)
        assert isinstance(resp, TxnResponse)
        return resp

    async def compact(self, revision: int) -> CompactionResponse:
        resp = await self.request(CompactionRequest(revision))
        assert isinstance(resp, CompactionResponse)
        return resp

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResponse:
        resp = await self.request(LeaseGrantRequest(lease_id, ttl, 0))
        assert isinstance(resp, LeaseGrantResponse)
        return resp

    async def lease_revoke(self, lease_id: int) -> LeaseRevokeResponse:
        resp = await self.request(LeaseRevokeRequest(lease_id))
        assert isinstance(resp, LeaseRevokeResponse)
        return resp

    async def lease_keepalive(self, lease_id: int) -> LeaseKeepAliveResponse:
        resp = await self.request(LeaseKeepAliveRequest(lease_id, 0))
        assert isinstance(resp, LeaseKeepAliveResponse)
        return resp

    async def lease_ttl(self, lease_id: int, *, keys: bool = False) -> LeaseTimeToLiveResponse:
        resp = await self.request(LeaseTimeToLiveRequest(lease_id, 0, keys))
        assert isinstance(resp, LeaseTimeToLiveResponse)
        return resp

    async def status(self) -> dict[str, Any]:
        msg = await self.call("status", {})
        body: dict[str, Any] = msg["body"]
        body["header"] = wire.decode_header(msg["header"])
        return body

    async def member_list(self) -> list[dict[str, Any]]:
        msg = await self.call("member_list", {})
        members: list[dict[str, Any]] = msg["body"]["members"]
        return members

    async def member_add(
        self,
        name: str,
        peer_urls: Sequence[str],
        *,
        client_urls: Sequence[str] = (),
        learner: bool = False,
    ) -> dict[str, Any]:
        """Add a member (etcd's ``MemberAdd``); returns the answer's ok frame, whose body
        holds the new ``member`` and all ``members``."""
        body = {
            "name": name,
            "peerURLs": list(peer_urls),
            "clientURLs": list(client_urls),
            "isLearner": learner,
        }
        return await self.call("member_add", body, write=True)

    async def member_promote(self, member_id: int) -> dict[str, Any]:
        """Make a learner a voter (etcd's ``MemberPromote``); returns the ok frame."""
        return await self.call("member_promote", {"ID": member_id}, write=True)

    async def member_remove(self, member_id: int) -> dict[str, Any]:
        """Remove a member (etcd's ``MemberRemove``); returns the ok frame."""
        return await self.call("member_remove", {"ID": member_id}, write=True)

    # --- watch -----------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> AsyncIterator[WatchEvents]:
        """``async with client.watch(k) as events: async for e in events: ...``

        The watch is registered (and its first frame received) on entry. The iterator ends if
        the connection breaks; a compacted start revision raises :class:`WatchCompactedError`,
        and a consumer that falls :data:`WATCH_BUFFER` messages behind raises
        :class:`ClientError` (code ``watch_overflow``: the message names the revision to watch
        again from, so nothing is lost)."""
        body = {
            "key": key,
            "range_end": range_end,
            "start_revision": start_revision,
            "prev_kv": prev_kv,
        }
        conn = await self._connection()
        rid = next(self._ids)
        recv = conn.open_stream(rid, {"id": rid, "op": "watch", "body": body}, WATCH_BUFFER)
        try:
            first = await recv.receive()
            if not first.get("ok"):
                err = first.get("error") or {}
                raise ClientError(str(err.get("code")), str(err.get("message")))

            async def events() -> AsyncIterator[Event]:
                seen = start_revision - 1 if start_revision > 0 else 0
                async for msg in recv:
                    b = msg.get("body", {})
                    for raw in b.get("events", []):
                        event = wire.decode_event(raw)
                        seen = max(seen, event.kv.mod_revision)
                        yield event
                    if b.get("canceled"):
                        if b.get("compact_revision"):
                            raise WatchCompactedError(int(b["compact_revision"]))
                        return
                if rid in conn.overflowed:
                    conn.overflowed.discard(rid)
                    resume = f"watch again from revision {seen + 1}" if seen else "watch again"
                    raise ClientError(
                        "watch_overflow",
                        f"the watcher fell {WATCH_BUFFER} messages behind and was cut off "
                        f"after revision {seen}; {resume}",
                    )

            if start_revision > 0:
                first_revision = start_revision
            else:
                first_revision = wire.decode_header(first["header"]).revision + 1
            yield WatchEvents(first_revision, events())
        finally:
            conn.streams.pop(rid, None)
            conn.overflowed.discard(rid)
            if not conn.broken:
                cancel = {"id": next(self._ids), "op": "watch_cancel", "body": {"watch_id": rid}}
                with suppress(BrokenError):
                    conn.send_nowait(cancel)


@asynccontextmanager
async def open_client(endpoints: Sequence[str], **kwargs: Any) -> AsyncIterator[Client]:
    async with Client(endpoints, **kwargs) as client:
        yield client


__all__ = [
    "WATCH_BUFFER",
    "Client",
    "ClientError",
    "IndeterminateError",
    "KVRequestError",
    "WatchCompactedError",
    "WatchEvents",
    "open_client",
]
