"""The Trio driver of one cluster member: Raft node + storage + transport + MVCC store.

:class:`Member` sees only the :class:`~raftkube.clock.Clock`,
:class:`~raftkube.net.transport.Transport` and :class:`~raftkube.storage.interface.Storage`
interfaces, so a simulator can substitute all three. :meth:`Member.run` runs, in a nursery it
owns, the tick task, the receive task, the ready loop and the lease-expiry task; nothing
outlives it. The receive task only lends the transport a callback
(:meth:`~raftkube.net.transport.Transport.serve`): a message is stepped into the node wherever
the transport has it (the simulator's delivery timer, the TCP transport's serving task), which
is safe on a single-threaded event loop and costs no task switch per message.

The ready loop handles one :class:`~raftkube.raft.Ready` at a time: persist (truncate,
snapshot, entries, hard state) with ONE ``sync`` per batch, send, install a leader's snapshot,
apply committed entries, serve ReadIndex reads, advance. The only await between ``ready()`` and
``advance()`` is the sync itself, and only when the member was given a ``run_sync`` hook (the
real runner runs the fsync in a worker thread): the event loop then keeps accepting proposals,
acknowledgements, votes and ticks, which accumulate in the node and share the next batch's sync
(group commit). Nothing that depends on a write leaves before that write is durable, because a
Ready's messages are sent only after its own sync; AppendEntries and InstallSnapshot requests
(the only inputs that can truncate or replace the log) arriving during the sync are held back
and stepped right after ``advance()``. An acknowledgement that commits entries during the
sync has them applied (and their clients answered) at once, up to what earlier Readys made
durable here, rather than after the sync and the next Ready. Without the hook the sync is a
plain call and no other task runs during a Ready, so a simulator needs no threads. What an
entry holds and how it is applied is :mod:`raftkube.server.entries`.

**Snapshots.** Every ``snapshot_every`` applied entries (and, with ``snapshot_image_ratio``,
once the entries applied since the last snapshot add up to that multiple of its image, so a
large store is not re-encoded every few thousand writes), between two Readys (the core only
compacts what it knows is applied), the member captures a view of the MVCC store (cheap),
encodes it (in a worker thread when it has ``run_encode``, while writes go on), saves the
image with ``Storage.save_snapshot`` (off the event loop when it has ``run_sync``), which
releases the WAL segments and older snapshot files it covers, and then calls
``node.compact(index)``.
**Auto-compaction** (etcd's flags, :mod:`raftkube.server.compactor`) runs on the leader and
proposes compaction requests through the log, which keeps the retained MVCC history, and
with it every image, proportional to the retention.

The core's snapshot *content* is the spec's committed prefix of
entries; the member replaces it by one synthetic entry holding the MVCC image (see
:mod:`raftkube.server.snapshots` for why), so a leader's ``InstallSnapshotRequest`` carries the
image in the spec's ``entries`` field and nothing in ``raftkube.raft`` or the spec changes. A
follower that receives one gets it as ``Ready.snapshot`` with an index beyond its own: it
persists it (storage drops the log it contradicts), replaces its store, and re-attaches its
watchers (:mod:`raftkube.server.watches`). A restart loads the newest snapshot and replays only
the committed entries after it.

**Sessions.** :meth:`Member.register_session` commits a register entry (the session id is its
index); :meth:`Member.write` with a :class:`~raftkube.server.entries.SessionTag` is applied
through the MVCC session table, so a retried write returns the first application's result.

**Graceful stop.** :meth:`Member.transfer_leadership` hands leadership to the most up-to-date
follower (TimeoutNow) and waits, bounded, for a new leader, so stopping a leader does not cost
the cluster an election timeout (except in lease-read mode, which refuses transfers).

**Reads.** :meth:`Member.linearizable_barrier` confirms leadership with a ReadIndex round, or,
with ``read_mode="lease"``, serves from a lease that such a round started while it lasts
(docs/lease-reads.md: sound only while every clock's rate stays within ``max_clock_drift``).
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from raftkube.api import wire
from raftkube.clock import Clock, move_on_after
from raftkube.mvcc import MvccStore, SessionError, SessionRejection, dump_snapshot, load_snapshot
from raftkube.mvcc.snapshot import StoreView, capture, encode_view
from raftkube.net.transport import Transport
from raftkube.raft import HardState, NodeConfig, RaftNode, Ready, RejectedError, Snapshot
from raftkube.raft.node import Observer
from raftkube.server.compactor import AutoCompaction, run_auto_compaction
from raftkube.server.disk_faults import DISK_ERRORS, describe_disk_fault
from raftkube.server.entries import (
    DecodedEntry,
    EntryError,
    Registered,
    SessionTag,
    apply_entry,
    decode_entry,
    encode_entry,
)
from raftkube.server.hooks import MemberHooks
from raftkube.server.snapshots import image_entry, image_of, restore_store
from raftkube.server.watches import MemberWatches
from raftkube.storage.interface import Storage
from raftkube.storage.state import HardState as StoredHardState
from raftkube.storage.state import LogEntry, SnapshotMeta
from raftkube.storage.state import Snapshot as StoredSnapshot
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.requests import (
    CompactionRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    Request,
)
from raftkube_spec.kv.responses import Result
from raftkube_spec.raft.messages import AppendEntriesRequest, InstallSnapshotRequest
from raftkube_spec.raft.types import Entry

logger = logging.getLogger(__name__)

SyncRunner = Callable[[Callable[[], None]], Awaitable[None]]
"""Runs a blocking callable (``Storage.sync``) and returns once it has returned."""

EncodeRunner = Callable[[Callable[[], bytes]], Awaitable[bytes]]
"""Runs a CPU-bound callable (a snapshot encoding) in a worker thread and returns its result."""

_LOG_REWRITING = (AppendEntriesRequest, InstallSnapshotRequest)


class MemberError(Exception):
    """A request the member could not serve; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str, leader: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.leader = leader


WriteOutcome = Result | MemberError
"""What :meth:`Member.submit` reports: the state machine's answer or why there is none."""

READ_INDEX = "read_index"
LEASE = "lease"
READ_MODES = (READ_INDEX, LEASE)


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
    snapshot_every: int = 10_000
    """Applied entries between two snapshots (each one releases the WAL it covers)."""
    snapshot_image_ratio: float = 0.0
    """Also wait, between two snapshots, until the applied entries' bytes reach this multiple
    of the last image's size (0: count entries only). A snapshot costs a dump of the whole
    store, so with a ratio > 0 its cost per write stays constant however large the store
    grows, at the price of a WAL (and an in-memory log) up to that multiple of the image
    (``raftkube member`` uses 1)."""
    auto_compaction: AutoCompaction = attrs.field(factory=AutoCompaction)
    """etcd's ``--auto-compaction-mode``/``--auto-compaction-retention`` (off by default)."""
    transfer_timeout: float = 1.0
    """How long a stopping leader waits for its successor before giving up."""
    read_mode: str = attrs.field(default=READ_INDEX, validator=attrs.validators.in_(READ_MODES))
    """``"read_index"``: every linearizable read confirms leadership with a quorum round.
    ``"lease"``: reads within a lease need no round trip; UNSAFE if a clock's rate drifts
    beyond ``max_clock_drift`` (docs/lease-reads.md)."""
    max_clock_drift: float = 0.1
    """Lease mode: the bound on any member's clock-rate error (0.1: 10% fast or slow)."""

    @property
    def lease_mode(self) -> bool:
        return self.read_mode == LEASE


_SESSION_CODES: dict[SessionRejection, str] = {
    SessionRejection.EXPIRED: "session_expired",
    SessionRejection.STALE_SEQUENCE: "stale_sequence",
}


@attrs.define(eq=False)
class _Waiter:
    """One request's outcome. A task awaits it (:meth:`wait`), or ``on_done`` is called
    with it: the client service answers writes from that callback, which spares a Trio task,
    a cancel scope and an event per request; such a waiter times out on the tick loop at
    ``deadline`` instead."""

    result: Result | None = None
    index: int = 0
    error: MemberError | None = None
    registered: int | None = None
    on_done: Callable[[_Waiter], None] | None = None
    deadline: float = 0.0
    proposed: tuple[bytes, DecodedEntry] | None = None
    """The entry value this member proposed and what it decodes to, so that applying it
    here skips decoding the value again (when the committed value is that same object)."""
    finished: bool = False
    _event: trio.Event | None = None

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self._event is not None:
            self._event.set()
        if self.on_done is not None:
            self.on_done(self)

    async def wait(self) -> None:
        """Return once finished; a checkpoint either way, as ``trio.Event.wait`` is."""
        if self.finished:
            await trio.lowlevel.checkpoint()
            return
        self._event = trio.Event()
        await self._event.wait()


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
        run_sync: SyncRunner | None = None,
        run_encode: EncodeRunner | None = None,
        observer: Observer | None = None,
    ) -> None:
        """``run_sync``, if given, runs ``storage.sync`` off the event loop (the real runner
        passes a :class:`~raftkube.server.sync_thread.SyncThread`'s); without it the sync is a
        plain call, so a simulator runs the member without threads. ``run_encode``, likewise,
        encodes snapshot images in a worker thread (without it: at once, in the ready loop).
        ``observer`` receives every
        event the Raft core reports, in the spec's vocabulary (a conformance checker; nobody in
        production)."""
        self.config = config
        self.hooks = MemberHooks()
        """Moments an observer may hear of (:mod:`raftkube.server.hooks`)."""
        self._run_sync = run_sync
        self._run_encode = run_encode
        self._nursery: trio.Nursery | None = None
        self._syncing = False
        self._handling = False
        """A Ready is between ``ready()`` and ``advance()`` (its sync may be in flight)."""
        self._durable_last = -1
        """While a sync runs: the last log index already durable before it (-1: none may be
        applied early, the Ready in flight truncates or installs a snapshot)."""
        self._deferred: list[Any] = []
        self.id = config.member_id
        self.storage = storage
        self.transport = transport
        self.clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.incarnation = self._rng.getrandbits(62)
        recovered = storage.recover()
        hs = recovered.hard_state
        entries = tuple(Entry(e.term, e.data) for e in recovered.entries)
        core_snapshot: Snapshot | None = None
        self._snapshot_index = 0
        if recovered.snapshot is not None:
            meta = recovered.snapshot.meta
            core_snapshot = Snapshot(
                meta.index, meta.term, (image_entry(meta.term, recovered.snapshot.data),)
            )
            self.mvcc = load_snapshot(recovered.snapshot.data)
            self._snapshot_index = meta.index
        else:
            self.mvcc = MvccStore()
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
                lease=config.lease_mode,
                read_index=True,
                compaction=True,
                leader_transfer=True,
                lease_read=config.lease_mode,
                max_clock_drift=config.max_clock_drift,
                # The tick loop may fire two ticks back to back when it catches up.
                lease_slack_ticks=1,
            ),
            random.Random(self._rng.random()),
            observer,
            hard_state=HardState(hs.term, None if hs.vote is None else int(hs.vote), hs.commit),
            snapshot=core_snapshot,
            entries=entries,
        )
        self._watch_events: dict[int, trio.Event] = {}
        self.watches = MemberWatches(self.mvcc, self._on_watch_ready)
        self.applied = self._snapshot_index
        self.snapshots_taken = 0
        self._image_size = 0 if recovered.snapshot is None else len(recovered.snapshot.data)
        self._bytes_since_snapshot = 0
        """Bytes of entry values applied since the last snapshot (see ``snapshot_image_ratio``)."""
        self._encoding = False
        """A snapshot image is being encoded in the background."""
        self._encoded: tuple[int, int, bytes, float] | None = None
        """An encoded image waiting to be saved: index, term, image, seconds it took."""
        self.auto_compactions = 0
        """Compactions this member proposed as leader and saw applied (a statistic)."""
        self.snapshots_installed = 0
        self.client_endpoints: dict[int, str] = {}
        self._kick = trio.Event()
        self._next_proposal = 1
        self._waiters: dict[int, _Waiter] = {}
        self._by_index: dict[int, int] = {}
        self._next_read = 1
        self._reads: dict[int, _Waiter] = {}
        self._read_queue: list[tuple[int, _Waiter]] = []
        self._revoking: set[int] = set()
        self._proposals: list[tuple[bytes, int, _Waiter, Request | None]] = []
        self._synced_term_vote: tuple[int, int | None] = (
            hs.term,
            None if hs.vote is None else int(hs.vote),
        )
        self._stopped = False
        self.disk_fault: MemberError | None = None
        """Set when a storage write failed: the member is fenced (:mod:`.disk_faults`)."""
        self._transferring = False
        self._lease_term = 0
        self._lease_deadline = 0.0
        """Lease mode: the clock time the lease ends, for a lease started in ``_lease_term``
        (the node's own lease is in ticks, which a stalled tick loop loses; this one is not)."""
        self.lease_reads = 0
        """Reads served from the lease, without a round trip (a statistic)."""
        # Entries known committed on disk are applied at once; the node re-delivers them
        # after restart and the ready loop skips them. A snapshot installed from a leader may
        # be ahead of the persisted commit index; it is committed by definition.
        base = self._snapshot_index
        for k, e in enumerate(entries[: max(0, hs.commit - base)]):
            self._apply_entry(base + 1 + k, e)

    # --- queries -------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        # A member fenced by a disk fault may still hold its last Raft state, but it leads
        # nothing: it takes no further part in Raft.
        return self.node.is_leader and self.disk_fault is None

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
                self._nursery = nursery
                nursery.start_soon(self._tick_loop)
                nursery.start_soon(self._receive_loop)
                nursery.start_soon(self._ready_loop_or_fence, nursery.cancel_scope)
                nursery.start_soon(self._lease_loop)
                nursery.start_soon(self._auto_compaction_loop)
                task_status.started()
        finally:
            self._stopped = True
            for w in [*self._waiters.values(), *self._reads.values()]:
                w.error = MemberError("unavailable", "raftkube: member stopped")
                w.finish()

    def kick(self) -> None:
        self._kick.set()

    def _kick_if_needed(self) -> None:
        """Wake the ready loop after a tick or a message only if an iteration would do
        something: the node has a Ready, or a read still waits to start its ReadIndex round
        (retried on every iteration). Proposals and new reads kick for themselves. Without
        this, every follower tick costs the loop two scheduler passes to find nothing.

        A Ready that holds only messages (a heartbeat, its answer, an acknowledgement that
        commits nothing: most Readys) is sent right here instead, unless a Ready is being
        handled: it has nothing to persist, apply or serve, so the ready loop would only send
        it a scheduler pass later, and everything it depends on is already durable (Readys
        before it were handled, their syncs included)."""
        node = self.node
        if node.has_ready():
            if self._handling or not node.has_only_messages():
                self.kick()
                return
            rd = node.ready()
            for m in rd.messages:
                self.transport.send(m.dest, m)
            node.advance(rd)
        if self._reads and any(w.index == -1 for w in self._reads.values()):
            self.kick()

    async def _tick_loop(self) -> None:
        interval = self.config.tick_interval
        deadline = self.clock.now()
        while True:
            deadline += interval
            await self.clock.sleep_until(deadline)
            self.node.tick()
            self._expire_submitted()
            self._kick_if_needed()
            deadline = max(deadline, self.clock.now() - interval)

    async def _receive_loop(self) -> None:
        await self.transport.serve(self._on_message)

    def _on_message(self, m: Any) -> None:
        if self._syncing and isinstance(m, _LOG_REWRITING):
            self._deferred.append(m)
        else:
            self._step(m)
            if self._syncing:
                self._apply_while_syncing()
        self._kick_if_needed()

    async def _ready_loop_or_fence(self, raft: trio.CancelScope) -> None:
        """Run the ready loop, the only writer of the storage; if the disk refuses a write,
        fence the member (:mod:`raftkube.server.disk_faults`): answer the requests in flight
        as of unknown outcome, refuse new ones with the cause, and stop every Raft task by
        cancelling ``raft``, before anything that depends on the failed write is sent."""
        try:
            await self._ready_loop()
        except DISK_ERRORS as exc:
            code, message = describe_disk_fault(self.id, exc)
            logger.error("member %d: fenced: %s", self.id, message)
            self.disk_fault = MemberError(code, message)
            for w in [*self._waiters.values(), *self._reads.values()]:
                w.error = MemberError("unavailable", message)
                w.finish()
            raft.cancel()

    async def _ready_loop(self) -> None:
        while True:
            if self._encoded is not None:
                await self._save_snapshot(*self._encoded)
            self._start_reads()
            self._flush_proposals()
            if not self.node.has_ready():
                await self._kick.wait()
                self._kick = trio.Event()
                if self._proposals:
                    # Clients are proposing: let the tasks that just became runnable propose
                    # too (group commit). A wake-up by Raft traffic alone goes straight on:
                    # messages are stepped where they arrive, so there is nothing to wait for.
                    await trio.lowlevel.checkpoint()
                continue
            self._handling = True
            try:
                await self._handle(self.node.ready())
            finally:
                self._handling = False
            if self._snapshot_due():
                self._start_snapshot()
            if self._kick.is_set():
                # Work arrived while this Ready was handled (during its sync): let whatever
                # else just became runnable add to the next batch first (group commit).
                # Otherwise nothing is waiting to join it, and yielding would only cost a pass.
                await trio.lowlevel.checkpoint()

    async def _sync(self) -> None:
        """Make the Ready's writes durable. With a ``run_sync`` hook (a worker thread in the
        real runner) the event loop keeps running meanwhile: proposals, acknowledgements,
        votes and ticks are stepped into the node and batched into the next Ready, whose
        messages again leave only after its own sync. Messages that may rewrite the log
        (AppendEntries, InstallSnapshot) are held back until this Ready is advanced, so
        the node's unstable/truncation bookkeeping stays exactly as in the synchronous
        driver (one Ready in flight, nothing removed from under it)."""
        if self._run_sync is None:
            self.storage.sync()
            return
        self._syncing = True
        try:
            await self._run_sync(self.storage.sync)
        finally:
            self._syncing = False

    def _needs_sync(self, rd: Ready) -> bool:
        """Whether ``rd``'s writes must be durable before its messages leave. A change of the
        commit index alone needs no fsync of its own (the commit index is advisory: a restart
        may recover an older one, see :class:`~raftkube.raft.ready.HardState`); it is written
        now and becomes durable with the next sync."""
        hs = rd.hard_state
        if rd.truncate_from is not None or rd.snapshot is not None or rd.entries:
            if hs is not None:
                self._synced_term_vote = (hs.term, hs.vote)
            return True
        if hs is None or (hs.term, hs.vote) == self._synced_term_vote:
            return False
        self._synced_term_vote = (hs.term, hs.vote)
        return True

    def _apply_while_syncing(self) -> None:
        """Apply (and answer) what an acknowledgement just committed, without waiting for the
        sync in flight to return and the next Ready to deliver it: on a leader under load this
        saves each write most of one fsync. Only entries that an earlier Ready already made
        durable here are applied (never while a truncation or snapshot is in flight), so the
        state machine never runs ahead of this member's own log; the next Ready re-delivers
        them and :meth:`_apply_committed` skips what is applied. Runs only during a sync in a
        ``run_sync`` thread, which the simulator never uses."""
        end = min(self.node.commit, self._durable_last)
        if end > self.applied:
            self._apply_committed(self.applied + 1, self.node.log.slice(self.applied, end))
            self._release_reads()

    def _step_deferred(self) -> None:
        held, self._deferred = self._deferred, []
        for m in held:
            self._step(m)

    def _step(self, m: Any) -> None:
        try:
            self.node.step(m)
        except ValueError:
            logger.warning("member %d: dropped misaddressed message %r", self.id, m)

    async def _handle(self, rd: Ready) -> None:
        # 1. Persist, one sync for the whole batch.
        if rd.truncate_from is not None:
            self.storage.truncate_suffix(rd.truncate_from)
        installed = self._persist_snapshot(rd.snapshot) if rd.snapshot is not None else None
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
        # Committed entries that an earlier Ready already made durable here are applied (and
        # their clients answered) while this Ready's sync runs, not one fsync later.
        committed = rd.committed_entries
        if installed is None and rd.snapshot is None and rd.truncate_from is None and committed:
            end = rd.committed_first_index + len(committed)
            durable_end = rd.first_index if rd.entries else end
            early = max(0, min(len(committed), durable_end - rd.committed_first_index))
            self._apply_committed(rd.committed_first_index, committed[:early])
            committed = committed[early:]
            first_committed = rd.committed_first_index + early
        else:
            first_committed = rd.committed_first_index
        if self._needs_sync(rd):
            if rd.truncate_from is None and rd.snapshot is None:
                self._durable_last = rd.first_index - 1 if rd.entries else self.node.last_index
            else:
                self._durable_last = -1
            await self._sync()
        # 2. Send.
        for m in rd.messages:
            self.transport.send(m.dest, m)
        # 3. Apply: a leader's snapshot first, then the entries after it.
        if installed is not None:
            self._install(installed, rd.snapshot.index if rd.snapshot is not None else 0)
        self._apply_committed(first_committed, committed)
        # 4. Reads.
        for rs in rd.read_states:
            w = self._reads.get(rs.read_id)
            if w is not None:
                w.index = rs.index
                self._read_queue.append((rs.read_id, w))
        self._release_reads()
        self.node.advance(rd)
        if self._deferred:
            self._step_deferred()

    def _apply_committed(self, first_index: int, entries: tuple[Entry, ...]) -> None:
        for k, e in enumerate(entries):
            index = first_index + k
            if index > self.applied:
                self._apply_entry(index, e)

    def _persist_snapshot(self, snap: Snapshot) -> MvccStore | None:
        """Persist a snapshot handed over by the node; returns the store to install if it
        came from a leader. The member's own snapshots are saved when taken, so a Ready
        snapshot at or below the last saved index is one of those and needs nothing."""
        if snap.index <= self._snapshot_index:
            return None
        data = snap.data
        image = image_of(data[0]) if len(data) == 1 else None
        store = load_snapshot(image) if image is not None else restore_store(data, index=snap.index)
        if image is None:
            image = dump_snapshot(store)
        self.storage.save_snapshot(StoredSnapshot(SnapshotMeta(snap.index, snap.term), image))
        self._snapshot_index = snap.index
        self._image_size, self._bytes_since_snapshot = len(image), 0
        self._collapse_core_snapshot(snap.index, snap.term, image)
        return store

    def _install(self, store: MvccStore, index: int) -> None:
        """Replace the state machine by a leader's snapshot at ``index``."""
        self.mvcc = store
        self.watches.replace_store(store)
        self.applied = index
        self._revoking.clear()
        for i in [i for i in self._by_index if i <= index]:
            self._fail_displaced(self._by_index.pop(i), None)
        self.snapshots_installed += 1
        logger.info("member %d: installed a snapshot at index %d", self.id, index)
        if self.hooks.store_replaced is not None:
            self.hooks.store_replaced(store, index)

    def _snapshot_due(self) -> bool:
        """Time for a snapshot: none in progress, ``snapshot_every`` entries and
        ``snapshot_image_ratio`` times the last image's bytes applied since the last one, and
        the node knows all of it is applied (an entry applied during a sync may not be
        reported to it yet: then a later Ready's turn takes the snapshot)."""
        config = self.config
        return (
            not self._encoding
            and self._encoded is None
            and self.applied - self._snapshot_index >= config.snapshot_every
            and self._bytes_since_snapshot >= config.snapshot_image_ratio * self._image_size
            and self.applied <= self.node.applied
        )

    def _start_snapshot(self) -> None:
        """Snapshot the state machine at the applied index, between two Readys.

        Only a detached view of the store is taken here (:func:`raftkube.mvcc.snapshot.capture`,
        references only); encoding it, the expensive part, runs in ``run_encode``'s thread
        when the member has one, while the ready loop goes on applying writes. The ready loop
        saves the image once it is ready (:meth:`_save_snapshot`)."""
        index = self.applied
        term = self.node.log.term_at(index)
        view = capture(self.mvcc)
        self._bytes_since_snapshot = 0
        if self._run_encode is None or self._nursery is None:
            self._encoded = (index, term, encode_view(view), 0.0)
            return
        self._encoding = True
        self._nursery.start_soon(self._encode_in_background, index, term, view)

    async def _encode_in_background(self, index: int, term: int, view: StoreView) -> None:
        assert self._run_encode is not None
        started = self.clock.now()
        try:
            image = await self._run_encode(functools.partial(encode_view, view))
        finally:
            self._encoding = False
        self._encoded = (index, term, image, self.clock.now() - started)
        self.kick()

    async def _save_snapshot(self, index: int, term: int, image: bytes, encoding: float) -> None:
        """Save an encoded image and compact log and WAL up to ``index``.

        The file is written and synced through ``run_sync`` when the member has one, so the
        event loop keeps stepping messages and sending heartbeats meanwhile; the ready loop,
        the only writer of the storage, waits. The core is told to compact only once the file
        is durable, so until then it keeps the entries (and sends no snapshot that does not
        exist yet), and its pending compaction never holds back the heartbeats."""
        self._encoded = None
        if index <= self._snapshot_index:
            return  # A leader's newer snapshot was installed while this one was encoded.
        started = self.clock.now()
        snapshot = StoredSnapshot(SnapshotMeta(index, term), image)
        if self._run_sync is None:
            self.storage.save_snapshot(snapshot)
        else:
            await self._run_sync(lambda: self.storage.save_snapshot(snapshot))
        self._snapshot_index = index
        self._image_size = len(image)
        self.snapshots_taken += 1
        logger.info(
            "member %d: saved snapshot at index %d (%d bytes; encoded in %.3f s, saved in %.3f s)",
            self.id,
            index,
            len(image),
            encoding,
            self.clock.now() - started,
        )
        try:
            self.node.compact(index)
        except RejectedError as exc:
            # A leader's newer snapshot was stepped in meanwhile: the core's log is already
            # past ``index``, and the next Ready persists that snapshot.
            logger.info("member %d: not compacting to %d: %s", self.id, index, exc)
            return
        self._collapse_core_snapshot(index, term, image)

    async def _auto_compaction_loop(self) -> None:
        """etcd's auto-compactor (:mod:`raftkube.server.compactor`), on this member's clock."""
        clock = self.clock
        await run_auto_compaction(
            self.config.auto_compaction,
            now=clock.now,
            sleep_until=clock.sleep_until,
            revision=lambda: self.mvcc.revision,
            leading=lambda: self.node.is_leader and not self._stopped,
            compact=self._auto_compact,
        )

    async def _auto_compact(self, revision: int) -> bool:
        """Propose a compaction at ``revision`` through Raft; True once applied (or already
        compacted), False to retry at the next check."""
        try:
            result = await self.write(CompactionRequest(revision))
        except MemberError as exc:
            logger.warning("member %d: auto-compaction at %d failed: %s", self.id, revision, exc)
            return False
        if isinstance(result, KVError):
            if result.code is ErrorCode.COMPACTED:
                return True
            logger.warning("member %d: auto-compaction at %d: %s", self.id, revision, result)
            return False
        self.auto_compactions += 1
        logger.info("member %d: finished auto-compaction at revision %d", self.id, revision)
        return True

    def _collapse_core_snapshot(self, index: int, term: int, image: bytes) -> None:
        """Make the core's snapshot data the single image entry (see module docstring): the
        committed prefix it would otherwise keep grows without bound and is what a leader
        would send in InstallSnapshot."""
        log = self.node.log
        if log.snapshot.index == index:
            log.snapshot = Snapshot(index, term, (image_entry(term, image),))

    def _apply_entry(self, index: int, entry: Entry) -> None:
        self.applied = index
        data = _as_bytes(entry.value)
        self._bytes_since_snapshot += len(data)
        expected = self._by_index.pop(index, None)
        if not data:
            self._fail_displaced(expected, None)
            return
        decoded = self._own_decoded(expected, data)
        if decoded is None:
            try:
                decoded = decode_entry(data)
            except EntryError as exc:
                logger.error("member %d: undecodable entry %d: %s", self.id, index, exc)
                self._fail_displaced(expected, None)
                return
        outcome = apply_entry(self.mvcc, index, decoded)
        if isinstance(decoded.request, LeaseRevokeRequest):
            self._revoking.discard(decoded.request.id)
        mine = decoded.proposal_id if decoded.incarnation == self.incarnation else None
        self._fail_displaced(expected, mine)
        if mine is None:
            return
        w = self._waiters.pop(mine, None)
        if w is None:
            return
        w.index = index
        if isinstance(outcome, Registered):
            w.registered = outcome.client_id
        elif isinstance(outcome, SessionError):
            w.error = MemberError(_SESSION_CODES[outcome.code], outcome.message)
        else:
            w.result = outcome
        w.finish()

    def _own_decoded(self, pid: int | None, data: bytes) -> DecodedEntry | None:
        """What this member's proposal ``pid`` decodes to, if ``data`` is the very value it
        proposed (so the entry at this index is that proposal). The wire codec round-trips
        every request exactly (tests/impl/test_api_wire.py), so this equals
        ``decode_entry(data)``, which every other replica applies."""
        if pid is None:
            return None
        w = self._waiters.get(pid)
        if w is None or w.proposed is None or w.proposed[0] is not data:
            return None
        return w.proposed[1]

    def _fail_displaced(self, expected: int | None, applied: int | None) -> None:
        """Our proposal at this index was overwritten by another leader's entry."""
        if expected is not None and expected != applied:
            w = self._waiters.pop(expected, None)
            if w is not None:
                w.error = MemberError("unavailable", "etcdserver: leader changed")
                w.finish()

    def _release_reads(self) -> None:
        keep = []
        for rid, w in self._read_queue:
            if w.index <= self.applied:
                self._reads.pop(rid, None)
                w.finish()
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

    def _propose(
        self, req: Request | None, session: SessionTag | None = None
    ) -> tuple[int, _Waiter]:
        """Append ``req`` (None: a session registration); returns its proposal id and waiter."""
        if self.disk_fault is not None:
            raise self.disk_fault
        if self._stopped:
            raise MemberError("unavailable", "raftkube: member stopped")
        if self._transferring:
            # New entries would keep the transfer target behind; the client retries elsewhere.
            raise MemberError("unavailable", "raftkube: leadership transfer in progress")
        if not self.node.is_leader:
            raise self._not_leader()
        pid = self._next_proposal
        self._next_proposal += 1
        w = _Waiter()
        data = encode_entry(self.incarnation, pid, req, session)
        w.proposed = (data, DecodedEntry(self.incarnation, pid, req, session))
        # Queued, and appended by the ready loop together with every other proposal made
        # meanwhile, so each follower gets one AppendEntries per batch, not one per request.
        self._proposals.append((data, pid, w, req))
        self._waiters[pid] = w
        self.kick()
        return pid, w

    def _flush_proposals(self) -> None:
        if not self._proposals:
            return
        batch, self._proposals = self._proposals, []
        try:
            first = self.node.propose_many([data for data, _, _, _ in batch])
        except RejectedError:
            err = self._not_leader()
            for _, pid, w, req in batch:
                self._waiters.pop(pid, None)
                if isinstance(req, LeaseRevokeRequest):
                    self._revoking.discard(req.id)
                w.error = err
                w.finish()
            return
        for k, (_, pid, _, _) in enumerate(batch):
            self._by_index[first + k] = pid

    async def _wait(self, w: _Waiter, cleanup: Callable[[], Any]) -> None:
        with move_on_after(self.clock, self.config.request_timeout) as scope:
            await w.wait()
        if scope.cancelled_caught:
            cleanup()
            raise MemberError("timeout", "etcdserver: request timed out")
        if w.error is not None:
            raise w.error

    def _stamp(self, req: Request) -> Request:
        """Fix what a lease request takes from the leader's clock (and a new lease's id), so
        every replica applies the same entry."""
        if isinstance(req, LeaseGrantRequest):
            lease_id = req.id if req.id > 0 else self._rng.randrange(1, 2**62)
            return LeaseGrantRequest(lease_id, req.ttl, self.now_ms())
        if isinstance(req, LeaseKeepAliveRequest):
            return LeaseKeepAliveRequest(req.id, self.now_ms())
        if isinstance(req, LeaseTimeToLiveRequest):
            return LeaseTimeToLiveRequest(req.id, self.now_ms(), req.keys)
        return req

    async def write(self, req: Request, session: SessionTag | None = None) -> Result:
        """Replicate ``req`` and return the state machine's answer (leader only).

        With ``session``, the write is applied at most once per ``(client_id, sequence)``: a
        retry of an applied one returns the cached result (raises ``session_expired`` or
        ``stale_sequence`` when the session table cannot vouch for that)."""
        pid, w = self._propose(self._stamp(req), session)
        await self._wait(w, lambda: self._waiters.pop(pid, None))
        assert w.result is not None
        return w.result

    def submit(
        self,
        req: Request,
        session: SessionTag | None,
        on_done: Callable[[WriteOutcome], None],
    ) -> None:
        """:meth:`write` without a task: ``on_done`` is called once with the outcome (the
        result, or the :class:`MemberError` that :meth:`write` would raise, ``timeout``
        included). Raises :class:`MemberError` at once if the write cannot be proposed."""
        _, w = self._propose(self._stamp(req), session)
        w.deadline = self.clock.now() + self.config.request_timeout
        w.on_done = lambda done: on_done(done.error or _result(done))

    def _expire_submitted(self) -> None:
        """Time out :meth:`submit` waiters past their deadline. They are created in proposal
        order with the same timeout, so the first unexpired one ends the scan; waiters of
        :meth:`write` (which time out on their own) are skipped."""
        if not self._waiters:
            return
        now = self.clock.now()
        expired = []
        for pid, w in self._waiters.items():
            if w.on_done is None:
                continue
            if w.deadline > now:
                break
            expired.append(pid)
        for pid in expired:
            w = self._waiters.pop(pid)
            w.error = MemberError("timeout", "etcdserver: request timed out")
            w.finish()

    async def register_session(self) -> int:
        """Open a client session through the log; returns its id (the entry's index)."""
        pid, w = self._propose(None)
        await self._wait(w, lambda: self._waiters.pop(pid, None))
        assert w.registered is not None
        return w.registered

    # --- leadership transfer -------------------------------------------------------------

    def _transfer_target(self) -> int | None:
        """The follower with the longest log, if it holds the whole log already."""
        node = self.node
        peers = node.config.peers
        if not node.is_leader or not peers:
            return None
        best = max(peers, key=node.match_index)
        return best if node.match_index(best) == node.last_index else None

    async def transfer_leadership(self) -> int | None:
        """If leader, hand leadership to the most up-to-date follower and wait (at most
        ``transfer_timeout``) until another member leads; returns it, or None if this member
        was not the leader or no successor appeared in time.

        New proposals are refused meanwhile, so the target can catch up to the last index
        (the core only transfers to an up-to-date follower). TimeoutNow is re-sent every few
        ticks in case it was lost; a duplicate in an older term is ignored by the target.
        """
        if not self.node.is_leader or self._stopped or self.config.lease_mode:
            return None
        self._transferring = True
        resend_every = max(1, self.config.election_ticks // 2) * self.config.tick_interval
        try:
            with move_on_after(self.clock, self.config.transfer_timeout):
                next_send = self.clock.now()
                while self.node.is_leader:
                    target = self._transfer_target()
                    if target is not None and self.clock.now() >= next_send:
                        try:
                            self.node.transfer_leadership(target)
                        except RejectedError:
                            pass
                        else:
                            next_send = self.clock.now() + resend_every
                            self.kick()
                    await self.clock.sleep_until(self.clock.now() + self.config.tick_interval)
                while self.node.leader in (None, self.id):
                    await self.clock.sleep_until(self.clock.now() + self.config.tick_interval)
                return self.node.leader
            return None
        finally:
            self._transferring = False

    async def stop_gracefully(self) -> int | None:
        """Prepare to stop: transfer leadership (bounded), then refuse further requests.
        Returns the successor this member handed over to, if any. The caller then cancels
        :meth:`run`."""
        successor = await self.transfer_leadership()
        self._stopped = True
        return successor

    async def linearizable_barrier(self) -> None:
        """Return once the local state reflects every write committed before the call.

        A ReadIndex round confirms that this member still leads; in lease mode a valid lease
        stands in for it (the read waits only for the apply), and each round renews it."""
        if self.disk_fault is not None:
            # Unavailable, not the write's code: the read is refused only here, and a client
            # goes on to another member (or reads serializably from this one).
            raise MemberError("unavailable", self.disk_fault.message)
        if self._stopped:
            raise MemberError("unavailable", "raftkube: member stopped")
        if not self.node.is_leader:
            raise self._not_leader()
        leased = self._leased_index()
        rid = self._next_read
        self._next_read += 1
        if leased is not None:
            if self.hooks.lease_read is not None:
                self.hooks.lease_read(self.node.term)
            self.lease_reads += 1
            w = _Waiter(index=leased)
            self._reads[rid] = w
            self._read_queue.append((rid, w))
            self._release_reads()
            await self._wait(w, lambda: self._reads.pop(rid, None))
            return
        started, term = self.clock.now(), self.node.term
        w = _Waiter(index=-1)
        self._reads[rid] = w
        self.kick()
        await self._wait(w, lambda: self._reads.pop(rid, None))
        if self.config.lease_mode and self.node.term == term:
            # The round was registered after ``started``, by this leader (same term), so the
            # node's lease runs from a later tick; the clock bound is never the longer one.
            lease = self.node.config.lease_ticks * self.config.tick_interval
            if term != self._lease_term:
                self._lease_term, self._lease_deadline = term, 0.0
            self._lease_deadline = max(self._lease_deadline, started + lease)

    def _leased_index(self) -> int | None:
        """The node's lease index, if the clock also says the lease still holds."""
        index = self.node.lease_read_index()
        if index is None or self.node.term != self._lease_term:
            return None
        return index if self.clock.now() < self._lease_deadline else None

    def read_local(self, req: Request) -> Result:
        return self.mvcc.apply(req)


def _result(w: _Waiter) -> Result:
    assert w.result is not None
    return w.result


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    raise TypeError(f"entry value must be bytes, got {type(value).__name__}")
