"""Conformance of real members' Raft cores to the spec, with crashes that lose unsynced writes.

:class:`RaftShadow` keeps one spec state (:class:`~raftkube_spec.raft.state.RaftState`) beside
the simulated cluster. Every event a member's :class:`~raftkube.raft.RaftNode` reports is
replayed through :meth:`RaftSpec.step <raftkube_spec.raft.model.RaftSpec.step>`: it must be
enabled, and afterwards the reporting node must look exactly like its spec server. The
network's faults become the spec's ``DropMessage`` / ``DuplicateMessage``. A node reports an
event right after changing its fields (the same contract ``tests/helpers/raft_harness.py``
relies on), so the comparison runs inside the observer call.

Two abstractions separate the real system from the spec; both are sound for the reasons given.

(a) **Snapshot image.** A member replaces its core's snapshot data (the spec's compacted prefix
of entries) by ONE synthetic entry holding the MVCC image (``raftkube.server.snapshots``), so a
real ``InstallSnapshotRequest`` carries that entry where the spec's carries the prefix. Any
event carrying an ``InstallSnapshotRequest`` is therefore matched to the spec network's message
that equals it in every field except ``entries`` (term, source, dest, last index and last term
identify it: one leader's committed prefix up to an index never changes within its term). Logs
are compared above the snapshot only: equal snapshot index, equal term at it, equal entries
after it and equal total length. The compacted prefix itself is committed, and committed
entries are the spec's business (StateMachineSafety on the shadow).

(b) **Crash without sync.** The spec's ``Restart`` keeps term, vote and log; a real crash keeps
only what was synced (plus a torn prefix of the rest, see
:meth:`~raftkube_fuzz.world.disk.SimDisk.crash`). A member persists before it sends (the Ready
contract; the driver syncs a Ready's term, vote, entries, truncation and snapshot before its
messages leave), so the events after its last sync left no trace outside the member except
messages that do not depend on the lost writes. The run is thus equivalent to one in which
those events never happened, the messages they consumed were lost by the network, and the
messages they produced were never sent. A leader's Ready is the exception: the driver sends
it before its writes (``Ready.send_before_persist``), so its messages stay sent, and the spec
(``parallel_persist``) lets a leader's crash lose entries it has sent but not written; it
counted itself for them only at ``PersistEntries``, which the node reports once its driver
made them durable. :meth:`RaftShadow.crashed` makes the spec take that
run: it removes the crashed node's unsent messages from the spec network and resets the spec
server to the state recovered from the disk (a documented "recover from disk" step that
replaces ``Restart``, counted in ``restarts``). Two checks keep this honest:

* at every ``sync`` (the disk's ``on_sync`` hook, :meth:`RaftShadow.synced`), everything the
  node had handed out in its latest ``Ready`` - the spec server's term, vote and log as of that
  ``ready()`` call - must be on the durable disk; that state becomes the member's checkpoint;
* at a crash, the recovered disk must not be behind the checkpoint: term and vote never go
  back, entries known committed stay, the snapshot index does not fall.

(c) **Read ids.** The spec draws each ReadIndex read a fresh id from one global counter
(``last_read_id``); a real leader numbers its reads itself, from 1 in every incarnation, and
nothing cluster-wide could do better without coordination. Only uniqueness within a leader's
term matters to the protocol (a response echoes the id it answers, and responses from other
terms are stale), so the shadow renames: a leader's read ``r`` in term ``t`` becomes the next
spec id when its ``ReadIndexRequest`` is replayed, and every ``read_ctx`` in a message, every
``ReadIndexComplete`` and the node's pending reads are translated through that map
(:meth:`RaftShadow._spec_read_id`) before they meet the spec.

A node that forgets to hand out its vote, or a disk that loses synced writes, fails them as
``Durability``. A driver that sends before syncing and then crashes fails as ``Conformance``:
the crash takes its unsent Ready's messages back from the spec, and the network then delivers
one of them anyway.

After the first violation the shadow records it in :attr:`RaftShadow.violation` and goes quiet:
the raise happens inside a member's task, where a host may swallow it, and every later event
would only repeat the divergence.

Why one module: :class:`RaftShadow` is one job (keeping the spec in step with the members),
and each of its checks is read beside the abstraction above that makes it sound; what a
recovered disk says in the spec's terms is :mod:`raftkube_fuzz.checks.durable_state`.
"""

from __future__ import annotations

import collections
from typing import Any, NoReturn, cast

import attrs

from raftkube.raft import NodeConfig, RaftNode, Ready
from raftkube.server.member import MemberConfig
from raftkube.storage.state import RecoveredState
from raftkube_fuzz.checks.durable_state import (
    behind_last_sync,
    disk_fields,
    durable_matches,
    persistent_fields,
)
from raftkube_fuzz.checks.raft_state import (
    abstract_state,
    differences,
    matches_spec,
    node_fields,
    spec_fields,
    spec_peers,
)
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.disk import SimDisk
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.config import RaftConfig
from raftkube_spec.raft.invariants import state_violation
from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    Message,
)
from raftkube_spec.raft.model import RaftSpec
from raftkube_spec.raft.state import RaftState, ServerState, bag_remove
from raftkube_spec.raft.types import Role

MEMBER_FEATURES: dict[str, bool] = {
    "pipelining": True,
    "pre_vote": True,
    "check_quorum": True,
    "read_index": True,
    "compaction": True,
    "leader_transfer": True,
}
"""The spec features a :class:`~raftkube.server.member.Member` switches on in its core."""

RECENT_EVENTS = 20
"""How many of the latest events a violation's evidence lists."""

_REPR_LIMIT = 400

_MESSAGE_EVENTS = (*ev.RECEIVE_EVENTS, ev.DropMessage, ev.DuplicateMessage)
_MESSAGE_EVENT_TYPES = frozenset(_MESSAGE_EVENTS)
"""The same classes for an exact-type test: the spec dispatches on ``type(event)`` (an event
of any other class is refused there), so an exact test decides the same as ``isinstance``."""

_READ_EVENT_TYPES = frozenset((ev.ReadIndexRequest, ev.ReadIndexComplete))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[:_REPR_LIMIT] + "..."


def _reporter(event: ev.Event) -> int:
    """The server whose step ``event`` is: the receiver for message events."""
    if type(event) in _MESSAGE_EVENT_TYPES:
        dest: int = event.message.dest  # type: ignore[union-attr]
        return dest
    server: int = event.server  # type: ignore[union-attr]
    return server


def _same_snapshot_request(real: InstallSnapshotRequest, spec: InstallSnapshotRequest) -> bool:
    """Abstraction (a): equal in every field but ``entries``."""
    return (
        real.term == spec.term
        and real.source == spec.source
        and real.dest == spec.dest
        and real.last_index == spec.last_index
        and real.last_term == spec.last_term
    )


_SPECS: dict[RaftConfig, RaftSpec] = {}


def _spec_for(config: RaftConfig) -> RaftSpec:
    """One :class:`RaftSpec` per configuration, shared by every shadow: a spec holds nothing
    but its configuration and what it derives from it (for 5 members and batches of 256, some
    five thousand prebuilt events, which cost more to build than a short example to check)."""
    spec = _SPECS.get(config)
    if spec is None:
        spec = _SPECS[config] = RaftSpec(config)
    return spec


class RaftShadow:
    """The spec's shadow of a simulated cluster (see module docstring).

    The world calls :meth:`observe` (from each member's observer), :meth:`attach` (for every
    new incarnation, before it runs), :meth:`synced` (from each disk's ``on_sync``),
    :meth:`crashed`, :meth:`dropped`, :meth:`duplicated`; the suite calls
    :meth:`check_invariants`. Each raises :class:`~raftkube_fuzz.violation.Violation`.
    """

    def __init__(self, servers: int, *, max_batch: int, features: dict[str, Any]) -> None:
        self.spec = _spec_for(
            RaftConfig(
                servers=servers,
                max_batch=max_batch,
                network_faults=True,
                max_term=10**9,
                max_log=10**9,
                max_messages=10**9,
                max_restarts=10**9,
                max_reads=10**9,
                # A member's core always counts itself only for what its driver persisted.
                parallel_persist=True,
                **features,
            )
        )
        self.state: RaftState = self.spec.initial()
        self.nodes: list[RaftNode | None] = [None] * servers
        self.checkpoints: list[ServerState] = [ServerState()] * servers
        """Per member: the spec server's state at its latest verified sync (what must survive
        a crash; its ``commit_index`` bounds the entries that must)."""
        self.violation: Violation | None = None
        self._handed_out: list[ServerState | None] = [None] * servers
        self._sent_first: list[tuple[Message, ...]] = [()] * servers
        """Per member: the messages of its latest Ready if the driver sends them before
        persisting (``Ready.send_before_persist``): sent, even while still in the node's
        outbox (until ``advance``)."""
        self._recent: collections.deque[object] = collections.deque(maxlen=RECENT_EVENTS)
        self._counts: collections.Counter[str] = collections.Counter()
        self._read_ids: dict[tuple[int, int], list[tuple[int, int]]] = {}
        """Abstraction (c): (leader, its read id) -> [(term, spec read id)], terms ascending."""
        self._peers: list[tuple[NodeConfig, tuple[int, ...] | None] | None] = [None] * servers
        """Per member: :func:`spec_peers` of the configuration object its node had last."""
        self._hooked: list[RaftNode] = []
        """Every node whose ``on_ready`` hook :meth:`attach` set, in order."""

    @classmethod
    def for_member_config(cls, servers: int, member_config: MemberConfig) -> RaftShadow:
        """A shadow configured as a :class:`~raftkube.server.member.Member` configures its core."""
        features: dict[str, Any] = dict(MEMBER_FEATURES)
        if member_config.membership:
            # The hosts past the initial configuration are the spec's spares.
            features.update(membership=True, spares=servers - member_config.servers)
        return cls(servers, max_batch=member_config.max_batch, features=features)

    @property
    def stats(self) -> dict[str, int]:
        """Events checked, per event kind, plus ``Sync`` (durability checks that ran) and
        ``Recover`` (crashes recovered from disk)."""
        return dict(sorted(self._counts.items()))

    # ------------------------------------------------------------------ events

    def observe(self, member_id: int, event: ev.Event) -> None:
        """Member ``member_id``'s node reported ``event``: step the spec and compare."""
        if self.violation is not None:
            return
        self._record(event)
        if _reporter(event) != member_id:
            self._fail("Conformance", f"member {member_id} reported another server's step", event)
        self._step(self._normalized(event))
        node = self.nodes[member_id]
        if node is not None:
            if type(event) is ev.ClientRequest:
                self._adopt_entry(member_id, node)
            self._compare(member_id, node, event)

    def dropped(self, m: Message) -> None:
        """The network lost ``m``."""
        if self.violation is None:
            event = ev.DropMessage(m)
            self._record(event)
            self._step(self._normalized(event))

    def duplicated(self, m: Message) -> None:
        """The network delivers ``m`` twice."""
        if self.violation is None:
            event = ev.DuplicateMessage(m)
            self._record(event)
            self._step(self._normalized(event))

    def attach(self, member_id: int, node: RaftNode) -> None:
        """``node`` is member ``member_id``'s core from now on (a start or a restart), compared
        with its spec server after each of its events. No comparison happens here, so a caller
        may attach lazily from inside the node's first event (before :meth:`observe` steps the
        spec for it); attach before the node's first ``ready()`` so the next sync is checked."""
        if self.violation is not None:
            return
        self.nodes[member_id] = node
        self._handed_out[member_id] = None
        self._sent_first[member_id] = ()
        handed_out = self._handed_out
        sent_first = self._sent_first
        spec_state = self

        def on_ready(rd: Ready) -> None:
            # What this Ready hands out is the node's state now; the next sync must cover it.
            handed_out[member_id] = spec_state.state.servers[member_id]
            # A leader's Ready may leave before its writes (the driver sends it first).
            sent_first[member_id] = rd.messages if rd.send_before_persist else ()

        node.on_ready = on_ready
        self._hooked.append(node)

    def release(self) -> None:
        """Stop following the members (their run has ended): unhook every node :meth:`attach`
        hooked, crashed incarnations included, so that no node, left as garbage with its
        member, still references this shadow and the spec states it holds (see
        :meth:`raftkube_fuzz.example.Run.close`)."""
        for node in self._hooked:
            node.on_ready = None
        self._hooked.clear()
        self.nodes = [None] * len(self.nodes)

    # ------------------------------------------------------------------ durability

    def synced(self, member_id: int, disk: SimDisk) -> None:
        """The disk of ``member_id`` reached a durability point (its ``on_sync`` hook)."""
        if self.violation is not None or disk.last_durability_point != "sync":
            # A snapshot save may sit in the middle of a batch whose rest is not written yet.
            return
        expected = self._handed_out[member_id]
        if expected is None:
            return
        durable = disk.durable_state()
        if not durable_matches(durable, expected):
            diff = differences(disk_fields(durable), persistent_fields(expected, member_id))
            if diff:
                self._fail(
                    "Durability",
                    f"member {member_id} synced, but what its last Ready handed out is not "
                    "durable (disk, spec)",
                    None,
                    differences=diff,
                )
        self.checkpoints[member_id] = expected
        self._counts["Sync"] += 1

    def sent(self, member_id: int, disk: SimDisk) -> None:
        """Member ``member_id`` is sending a message: persistence before send. What its latest
        Ready handed out (term, vote, log length and last term) must already be durable,
        because the message may vouch for any of it (a vote, an acknowledged entry). Checked
        here rather than at the next sync, which a driver that skips a sync never reaches.
        A leader's log is the exception (the spec's ``parallel_persist``): its messages vouch
        for no entry of its own, and it counts itself for an entry only after
        ``PersistEntries``, which the shadow checks against the spec."""
        expected = self._handed_out[member_id]
        if self.violation is not None or expected is None:
            return
        durable = disk.durable_state()
        vote = durable.hard_state.vote
        have = (
            durable.hard_state.term,
            None if vote is None else int(vote),
            durable.last_index,
        )
        want = (expected.term, expected.voted_for, len(expected.log))
        if expected.role is Role.LEADER:
            want = (*want[:2], have[2])
        if have != want:
            self._fail(
                "Durability",
                f"member {member_id} sent a message before its state was durable "
                f"(term, vote, last index): durable {have}, handed out {want}",
                None,
            )

    def crashed(self, member_id: int, disk: SimDisk) -> None:
        """Member ``member_id`` crashed and its disk kept what :meth:`SimDisk.crash` kept: drop
        its unsent messages, check the disk against the checkpoint, recover the spec server
        from the disk (abstraction (b))."""
        if self.violation is not None:
            return
        self._record(f"Recover({member_id})")
        node = self.nodes[member_id]
        self.nodes[member_id] = None
        self._handed_out[member_id] = None
        if node is not None:
            unsent = list(node._msgs)
            sent = self._sent_first[member_id]
            if sent and all(a is b for a, b in zip(unsent, sent, strict=False)):
                unsent = unsent[len(sent) :]
            for m in unsent:
                self._forget_unsent(member_id, m)
        recovered = disk.durable_state()
        checkpoint = self.checkpoints[member_id]
        self._check_not_behind(member_id, recovered, checkpoint)
        fresh = self._recovered_server(member_id, recovered)
        self.state = self.state.with_server(member_id, fresh).but(restarts=self.state.restarts + 1)
        self.checkpoints[member_id] = fresh.but(
            commit_index=max(fresh.commit_index, checkpoint.commit_index)
        )
        self._counts["Recover"] += 1

    # ------------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        """The spec's state invariants on the real cluster's abstract state and on the shadow."""
        if self.violation is not None:
            return
        real = abstract_state(self.nodes, self.state)
        for label, s in (("the real cluster", real), ("the shadow", self.state)):
            found = state_violation(s)
            if found is not None:
                name, problem = found
                self._fail(name, f"{label}: {problem}", None)

    # ------------------------------------------------------------------ internals

    def _record(self, event: object) -> None:
        self._recent.append(event)

    def _step(self, event: ev.Event) -> None:
        after = self.spec.step(self.state, event)
        if after is None:
            self._fail("Conformance", "the event is not enabled in the spec", event)
        self.state = after
        self._counts[type(event).__name__] += 1

    def _spec_message(self, m: Message) -> Message:
        """The spec network's copy of real message ``m`` (abstractions (a) and (c))."""
        if isinstance(m, InstallSnapshotRequest):
            return self._spec_snapshot_request(m)
        if isinstance(m, AppendEntriesRequest | AppendEntriesResponse) and m.read_ctx:
            return self._spec_read_ctx(m)
        return m

    def _spec_snapshot_request(self, m: InstallSnapshotRequest) -> InstallSnapshotRequest:
        for candidate, _ in self.state.network:
            if isinstance(candidate, InstallSnapshotRequest) and _same_snapshot_request(
                m, candidate
            ):
                return candidate
        return m

    def _normalized(self, event: ev.Event) -> ev.Event:
        kind = type(event)
        if kind in _MESSAGE_EVENT_TYPES:
            m = cast(Any, event).message
            if isinstance(m, InstallSnapshotRequest):
                fixed: ev.Event = attrs.evolve(
                    cast(Any, event), message=self._spec_snapshot_request(m)
                )
                return fixed
            if isinstance(m, AppendEntriesRequest | AppendEntriesResponse) and m.read_ctx:
                spec_m = self._spec_read_ctx(m)
                if spec_m is not m:
                    renamed: ev.Event = attrs.evolve(cast(Any, event), message=spec_m)
                    return renamed
            return event
        if kind not in _READ_EVENT_TYPES:
            return event
        if isinstance(event, ev.ReadIndexRequest):
            node = self.nodes[event.server]
            term = node.term if node is not None else self.state.servers[event.server].term
            spec_id = self.state.last_read_id + 1
            self._read_ids.setdefault((event.server, event.read_id), []).append((term, spec_id))
            return attrs.evolve(event, read_id=spec_id)
        if isinstance(event, ev.ReadIndexComplete):
            node = self.nodes[event.server]
            term = node.term if node is not None else self.state.servers[event.server].term
            return attrs.evolve(
                event, read_id=self._spec_read_id(event.server, event.read_id, term)
            )
        return event

    def _spec_read_id(self, leader: int, read_id: int, term: int) -> int:
        """Abstraction (c): the spec id of ``leader``'s read ``read_id`` as of ``term`` (the
        latest use of that id in a term not after ``term``); unknown ids stay as they are, so
        the spec refuses them."""
        found = read_id
        for used_in, spec_id in self._read_ids.get((leader, read_id), ()):
            if used_in <= term:
                found = spec_id
        return found

    def _spec_read_ctx(
        self, m: AppendEntriesRequest | AppendEntriesResponse
    ) -> AppendEntriesRequest | AppendEntriesResponse:
        leader = m.source if isinstance(m, AppendEntriesRequest) else m.dest
        spec_id = self._spec_read_id(leader, m.read_ctx, m.term)
        if spec_id == m.read_ctx:
            # The very object, not an equal copy: the spec finds it in its network by identity
            # before falling back to comparing every message field by field.
            return m
        return attrs.evolve(m, read_ctx=spec_id)

    def _compare(self, member_id: int, node: RaftNode, event: ev.Event | None) -> None:
        server = self.state.servers[member_id]
        term = node.term

        def read_id(rid: int) -> int:
            return self._spec_read_id(member_id, rid, term)

        if matches_spec(node, server, member_id, read_id, self._node_peers(member_id, node)):
            return
        # A mismatch (or a state the quick check does not vouch for): compare field by field.
        mine = node_fields(node)
        mine["pending_reads"] = tuple(
            (read_id(rid), index, acks) for rid, index, acks in mine["pending_reads"]
        )
        diff = differences(mine, spec_fields(server, member_id))
        if diff:
            self._fail(
                "Conformance",
                f"member {member_id}'s node differs from its spec server (node, spec)",
                event,
                differences=diff,
            )

    def _node_peers(self, member_id: int, node: RaftNode) -> tuple[int, ...] | None:
        config = node.config
        cached = self._peers[member_id]
        if cached is None or cached[0] is not config:
            cached = self._peers[member_id] = (
                config,
                spec_peers(config, member_id, len(self.nodes)),
            )
        return cached[1]

    def _adopt_entry(self, member_id: int, node: RaftNode) -> None:
        """After a proposal, the spec server's new last entry becomes the node's own entry
        object when the two are equal. The spec state stays equal (``==``) to what the spec
        computed, so every later step and check decides the same; but the logs, and the
        AppendEntries built from them, then share their entries, and comparing the node's log
        with the spec's (every event of a leader) is an identity test per entry instead of an
        attrs ``__eq__`` call per entry."""
        entries = node.log.entries
        v = self.state.servers[member_id]
        if not entries or not v.log:
            return
        mine, theirs = entries[-1], v.log[-1]
        if mine is not theirs and mine == theirs:
            self.state = self.state.with_server(member_id, v.but(log=(*v.log[:-1], mine)))

    def _forget_unsent(self, member_id: int, m: Message) -> None:
        spec_m = self._spec_message(m)
        try:
            network = bag_remove(self.state.network, spec_m)
        except KeyError:
            self._fail(
                "Conformance",
                f"crashed member {member_id} held an unsent message the spec never sent",
                None,
                unsent=_short(m),
            )
        self.state = self.state.but(network=network)

    def _check_not_behind(
        self, member_id: int, disk: RecoveredState, checkpoint: ServerState
    ) -> None:
        problems = behind_last_sync(disk, checkpoint)
        if problems:
            self._fail(
                "Durability",
                f"member {member_id} recovered a disk behind its last sync: " + "; ".join(problems),
                None,
                checkpoint=_short(persistent_fields(checkpoint, member_id)),
                recovered=_short(disk_fields(disk)),
            )

    def _recovered_server(self, member_id: int, disk: RecoveredState) -> ServerState:
        """The spec server a member restarts as: the spec's prefix up to the disk's snapshot
        (abstraction (a)), the disk's entries after it, commit at the snapshot."""
        got = disk_fields(disk)
        snap = got["snapshot_index"]
        known = self.state.servers[member_id].log
        if len(known) < snap or (snap > 0 and known[snap - 1].term != got["snapshot_term"]):
            self._fail(
                "Durability",
                f"member {member_id} recovered snapshot {snap} (term {got['snapshot_term']}), "
                f"which its log of {len(known)} entries does not contain",
                None,
            )
        return ServerState(
            term=got["term"],
            voted_for=got["voted_for"],
            log=(*known[:snap], *got["live_log"]),
            snapshot_index=snap,
            commit_index=snap,
        )

    def _fail(self, prop: str, message: str, event: object, **extra: Any) -> NoReturn:
        evidence: dict[str, Any] = {
            "event": None if event is None else _short(event),
            "recent_events": [_short(e) for e in self._recent],
            **extra,
        }
        violation = Violation(prop, message, evidence)
        self.violation = violation
        raise violation
