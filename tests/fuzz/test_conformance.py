"""RaftShadow: real RaftNodes on SimDisks, driven the way a Member drives them, must stay silent
under random runs with crashes that lose unsynced writes - and must catch broken nodes, drivers
and disks (mutation tests).

The driver here is a synchronous stand-in for ``Member._handle``: persist a Ready (truncate,
snapshot, entries, hard state), sync only when the Member would, send, advance; compactions and
installed snapshots collapse the core's snapshot into one image entry, as the Member does. Node
inputs and Ready handling are separate actions, so a crash can strike while a node holds
unpersisted state and unsent messages, or between a Ready's writes and its sync (torn).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any

import pytest

from raftkube.raft import HardState, NodeConfig, RaftNode, RejectedError, Snapshot
from raftkube.server.member import Member, MemberConfig
from raftkube.storage.state import LogEntry, SnapshotMeta
from raftkube.storage.state import Snapshot as StoredSnapshot
from raftkube_fuzz.checks.conformance import MEMBER_FEATURES, RaftShadow
from raftkube_fuzz.checks.history import History
from raftkube_fuzz.checks.raft_state import abstract_state
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.client import SimClient
from raftkube_fuzz.world.disk import DiskView, SimDisk
from raftkube_fuzz.world.driver import Simulation
from raftkube_fuzz.world.world import World, WorldConfig
from raftkube_spec.kv.requests import PutRequest
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import Message, RequestVoteRequest
from raftkube_spec.raft.types import Entry, Role

IMAGE = b"\x00IMAGE\x00"
MAX_BATCH = 3


def _bytes(value: object) -> bytes:
    """Entry values here are bytes, as a Member's are."""
    assert isinstance(value, bytes), value
    return value


class SimCluster:
    """Nodes, disks, an in-flight message list and the shadow, all in one thread."""

    def __init__(
        self,
        n: int,
        seed: int,
        *,
        node_cls: type[RaftNode] = RaftNode,
        disk_cls: type[SimDisk] = SimDisk,
        send_before_sync: bool = False,
    ) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.node_cls = node_cls
        self.send_before_sync = send_before_sync
        self.shadow = RaftShadow(n, max_batch=MAX_BATCH, features=dict(MEMBER_FEATURES))
        self.disks = [disk_cls(i, self.shadow.synced) for i in range(n)]
        self.network: list[Message] = []
        self.snapshot_index = [0] * n
        self.nodes: list[RaftNode | None] = [self._boot(i) for i in range(n)]
        self.value = 0
        self.read_id = 0

    def _boot(self, i: int) -> RaftNode:
        recovered = self.disks[i].recover()
        hs = recovered.hard_state
        snapshot = None
        if recovered.snapshot is not None:
            meta = recovered.snapshot.meta
            image = Entry(meta.term, IMAGE + recovered.snapshot.data)
            snapshot = Snapshot(meta.index, meta.term, (image,))
            self.snapshot_index[i] = meta.index
        node = self.node_cls(
            NodeConfig(
                node_id=i,
                servers=self.n,
                election_timeout=6,
                heartbeat_timeout=2,
                max_batch=MAX_BATCH,
                max_inflight=2,
                **MEMBER_FEATURES,
            ),
            random.Random(self.rng.random()),
            lambda e: self.shadow.observe(i, e),
            hard_state=hs,
            snapshot=snapshot,
            entries=tuple(Entry(e.term, e.data) for e in recovered.entries),
        )
        self.shadow.attach(i, node)
        return node

    # --- the Member's ready loop, synchronously ---------------------------------------------

    def flush(self, i: int, crash_before_sync: float = 0.0) -> None:
        node = self.nodes[i]
        if node is None or not node.has_ready():
            return
        disk = self.disks[i]
        rd = node.ready()
        if rd.truncate_from is not None:
            disk.truncate_suffix(rd.truncate_from)
        snap = rd.snapshot
        if snap is not None and snap.index > self.snapshot_index[i]:
            value = _bytes(snap.data[0].value) if len(snap.data) == 1 else b""
            image = value[len(IMAGE) :] if value.startswith(IMAGE) else b"prefix"
            disk.save_snapshot(StoredSnapshot(SnapshotMeta(snap.index, snap.term), image))
            self._collapse(i, snap.index, snap.term, image)
        if rd.entries:
            disk.append_entries(
                [
                    LogEntry(rd.first_index + k, e.term, _bytes(e.value))
                    for k, e in enumerate(rd.entries)
                ]
            )
        if rd.hard_state is not None:
            hs = rd.hard_state
            disk.set_hard_state(hs)
        # A leader's Ready may send first (Ready.send_before_persist), as the member does; the
        # broken driver sends every Ready first.
        sent_first = rd.send_before_persist or self.send_before_sync
        if sent_first:
            self.network.extend(rd.messages)
        if self.rng.random() < crash_before_sync:
            self.crash(i, torn=self.rng.randint(0, disk.unsynced_count))
            return
        if rd.must_sync:
            disk.sync()
        if not sent_first:
            self.network.extend(rd.messages)
        node.advance(rd)

    def _collapse(self, i: int, index: int, term: int, image: bytes) -> None:
        node = self.nodes[i]
        assert node is not None
        self.snapshot_index[i] = index
        if node.log.snapshot.index == index:
            node.log.snapshot = Snapshot(index, term, (Entry(term, IMAGE + image),))

    # --- actions ------------------------------------------------------------------------------

    def crash(self, i: int, torn: int = 0) -> None:
        self.disks[i].crash(keep_unsynced=torn)
        self.shadow.crashed(i, self.disks[i])
        self.nodes[i] = None

    def restart(self, i: int) -> None:
        if self.nodes[i] is None:
            self.nodes[i] = self._boot(i)

    def deliver(self, k: int) -> None:
        m = self.network.pop(k)
        node = self.nodes[m.dest]
        if node is None:
            self.shadow.dropped(m)
        else:
            node.step(m)

    def drop(self, k: int) -> None:
        self.shadow.dropped(self.network.pop(k))

    def duplicate(self, k: int) -> None:
        self.shadow.duplicated(self.network[k])
        self.network.append(self.network[k])

    def compact(self, i: int) -> None:
        node = self.nodes[i]
        if node is None:
            return
        lo = node.log.snapshot.index
        if node.commit <= lo:
            return
        index = self.rng.randint(lo + 1, node.commit)
        try:
            snap = node.compact(index)
        except RejectedError:
            return
        image = b"img%d" % index
        self.disks[i].save_snapshot(StoredSnapshot(SnapshotMeta(index, snap.term), image))
        self._collapse(i, index, snap.term, image)

    def leaders(self) -> list[RaftNode]:
        return [node for node in self.nodes if node is not None and node.role is Role.LEADER]

    def step(self) -> None:
        """One random action; the node it touched handles its Ready at once most of the time
        (a Member's ready loop runs right after each input), else later (a crash may come
        first)."""
        rng, n = self.rng, self.n
        (action,) = rng.choices(
            [
                "tick",
                "deliver",
                "flush",
                "drop",
                "dup",
                "crash",
                "restart",
                "propose",
                "read",
                "compact",
                "transfer",
            ],
            [4.0, 8.0, 2.0, 0.4, 0.4, 0.1, 0.5, 1.5, 0.4, 0.4, 0.4],
        )
        i = rng.randrange(n)
        node = self.nodes[i]
        net = self.network
        if action == "tick" and node is not None:
            node.tick()
        elif action == "deliver" and net:
            k = rng.randrange(len(net))
            i = net[k].dest
            self.deliver(k)
        elif action == "drop" and net:
            self.drop(rng.randrange(len(net)))
        elif action == "dup" and net and len(net) < 60:
            self.duplicate(rng.randrange(len(net)))
        elif action == "crash" and node is not None:
            self.crash(i, torn=rng.randint(0, self.disks[i].unsynced_count))
        elif action == "restart":
            self.restart(i)
        elif action in ("propose", "read", "transfer"):
            i = self._leader_action(action)
        elif action == "compact":
            self.compact(i)
        if action == "flush" or rng.random() < 0.7:
            self.flush(i, crash_before_sync=0.01)
        self.shadow.check_invariants()

    def _leader_action(self, action: str) -> int:
        """A client call on a random leader; returns the leader's id (or 0 without one)."""
        leaders = self.leaders()
        if not leaders:
            return 0
        leader = self.rng.choice(leaders)
        with contextlib.suppress(RejectedError):
            if action == "propose":
                self.value += 1
                leader.propose(b"v%d" % self.value)
            elif action == "read":
                self.read_id += 1
                leader.read_index(self.read_id)
            else:
                peers = leader.config.peers
                ready = [j for j in peers if leader.match_index(j) == leader.last_index]
                leader.transfer_leadership(self.rng.choice(ready or list(peers)))
        return leader.id


def run(n: int, seed: int, steps: int, **kwargs: Any) -> SimCluster:
    c = SimCluster(n, seed, **kwargs)
    for _ in range(steps):
        c.step()
    return c


def first_violation(seeds: range, n: int, steps: int, **kwargs: Any) -> Violation:
    """Run seeds until one raises; the mutant must be caught within them."""
    for seed in seeds:
        try:
            run(n, seed, steps, **kwargs)
        except Violation as violation:
            return violation
    raise AssertionError("the mutant survived every seed")


# ---------------------------------------------------------------------- silence on correct runs


@pytest.mark.parametrize("n", [3, 5])
def test_correct_runs_stay_silent_and_are_not_vacuous(n: int) -> None:
    totals: dict[str, int] = {}
    for seed in range(6):
        c = run(n, seed, 1500)
        assert c.shadow.violation is None
        for kind, count in c.shadow.stats.items():
            totals[kind] = totals.get(kind, 0) + count
    for kind in (
        "BecomeLeader",
        "AdvanceCommitIndex",
        "HandleInstallSnapshotRequest",
        "CompactLog",
        "ReadIndexComplete",
        "HandleTimeoutNowRequest",
        "DropMessage",
        "DuplicateMessage",
        "Recover",
    ):
        assert totals.get(kind, 0) > 0, (kind, totals)


def test_shadow_follows_member_config() -> None:
    shadow = RaftShadow.for_member_config(3, MemberConfig(member_id=0, servers=3, max_batch=7))
    assert shadow.spec.config.max_batch == 7
    assert shadow.spec.config.compaction and shadow.spec.config.pre_vote


def test_abstract_state_of_a_conforming_cluster_is_the_shadow() -> None:
    led = 0
    for seed in range(11, 21):
        c = run(3, seed, 600)
        for i, node in enumerate(c.nodes):
            if node is not None:
                c.flush(i)
        real, shadow = abstract_state(c.nodes, c.shadow.state), c.shadow.state
        # Pending reads carry the node's own read ids; the shadow's are renamed (abstraction
        # (c)), so they are compared by the shadow's checks, not here.
        assert [v.but(pending_reads=()) for v in real.servers] == [
            v.but(pending_reads=()) for v in shadow.servers
        ]
        assert real.but(servers=()) == shadow.but(servers=())
        led += any(node is not None and node.role is Role.LEADER for node in c.nodes)
    assert led >= 3, "most walks should end with a leader, or the comparison proves little"


# ---------------------------------------------------------------------- mutants


class DoubleVoteNode(RaftNode):
    """Grants a vote to every candidate of its term (forgets it already voted)."""

    def _on_vote(self, m: RequestVoteRequest) -> None:
        if not m.pre_vote and m.term == self.term:
            self.vote = None
        super()._on_vote(m)


class OldTermCommitNode(RaftNode):
    """Commits whatever a quorum holds, even an entry of an earlier term (Figure 8)."""

    def _maybe_commit(self) -> None:
        matches = sorted([*(pr.match for pr in self.progress.values()), self.log.last_index])
        candidate = matches[-self.config.quorum]
        if candidate > self.commit:
            self.commit = candidate
            if self._observer is not None:
                self._observer(ev.AdvanceCommitIndex(self.id, candidate))


class UnpersistedVoteNode(RaftNode):
    """Hands out its hard state without the vote: the vote is never made durable."""

    def _hard_state(self) -> HardState:
        hs = super()._hard_state()
        return HardState(hs.term, None, hs.commit)


class LossyDisk(SimDisk):
    """Loses its last three synced records in a crash: a disk that lied about fsync."""

    def crash(self, keep_unsynced: int = 0) -> None:
        super().crash(0)
        kept = self.records[:-3]
        view = DiskView()
        for record in kept:
            view.apply(record)
        self._records, self._synced = list(kept), len(kept)
        self._durable, self._current, self._durable_cache = view, view.copy(), None


def test_double_vote_is_caught() -> None:
    violation = first_violation(range(20), 5, 800, node_cls=DoubleVoteNode)
    assert violation.prop == "Conformance"
    assert "voted_for" in violation.evidence["differences"]


def test_commit_of_an_old_term_entry_is_caught() -> None:
    violation = first_violation(range(30), 3, 1500, node_cls=OldTermCommitNode)
    assert violation.prop == "Conformance"
    assert "AdvanceCommitIndex" in violation.evidence["event"]


def test_vote_not_persisted_is_caught_at_the_sync() -> None:
    violation = first_violation(range(5), 3, 300, node_cls=UnpersistedVoteNode)
    assert violation.prop == "Durability"
    assert "voted_for" in violation.evidence["differences"]


def test_disk_losing_synced_writes_is_caught() -> None:
    # At the crash, Durability checks term, vote, snapshot and the entries the member knew
    # committed (a torn crash may legitimately keep an unsynced truncation of the rest). An
    # acknowledged entry lost before its member learnt it committed is caught instead by the
    # cluster invariant it breaks: the entry is no longer held by a quorum.
    violation = first_violation(range(20), 3, 1500, disk_cls=LossyDisk)
    assert violation.prop in ("Durability", "CommittedInQuorum"), violation


def test_sending_before_sync_is_caught() -> None:
    """A crash before the sync takes the Ready's messages back from the spec (they were never
    sent, as far as a correct driver goes); the network then delivers one of them anyway."""
    violation = first_violation(range(40), 3, 1500, send_before_sync=True)
    assert violation.prop == "Conformance"
    assert "not enabled" in violation.message


def test_silent_state_change_is_caught_by_the_invariants() -> None:
    c = run(3, 3, 600)
    assert c.shadow.state.committed, "the run committed nothing"
    node = next(node for node in c.nodes if node is not None)
    node.commit = node.log.last_index + 1
    with pytest.raises(Violation) as caught:
        c.shadow.check_invariants()
    assert caught.value.prop in ("StateMachineSafety", "CommitWithinLog")
    assert c.shadow.violation is caught.value


def test_message_the_spec_never_sent_is_caught() -> None:
    c = SimCluster(3, 0)
    forged = RequestVoteRequest(term=1, source=1, dest=0, last_log_term=0, last_log_index=0)
    c.network.append(forged)
    with pytest.raises(Violation) as caught:
        c.deliver(len(c.network) - 1)
    assert caught.value.prop == "Conformance"
    assert caught.value.evidence["recent_events"]


# ---------------------------------------------------------------------- real Members


class ShadowListener:
    """The world's listener, forwarding everything to a shadow (the runner's glue, minimal)."""

    def __init__(self, shadow: RaftShadow) -> None:
        self.shadow = shadow
        self.disks: list[SimDisk] = []
        """Set once the world exists: persistence before send is checked on each send."""

    def observer_for(self, member_id: int) -> Callable[[Any], None]:
        return lambda event: self.shadow.observe(member_id, event)

    def sent(self, message: Message) -> None:
        if self.disks:
            self.shadow.sent(message.source, self.disks[message.source])

    def dropped(self, message: Message) -> None:
        self.shadow.dropped(message)

    def duplicated(self, message: Message) -> None:
        self.shadow.duplicated(message)

    def crashed(self, member_id: int, disk: SimDisk) -> None:
        self.shadow.crashed(member_id, disk)

    def restarted(self, member_id: int, member: Member) -> None:
        self.shadow.attach(member_id, member.node)

    def synced(self, member_id: int, disk: SimDisk) -> None:
        self.shadow.synced(member_id, disk)


def test_real_members_conform_through_snapshots_and_crashes() -> None:
    config = WorldConfig(servers=3, snapshot_every=16)
    shadow = RaftShadow.for_member_config(3, config.member_config(0))
    sim = Simulation(seed=5)
    listener = ShadowListener(shadow)
    world = World(config, 5, listener)
    listener.disks = [host.disk for host in world.hosts]
    sim.start(world.run)
    try:
        for i, host in enumerate(world.hosts):
            assert host.member is not None
            shadow.attach(i, host.member.node)
        client = SimClient(world, 0, History())
        world.set_loss(0.02)
        world.set_duplication(0.02)

        async def writes(first: int, count: int) -> None:
            for k in range(first, first + count):
                await client.request(PutRequest(b"k%d" % k, b"v"), member=k % 3, timeout=2)

        sim.call(writes, 0, 20, limit=60)
        victim = 1 if world.leader() != 1 else 2
        world.crash(victim, torn_records=1)
        sim.call(writes, 20, 60, limit=120)  # the log moves past the victim's: InstallSnapshot
        world.restart(victim)
        sim.advance(1.0)
        leader = world.leader()
        assert leader is not None
        world.crash(leader)
        sim.call(writes, 80, 20, limit=60)
        world.restart(leader)
        sim.advance(1.0)
        shadow.check_invariants()
    finally:
        sim.close()
    assert shadow.violation is None, shadow.violation.evidence if shadow.violation else None
    assert world.failures == []
    stats = shadow.stats
    for kind in ("HandleInstallSnapshotRequest", "CompactLog", "Sync", "Recover"):
        assert stats.get(kind, 0) > 0, (kind, stats)
