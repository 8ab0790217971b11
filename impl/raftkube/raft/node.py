"""The Raft state machine of one server, with no I/O, clock or randomness of its own.

Inputs: :meth:`RaftNode.tick`, :meth:`RaftNode.step` (a received message),
:meth:`RaftNode.propose`, :meth:`RaftNode.read_index`, :meth:`RaftNode.transfer_leadership`,
:meth:`RaftNode.compact`. Output: :meth:`RaftNode.ready` / :meth:`RaftNode.advance`, with
``Ready.must_sync`` saying whether its writes must be durable before its messages leave. A
restart is a new node built from what the old one persisted. With ``NodeConfig.lease_read``,
:meth:`RaftNode.lease_read_index` answers reads from a lease (docs/lease-reads.md).

Each state change is reported, right after it is made, as one event of the specification
(:mod:`raftkube_spec.raft.events`), and the messages the node sends are the specification's
messages, so that replaying the events through the model reproduces this node's state. The
rules below mirror ``raftkube_spec.raft.model`` action by action; where the node chooses among
several enabled actions (when to send, how much, what to ignore) it is a policy the model
leaves free.

The rules live in one module per job, each a class over the shared state
(:mod:`raftkube.raft.node_state`), stacked so each may use the ones below it:
:mod:`.read_index` (ReadIndex rounds, the read lease), :mod:`.replication` (sending,
committing, accepting entries and snapshots), :mod:`.election` (timeouts, votes, becoming
leader), and beside them :mod:`.ready_output` (Ready, Advance, MustSync). :class:`RaftNode`
adds the inputs: ticks, messages, proposals, reads, transfers, membership changes, compaction.
"""

from __future__ import annotations

from raftkube.raft.election import NOOP, Election
from raftkube.raft.log import Snapshot
from raftkube.raft.node_state import NotLeaderError, Observer, RejectedError
from raftkube.raft.progress import Progress
from raftkube.raft.ready import Ready
from raftkube.raft.ready_output import ReadyOutput
from raftkube.randomness import RandomSource
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

__all__ = ["NOOP", "NotLeaderError", "Observer", "RaftNode", "RandomSource", "RejectedError"]


class RaftNode(Election, ReadyOutput):
    """One Raft server. Not thread-safe; a driver serializes all calls.

    Its parts, each a module over the shared :class:`~raftkube.raft.node_state.NodeState`:
    :mod:`.election`, :mod:`.replication`, :mod:`.read_index`, :mod:`.ready_output`; the
    configuration in force is :mod:`.membership`'s. This class holds the inputs."""

    def advance(self, rd: Ready) -> None:
        """The driver persisted, sent and applied ``rd``; a leader now counts itself for the
        entries it made durable."""
        super().advance(rd)
        if rd.entries:
            self._own_entries_persisted(rd.first_index + len(rd.entries) - 1)

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
        self._register_read(read_id)
        for j in self._peers():
            self._send_heartbeat(j)

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
