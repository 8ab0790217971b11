"""A deterministic in-process cluster of RaftNodes, optionally shadowed by the Raft spec.

Shared by the unit scenarios, the lease-read and membership tests and the conformance test.
The network is a plain multiset of messages that the test delivers, drops and duplicates at
will; each node's disk is an in-memory record of what its Ready batches told it to persist,
and a restart rebuilds the node from that alone.

With ``check=True`` every event a node (or the harness) reports is replayed through
``RaftSpec.step``; it must be enabled, and afterwards the reporting node must look exactly like
the spec's server. At the end of every harness step the whole network and every server are
compared and the spec's invariants are checked.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import attrs

from raftkube.raft import HardState, NodeConfig, RaftNode, Ready, Snapshot
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.config import RaftConfig
from raftkube_spec.raft.invariants import first_violation
from raftkube_spec.raft.messages import Message
from raftkube_spec.raft.model import RaftSpec
from raftkube_spec.raft.state import RaftState
from raftkube_spec.raft.types import Entry, Role

FEATURES = (
    "pipelining",
    "pre_vote",
    "check_quorum",
    "read_index",
    "compaction",
    "leader_transfer",
    "membership",
)


@attrs.define
class Disk:
    """What one node persisted."""

    hard_state: HardState = attrs.Factory(HardState)
    snapshot: Snapshot = attrs.Factory(Snapshot)
    entries: list[Entry] = attrs.Factory(list)

    def write(self, rd: Ready) -> None:
        """Apply ``rd`` as ``raftkube.storage`` would, refusing what it refuses."""
        base = self.snapshot.index
        if rd.truncate_from is not None:
            assert rd.truncate_from > self.hard_state.commit, "truncating committed entries"
            assert rd.truncate_from > base, "truncating the snapshot"
            del self.entries[max(rd.truncate_from - base - 1, 0) :]
        if rd.snapshot is not None:
            assert rd.snapshot.index > base, "snapshot not newer"
            drop = rd.snapshot.index - base
            if drop >= len(self.entries) or (
                drop > 0 and self.entries[drop - 1].term != rd.snapshot.term
            ):
                self.entries = []
            else:
                del self.entries[: max(drop, 0)]
            self.snapshot = rd.snapshot
            base = rd.snapshot.index
        if rd.entries:
            start = rd.first_index - base - 1
            assert start == len(self.entries), "entries must continue the log"
            self.entries.extend(rd.entries)
        if rd.hard_state is not None:
            old, new = self.hard_state, rd.hard_state
            assert new.term >= old.term
            assert new.term > old.term or old.vote in (None, new.vote), "vote changed"
            assert old.commit <= new.commit <= base + len(self.entries)
            self.hard_state = new

    def log(self) -> tuple[Entry, ...]:
        return self.snapshot.data + tuple(self.entries)


def event_server(e: ev.Event) -> int | None:
    """The server whose state ``e`` changes (None for the network's own steps)."""
    if isinstance(e, ev.DuplicateMessage | ev.DropMessage):
        return None
    if isinstance(e, ev.RECEIVE_EVENTS):
        message: Message = e.message
        return message.dest
    server: int = e.server
    return server


class Cluster:
    def __init__(
        self,
        n: int = 3,
        seed: int = 0,
        *,
        check: bool = True,
        check_invariants_each_event: bool = False,
        election_timeout: int = 10,
        heartbeat_timeout: int = 1,
        max_batch: int = 1,
        max_inflight: int = 4,
        lease: bool = False,
        spares: int = 0,
        **features: bool,
    ) -> None:
        unknown = set(features) - set(FEATURES)
        assert not unknown, unknown
        self.n = n
        self.rng = random.Random(seed)
        self.check = check
        self.check_each = check_invariants_each_event
        self.configs = [
            NodeConfig(
                node_id=i,
                servers=n,
                election_timeout=election_timeout,
                heartbeat_timeout=heartbeat_timeout,
                max_batch=max_batch,
                max_inflight=max_inflight,
                lease=lease,
                spares=spares,
                **features,
            )
            for i in range(n)
        ]
        self.spec = RaftSpec(
            RaftConfig(
                servers=n,
                max_batch=max_batch,
                network_faults=True,
                max_term=10**9,
                max_log=10**9,
                max_messages=10**9,
                max_restarts=10**9,
                max_reads=10**9,
                spares=spares,
                parallel_persist=True,  # the node counts itself only for what it persisted
                **features,  # type: ignore[arg-type]
            )
        )
        self.state: RaftState = self.spec.initial()
        self.events: list[ev.Event] = []
        self.disks = [Disk() for _ in range(n)]
        self.network: list[Message] = []
        self.applied: list[list[Entry]] = [[] for _ in range(n)]
        self.reads: list[tuple[int, int, int]] = []
        self.nodes = [self._make_node(i) for i in range(n)]

    # --- Plumbing ------------------------------------------------------------------------------

    def _make_node(self, i: int) -> RaftNode:
        disk = self.disks[i]
        observer = self._observe if self.check else None
        return RaftNode(
            self.configs[i],
            random.Random(self.rng.random()),
            observer,
            hard_state=disk.hard_state,
            snapshot=disk.snapshot,
            entries=tuple(disk.entries),
        )

    def _observe(self, e: ev.Event) -> None:
        self.events.append(e)
        before = self.state
        after = self.spec.step(before, e)
        assert after is not None, f"not enabled in the spec: {e}\nrecent: {self.events[-12:]}"
        self.state = after
        i = event_server(e)
        if i is not None:
            self.assert_server_matches(i)
        if self.check_each:
            problem = first_violation(before, after)
            assert problem is None, problem

    def assert_server_matches(self, i: int) -> None:
        node, v = self.nodes[i], self.state.servers[i]
        mine: dict[str, Any] = {
            "term": node.term,
            "role": node.role,
            "voted_for": node.vote,
            "log": node.log.as_entries(),
            "snapshot_index": node.log.snapshot.index,
            "commit_index": node.commit,
            "votes_granted": frozenset(node.votes_granted),
            "votes_responded": frozenset(node.votes_responded),
            "recent_active": frozenset(node.recent_active),
            "pending_reads": tuple(
                (r.read_id, r.index, frozenset(r.acks)) for r in node.pending_reads
            ),
        }
        theirs: dict[str, Any] = {
            "term": v.term,
            "role": v.role,
            "voted_for": v.voted_for,
            "log": v.log,
            "snapshot_index": v.snapshot_index,
            "commit_index": v.commit_index,
            "votes_granted": v.votes_granted,
            "votes_responded": v.votes_responded,
            "recent_active": v.recent_active,
            "pending_reads": tuple((r.read_id, r.index, r.acks) for r in v.pending_reads),
        }
        if node.role is Role.LEADER:
            for j in node.config.peers:
                mine[f"next[{j}]"] = node.next_index(j)
                mine[f"match[{j}]"] = node.match_index(j)
                theirs[f"next[{j}]"] = v.next_index[j]
                theirs[f"match[{j}]"] = v.match_index[j]
            mine["match[self]"] = node.match_index(i)
            theirs["match[self]"] = v.match_index[i]
        diff = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
        assert not diff, (
            f"server {i} (node, spec) differ: {diff}\nrecent events: {self.events[-12:]}"
        )

    def report(self, e: ev.Event) -> None:
        """An event the harness itself takes (network faults, restarts)."""
        if self.check:
            self._observe(e)

    def flush(self, i: int) -> Ready:
        """Handle node ``i``'s Ready: persist, check, then send and apply."""
        node = self.nodes[i]
        only_messages = node.has_only_messages()
        rd = node.ready()
        # The driver sends such a Ready at once: it must really hold nothing else.
        assert only_messages == (
            bool(rd.messages)
            and not rd.entries
            and rd.hard_state is None
            and rd.truncate_from is None
            and rd.snapshot is None
            and not rd.committed_entries
            and not rd.read_states
        ), rd
        disk = self.disks[i]
        disk.write(rd)
        # Persistence before send: everything a message could vouch for is now on disk.
        assert (disk.hard_state.term, disk.hard_state.vote) == (node.term, node.vote)
        assert disk.log() == node.log.as_entries(), (disk.log(), node.log.as_entries())
        assert disk.snapshot.index == node.log.snapshot.index
        self.network.extend(rd.messages)
        applied = self.applied[i]
        if rd.snapshot is not None and rd.snapshot.index > len(applied):
            applied[:] = rd.snapshot.data
        if rd.committed_entries:
            assert rd.committed_first_index == len(applied) + 1
            applied.extend(rd.committed_entries)
        for r in rd.read_states:
            self.reads.append((i, r.read_id, r.index))
        node.advance(rd)
        if node.has_ready():
            # A leader counts itself for its entries only once they are durable (advance),
            # which may commit them: the one output an advance can produce.
            assert node.role is Role.LEADER and rd.entries, rd
            self.flush(i)
        return rd

    def check_all(self) -> None:
        """Network equal to the spec's, every server equal, invariants hold, applied logs
        agree."""
        if self.check:
            assert Counter(self.network) == Counter(dict(self.state.network)), (
                "network differs from the spec's"
            )
            for i in range(self.n):
                self.assert_server_matches(i)
            problem = first_violation(None, self.state)
            assert problem is None, problem
        longest = max(self.applied, key=len)
        for a in self.applied:
            assert a == longest[: len(a)], "applied logs diverge"

    # --- Actions -------------------------------------------------------------------------------

    def tick(self, i: int) -> None:
        self.nodes[i].tick()
        self.flush(i)

    def deliver(self, k: int) -> None:
        m = self.network.pop(k)
        self.nodes[m.dest].step(m)
        self.flush(m.dest)

    def drop(self, k: int) -> None:
        m = self.network[k]
        self.report(ev.DropMessage(m))
        self.network.pop(k)

    def duplicate(self, k: int) -> None:
        m = self.network[k]
        self.report(ev.DuplicateMessage(m))
        self.network.append(m)

    def restart(self, i: int) -> None:
        self.nodes[i] = self._make_node(i)
        self.applied[i] = list(self.disks[i].snapshot.data)
        self.report(ev.Restart(i))

    def propose(self, i: int, value: object) -> int:
        index = self.nodes[i].propose(value)
        self.flush(i)
        return index

    def read_index(self, i: int, read_id: int) -> None:
        self.nodes[i].read_index(read_id)
        self.flush(i)

    def compact(self, i: int, index: int) -> None:
        self.nodes[i].compact(index)
        self.flush(i)

    def transfer(self, i: int, peer: int) -> None:
        self.nodes[i].transfer_leadership(peer)
        self.flush(i)

    # --- Conveniences for scenarios ------------------------------------------------------------

    def leaders(self) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node.role is Role.LEADER]

    def deliver_all(self, limit: int = 10_000, only: set[int] | None = None) -> None:
        """Deliver in FIFO order until the network is quiet (or only among ``only``)."""
        for _ in range(limit):
            k = next(
                (
                    k
                    for k, m in enumerate(self.network)
                    if only is None or (m.source in only and m.dest in only)
                ),
                None,
            )
            if k is None:
                return
            self.deliver(k)
            self.check_all()
        raise AssertionError("network did not settle")

    def elect(self, i: int) -> None:
        """Make ``i`` time out, then deliver (FIFO) until it leads. Its first appends are
        left in flight."""
        for _ in range(100):
            for _ in range(2 * self.configs[i].election_timeout):
                self.tick(i)
                if self.nodes[i].role is not Role.FOLLOWER:
                    break
            while self.network and self.nodes[i].role is not Role.LEADER:
                self.deliver(0)
                self.check_all()
            if self.nodes[i].role is Role.LEADER:
                self.check_all()
                return
        raise AssertionError(f"server {i} was not elected")
