"""The Raft model's core: the transition system (initial state, ``step``, the enumeration of
candidate events the model checker tries, the bounds) and the helpers every action shares
(configurations and quorums, the network bag, role changes, recording what becomes
committed).

The actions themselves live in one module per job (:mod:`.elections`, :mod:`.replication`,
:mod:`.reads`, :mod:`.reconfig`, :mod:`.faults`), each a mixin over :class:`RaftCore`;
:class:`~raftkube_spec.raft.model.RaftSpec` combines them and maps each event type to its
action. The theory of operation and the departures from raft.tla are in :mod:`.model`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from . import events as ev
from . import membership as mb
from .config import RaftConfig
from .messages import (
    RESPONSE_TYPES,
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
)
from .state import (
    Committed,
    Network,
    RaftState,
    ServerState,
    bag_add,
    bag_remove,
    initial_state,
)
from .types import Entry, Membership, Role, ServerId

Action = Callable[[RaftState, Any], RaftState | None]


class RaftCore:
    """What every action of :class:`~raftkube_spec.raft.model.RaftSpec` builds on."""

    def __init__(self, config: RaftConfig) -> None:
        self.config = config
        self.initial_membership = mb.initial_membership(config)
        self._static_events = tuple(StaticEvents.of(config, i) for i in config.server_ids)
        self._actions: dict[type, Action] = {}
        """Each event type's action; :class:`~raftkube_spec.raft.model.RaftSpec` fills it."""

    def initial(self) -> RaftState:
        return initial_state(self.config.servers)

    def step(self, s: RaftState, event: ev.Event) -> RaftState | None:
        """The successor of ``s`` under ``event``, or None if that action is not enabled."""
        return self._actions[type(event)](s, event)

    def successors(self, s: RaftState) -> Iterator[tuple[ev.Event, RaftState]]:
        """Every enabled step from ``s`` whose successor is within the configured bounds."""
        for event in self.candidate_events(s):
            t = self.step(s, event)
            if t is not None and self.within_bounds(t):
                yield event, t

    def within_bounds(self, s: RaftState) -> bool:
        c = self.config
        return (
            s.messages_in_flight <= c.max_messages
            and s.restarts <= c.max_restarts
            and s.last_read_id <= c.max_reads
            and all(v.term <= c.max_term and len(v.log) <= c.max_log for v in s.servers)
        )

    def candidate_events(self, s: RaftState) -> Iterator[ev.Event]:
        """Events worth trying from ``s``: a superset of the enabled ones within the bounds, in
        a fixed order. Events of switched-off features and steps that could only leave the
        bounds are not offered; ``step`` would refuse or ``within_bounds`` drop them anyway."""
        c = self.config
        room = s.messages_in_flight < c.max_messages
        for i, v in enumerate(s.servers):
            static = self._static_events[i]
            if s.restarts < c.max_restarts:
                yield static.restart
            if v.role is Role.LEADER:
                if len(v.log) < c.max_log:
                    yield from static.client_requests
                if c.parallel_persist and v.match_index[i] < v.last_index:
                    yield ev.PersistEntries(i, v.last_index)
                commit = self.commit_candidate(v)
                if commit > v.commit_index:
                    yield ev.AdvanceCommitIndex(i, commit)
                if room:
                    yield from static.leader_sends
                yield from static.leader_checks
                if c.membership and self.may_change_membership(v):
                    yield from static.member_changes
                if c.read_index and s.last_read_id < c.max_reads:
                    yield ev.ReadIndexRequest(i, s.last_read_id + 1)
                yield from (ev.ReadIndexComplete(i, r.read_id) for r in v.pending_reads)
            else:
                if v.term < c.max_term or c.pre_vote:
                    yield static.timeout
                if v.role is not Role.FOLLOWER:
                    if room:
                        yield from static.vote_requests
                    yield static.become_candidate
                    yield static.become_leader
            if c.compaction:
                for k in range(v.snapshot_index + 1, v.commit_index + 1):
                    yield ev.CompactLog(i, k)
        for m, _ in s.network:
            if m.term > s.servers[m.dest].term:
                yield ev.UpdateTerm(m)
            yield handler_event(m)
            if isinstance(m, RESPONSE_TYPES):
                yield ev.DropStaleResponse(m)
            if c.network_faults:
                if room:
                    yield ev.DuplicateMessage(m)
                yield ev.DropMessage(m)

    def members(self, v: ServerState) -> Membership:
        """The configuration ``v`` is in: the last one in its log (see :mod:`.membership`)."""
        if not self.config.membership:
            return self.initial_membership
        return mb.membership_of(v.log, self.initial_membership)

    def is_voter(self, v: ServerState, j: ServerId) -> bool:
        """Whether ``j`` votes in ``v``'s configuration (everyone does without membership)."""
        return not self.config.membership or j in self.members(v).voters

    def is_member(self, v: ServerState, j: ServerId) -> bool:
        """Whether ``j`` is a voter or a learner in ``v``'s configuration."""
        if not self.config.membership:
            return True
        members = self.members(v)
        return j in members.voters or j in members.learners

    def quorum(self, v: ServerState, servers: frozenset[ServerId]) -> bool:
        """Whether ``servers`` hold a majority of the voters of ``v``'s configuration."""
        if not self.config.membership:
            return len(servers) >= self.config.quorum  # the model checker's hot path
        return self.members(v).is_quorum(servers)

    def may_change_membership(self, v: ServerState) -> bool:
        """A leader proposes a configuration change only once it has committed an entry of
        its own term, and only when no earlier change is uncommitted."""
        return (
            v.role is Role.LEADER
            and v.term_at(v.commit_index) == v.term
            and mb.membership_index(v.log) <= v.commit_index
        )

    def commit_candidate(self, v: ServerState) -> int:
        """The largest index a leader may commit: replicated on a quorum (itself included),
        and from the leader's own term (the rule that Figure 8 of the paper motivates)."""
        for index in range(v.last_index, v.commit_index, -1):
            if v.term_at(index) != v.term:
                break
            if self.quorum(v, self.agree(v, index)):
                return index
        return v.commit_index

    def appended_own(self, v: ServerState, i: ServerId, log: tuple[Entry, ...]) -> ServerState:
        """Leader ``v`` (server ``i``) with its new ``log``. It counts itself as holding the new
        entries at once, as in raft.tla, unless ``parallel_persist``: then only once its own
        write of them is durable (``PersistEntries``), because a crash before that loses them
        while the copies it sent may already have been acknowledged."""
        if self.config.parallel_persist:
            return v.but(log=log)
        match = list(v.match_index)
        match[i] = len(log)
        return v.but(log=log, match_index=tuple(match))

    def agree(self, v: ServerState, index: int) -> frozenset[ServerId]:
        """The servers a leader knows to hold its entry at ``index``. A leader keeps its own
        matchIndex at its last index (with ``parallel_persist``: its last persisted index), so
        it counts itself."""
        return frozenset(j for j in self.config.server_ids if v.match_index[j] >= index)

    def log_is_current(self, v: ServerState, last_log_term: int, last_log_index: int) -> bool:
        """The voting rule: the candidate's log is at least as up to date as the voter's."""
        return last_log_term > v.last_term or (
            last_log_term == v.last_term and last_log_index >= v.last_index
        )

    def send(self, s: RaftState, m: Message) -> RaftState:
        return s.but(network=bag_add(s.network, m))

    def reply(self, s: RaftState, request: Message, response: Message) -> RaftState:
        return s.but(network=bag_add(bag_remove(s.network, request), response))

    def discard(self, s: RaftState, m: Message) -> RaftState:
        return s.but(network=bag_remove(s.network, m))

    def update_server(
        self, s: RaftState, i: ServerId, new: ServerState, network: Network | None = None
    ) -> RaftState:
        """Replace server ``i`` (and the network, if given), recording in the history whatever
        its new commit index reveals as committed."""
        old = s.servers[i]
        s = s.with_server(i, new, network)
        if new.commit_index > old.commit_index and new.commit_index > len(s.committed):
            committed = list(s.committed)
            voters = self.members(new).voters if self.config.membership else None
            for index in range(len(committed) + 1, new.commit_index + 1):
                committed.append(Committed(new.log[index - 1], new.term, voters))
            s = s.but(committed=tuple(committed))
        return s

    @staticmethod
    def as_follower(v: ServerState, term: int) -> ServerState:
        """``v`` as a follower in ``term``: leader and candidate bookkeeping is dropped, and the
        vote is kept only if the term did not change."""
        return v.but(
            term=term,
            voted_for=v.voted_for if term == v.term else None,
            role=Role.FOLLOWER,
            votes_responded=frozenset(),
            votes_granted=frozenset(),
            next_index=(),
            match_index=(),
            recent_active=frozenset(),
            pending_reads=(),
        )

    def as_candidate(self, v: ServerState, i: ServerId) -> ServerState:
        """``v`` campaigning in the next term, having voted for itself."""
        return self.as_follower(v, v.term + 1).but(
            role=Role.CANDIDATE,
            voted_for=i,
            votes_responded=frozenset({i}),
            votes_granted=frozenset({i}),
        )


@attrs.frozen
class StaticEvents:
    """The events of one server that depend on nothing but the configuration, built once so
    the model checker does not allocate them for every state."""

    restart: ev.Restart
    timeout: ev.Timeout
    vote_requests: tuple[ev.RequestVote, ...]
    become_candidate: ev.BecomeCandidate
    become_leader: ev.BecomeLeader
    client_requests: tuple[ev.ClientRequest, ...]
    leader_sends: tuple[ev.Event, ...]
    leader_checks: tuple[ev.Event, ...]
    member_changes: tuple[ev.Event, ...]

    @classmethod
    def of(cls, c: RaftConfig, i: ServerId) -> StaticEvents:
        peers = [j for j in c.server_ids if j != i]
        sends: list[ev.Event] = []
        for j in peers:
            sends.extend(ev.AppendEntries(i, j, n) for n in range(c.max_batch + 1))
            if c.compaction:
                sends.append(ev.InstallSnapshot(i, j))
            if c.leader_transfer:
                sends.append(ev.TransferLeadership(i, j))
        return cls(
            restart=ev.Restart(i),
            timeout=ev.Timeout(i),
            vote_requests=tuple(ev.RequestVote(i, j) for j in peers),
            become_candidate=ev.BecomeCandidate(i),
            become_leader=ev.BecomeLeader(i),
            client_requests=tuple(ev.ClientRequest(i, value) for value in c.values),
            leader_sends=tuple(sends),
            leader_checks=(ev.CheckQuorum(i),) if c.check_quorum else (),
            member_changes=tuple(member_changes(c, i)) if c.membership else (),
        )


def member_changes(c: RaftConfig, i: ServerId) -> Iterator[ev.Event]:
    for j in c.server_ids:
        if j != i:
            yield ev.AddMember(i, j, learner=True)
            yield ev.AddMember(i, j, learner=False)
            yield ev.PromoteMember(i, j)
            yield ev.RemoveMember(i, j)


def set_next(v: ServerState, peer: ServerId, value: int) -> ServerState:
    nxt = list(v.next_index)
    nxt[peer] = value
    return v.but(next_index=tuple(nxt))


def count_vote(v: ServerState, voter: ServerId, granted: bool) -> ServerState:
    return v.but(
        votes_responded=v.votes_responded | {voter},
        votes_granted=v.votes_granted | {voter} if granted else v.votes_granted,
    )


def handler_event(m: Message) -> ev.Event:
    """The event of handling ``m`` (which branch of raft.tla's Receive applies)."""
    if isinstance(m, RequestVoteRequest):
        return ev.HandleRequestVoteRequest(m)
    if isinstance(m, RequestVoteResponse):
        return ev.HandleRequestVoteResponse(m)
    if isinstance(m, AppendEntriesRequest):
        return ev.HandleAppendEntriesRequest(m)
    if isinstance(m, AppendEntriesResponse):
        return ev.HandleAppendEntriesResponse(m)
    if isinstance(m, InstallSnapshotRequest):
        return ev.HandleInstallSnapshotRequest(m)
    return ev.HandleTimeoutNowRequest(m)
