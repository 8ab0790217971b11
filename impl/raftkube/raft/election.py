"""Leader election: timeouts, (pre-)votes, and the rules that keep a leader undisturbed.

:class:`Election` holds the spec's Timeout, RequestVote, HandleRequestVote(Request|Response),
BecomeCandidate and BecomeLeader actions, with etcd-io/raft's pre-vote (a pre-candidate asks
whether it could win before it bumps the term), TimeoutNow (leadership transfer), and the two
rules that ignore vote requests while a leader may still be in charge: etcd's check-quorum
lease and, with lease reads, the stronger guard docs/lease-reads.md argues for. A new leader
appends an empty entry to commit its term, then replication (:mod:`.replication`) takes over.
"""

from __future__ import annotations

from raftkube.raft.progress import Progress
from raftkube.raft.replication import Replication
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import (
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNowRequest,
)
from raftkube_spec.raft.types import Role, Value

NOOP: Value = b""
"""The value of the empty entry a new leader appends to commit its term."""


class Election(Replication):
    """Campaigning, voting, and becoming leader."""

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
        self.own_match = last
        self._reset_timers()
        self._quiet = 0
        self._lease_until = 0
        if self._observer is not None:
            self._observer(ev.BecomeLeader(self.id))
        self._append_own(NOOP)
        self._maybe_commit()
        for j in self._peers():
            self._send_append(j, allow_empty=True)

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

    def _on_timeout_now(self, m: TimeoutNowRequest) -> None:
        if m.term < self.term or self.role is not Role.FOLLOWER:
            if self._observer is not None:
                self._observer(ev.HandleTimeoutNowRequest(m))
            return
        self._become_candidate()
        if self._observer is not None:
            self._observer(ev.HandleTimeoutNowRequest(m))
        self._request_votes()
