"""The Trio driver of one cluster member: Raft node + storage + transport + MVCC store.

:class:`Member` sees only the :class:`~raftkube.clock.Clock`,
:class:`~raftkube.net.transport.Transport` and :class:`~raftkube.storage.interface.Storage`
interfaces, so a simulator can substitute all three. :meth:`Member.run` runs, in a nursery it
owns, the tick task, the receive task, the ready loop and the lease-expiry task; nothing
outlives it.

The ready loop handles each :class:`~raftkube.raft.Ready` without awaiting in between
``ready()`` and ``advance()``: persist (truncate, entries, hard state) with ONE ``sync`` per
batch, send, apply committed entries, serve ReadIndex reads, advance. Proposals made while a
batch is being handled accumulate in the node and share the next batch's sync (group commit).

Entry values are msgpack arrays ``[incarnation, proposal_id, op, body]`` where ``body`` is the
wire encoding of the KV request: the proposer keeps a waiter per ``(incarnation, proposal_id)``
and is woken with the state machine's result when the entry is applied. The empty value is a
leader's no-op.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import trio

from raftkube.api import wire
from raftkube.clock import Clock
from raftkube.mvcc import MvccStore, WatchHub
from raftkube.net.transport import Transport, TransportClosedError
from raftkube.raft import HardState, NodeConfig, RaftNode, Ready, RejectedError
from raftkube.storage.interface import Storage
from raftkube.storage.state import HardState as StoredHardState
from raftkube.storage.state import LogEntry
from raftkube_spec.kv.requests import (
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    Request,
)
from raftkube_spec.kv.responses import Result
from raftkube_spec.raft.types import Entry

logger = logging.getLogger(__name__)


class MemberError(Exception):
    """A request the member could not serve; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str, leader: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.leader = leader


@attrs.frozen
class MemberConfig:
    member_id: int
    servers: int
    cluster_id: str = "raftkube"
    tick_interval: float = 0.02
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    max_batch: int = 256
    request_timeout: float = 5.0
    lease_check_interval: float = 0.5


@attrs.define(eq=False)
class _Waiter:
    done: trio.Event = attrs.Factory(trio.Event)
    result: Result | None = None
    index: int = 0
    error: MemberError | None = None


class Member:
    """One member. Build it from recovered storage, then ``await nursery.start(m.run)``."""

    def __init__(
        self,
        config: MemberConfig,
        *,
        storage: Storage,
        transport: Transport,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.id = config.member_id
        self.storage = storage
        self.transport = transport
        self.clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.incarnation = self._rng.getrandbits(62)
        recovered = storage.recover()
        if recovered.snapshot is not None:
            raise NotImplementedError("snapshots are not supported by this driver yet")
        hs = recovered.hard_state
        entries = tuple(Entry(e.term, e.data) for e in recovered.entries)
        self.node = RaftNode(
            NodeConfig(
                node_id=self.id,
                servers=config.servers,
                election_timeout=config.election_ticks,
                heartbeat_timeout=config.heartbeat_ticks,
                max_batch=config.max_batch,
                pipelining=True,
                max_inflight=64,
                pre_vote=True,
                check_quorum=True,
                read_index=True,
            ),
            random.Random(self._rng.random()),
            hard_state=HardState(hs.term, None if hs.vote is None else int(hs.vote), hs.commit),
            entries=entries,
        )
        self.mvcc = MvccStore()
        self._watch_events: dict[int, trio.Event] = {}
        self.watches = WatchHub(self.mvcc, on_ready=self._on_watch_ready)
        self.applied = 0
        self.client_endpoints: dict[int, str] = {}
        self._kick = trio.Event()
        self._next_proposal = 1
        self._waiters: dict[int, _Waiter] = {}
        self._by_index: dict[int, int] = {}
        self._next_read = 1
        self._reads: dict[int, _Waiter] = {}
        self._read_queue: list[tuple[int, _Waiter]] = []
        self._revoking: set[int] = set()
        self._stopped = False
        # Entries known committed on disk are applied at once; the node re-delivers them
        # after restart and the ready loop skips them.
        for i, e in enumerate(entries[: hs.commit], start=1):
            self._apply_entry(i, e)

    # --- queries -------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.node.is_leader

    @property
    def leader(self) -> int | None:
        return self.node.leader

    @property
    def term(self) -> int:
        return self.node.term

    def header(self, revision: int | None = None) -> wire.WireHeader:
        return wire.WireHeader(
            cluster_id=self.config.cluster_id,
            member_id=self.id,
            revision=self.mvcc.revision if revision is None else revision,
            raft_term=self.node.term,
        )

    def leader_endpoint(self) -> str | None:
        leader = self.node.leader
        return None if leader is None else self.client_endpoints.get(leader)

    def now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    # --- running -------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run every task of the member until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._tick_loop)
                nursery.start_soon(self._receive_loop)
                nursery.start_soon(self._ready_loop)
                nursery.start_soon(self._lease_loop)
                task_status.started()
        finally:
            self._stopped = True
            for w in [*self._waiters.values(), *self._reads.values()]:
                w.error = MemberError("unavailable", "raftkube: member stopped")
                w.done.set()

    def kick(self) -> None:
        self._kick.set()

    async def _tick_loop(self) -> None:
        interval = self.config.tick_interval
        deadline = self.clock.now()
        while True:
            deadline += interval
            await self.clock.sleep_until(deadline)
            self.node.tick()
            self.kick()
            deadline = max(deadline, self.clock.now() - interval)

    async def _receive_loop(self) -> None:
        while True:
            try:
                m = await self.transport.receive()
            except TransportClosedError:
                return
            try:
                self.node.step(m)
            except ValueError:
                logger.warning("member %d: dropped misaddressed message %r", self.id, m)
            self.kick()

    async def _ready_loop(self) -> None:
        while True:
            self._start_reads()
            if not self.node.has_ready():
                await self._kick.wait()
                self._kick = trio.Event()
                # Let the tasks that just became runnable propose too: group commit.
                await trio.sleep(0)
                continue
            self._handle(self.node.ready())
            await trio.sleep(0)

    def _handle(self, rd: Ready) -> None:
        # 1. Persist, one sync for the whole batch.
        if rd.truncate_from is not None:
            self.storage.truncate_suffix(rd.truncate_from)
        if rd.snapshot is not None:
            raise NotImplementedError("snapshots are not supported by this driver yet")
        if rd.entries:
            self.storage.append_entries(
                [
                    LogEntry(rd.first_index + k, e.term, _as_bytes(e.value))
                    for k, e in enumerate(rd.entries)
                ]
            )
        if rd.hard_state is not None:
            hs = rd.hard_state
            vote = None if hs.vote is None else str(hs.vote)
            self.storage.set_hard_state(StoredHardState(hs.term, vote, hs.commit))
        if rd.must_persist:
            self.storage.sync()
        # 2. Send.
        for m in rd.messages:
            self.transport.send(m.dest, m)
        # 3. Apply.
        for k, e in enumerate(rd.committed_entries):
            index = rd.committed_first_index + k
            if index > self.applied:
                self._apply_entry(index, e)
        # 4. Reads.
        for rs in rd.read_states:
            w = self._reads.get(rs.read_id)
            if w is not None:
                w.index = rs.index
                self._read_queue.append((rs.read_id, w))
        self._release_reads()
        self.node.advance(rd)

    def _apply_entry(self, index: int, entry: Entry) -> None:
        self.applied = index
        data = _as_bytes(entry.value)
        expected = self._by_index.pop(index, None)
        if not data:
            self._fail_displaced(expected, None)
            return
        try:
            incarnation, pid, op, body = msgpack.unpackb(data, raw=False)
            req = wire.decode_request(op, body)
        except (ValueError, TypeError, wire.WireError) as exc:
            logger.error("member %d: undecodable entry %d: %s", self.id, index, exc)
            self._fail_displaced(expected, None)
            return
        result = self.mvcc.apply(req)
        if isinstance(req, LeaseRevokeRequest):
            self._revoking.discard(req.id)
        mine = pid if incarnation == self.incarnation else None
        self._fail_displaced(expected, mine)
        if mine is not None:
            w = self._waiters.pop(mine, None)
            if w is not None:
                w.result, w.index = result, index
                w.done.set()

    def _fail_displaced(self, expected: int | None, applied: int | None) -> None:
        """Our proposal at this index was overwritten by another leader's entry."""
        if expected is not None and expected != applied:
            w = self._waiters.pop(expected, None)
            if w is not None:
                w.error = MemberError("unavailable", "etcdserver: leader changed")
                w.done.set()

    def _release_reads(self) -> None:
        keep = []
        for rid, w in self._read_queue:
            if w.index <= self.applied:
                self._reads.pop(rid, None)
                w.done.set()
            else:
                keep.append((rid, w))
        self._read_queue = keep

    def _start_reads(self) -> None:
        """Issue ReadIndex for reads waiting for a leader that has committed in its term."""
        for rid, w in list(self._reads.items()):
            if w.index == -1:
                try:
                    self.node.read_index(rid)
                except RejectedError:
                    continue
                w.index = -2

    def _on_watch_ready(self, watcher_id: int) -> None:
        event = self._watch_events.get(watcher_id)
        if event is not None:
            event.set()

    def watch_event(self, watcher_id: int) -> trio.Event:
        """An event set when ``watcher_id`` has something to take (replace it after use)."""
        event = trio.Event()
        self._watch_events[watcher_id] = event
        if self.watches.has_pending(watcher_id):
            event.set()
        return event

    def forget_watch(self, watcher_id: int) -> None:
        self._watch_events.pop(watcher_id, None)
        self.watches.cancel(watcher_id)

    async def _lease_loop(self) -> None:
        while True:
            await self.clock.sleep_until(self.clock.now() + self.config.lease_check_interval)
            if not self.node.is_leader:
                continue
            for lease_id in self.mvcc.expired_leases(self.now_ms()):
                if lease_id in self._revoking:
                    continue
                self._revoking.add(lease_id)
                try:
                    self._propose(LeaseRevokeRequest(lease_id))
                except MemberError:
                    self._revoking.discard(lease_id)
                    break

    # --- client entry points -------------------------------------------------------------

    def _not_leader(self) -> MemberError:
        return MemberError("not_leader", "etcdserver: not leader", leader=self.node.leader)

    def _propose(self, req: Request) -> _Waiter:
        if self._stopped:
            raise MemberError("unavailable", "raftkube: member stopped")
        if not self.node.is_leader:
            raise self._not_leader()
        pid = self._next_proposal
        self._next_proposal += 1
        data = msgpack.packb(
            [self.incarnation, pid, wire.request_op(req), wire.encode_request(req)],
            use_bin_type=True,
        )
        w = _Waiter()
        index = self.node.propose(data)
        self._waiters[pid] = w
        self._by_index[index] = pid
        self.kick()
        return w

    async def _wait(self, w: _Waiter, cleanup: Callable[[], Any]) -> None:
        with trio.move_on_after(self.config.request_timeout) as scope:
            await w.done.wait()
        if scope.cancelled_caught:
            cleanup()
            raise MemberError("timeout", "etcdserver: request timed out")
        if w.error is not None:
            raise w.error

    async def write(self, req: Request) -> Result:
        """Replicate ``req`` and return the state machine's answer (leader only)."""
        if isinstance(req, LeaseGrantRequest):
            lease_id = req.id if req.id > 0 else self._rng.randrange(1, 2**62)
            req = LeaseGrantRequest(lease_id, req.ttl, self.now_ms())
        elif isinstance(req, LeaseKeepAliveRequest):
            req = LeaseKeepAliveRequest(req.id, self.now_ms())
        elif isinstance(req, LeaseTimeToLiveRequest):
            req = LeaseTimeToLiveRequest(req.id, self.now_ms(), req.keys)
        w = self._propose(req)
        pid = self._next_proposal - 1
        await self._wait(w, lambda: self._waiters.pop(pid, None))
        assert w.result is not None
        return w.result

    async def linearizable_barrier(self) -> None:
        """Return once the local state reflects every write committed before the call."""
        if self._stopped:
            raise MemberError("unavailable", "raftkube: member stopped")
        if not self.node.is_leader:
            raise self._not_leader()
        rid = self._next_read
        self._next_read += 1
        w = _Waiter(index=-1)
        self._reads[rid] = w
        self.kick()
        await self._wait(w, lambda: self._reads.pop(rid, None))

    def read_local(self, req: Request) -> Result:
        return self.mvcc.apply(req)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    raise TypeError(f"entry value must be bytes, got {type(value).__name__}")
