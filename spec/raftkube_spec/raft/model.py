"""The Raft model: one method per action, each a pure function from a state to its successor.

Theory of operation
-------------------
This is raft.tla (Ongaro, 2014) transcribed into Python, extended with what the implementation
really does, each extension behind a switch in :class:`RaftConfig`:

* AppendEntries may carry up to ``max_batch`` entries, and with ``pipelining`` the leader
  advances its nextIndex when it sends instead of when it hears back (etcd's StateReplicate);
* PreVote (dissertation 9.6) puts a PreCandidate step before each campaign;
* CheckQuorum makes a leader step down when no quorum answered it since its last check;
* ReadIndex reads, confirmed by a quorum answering a heartbeat sent after the read began;
* log compaction (CompactLog) and InstallSnapshot for followers behind the leader's snapshot;
* leadership transfer (TimeoutNow);
* single-server membership changes with learners (:mod:`.membership`): configuration entries
  in the log, in force from the moment they are appended; quorums count only the voters of
  the counting server's configuration, only voters campaign, and a leader replicates to the
  members of its configuration.

Every action is a method ``action(state, event) -> RaftState | None``: the event (see
:mod:`.events`) carries the action's parameters, and ``None`` means "not enabled". With its
parameters fixed every action is deterministic, so "the successor states" of an action are the
results over all its parameters: :meth:`RaftSpec.successors` enumerates them.

Rules of this module: no I/O, no clock, no randomness; no bounds either. The model describes the
unbounded protocol, so that an implementation running for hours can be replayed through it.
Bounds for exhaustive checking live in :class:`RaftConfig` and are applied by
:meth:`RaftSpec.successors` as a state constraint, in the manner of TLC's CONSTRAINT.

Where this deviates from raft.tla, and why:

* A candidate votes for itself when it times out, as in the paper, rather than by sending itself
  a RequestVote.
* A candidate that hears an AppendEntries of its own term returns to follower and handles the
  message in the same step (raft.tla takes two).
* A follower's commit index never moves backwards on a reordered, stale AppendEntries.
* A follower asked to append after an index it has already committed answers with its commit
  index (etcd's rule): with compaction it cannot check terms below its snapshot, and committed
  entries match the leader's by Leader Completeness.
* AppendEntries responses carry, on failure, a hint (the highest index that could match), and
  the leader never lowers nextIndex below matchIndex + 1; stale or reordered answers are safe.
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
    TimeoutNowRequest,
)
from .state import (
    Committed,
    CompletedRead,
    Election,
    Network,
    PendingRead,
    RaftState,
    ServerState,
    bag_add,
    bag_contains,
    bag_find,
    bag_remove,
    bag_remove_at,
    initial_state,
)
from .types import Entry, Membership, Role, ServerId

Action = Callable[[RaftState, Any], RaftState | None]


class RaftSpec:
    """The Raft transition system under one configuration.

    Mutants (see :mod:`.mutants`) subclass this and override single actions; nothing here knows
    they exist.
    """

    name = "raft"

    def __init__(self, config: RaftConfig) -> None:
        self.config = config
        self._actions: dict[type, Action] = {
            ev.Restart: self.restart,
            ev.Timeout: self.timeout,
            ev.RequestVote: self.request_vote,
            ev.BecomeCandidate: self.become_candidate,
            ev.BecomeLeader: self.become_leader,
            ev.ClientRequest: self.client_request,
            ev.AdvanceCommitIndex: self.advance_commit_index,
            ev.AppendEntries: self.append_entries,
            ev.InstallSnapshot: self.install_snapshot,
            ev.CompactLog: self.compact_log,
            ev.CheckQuorum: self.check_quorum,
            ev.ReadIndexRequest: self.read_index_request,
            ev.ReadIndexComplete: self.read_index_complete,
            ev.TransferLeadership: self.transfer_leadership,
            ev.AddMember: self.add_member,
            ev.PromoteMember: self.promote_member,
            ev.RemoveMember: self.remove_member,
            ev.UpdateTerm: self.update_term,
            ev.HandleRequestVoteRequest: self.handle_request_vote_request,
            ev.HandleRequestVoteResponse: self.handle_request_vote_response,
            ev.HandleAppendEntriesRequest: self.handle_append_entries_request,
            ev.HandleAppendEntriesResponse: self.handle_append_entries_response,
            ev.HandleInstallSnapshotRequest: self.handle_install_snapshot_request,
            ev.HandleTimeoutNowRequest: self.handle_timeout_now_request,
            ev.DropStaleResponse: self.drop_stale_response,
            ev.DuplicateMessage: self.duplicate_message,
            ev.DropMessage: self.drop_message,
        }

        self.initial_membership = mb.initial_membership(config)
        self._static_events = tuple(_StaticEvents.of(config, i) for i in config.server_ids)

    # --- The transition system -----------------------------------------------------------------

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

    # --- Helpers -------------------------------------------------------------------------------

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

    def agree(self, v: ServerState, index: int) -> frozenset[ServerId]:
        """The servers a leader knows to hold its entry at ``index``. A leader keeps its own
        matchIndex at its last index, so it counts itself."""
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

    # --- Actions a server takes on its own -----------------------------------------------------

    def restart(self, s: RaftState, e: ev.Restart) -> RaftState | None:
        """Crash and recover: only term, vote, log and snapshot were persisted."""
        v = s.servers[e.server]
        fresh = ServerState(
            term=v.term,
            voted_for=v.voted_for,
            log=v.log,
            snapshot_index=v.snapshot_index,
            commit_index=v.snapshot_index,
        )
        return s.with_server(e.server, fresh).but(restarts=s.restarts + 1)

    def timeout(self, s: RaftState, e: ev.Timeout) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is Role.LEADER or not self.is_voter(v, e.server):
            return None
        if self.config.pre_vote:
            pre = self.as_follower(v, v.term).but(
                role=Role.PRE_CANDIDATE,
                votes_responded=frozenset({e.server}),
                votes_granted=frozenset({e.server}),
            )
            return s.with_server(e.server, pre)
        return s.with_server(e.server, self.as_candidate(v, e.server))

    def request_vote(self, s: RaftState, e: ev.RequestVote) -> RaftState | None:
        v = s.servers[e.server]
        if v.role not in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            return None
        if e.peer == e.server or e.peer in v.votes_responded:
            return None
        if not self.is_voter(v, e.peer):
            return None
        pre = v.role is Role.PRE_CANDIDATE
        return self.send(
            s,
            RequestVoteRequest(
                term=v.term + 1 if pre else v.term,
                source=e.server,
                dest=e.peer,
                last_log_term=v.last_term,
                last_log_index=v.last_index,
                pre_vote=pre,
            ),
        )

    def become_candidate(self, s: RaftState, e: ev.BecomeCandidate) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.PRE_CANDIDATE or not self.quorum(v, v.votes_granted):
            return None
        return s.with_server(e.server, self.as_candidate(v, e.server))

    def become_leader(self, s: RaftState, e: ev.BecomeLeader) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.CANDIDATE or not self.quorum(v, v.votes_granted):
            return None
        n = self.config.servers
        leader = v.but(
            role=Role.LEADER,
            votes_responded=frozenset(),
            votes_granted=frozenset(),
            next_index=(v.last_index + 1,) * n,
            match_index=tuple(v.last_index if j == e.server else 0 for j in range(n)),
        )
        s = s.with_server(e.server, leader)
        return s.but(elections=tuple(sorted((*s.elections, Election(v.term, e.server, v.log)))))

    def client_request(self, s: RaftState, e: ev.ClientRequest) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER:
            return None
        log = (*v.log, Entry(v.term, e.value))
        match = list(v.match_index)
        match[e.server] = len(log)
        return s.with_server(e.server, v.but(log=log, match_index=tuple(match)))

    def advance_commit_index(self, s: RaftState, e: ev.AdvanceCommitIndex) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER:
            return None
        new = self.commit_candidate(v)
        if new <= v.commit_index or new != e.commit_index:
            return None
        return self.update_server(s, e.server, v.but(commit_index=new))

    def append_entries(self, s: RaftState, e: ev.AppendEntries) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER or e.peer == e.server:
            return None
        if not self.is_member(v, e.peer):
            return None
        if e.count > self.config.max_batch or e.count < 0:
            return None
        prev = v.next_index[e.peer] - 1
        if prev < v.snapshot_index or prev + e.count > v.last_index:
            return None
        last = prev + e.count
        network = bag_add(
            s.network,
            AppendEntriesRequest(
                term=v.term,
                source=e.server,
                dest=e.peer,
                prev_log_index=prev,
                prev_log_term=v.term_at(prev),
                entries=v.log[prev:last],
                commit_index=min(v.commit_index, last),
                read_ctx=max(r.read_id for r in v.pending_reads) if v.pending_reads else 0,
            ),
        )
        if self.config.pipelining and e.count > 0:
            return s.with_server(e.server, _set_next(v, e.peer, last + 1), network)
        return s.but(network=network)

    def install_snapshot(self, s: RaftState, e: ev.InstallSnapshot) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.compaction or v.role is not Role.LEADER or e.peer == e.server:
            return None
        if not self.is_member(v, e.peer):
            return None
        if v.next_index[e.peer] - 1 >= v.snapshot_index:
            return None
        s = self.send(
            s,
            InstallSnapshotRequest(
                term=v.term,
                source=e.server,
                dest=e.peer,
                last_index=v.snapshot_index,
                last_term=v.term_at(v.snapshot_index),
                entries=v.log[: v.snapshot_index],
            ),
        )
        if self.config.pipelining:
            s = s.with_server(e.server, _set_next(v, e.peer, v.snapshot_index + 1))
        return s

    def compact_log(self, s: RaftState, e: ev.CompactLog) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.compaction or not v.snapshot_index < e.index <= v.commit_index:
            return None
        return s.with_server(e.server, v.but(snapshot_index=e.index))

    def check_quorum(self, s: RaftState, e: ev.CheckQuorum) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.check_quorum or v.role is not Role.LEADER:
            return None
        if self.quorum(v, v.recent_active | {e.server}):
            return s.with_server(e.server, v.but(recent_active=frozenset()))
        return s.with_server(e.server, self.as_follower(v, v.term))

    def read_index_request(self, s: RaftState, e: ev.ReadIndexRequest) -> RaftState | None:
        """A leader may serve reads only once it has committed an entry of its own term: before
        that, its commit index may lag entries an earlier leader committed."""
        v = s.servers[e.server]
        if not self.config.read_index or v.role is not Role.LEADER:
            return None
        if v.term_at(v.commit_index) != v.term or e.read_id <= s.last_read_id:
            return None
        read = PendingRead(
            read_id=e.read_id,
            index=v.commit_index,
            acks=frozenset({e.server}),
            required_index=s.max_commit_index(),
        )
        s = s.with_server(e.server, v.but(pending_reads=(*v.pending_reads, read)))
        return s.but(last_read_id=e.read_id)

    def read_index_complete(self, s: RaftState, e: ev.ReadIndexComplete) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER:
            return None
        for read in v.pending_reads:
            if read.read_id == e.read_id and self.quorum(v, read.acks):
                break
        else:
            return None
        rest = tuple(r for r in v.pending_reads if r is not read)
        s = s.with_server(e.server, v.but(pending_reads=rest))
        done = CompletedRead(e.server, v.term, read.read_id, read.index, read.required_index)
        return s.but(reads=tuple(sorted((*s.reads, done))))

    def transfer_leadership(self, s: RaftState, e: ev.TransferLeadership) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.leader_transfer or v.role is not Role.LEADER or e.peer == e.server:
            return None
        if v.match_index[e.peer] != v.last_index or not self.is_voter(v, e.peer):
            return None
        return self.send(s, TimeoutNowRequest(term=v.term, source=e.server, dest=e.peer))

    def add_member(self, s: RaftState, e: ev.AddMember) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.membership or not self.may_change_membership(v):
            return None
        new = self.members(v).added(e.peer, e.learner)
        if new is None:
            return None
        # A new member's progress starts afresh, as etcd's does: nothing known to match.
        match, nxt = list(v.match_index), list(v.next_index)
        match[e.peer], nxt[e.peer] = 0, v.last_index + 1
        v = v.but(match_index=tuple(match), next_index=tuple(nxt))
        return self.append_membership(s, e.server, v, new)

    def promote_member(self, s: RaftState, e: ev.PromoteMember) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.membership or not self.may_change_membership(v):
            return None
        new = self.members(v).promoted(e.peer)
        return None if new is None else self.append_membership(s, e.server, v, new)

    def remove_member(self, s: RaftState, e: ev.RemoveMember) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.membership or not self.may_change_membership(v):
            return None
        if e.peer == e.server:
            return None  # a leader hands over leadership before it is removed
        new = self.members(v).removed(e.peer)
        return None if new is None else self.append_membership(s, e.server, v, new)

    def append_membership(
        self, s: RaftState, i: ServerId, v: ServerState, new: Membership
    ) -> RaftState:
        """The leader appends configuration ``new``, in force for it from now on."""
        log = (*v.log, Entry(v.term, new))
        match = list(v.match_index)
        match[i] = len(log)
        return s.with_server(i, v.but(log=log, match_index=tuple(match)))

    # --- Receiving messages --------------------------------------------------------------------

    def update_term(self, s: RaftState, e: ev.UpdateTerm) -> RaftState | None:
        """Any message from a higher term makes its receiver a follower in that term, except
        pre-vote traffic, whose term is only a proposal."""
        m = e.message
        v = s.servers[m.dest]
        if not bag_contains(s.network, m) or m.term <= v.term:
            return None
        if isinstance(m, RequestVoteRequest) and m.pre_vote:
            return None
        if isinstance(m, RequestVoteResponse) and m.pre_vote and m.granted:
            return None
        return s.with_server(m.dest, self.as_follower(v, m.term))

    def handle_request_vote_request(
        self, s: RaftState, e: ev.HandleRequestVoteRequest
    ) -> RaftState | None:
        m = e.message
        if not bag_contains(s.network, m):
            return None
        i = m.dest
        v = s.servers[i]
        log_ok = self.log_is_current(v, m.last_log_term, m.last_log_index)
        if m.pre_vote:
            grant = m.term > v.term and log_ok
            answer = RequestVoteResponse(
                term=m.term if grant else v.term,
                source=i,
                dest=m.source,
                granted=grant,
                pre_vote=True,
            )
            return self.reply(s, m, answer)
        if m.term > v.term:
            return None
        grant = self.may_grant_vote(v, m) and log_ok
        if grant:
            s = s.with_server(i, v.but(voted_for=m.source))
        answer = RequestVoteResponse(term=v.term, source=i, dest=m.source, granted=grant)
        return self.reply(s, m, answer)

    def may_grant_vote(self, v: ServerState, m: RequestVoteRequest) -> bool:
        """One vote per term: a server votes only in the request's term, and only once."""
        return m.term == v.term and v.voted_for in (None, m.source)

    def handle_request_vote_response(
        self, s: RaftState, e: ev.HandleRequestVoteResponse
    ) -> RaftState | None:
        m = e.message
        if not bag_contains(s.network, m):
            return None
        i = m.dest
        v = s.servers[i]
        if m.pre_vote:
            if not m.granted and m.term > v.term:
                return None  # UpdateTerm first.
            if v.role is Role.PRE_CANDIDATE and (not m.granted or m.term == v.term + 1):
                v = _count_vote(v, m.source, m.granted)
            return self.discard(s, m).with_server(i, v)
        if not self.counts_vote(v, m):
            return None
        if v.role is Role.CANDIDATE:
            v = _count_vote(v, m.source, m.granted)
        return self.discard(s, m).with_server(i, v)

    def counts_vote(self, v: ServerState, m: RequestVoteResponse) -> bool:
        """Only answers from the current term are counted; others go through UpdateTerm or
        DropStaleResponse."""
        return m.term == v.term

    def receive_from_leader(
        self, s: RaftState, m: AppendEntriesRequest | InstallSnapshotRequest, at: int
    ) -> tuple[RaftState | None, ServerState | None]:
        """The common start of handling a leader's request, ``at`` its position in the network
        (:func:`bag_find`, -1 if absent). Returns ``(successor, None)`` when the request is
        answered here (one from an older term is rejected), ``(None, follower)`` to go on
        handling it as ``follower`` (a candidate of the same term steps down first), and
        ``(None, None)`` when no handler is enabled (a higher term needs UpdateTerm first)."""
        if at < 0:
            return None, None
        v = s.servers[m.dest]
        if m.term > v.term or (m.term == v.term and v.role is Role.LEADER):
            return None, None
        if m.term < v.term:
            reject = AppendEntriesResponse(
                term=v.term,
                source=m.dest,
                dest=m.source,
                success=False,
                match_index=0,
                read_ctx=m.read_ctx if isinstance(m, AppendEntriesRequest) else 0,
            )
            return s.but(network=bag_add(bag_remove_at(s.network, at), reject)), None
        return None, v if v.role is Role.FOLLOWER else self.as_follower(v, v.term)

    def handle_append_entries_request(
        self, s: RaftState, e: ev.HandleAppendEntriesRequest
    ) -> RaftState | None:
        m = e.message
        at = bag_find(s.network, m)
        done, v = self.receive_from_leader(s, m, at)
        if v is None:
            return done
        if m.prev_log_index < v.commit_index:
            success, match = True, v.commit_index
        elif not self.log_ok(v, m):
            success, match = False, min(m.prev_log_index - 1, v.last_index)
        else:
            success, match = True, m.prev_log_index + len(m.entries)
            log = self.merge(v.log, m.prev_log_index, m.entries)
            v = v.but(log=log, commit_index=max(v.commit_index, min(m.commit_index, match)))
        answer = AppendEntriesResponse(
            term=v.term,
            source=m.dest,
            dest=m.source,
            success=success,
            match_index=match,
            read_ctx=m.read_ctx,
        )
        network = bag_add(bag_remove_at(s.network, at), answer)
        return self.update_server(s, m.dest, v, network)

    def log_ok(self, v: ServerState, m: AppendEntriesRequest) -> bool:
        """The log consistency check: the follower holds the entry just before the new ones."""
        prev = m.prev_log_index
        return prev <= v.last_index and v.term_at(prev) == m.prev_log_term

    def merge(
        self, log: tuple[Entry, ...], prev: int, entries: tuple[Entry, ...]
    ) -> tuple[Entry, ...]:
        """Append ``entries`` after index ``prev``: an entry already present with the same term
        is kept (a reordered, shorter append must never cut a longer log), and the first
        conflicting one truncates the log from there."""
        for n, entry in enumerate(entries):
            index = prev + 1 + n
            if index > len(log):
                return (*log, *entries[n:])
            if log[index - 1].term != entry.term:
                return (*log[: index - 1], *entries[n:])
        return log

    def handle_append_entries_response(
        self, s: RaftState, e: ev.HandleAppendEntriesResponse
    ) -> RaftState | None:
        m = e.message
        at = bag_find(s.network, m)
        if at < 0:
            return None
        i = m.dest
        v = s.servers[i]
        if m.term != v.term:
            return None
        network = bag_remove_at(s.network, at)
        if v.role is not Role.LEADER:
            return s.but(network=network)
        j = m.source
        recent_active = v.recent_active | {j} if self.config.check_quorum else v.recent_active
        pending_reads = v.pending_reads
        if m.read_ctx:
            pending_reads = tuple(
                attrs.evolve(r, acks=r.acks | {j}) if r.read_id <= m.read_ctx else r
                for r in pending_reads
            )
        match, nxt = list(v.match_index), list(v.next_index)
        if m.success:
            match[j] = max(match[j], m.match_index)
            nxt[j] = max(nxt[j], m.match_index + 1)
        else:
            nxt[j] = max(match[j] + 1, min(nxt[j] - 1, m.match_index + 1))
        v = v.but(
            recent_active=recent_active,
            pending_reads=pending_reads,
            match_index=tuple(match),
            next_index=tuple(nxt),
        )
        return s.with_server(i, v, network)

    def handle_install_snapshot_request(
        self, s: RaftState, e: ev.HandleInstallSnapshotRequest
    ) -> RaftState | None:
        m = e.message
        at = bag_find(s.network, m)
        done, v = self.receive_from_leader(s, m, at)
        if v is None:
            return done
        i = m.dest
        if m.last_index <= v.commit_index:
            match = v.commit_index
        elif m.last_index <= v.last_index and v.term_at(m.last_index) == m.last_term:
            # The snapshot's last entry is already here: it just tells us it is committed.
            match = m.last_index
            v = v.but(commit_index=m.last_index)
        else:
            match = m.last_index
            v = v.but(log=m.entries, snapshot_index=m.last_index, commit_index=m.last_index)
        ok = AppendEntriesResponse(
            term=v.term, source=i, dest=m.source, success=True, match_index=match
        )
        network = bag_add(bag_remove_at(s.network, at), ok)
        return self.update_server(s, i, v, network)

    def handle_timeout_now_request(
        self, s: RaftState, e: ev.HandleTimeoutNowRequest
    ) -> RaftState | None:
        m = e.message
        if not bag_contains(s.network, m):
            return None
        v = s.servers[m.dest]
        if m.term > v.term:
            return None
        s = self.discard(s, m)
        if m.term < v.term or v.role is not Role.FOLLOWER:
            return s
        return s.with_server(m.dest, self.as_candidate(v, m.dest))

    def drop_stale_response(self, s: RaftState, e: ev.DropStaleResponse) -> RaftState | None:
        m = e.message
        if not isinstance(m, RESPONSE_TYPES) or not bag_contains(s.network, m):
            return None
        if m.term >= s.servers[m.dest].term:
            return None
        return self.discard(s, m)

    # --- The network ---------------------------------------------------------------------------

    def duplicate_message(self, s: RaftState, e: ev.DuplicateMessage) -> RaftState | None:
        if not self.config.network_faults or not bag_contains(s.network, e.message):
            return None
        return self.send(s, e.message)

    def drop_message(self, s: RaftState, e: ev.DropMessage) -> RaftState | None:
        if not self.config.network_faults:
            return None
        at = bag_find(s.network, e.message)
        if at < 0:
            return None
        return s.but(network=bag_remove_at(s.network, at))


@attrs.frozen
class _StaticEvents:
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
    def of(cls, c: RaftConfig, i: ServerId) -> _StaticEvents:
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
            member_changes=tuple(_member_changes(c, i)) if c.membership else (),
        )


def _member_changes(c: RaftConfig, i: ServerId) -> Iterator[ev.Event]:
    for j in c.server_ids:
        if j != i:
            yield ev.AddMember(i, j, learner=True)
            yield ev.AddMember(i, j, learner=False)
            yield ev.PromoteMember(i, j)
            yield ev.RemoveMember(i, j)


def _set_next(v: ServerState, peer: ServerId, value: int) -> ServerState:
    nxt = list(v.next_index)
    nxt[peer] = value
    return v.but(next_index=tuple(nxt))


def _count_vote(v: ServerState, voter: ServerId, granted: bool) -> ServerState:
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
