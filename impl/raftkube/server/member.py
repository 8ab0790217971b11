"""The Trio driver of one cluster member: Raft node + storage + transport + MVCC store.

:class:`Member` sees only the :class:`~raftkube.clock.Clock`,
:class:`~raftkube.net.transport.Transport` and :class:`~raftkube.storage.interface.Storage`
interfaces, so a simulator can substitute all three. :meth:`Member.run` runs, in a nursery it
owns, the tick task, the receive task, the ready loop, the lease-expiry task and the
auto-compaction task; nothing outlives it. The receive task only lends the transport a
callback (:meth:`~raftkube.net.transport.Transport.serve`): a message is stepped into the node
wherever the transport has it (the simulator's delivery timer, the TCP transport's serving
task), which is safe on a single-threaded event loop and costs no task switch per message.

The member is the public face and the owner of what every part shares (the core, the store,
the applied index, the fence); each job is a collaborator that owns its own state:

* :mod:`raftkube.server.ready_pipeline`: the ready loop (persist, sync, send, apply, advance)
  and its ordering rules;
* :mod:`raftkube.server.proposals`: writes in flight, from admission to answer;
* :mod:`raftkube.server.reads`: linearizable reads (ReadIndex rounds, lease reads);
* :mod:`raftkube.server.leases`: the leader's lease expiry, lease requests' timestamps;
* :mod:`raftkube.server.snapshotter`: snapshots taken, saved and installed, auto-compaction;
* :mod:`raftkube.server.outcomes`: :class:`MemberError` and the waiter carrying an outcome.

**Sessions.** :meth:`Member.register_session` commits a register entry (the session id is its
index); :meth:`Member.write` with a :class:`~raftkube.server.entries.SessionTag` is applied
through the MVCC session table, so a retried write returns the first application's result.

**Graceful stop.** :meth:`Member.transfer_leadership` hands leadership to the most up-to-date
follower (TimeoutNow) and waits, bounded, for a new leader, so stopping a leader does not cost
the cluster an election timeout (except in lease-read mode, which refuses transfers).
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from raftkube.api import wire
from raftkube.clock import Clock, move_on_after
from raftkube.mvcc import MvccStore, load_snapshot
from raftkube.net.transport import Transport
from raftkube.raft import NodeConfig, RaftNode, RejectedError, Snapshot
from raftkube.raft.node import Observer
from raftkube.server.compactor import AutoCompaction
from raftkube.server.entries import SessionTag, core_value
from raftkube.server.hooks import MemberHooks
from raftkube.server.leases import LeaseExpiry, stamp
from raftkube.server.outcomes import MemberError, WriteOutcome, result_of, wait_for
from raftkube.server.proposals import Proposals
from raftkube.server.reads import ReadQueue
from raftkube.server.ready_pipeline import ReadyPipeline
from raftkube.server.reconfig import Reconfiguration
from raftkube.server.snapshots import core_snapshot_data, unpack_stored
from raftkube.server.snapshotter import Snapshotter
from raftkube.server.watches import MemberWatches
from raftkube.storage.interface import Storage
from raftkube_spec.kv.requests import Request
from raftkube_spec.kv.responses import Result
from raftkube_spec.raft.types import Entry

SyncRunner = Callable[[Callable[[], None]], Awaitable[None]]
"""Runs a blocking callable (``Storage.sync``) and returns once it has returned."""

EncodeRunner = Callable[[Callable[[], Any]], Awaitable[Any]]
"""Runs a CPU-bound callable (a snapshot's encoding, or the decoding of a leader's) in a worker
thread and returns its result."""

READ_INDEX = "read_index"
LEASE = "lease"
READ_MODES = (READ_INDEX, LEASE)

__all__ = [
    "LEASE",
    "READ_INDEX",
    "READ_MODES",
    "EncodeRunner",
    "Member",
    "MemberConfig",
    "MemberError",
    "SyncRunner",
    "WriteOutcome",
]


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
    snapshot_timeout: float = 5.0
    """Seconds a leader waits for a follower to answer the snapshot it sent before it may send
    another (the core's ``snapshot_timeout``, :mod:`raftkube.raft.progress`): an image of tens
    of megabytes takes seconds to send, decode and install on a loaded machine; a snapshot
    lost on the way (a full peer queue, a peer that restarted) is sent again after it."""
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
    max_members: int = 0
    """Membership changes (:mod:`raftkube.server.reconfig`): 0 turns them off; otherwise
    members ``0..max_members-1`` may ever exist, the first ``servers`` of them forming the
    initial configuration. A member joining a running cluster has an id of at least
    ``servers``, so it starts outside the configuration and learns it from the leader."""

    def __attrs_post_init__(self) -> None:
        if self.max_members and not self.servers <= self.max_members:
            raise ValueError(f"max_members {self.max_members} is below servers {self.servers}")

    @property
    def lease_mode(self) -> bool:
        return self.read_mode == LEASE

    @property
    def membership(self) -> bool:
        """Membership changes are on."""
        return self.max_members > 0


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
        encodes snapshot images, and decodes a leader's, in a worker thread (without it: at
        once, in the ready loop).
        ``observer`` receives every
        event the Raft core reports, in the spec's vocabulary (a conformance checker; nobody in
        production)."""
        self.config = config
        self.hooks = MemberHooks()
        """Moments an observer may hear of (:mod:`raftkube.server.hooks`)."""
        self.id = config.member_id
        self.storage = storage
        self.transport = transport
        self.clock = clock
        self._rng = rng if rng is not None else random.Random()
        self.incarnation = self._rng.getrandbits(62)
        recovered = storage.recover()
        hs = recovered.hard_state
        # A configuration entry is stored as bytes and is a Membership in the core's log.
        entries = tuple(Entry(e.term, core_value(e.data)) for e in recovered.entries)
        node_config = NodeConfig(
            node_id=self.id,
            servers=max(config.servers, config.max_members),
            membership=config.membership,
            spares=max(0, config.max_members - config.servers),
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
            snapshot_timeout=max(1, math.ceil(config.snapshot_timeout / config.tick_interval)),
        )
        core_snapshot: Snapshot | None = None
        snapshot_index = 0
        self.reconfig = Reconfiguration(self)
        if recovered.snapshot is not None:
            meta = recovered.snapshot.meta
            contents = unpack_stored(recovered.snapshot.data)
            conf = None
            if config.membership:
                # A file written before membership changes were on: the initial configuration.
                conf = contents.membership or node_config.initial_membership
            core_snapshot = Snapshot(
                meta.index, meta.term, core_snapshot_data(meta.term, recovered.snapshot.data, conf)
            )
            self.mvcc = load_snapshot(contents.image)
            if contents.members is not None:
                self.reconfig.table.replace(contents.members)
            snapshot_index = meta.index
        else:
            self.mvcc = MvccStore()
        self.node = RaftNode(
            node_config,
            random.Random(self._rng.random()),
            observer,
            hard_state=hs,
            snapshot=core_snapshot,
            entries=entries,
        )
        self._watch_events: dict[int, trio.Event] = {}
        self.watches = MemberWatches(self.mvcc, self._on_watch_ready)
        self.applied = snapshot_index
        self.client_endpoints: dict[int, str] = {}
        self.stopped = False
        """Stopping or stopped: every request is refused."""
        self.disk_fault: MemberError | None = None
        """Set when a storage write failed: the member is fenced (:mod:`.disk_faults`)."""
        self.transferring = False
        """Handing leadership over: new proposals are refused meanwhile."""
        self.proposals = Proposals(self)
        self.reads = ReadQueue(self)
        self.leases = LeaseExpiry(self)
        self.snapshots = Snapshotter(
            self,
            index=snapshot_index,
            image_size=0 if recovered.snapshot is None else len(recovered.snapshot.data),
            run_sync=run_sync,
            run_encode=run_encode,
        )
        self.pipeline = ReadyPipeline(self, run_sync=run_sync)
        # Entries known committed on disk are applied at once; the node re-delivers them
        # after restart and the ready loop skips them. A snapshot installed from a leader may
        # be ahead of the persisted commit index; it is committed by definition.
        base = snapshot_index
        for k, e in enumerate(entries[: max(0, hs.commit - base)]):
            self.pipeline.apply_entry(base + 1 + k, e)

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

    @property
    def snapshots_taken(self) -> int:
        return self.snapshots.taken

    @property
    def snapshots_installed(self) -> int:
        return self.snapshots.installed

    @property
    def auto_compactions(self) -> int:
        """Compactions this member proposed as leader and saw applied (a statistic)."""
        return self.snapshots.auto_compactions

    @property
    def lease_reads(self) -> int:
        """Reads served from the lease, without a round trip (a statistic)."""
        return self.reads.lease_reads

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
                self.snapshots.nursery = nursery
                nursery.start_soon(self._tick_loop)
                nursery.start_soon(self._receive_loop)
                nursery.start_soon(self.pipeline.run_or_fence, nursery.cancel_scope)
                nursery.start_soon(self.leases.run)
                nursery.start_soon(self.snapshots.run_auto_compaction)
                task_status.started()
        finally:
            self.stopped = True
            self.fail_waiters("raftkube: member stopped")

    def fail_waiters(self, message: str) -> None:
        """Answer every request in flight as ``unavailable`` (outcome unknown)."""
        for w in [*self.proposals.waiters.values(), *self.reads.waiters.values()]:
            w.error = MemberError("unavailable", message)
            w.finish()

    def kick(self) -> None:
        """Wake the ready loop (new proposals, a new read, an encoded snapshot)."""
        self.pipeline.kick()

    async def _tick_loop(self) -> None:
        interval = self.config.tick_interval
        deadline = self.clock.now()
        while True:
            deadline += interval
            await self.clock.sleep_until(deadline)
            self.node.tick()
            self.proposals.expire_submitted(self.clock.now())
            self.pipeline.kick_if_needed()
            deadline = max(deadline, self.clock.now() - interval)

    async def _receive_loop(self) -> None:
        await self.transport.serve(self.pipeline.on_message)

    # --- watches -------------------------------------------------------------------------

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

    # --- client entry points -------------------------------------------------------------

    def _stamp(self, req: Request) -> Request:
        return stamp(req, self.now_ms, self._rng)

    async def write(self, req: Request, session: SessionTag | None = None) -> Result:
        """Replicate ``req`` and return the state machine's answer (leader only).

        With ``session``, the write is applied at most once per ``(client_id, sequence)``: a
        retry of an applied one returns the cached result (raises ``session_expired`` or
        ``stale_sequence`` when the session table cannot vouch for that)."""
        pid, w = self.proposals.propose(self._stamp(req), session)
        await wait_for(
            w, self.clock, self.config.request_timeout, lambda: self.proposals.forget(pid)
        )
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
        _, w = self.proposals.propose(self._stamp(req), session)
        w.deadline = self.clock.now() + self.config.request_timeout
        w.on_done = lambda done: on_done(done.error or result_of(done))

    async def register_session(self) -> int:
        """Open a client session through the log; returns its id (the entry's index)."""
        pid, w = self.proposals.propose(None)
        await wait_for(
            w, self.clock, self.config.request_timeout, lambda: self.proposals.forget(pid)
        )
        assert w.registered is not None
        return w.registered

    async def linearizable_barrier(self) -> None:
        """Return once the local state reflects every write committed before the call
        (:meth:`raftkube.server.reads.ReadQueue.barrier`)."""
        await self.reads.barrier()

    def read_local(self, req: Request) -> Result:
        return self.mvcc.apply(req)

    # --- leadership transfer -------------------------------------------------------------

    def _transfer_target(self) -> int | None:
        """The voter with the longest log, if it holds the whole log already (a learner, or
        an id outside the configuration, cannot lead)."""
        node = self.node
        peers = [j for j in node.membership.voters if j != node.id]
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
        if not self.node.is_leader or self.stopped or self.config.lease_mode:
            return None
        self.transferring = True
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
            self.transferring = False

    async def stop_gracefully(self) -> int | None:
        """Prepare to stop: transfer leadership (bounded), then refuse further requests.
        Returns the successor this member handed over to, if any. The caller then cancels
        :meth:`run`."""
        successor = await self.transfer_leadership()
        self.stopped = True
        return successor
