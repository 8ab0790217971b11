"""The Raft state machine of one server, with no I/O, clock or randomness of its own.

Inputs: :meth:`RaftNode.tick`, :meth:`RaftNode.step` (a received message),
:meth:`RaftNode.propose`, :meth:`RaftNode.read_index`, :meth:`RaftNode.transfer_leadership`,
:meth:`RaftNode.compact`. Output: :meth:`RaftNode.ready` / :meth:`RaftNode.advance`. A restart
is a new node built from what the old one persisted. With ``NodeConfig.lease_read``,
:meth:`RaftNode.lease_read_index` answers reads from a lease (docs/lease-reads.md).

Each state change is reported, right after it is made, as one event of the specification
(:mod:`raftkube_spec.raft.events`), and the messages the node sends are the specification's
messages, so that replaying the events through the model reproduces this node's state. The
rules below mirror ``raftkube_spec.raft.model`` action by action; where the node chooses among
several enabled actions (when to send, how much, what to ignore) it is a policy the model
leaves free.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Protocol

import attrs

from raftkube.raft.config import NodeConfig
from raftkube.raft.log import RaftLog, Snapshot
from raftkube.raft.membership import MembershipTracker
from raftkube.raft.progress import Progress
from raftkube.raft.ready import HardState, ReadState, Ready
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNowRequest,
)
from raftkube_spec.raft.types import Entry, Membership, Role, Value

Observer = Callable[[ev.Event], None]


class RandomSource(Protocol):
    """The part of :class:`random.Random` the node uses; a simulator injects its own."""

    def randrange(self, start: int, stop: int) -> int: ...


class RejectedError(Exception):
    """The request is not enabled in the node's current state (the spec would refuse it)."""


class NotLeaderError(RejectedError):
    """Only a leader accepts proposals, reads and transfers."""


@attrs.define
class _PendingRead:
    read_id: int
    index: int
    acks: set[int]
    tick: int
    """The leader's tick count at registration: a lease from this read starts there."""


NOOP: Value = b""
"""The value of the empty entry a new leader appends to commit its term."""


class RaftNode:
    """One Raft server. Not thread-safe; a driver serializes all calls."""

    def __init__(
        self,
        config: NodeConfig,
        rng: RandomSource | None = None,
        observer: Observer | None = None,
        *,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: tuple[Entry, ...] = (),
    ) -> None:
        """A node starting from persisted state (or from nothing). The commit index restarts at
        the snapshot index, as in the spec: a persisted commit index is not trusted."""
        self.config = config
        self.id = config.node_id
        self._rng: RandomSource = rng if rng is not None else Random(config.node_id)
        self._observer = observer
        self.on_ready: Callable[[Ready], None] | None = None
        """Called with every :class:`Ready` :meth:`ready` hands out, before the driver sees
        it: an observer learns what is about to be persisted and sent (the simulator's
        durability check). Unset in production."""
        hs = hard_state if hard_state is not None else HardState()

        # Persistent state.
        self.term = hs.term
        self.vote: int | None = hs.vote
        self.log = RaftLog(snapshot, entries)
        self._membership = MembershipTracker(
            config.initial_membership, self.log, enabled=config.membership
        )

        # Volatile state, as the spec's ServerState.
        self.role = Role.FOLLOWER
        self.commit = self.log.snapshot.index
        self.votes_responded: set[int] = set()
        self.votes_granted: set[int] = set()
        self.progress: dict[int, Progress] = {}
        self.recent_active: set[int] = set()
        self.pending_reads: list[_PendingRead] = []

        # Bookkeeping the spec does not see.
        self.leader: int | None = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = self._draw_timeout()
        self._ticks = 0
        """Ticks since this node was built: the leader's lease is measured in them."""
        self._quiet = 0
        """Ticks since this node last was, or heard from, a leader (or since it started).
        With lease reads it refuses votes while this is below the election timeout."""
        self._lease_until = 0
        """With lease reads: the leader holds a lease while ``_ticks`` is below this."""

        # What the driver has not yet been handed (see ready()).
        self._persisted = hs
        self._unstable_from = self.log.last_index + 1
        self._truncate_from: int | None = None
        self._pending_snapshot: Snapshot | None = None
        self._applied = self.log.snapshot.index
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []

    # --- Queries -------------------------------------------------------------------------------

    @property
    def last_index(self) -> int:
        return self.log.last_index

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def membership(self) -> Membership:
        """The configuration in force: the last one in the log, committed or not."""
        return self._membership.current

    @property
    def membership_index(self) -> int:
        """The index of the configuration entry in force (0: the initial configuration)."""
        return self._membership.index

    def _peers(self) -> tuple[int, ...]:
        """The members a leader replicates to: voters and learners but itself."""
        return tuple(j for j in self._membership.current.members if j != self.id)

    def _is_quorum(self, servers: set[int]) -> bool:
        return self._membership.current.is_quorum(servers)

    def next_index(self, peer: int) -> int:
        return self.progress[peer].next

    def match_index(self, peer: int) -> int:
        if peer == self.id:
            return self.log.last_index
        return self.progress[peer].match

    # --- Inputs --------------------------------------------------------------------------------

    def tick(self) -> None:
        """One unit of logical time."""
        self._ticks += 1
        self._quiet = 0 if self.role is Role.LEADER else self._quiet + 1
        if self.role is Role.LEADER:
            self._tick_leader()
            return
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_timeout:
            self._timeout()

    def propose(self, value: Value) -> int:
        """Append ``value`` to the log; returns its index. Raises if not the leader."""
        if self.role is not Role.LEADER:
            raise NotLeaderError(f"server {self.id} is {self.role.value}, leader {self.leader}")
        index = self._append_own(value)
        self._maybe_commit()
        for j in self._peers():
            self._send_append(j, allow_empty=False)
        return index

    def propose_many(self, values: list[Value]) -> int:
        """Append ``values`` in order; returns the index of the first. Same as calling
        :meth:`propose` for each, except that each peer gets one AppendEntries for the whole
        batch instead of one per value (flow control permitting)."""
        if self.role is not Role.LEADER:
            raise NotLeaderError(f"server {self.id} is {self.role.value}, leader {self.leader}")
        first = self.log.last_index + 1
        for value in values:
            self._append_own(value)
        self._maybe_commit()
        for j in self._peers():
            self._send_append(j, allow_empty=False)
        return first

    def read_index(self, read_id: int) -> None:
        """Start linearizable read ``read_id`` (ids must increase across the cluster). Its
        ReadState appears in a later Ready once a quorum confirmed this leader."""
        if not self.config.read_index:
            raise RejectedError("ReadIndex is switched off")
        if self.role is not Role.LEADER:
            raise NotLeaderError(f"server {self.id} is {self.role.value}, leader {self.leader}")
        if self.log.term_at(self.commit) != self.term:
            raise RejectedError("the leader has not yet committed an entry of its term")
        if self.pending_reads and read_id <= self.pending_reads[-1].read_id:
            raise RejectedError(f"read id {read_id} is not fresh")
        self.pending_reads.append(_PendingRead(read_id, self.commit, {self.id}, self._ticks))
        if self._observer is not None:
            self._observer(ev.ReadIndexRequest(self.id, read_id))
        self._complete_reads()
        for j in self._peers():
            self._send_heartbeat(j)

    def lease_read_index(self) -> int | None:
        """With lease reads: the index a linearizable read may be served at (once applied)
        without a round trip, or None if there is no valid lease; the caller then starts a
        :meth:`read_index` round, whose quorum acknowledgement renews the lease.

        Valid while this node leads, has committed an entry of its term (so the commit
        index covers every entry committed before its term) and its tick count is below
        the registration tick of a quorum-acknowledged read plus ``lease_ticks``. No
        server can have voted in a higher term since: see docs/lease-reads.md."""
        if not self.config.lease_read or self.role is not Role.LEADER:
            return None
        if self.log.term_at(self.commit) != self.term or self._ticks >= self._lease_until:
            return None
        return self.commit

    def transfer_leadership(self, peer: int) -> None:
        """Ask the up-to-date ``peer`` to campaign at once (TimeoutNow). Refused with lease
        reads: the other servers refuse the target's vote requests while the lease is
        protected, and a transfer that got through would end the lease early."""
        if not self.config.leader_transfer:
            raise RejectedError("leadership transfer is switched off")
        if self.config.lease_read:
            raise RejectedError("leadership transfer is refused in lease-read mode")
        if self.role is not Role.LEADER:
            raise NotLeaderError(f"server {self.id} is {self.role.value}, leader {self.leader}")
        if peer == self.id or peer not in self.progress or peer not in self.membership.voters:
            raise RejectedError(f"cannot transfer to {peer}")
        if self.progress[peer].match != self.log.last_index:
            raise RejectedError(f"server {peer} is not up to date")
        self._msgs.append(TimeoutNowRequest(term=self.term, source=self.id, dest=peer))
        if self._observer is not None:
            self._observer(ev.TransferLeadership(self.id, peer))

    def add_member(self, peer: int, learner: bool) -> int:
        """Append a configuration adding ``peer`` (a learner or a voter); returns its index.
        In force on this leader at once; see :mod:`raftkube.raft.membership`."""
        new = self._check_membership_change(peer).added(peer, learner)
        if new is None:
            raise RejectedError(f"server {peer} is already a member")
        # A new member's progress starts afresh (etcd's too): nothing known to match.
        self.progress[peer] = Progress(self.log.last_index + 1)
        return self._append_membership(new, ev.AddMember(self.id, peer, learner))

    def promote_member(self, peer: int) -> int:
        """Append a configuration in which learner ``peer`` votes; returns its index."""
        new = self._check_membership_change(peer).promoted(peer)
        if new is None:
            raise RejectedError(f"server {peer} is not a learner")
        return self._append_membership(new, ev.PromoteMember(self.id, peer))

    def remove_member(self, peer: int) -> int:
        """Append a configuration without ``peer``; returns its index. A leader does not
        remove itself: transfer leadership first (the spec has no leader stepping down on
        its own removal)."""
        current = self._check_membership_change(peer)
        if peer == self.id:
            raise RejectedError("the leader cannot remove itself; transfer leadership first")
        new = current.removed(peer)
        if new is None:
            raise RejectedError(f"server {peer} is not a member")
        return self._append_membership(new, ev.RemoveMember(self.id, peer))

    def _check_membership_change(self, peer: int) -> Membership:
        if not self.config.membership:
            raise RejectedError("membership changes are switched off")
        if self.role is not Role.LEADER:
            raise NotLeaderError(f"server {self.id} is {self.role.value}, leader {self.leader}")
        if not 0 <= peer < self.config.servers:
            raise RejectedError(f"server {peer} outside 0..{self.config.servers - 1}")
        if not self._may_change_membership():
            raise RejectedError(
                "a membership change is pending: the leader must first commit an entry of its "
                "term and the last change"
            )
        return self.membership

    def _may_change_membership(self) -> bool:
        """The spec's ``may_change_membership``: an entry of this term is committed (etcd's
        pendingConfIndex rule) and so is the last configuration change."""
        return self.log.term_at(self.commit) == self.term and self._membership.index <= self.commit

    def _append_membership(self, new: Membership, event: ev.Event) -> int:
        index = self.log.append(Entry(self.term, new))
        self._membership.appended(index, (self.log.entries[-1],))
        if self._observer is not None:
            self._observer(event)
        self._maybe_commit()
        for j in self._peers():
            self._send_append(j, allow_empty=False)
        return index

    @property
    def applied(self) -> int:
        """The highest index the driver has reported applied (through :meth:`advance`)."""
        return self._applied

    def compact(self, index: int) -> Snapshot:
        """Fold the applied log up to ``index`` into a snapshot (persisted via Ready)."""
        if not self.config.compaction:
            raise RejectedError("compaction is switched off")
        if not self.log.snapshot.index < index <= min(self.commit, self._applied):
            raise RejectedError(
                f"cannot compact to {index}: snapshot {self.log.snapshot.index}, "
                f"commit {self.commit}, applied {self._applied}"
            )
        snap = self.log.compact(index)
        self._pending_snapshot = snap
        if self._observer is not None:
            self._observer(ev.CompactLog(self.id, index))
        return snap

    def step(self, m: Message) -> None:
        """Receive ``m``. Exactly one consuming event is reported for it (a handler,
        DropStaleResponse or DropMessage), possibly preceded by UpdateTerm."""
        if m.dest != self.id:
            raise ValueError(f"message for {m.dest} delivered to {self.id}")
        if isinstance(m, RequestVoteRequest) and self._guarding_lease():
            self._drop(m)
            return
        if m.term > self.term:
            if isinstance(m, RequestVoteRequest) and self._in_lease():
                self._drop(m)
                return
            pre_vote_only = (isinstance(m, RequestVoteRequest) and m.pre_vote) or (
                isinstance(m, RequestVoteResponse) and m.pre_vote and m.granted
            )
            if not pre_vote_only:
                self._become_follower(m.term)
                if self._observer is not None:
                    self._observer(ev.UpdateTerm(m))
        elif m.term < self.term and isinstance(m, RequestVoteResponse | AppendEntriesResponse):
            if self._observer is not None:
                self._observer(ev.DropStaleResponse(m))
            return
        if isinstance(m, AppendEntriesRequest):
            self._on_append(m)
        elif isinstance(m, AppendEntriesResponse):
            self._on_append_response(m)
        elif isinstance(m, RequestVoteRequest):
            self._on_vote(m)
        elif isinstance(m, RequestVoteResponse):
            self._on_vote_response(m)
        elif isinstance(m, InstallSnapshotRequest):
            self._on_snapshot(m)
        else:
            self._on_timeout_now(m)

    # --- Output --------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(
            self._msgs
            or self._read_states
            or self._pending_snapshot is not None
            or self._truncate_from is not None
            or self._unstable_from <= self.log.last_index
            or self._applied < self.commit
            or self._hard_state_changed()
        )

    def has_only_messages(self) -> bool:
        """A :meth:`ready` now would hold messages and nothing else: nothing to persist,
        apply or serve, so a driver may send them at once."""
        return bool(
            self._msgs
            and not self._read_states
            and self._pending_snapshot is None
            and self._truncate_from is None
            and self._unstable_from > self.log.last_index
            and self._applied >= self.commit
            and not self._hard_state_changed()
        )

    def _hard_state_changed(self) -> bool:
        """``self._hard_state() != self._persisted``, without building a HardState: asked
        after every message and tick."""
        p = self._persisted
        return self.term != p.term or self.vote != p.vote or self.commit > p.commit

    def ready(self) -> Ready:
        """Everything produced since the last :meth:`advance`. Handle it, then advance."""
        hs = self._hard_state() if self._hard_state_changed() else None
        first = max(self._unstable_from, self.log.first_index)
        apply_from = max(self._applied, self.log.snapshot.index) + 1
        rd = Ready(
            hard_state=hs,
            truncate_from=self._truncate_from,
            snapshot=self._pending_snapshot,
            first_index=first,
            entries=self.log.slice(first - 1, self.log.last_index),
            messages=tuple(self._msgs),
            committed_first_index=apply_from,
            committed_entries=self.log.slice(apply_from - 1, self.commit),
            read_states=tuple(self._read_states),
        )
        if self.on_ready is not None:
            self.on_ready(rd)
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver persisted, sent and applied ``rd``."""
        if rd.hard_state is not None:
            self._persisted = rd.hard_state
        if rd.entries or rd.snapshot is not None or rd.truncate_from is not None:
            self._unstable_from = max(self._unstable_from, rd.first_index + len(rd.entries))
        if rd.truncate_from is not None and self._truncate_from == rd.truncate_from:
            self._truncate_from = None
        if rd.snapshot is not None and self._pending_snapshot is rd.snapshot:
            self._pending_snapshot = None
        if rd.snapshot is not None:
            self._applied = max(self._applied, rd.snapshot.index)
        if rd.committed_entries:
            self._applied = rd.committed_first_index + len(rd.committed_entries) - 1
        del self._msgs[: len(rd.messages)]
        del self._read_states[: len(rd.read_states)]

    def _hard_state(self) -> HardState:
        """The persisted commit index never goes back (storage refuses that), even though the
        node itself restarts from the snapshot index."""
        return HardState(self.term, self.vote, max(self.commit, self._persisted.commit))

    # --- Roles ---------------------------------------------------------------------------------

    def _draw_timeout(self) -> int:
        e = self.config.election_timeout
        return self._rng.randrange(e, 2 * e)

    def _reset_timers(self) -> None:
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = self._draw_timeout()

    def _clear_role_state(self) -> None:
        self.votes_responded = set()
        self.votes_granted = set()
        self.progress = {}
        self.recent_active = set()
        self.pending_reads = []

    def _become_follower(self, term: int) -> None:
        """The spec's ``as_follower``: the vote survives only within the same term."""
        if term != self.term:
            self.vote = None
            self.leader = None
        self.term = term
        self.role = Role.FOLLOWER
        self._clear_role_state()
        self._reset_timers()

    def _become_candidate(self) -> None:
        """The spec's ``as_candidate``: next term, voting for itself."""
        self._become_follower(self.term + 1)
        self.role = Role.CANDIDATE
        self.vote = self.id
        self.votes_responded = {self.id}
        self.votes_granted = {self.id}

    def _timeout(self) -> None:
        if self.id not in self.membership.voters:
            self._reset_timers()  # a learner or non-member never campaigns
            return
        self.leader = None
        if self.config.pre_vote:
            self._become_follower(self.term)
            self.role = Role.PRE_CANDIDATE
            self.votes_responded = {self.id}
            self.votes_granted = {self.id}
        else:
            self._become_candidate()
        if self._observer is not None:
            self._observer(ev.Timeout(self.id))
        self._request_votes()

    def _request_votes(self) -> None:
        pre = self.role is Role.PRE_CANDIDATE
        term = self.term + 1 if pre else self.term
        for j in self.membership.voters:
            if j == self.id:
                continue
            self._msgs.append(
                RequestVoteRequest(
                    term=term,
                    source=self.id,
                    dest=j,
                    last_log_term=self.log.last_term,
                    last_log_index=self.log.last_index,
                    pre_vote=pre,
                )
            )
            if self._observer is not None:
                self._observer(ev.RequestVote(self.id, j))
        self._check_votes()

    def _check_votes(self) -> None:
        if not self._is_quorum(self.votes_granted):
            return
        if self.role is Role.PRE_CANDIDATE:
            self._become_candidate()
            if self._observer is not None:
                self._observer(ev.BecomeCandidate(self.id))
            self._request_votes()
        elif self.role is Role.CANDIDATE:
            self._become_leader()

    def _become_leader(self) -> None:
        last = self.log.last_index
        self.role = Role.LEADER
        self.leader = self.id
        self.votes_responded = set()
        self.votes_granted = set()
        self.progress = {j: Progress(last + 1) for j in self.config.peers}
        self._reset_timers()
        self._quiet = 0
        self._lease_until = 0
        if self._observer is not None:
            self._observer(ev.BecomeLeader(self.id))
        self._append_own(NOOP)
        self._maybe_commit()
        for j in self._peers():
            self._send_append(j, allow_empty=True)

    def _append_own(self, value: Value) -> int:
        if isinstance(value, Membership):
            raise RejectedError("configuration entries are proposed by add/promote/remove_member")
        index = self.log.append(Entry(self.term, value))
        if self._observer is not None:
            self._observer(ev.ClientRequest(self.id, value))
        return index

    def _in_lease(self) -> bool:
        """etcd's rule: while a leader was heard from within the election timeout, vote
        requests from higher terms are ignored, so a partitioned server cannot disrupt."""
        return (
            self.config.check_quorum
            and self.config.lease
            and self.leader is not None
            and self._election_elapsed < self.config.election_timeout
        )

    def _guarding_lease(self) -> bool:
        """With lease reads, every vote request (any term, pre-vote or not) is ignored while
        some leader may hold a lease this server helped grant: for ``election_timeout`` ticks
        after it last was or heard from a leader, and after it starts (it may have
        acknowledged a lease before crashing). Stronger than :meth:`_in_lease`, whose
        protection ends as soon as a higher term arrives by another message (a late vote
        response, say) and clears ``leader``."""
        return self.config.lease_read and self._quiet < self.config.election_timeout

    def _drop(self, m: Message) -> None:
        if self._observer is not None:
            self._observer(ev.DropMessage(m))

    # --- Leader duties -------------------------------------------------------------------------

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self.config.check_quorum and self._election_elapsed >= self.config.election_timeout:
            self._election_elapsed = 0
            active = self._is_quorum(self.recent_active | {self.id})
            if active:
                self.recent_active = set()
            else:
                self._become_follower(self.term)
                self.leader = None
            if self._observer is not None:
                self._observer(ev.CheckQuorum(self.id))
            if not active:
                return
        if self._heartbeat_elapsed >= self.config.heartbeat_timeout:
            self._heartbeat_elapsed = 0
            for j in self._peers():
                self.progress[j].reset_flow()
                self._send_append(j, allow_empty=True)

    def _read_ctx(self) -> int:
        return self.pending_reads[-1].read_id if self.pending_reads else 0

    def _send_heartbeat(self, j: int) -> None:
        prev = self.progress[j].next - 1
        if prev < self.log.snapshot.index:
            return
        self._emit_append(j, prev, 0)

    def _send_append(self, j: int, allow_empty: bool) -> None:
        """Send what flow control allows to ``j``: entries, or a snapshot if its next entry is
        compacted, or (with ``allow_empty``) a heartbeat."""
        pr = self.progress[j]
        pipelining = self.config.pipelining
        while True:
            prev = pr.next - 1
            if prev < self.log.snapshot.index:
                if pr.paused and not allow_empty:
                    return
                self._send_snapshot(j, pr)
                if not pipelining:
                    return
                allow_empty = False
                continue
            count = min(self.config.max_batch, self.log.last_index - prev)
            window = 1 if pr.probing else self.config.max_inflight
            if count > 0 and (
                (pipelining and len(pr.inflight) >= window) or (not pipelining and pr.paused)
            ):
                count = 0
            if count == 0 and not allow_empty:
                return
            self._emit_append(j, prev, count, pr)
            if count == 0 or not pipelining:
                return
            allow_empty = False

    def _emit_append(self, j: int, prev: int, count: int, pr: Progress | None = None) -> None:
        """Send ``count`` entries after ``prev``; with entries, record them in ``pr``'s flow
        control (with pipelining, nextIndex moves past them before the event is reported)."""
        last = prev + count
        if pr is not None and count:
            if self.config.pipelining:
                pr.next = last + 1
                pr.inflight.append(last)
            else:
                pr.paused = True
        self._msgs.append(
            AppendEntriesRequest(
                term=self.term,
                source=self.id,
                dest=j,
                prev_log_index=prev,
                prev_log_term=self.log.term_at(prev),
                entries=self.log.slice(prev, last),
                commit_index=min(self.commit, last),
                read_ctx=self._read_ctx(),
            )
        )
        if self._observer is not None:
            self._observer(ev.AppendEntries(self.id, j, count))

    def _send_snapshot(self, j: int, pr: Progress) -> None:
        snap = self.log.snapshot
        self._msgs.append(
            InstallSnapshotRequest(
                term=self.term,
                source=self.id,
                dest=j,
                last_index=snap.index,
                last_term=snap.term,
                entries=snap.data,
            )
        )
        if self.config.pipelining:
            pr.next = snap.index + 1
        else:
            pr.paused = True
        if self._observer is not None:
            self._observer(ev.InstallSnapshot(self.id, j))

    def _maybe_commit(self) -> None:
        """The spec's ``commit_candidate``: the highest index a quorum holds, if it is from the
        current term (logs' terms never decrease, so checking that one index suffices)."""
        matches = [self.match_index(j) for j in self.membership.voters]
        matches.sort(reverse=True)
        candidate = matches[len(matches) // 2]
        if candidate <= self.commit or self.log.term_at(candidate) != self.term:
            return
        self.commit = candidate
        if self._observer is not None:
            self._observer(ev.AdvanceCommitIndex(self.id, candidate))

    def _complete_reads(self) -> None:
        done = [r for r in self.pending_reads if self._is_quorum(r.acks)]
        for r in done:
            self.pending_reads.remove(r)
            if self.config.lease_read:
                self._lease_until = max(self._lease_until, r.tick + self.config.lease_ticks)
            self._read_states.append(ReadState(r.read_id, r.index))
            if self._observer is not None:
                self._observer(ev.ReadIndexComplete(self.id, r.read_id))

    # --- Message handlers ----------------------------------------------------------------------

    def _on_vote(self, m: RequestVoteRequest) -> None:
        log_ok = m.last_log_term > self.log.last_term or (
            m.last_log_term == self.log.last_term and m.last_log_index >= self.log.last_index
        )
        if m.pre_vote:
            grant = m.term > self.term and log_ok
            answer = RequestVoteResponse(
                term=m.term if grant else self.term,
                source=self.id,
                dest=m.source,
                granted=grant,
                pre_vote=True,
            )
        else:
            # UpdateTerm already ran for a higher term, so m.term <= self.term here.
            grant = m.term == self.term and self.vote in (None, m.source) and log_ok
            if grant:
                self.vote = m.source
                self._election_elapsed = 0
            answer = RequestVoteResponse(
                term=self.term, source=self.id, dest=m.source, granted=grant
            )
        if self._observer is not None:
            self._observer(ev.HandleRequestVoteRequest(m))
        self._msgs.append(answer)

    def _on_vote_response(self, m: RequestVoteResponse) -> None:
        counted = False
        if m.pre_vote:
            if self.role is Role.PRE_CANDIDATE and (not m.granted or m.term == self.term + 1):
                counted = True
        elif self.role is Role.CANDIDATE:
            counted = True
        if counted:
            self.votes_responded.add(m.source)
            if m.granted:
                self.votes_granted.add(m.source)
        if self._observer is not None:
            self._observer(ev.HandleRequestVoteResponse(m))
        if counted and m.granted:
            self._check_votes()

    def _accept_leader(self, m: Message) -> bool:
        """Common to AppendEntries and InstallSnapshot of the current term: a candidate steps
        back (keeping its vote). Returns False if the message must be dropped."""
        if self.role is Role.LEADER:
            self._drop(m)  # Another leader in our term: impossible, never acted on.
            return False
        if self.role is not Role.FOLLOWER:
            self._become_follower(self.term)
        self.leader = m.source
        self._election_elapsed = 0
        self._quiet = 0
        return True

    def _on_append(self, m: AppendEntriesRequest) -> None:
        if m.term < self.term:
            answer = AppendEntriesResponse(
                term=self.term,
                source=self.id,
                dest=m.source,
                success=False,
                match_index=0,
                read_ctx=m.read_ctx,
            )
            if self._observer is not None:
                self._observer(ev.HandleAppendEntriesRequest(m))
            self._msgs.append(answer)
            return
        if not self._accept_leader(m):
            return
        log = self.log
        prev = m.prev_log_index
        if prev < self.commit:
            success, match = True, self.commit
        elif prev > log.last_index or log.term_at(prev) != m.prev_log_term:
            success, match = False, min(prev - 1, log.last_index)
        else:
            success = True
            match = prev + len(m.entries)
            self._merge(prev, m.entries)
            commit = min(m.commit_index, match)
            if commit > self.commit:
                self.commit = commit
        if self._observer is not None:
            self._observer(ev.HandleAppendEntriesRequest(m))
        self._msgs.append(
            AppendEntriesResponse(
                term=self.term,
                source=self.id,
                dest=m.source,
                success=success,
                match_index=match,
                read_ctx=m.read_ctx,
            )
        )

    def _merge(self, prev: int, entries: tuple[Entry, ...]) -> None:
        """The spec's ``merge``: keep entries that agree, cut the log at the first conflict."""
        log = self.log
        for n, entry in enumerate(entries):
            index = prev + 1 + n
            if index > log.last_index:
                log.entries.extend(entries[n:])
                self._membership.appended(index, entries[n:])
                return
            if log.term_at(index) != entry.term:
                log.truncate_after(index - 1)
                self._membership.truncated(log, index)
                self._mark_truncated(index)
                log.entries.extend(entries[n:])
                self._membership.appended(index, entries[n:])
                return

    def _mark_truncated(self, index: int) -> None:
        """Entries from ``index`` on changed: they must be (re)persisted."""
        if index < self._unstable_from:
            self._truncate_from = (
                index if self._truncate_from is None else min(self._truncate_from, index)
            )
            self._unstable_from = index

    def _on_snapshot(self, m: InstallSnapshotRequest) -> None:
        if m.term < self.term:
            answer = AppendEntriesResponse(
                term=self.term, source=self.id, dest=m.source, success=False, match_index=0
            )
            if self._observer is not None:
                self._observer(ev.HandleInstallSnapshotRequest(m))
            self._msgs.append(answer)
            return
        if not self._accept_leader(m):
            return
        log = self.log
        if m.last_index <= self.commit:
            match = self.commit
        elif m.last_index <= log.last_index and log.term_at(m.last_index) == m.last_term:
            match = self.commit = m.last_index
        else:
            match = self.commit = m.last_index
            # Storage discards the whole log when saving a snapshot whose last entry it does
            # not hold, so no truncation is needed for the entries dropped here.
            snap = Snapshot(m.last_index, m.last_term, m.entries)
            log.install(snap)
            self._membership.rescan(log)
            self._pending_snapshot = snap
            self._unstable_from = snap.index + 1
        if self._observer is not None:
            self._observer(ev.HandleInstallSnapshotRequest(m))
        self._msgs.append(
            AppendEntriesResponse(
                term=self.term, source=self.id, dest=m.source, success=True, match_index=match
            )
        )

    def _on_append_response(self, m: AppendEntriesResponse) -> None:
        if self.role is not Role.LEADER:
            if self._observer is not None:
                self._observer(ev.HandleAppendEntriesResponse(m))
            return
        j = m.source
        if self.config.check_quorum:
            self.recent_active.add(j)
        if m.read_ctx:
            for r in self.pending_reads:
                if r.read_id <= m.read_ctx:
                    r.acks.add(j)
        pr = self.progress[j]
        if m.success:
            if m.match_index > pr.match:
                pr.match = m.match_index
            if m.match_index + 1 > pr.next:
                pr.next = m.match_index + 1
            pr.free_to(m.match_index)
            pr.paused = False
            pr.probing = False
        else:
            pr.next = max(pr.match + 1, min(pr.next - 1, m.match_index + 1))
            pr.reset_flow()
            pr.probing = True
        if self._observer is not None:
            self._observer(ev.HandleAppendEntriesResponse(m))
        if m.read_ctx:
            self._complete_reads()
        if m.success:
            self._maybe_commit()
        if j in self.membership.members:  # a removed member gets nothing more
            self._send_append(j, allow_empty=False)

    def _on_timeout_now(self, m: TimeoutNowRequest) -> None:
        if m.term < self.term or self.role is not Role.FOLLOWER:
            if self._observer is not None:
                self._observer(ev.HandleTimeoutNowRequest(m))
            return
        self._become_candidate()
        if self._observer is not None:
            self._observer(ev.HandleTimeoutNowRequest(m))
        self._request_votes()
