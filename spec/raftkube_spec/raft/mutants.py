"""Classic Raft bugs, each a named mutation of one action of the model.

They exist to teach and to prove that the checks have teeth: every mutant here must be caught by
``raftkube spec check --mutant NAME``. Each is a subclass of :class:`RaftSpec` overriding one
method, so the model itself never changes and nothing reaches a mutant except by asking for it
by name. A mutant may also name the features and bounds its bug needs to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from . import events as ev
from .config import RaftConfig
from .membership import membership_index
from .messages import AppendEntriesRequest, RequestVoteRequest, RequestVoteResponse
from .model import RaftSpec, handler_event
from .state import CompletedRead, RaftState, ServerState
from .types import Entry, Role


class Figure8Commit(RaftSpec):
    """Commit an entry from an earlier term once a quorum holds it (Figure 8 of the paper)."""

    def commit_candidate(self, v: ServerState) -> int:
        for index in range(v.last_index, v.commit_index, -1):
            if self.quorum(v, self.agree(v, index)):
                return index
        return v.commit_index


class ForgetVoteOnRestart(RaftSpec):
    """Keep the term on disk but not the vote, so a restarted server can vote twice."""

    def restart(self, s: RaftState, e: ev.Restart) -> RaftState | None:
        t = super().restart(s, e)
        if t is None:
            return None
        v = t.servers[e.server]
        return t.with_server(e.server, v.but(voted_for=None))


class SkipLogConsistencyCheck(RaftSpec):
    """Accept entries without checking the term of the entry before them."""

    def log_ok(self, v: ServerState, m: AppendEntriesRequest) -> bool:
        return m.prev_log_index <= v.last_index


class VoteTwiceInTerm(RaftSpec):
    """Grant every up-to-date candidate of the current term, forgetting the earlier vote."""

    def may_grant_vote(self, v: ServerState, m: RequestVoteRequest) -> bool:
        return m.term == v.term


class CountStaleVotes(RaftSpec):
    """Count a vote granted in an earlier term towards the current election."""

    def counts_vote(self, v: ServerState, m: RequestVoteResponse) -> bool:
        return m.term <= v.term


class ReadWithoutQuorum(RaftSpec):
    """Serve a ReadIndex read without waiting for a quorum to confirm the leadership."""

    def read_index_complete(self, s: RaftState, e: ev.ReadIndexComplete) -> RaftState | None:
        v = s.servers[e.server]
        read = next((r for r in v.pending_reads if r.read_id == e.read_id), None)
        if read is None:
            return None
        rest = tuple(r for r in v.pending_reads if r is not read)
        s = s.with_server(e.server, v.but(pending_reads=rest))
        done = CompletedRead(e.server, v.term, read.read_id, read.index, read.required_index)
        return s.but(reads=tuple(sorted((*s.reads, done))))


class TruncateOnStaleAppend(RaftSpec):
    """Replace everything after ``prev`` with the new entries, so a reordered, shorter append
    deletes entries the leader has already counted as replicated."""

    def merge(
        self, log: tuple[Entry, ...], prev: int, entries: tuple[Entry, ...]
    ) -> tuple[Entry, ...]:
        return (*log[:prev], *entries)


class ConfigChangeBeforeOwnTermCommit(RaftSpec):
    """Let a new leader propose a membership change before it has committed an entry of its
    own term (Ongaro, raft-dev, 2015): an old leader's uncommitted change and a new leader's
    change can then form two configurations without overlapping majorities."""

    def may_change_membership(self, v: ServerState) -> bool:
        return v.role is Role.LEADER and membership_index(v.log) <= v.commit_index


class CountUnpersistedOwnEntries(RaftSpec):
    """With ``parallel_persist``, let a leader count itself for entries its own write has not
    made durable yet (raft.tla's rule kept after sending before persisting): an entry then
    commits on one other copy, and a crash of the leader before its write leaves it on a
    minority, so a later leader can be elected without it."""

    def own_commit(self, v: ServerState, i: int) -> int:
        match = list(v.match_index)
        match[i] = v.last_index
        return self.commit_candidate(v.but(match_index=tuple(match)))

    def advance_commit_index(self, s: RaftState, e: ev.AdvanceCommitIndex) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER:
            return None
        new = self.own_commit(v, e.server)
        if new <= v.commit_index or new != e.commit_index:
            return None
        return self.update_server(s, e.server, v.but(commit_index=new))

    def candidate_events(self, s: RaftState) -> Iterator[ev.Event]:
        yield from super().candidate_events(s)
        for i, v in enumerate(s.servers):
            if v.role is Role.LEADER:
                new = self.own_commit(v, i)
                if new > max(v.commit_index, self.commit_candidate(v)):
                    yield ev.AdvanceCommitIndex(i, new)


@attrs.frozen
class Deliver:
    """In a mutant's prefix: the one message in flight is received (an UpdateTerm first if it
    carries a higher term, then its handler)."""


PrefixStep = ev.Event | Deliver


@attrs.frozen
class Mutant:
    name: str
    spec: type[RaftSpec]
    config: dict[str, Any] = attrs.field(factory=dict)
    """Features and bounds the bug needs in order to show, applied over the defaults."""
    prefix: tuple[PrefixStep, ...] = ()
    """Steps taken before the search, for a bug whose shortest trace is too deep for a
    breadth-first search in Python: the checker explores everything reachable after them.
    Each must be enabled in the mutant, so the start is a state the mutant really reaches."""

    @property
    def description(self) -> str:
        return (self.spec.__doc__ or "").strip()

    def configure(self, base: RaftConfig) -> RaftConfig:
        return attrs.evolve(base, **self.config)

    def start(self, spec: RaftSpec) -> RaftState:
        """The state the search starts from: the initial state, then the prefix."""
        s = spec.initial()
        for n, step in enumerate(self.prefix, start=1):
            events: list[ev.Event]
            if isinstance(step, Deliver):
                if len(s.network) != 1:
                    raise ValueError(
                        f"prefix step {n}: {len(s.network)} kinds of message in flight"
                    )
                m = s.network[0][0]
                events = [handler_event(m)]
                if m.term > s.servers[m.dest].term:
                    events.insert(0, ev.UpdateTerm(m))
            else:
                events = [step]
            for event in events:
                t = spec.step(s, event)
                if t is None:
                    raise ValueError(f"prefix step {n}: {event} is not enabled")
                s = t
        return s


def _vote(candidate: int, voter: int) -> tuple[PrefixStep, ...]:
    return (ev.RequestVote(candidate, voter), Deliver(), Deliver())


_ONGARO_PREFIX: tuple[PrefixStep, ...] = (
    # Server 0 leads term 1 in the configuration {0, 1, 2, 3} and at once appends a change
    # adding server 4, which reaches no one.
    ev.Timeout(0),
    *_vote(0, 1),
    *_vote(0, 2),
    ev.BecomeLeader(0),
    ev.AddMember(0, 4, learner=False),
    # Server 1 is elected in term 2 by servers 2 and 3, and its heartbeat tells server 0.
    ev.Timeout(1),
    *_vote(1, 2),
    *_vote(1, 3),
    ev.BecomeLeader(1),
    ev.AppendEntries(1, 0, 0),
    Deliver(),
    Deliver(),
    # From here the checker must find the rest: server 1 removing server 0 before it has
    # committed anything of term 2, and server 0 elected in term 3 by 3 and 4.
)


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        # Figure 8 needs four terms; a one-message, lossless network keeps that quick.
        Mutant(
            "figure8-commit",
            Figure8Commit,
            {"max_term": 4, "max_messages": 1, "network_faults": False},
        ),
        Mutant("forget-vote-on-restart", ForgetVoteOnRestart, {"max_restarts": 1}),
        Mutant(
            "count-unpersisted-own-entries",
            CountUnpersistedOwnEntries,
            {
                "parallel_persist": True,
                "max_restarts": 1,
                "max_messages": 1,
                "network_faults": False,
            },
        ),
        Mutant(
            "skip-log-consistency-check",
            SkipLogConsistencyCheck,
            {"max_term": 3, "max_log": 2, "max_messages": 1, "network_faults": False},
        ),
        Mutant("vote-twice-in-term", VoteTwiceInTerm),
        Mutant("count-stale-votes", CountStaleVotes, {"max_term": 3}),
        Mutant(
            "read-without-quorum",
            ReadWithoutQuorum,
            {"read_index": True, "max_log": 2, "max_messages": 1, "network_faults": False},
        ),
        Mutant(
            "truncate-on-stale-append",
            TruncateOnStaleAppend,
            {"max_batch": 2, "max_log": 2, "max_messages": 3},
        ),
        # Ongaro's trace: four voters and a spare. The old leader's change adds the spare,
        # the new leader's removes the old leader, and no client request is needed. Its 40
        # steps are far beyond a breadth-first search of five servers here (1.1 million
        # states reach depth 18 only), so the first 25 are a prefix and the search finds the
        # other 15, the new leader's premature change among them.
        Mutant(
            "config-change-before-own-term-commit",
            ConfigChangeBeforeOwnTermCommit,
            {
                "servers": 5,
                "membership": True,
                "spares": 1,
                "max_term": 3,
                "max_log": 1,
                "max_messages": 1,
                "network_faults": False,
                "values": (),
            },
            prefix=_ONGARO_PREFIX,
        ),
    )
}
