"""The Raft model's election actions: timeouts and (pre-)campaigns, votes asked, granted and
counted, becoming leader, stepping down on a higher term or a lost quorum (CheckQuorum), and
leadership transfer (TimeoutNow). See :mod:`.model` for the theory of operation.
"""

from __future__ import annotations

from . import events as ev
from .core import RaftCore, count_vote
from .messages import (
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNowRequest,
)
from .state import (
    Election,
    RaftState,
    ServerState,
    bag_contains,
)
from .types import Role


class Elections(RaftCore):
    """Electing a leader and losing leadership, one method per action."""

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

    def check_quorum(self, s: RaftState, e: ev.CheckQuorum) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.check_quorum or v.role is not Role.LEADER:
            return None
        if self.quorum(v, v.recent_active | {e.server}):
            return s.with_server(e.server, v.but(recent_active=frozenset()))
        return s.with_server(e.server, self.as_follower(v, v.term))

    def transfer_leadership(self, s: RaftState, e: ev.TransferLeadership) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.leader_transfer or v.role is not Role.LEADER or e.peer == e.server:
            return None
        if v.match_index[e.peer] != v.last_index or not self.is_voter(v, e.peer):
            return None
        return self.send(s, TimeoutNowRequest(term=v.term, source=e.server, dest=e.peer))

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
                v = count_vote(v, m.source, m.granted)
            return self.discard(s, m).with_server(i, v)
        if not self.counts_vote(v, m):
            return None
        if v.role is Role.CANDIDATE:
            v = count_vote(v, m.source, m.granted)
        return self.discard(s, m).with_server(i, v)

    def counts_vote(self, v: ServerState, m: RequestVoteResponse) -> bool:
        """Only answers from the current term are counted; others go through UpdateTerm or
        DropStaleResponse."""
        return m.term == v.term

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
