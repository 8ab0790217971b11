"""Classic Raft bugs, each a named mutation of one action of the model.

They exist to teach and to prove that the checks have teeth: every mutant here must be caught by
``raftkube spec check --mutant NAME``. Each is a subclass of :class:`RaftSpec` overriding one
method, so the model itself never changes and nothing reaches a mutant except by asking for it
by name. A mutant may also name the features and bounds its bug needs to show.
"""

from __future__ import annotations

from typing import Any

import attrs

from . import events as ev
from .config import RaftConfig
from .messages import AppendEntriesRequest, RequestVoteRequest, RequestVoteResponse
from .model import RaftSpec
from .state import CompletedRead, RaftState, ServerState
from .types import Entry


class Figure8Commit(RaftSpec):
    """Commit an entry from an earlier term once a quorum holds it (Figure 8 of the paper)."""

    def commit_candidate(self, v: ServerState) -> int:
        for index in range(v.last_index, v.commit_index, -1):
            if self.quorum(self.agree(v, index)):
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


@attrs.frozen
class Mutant:
    name: str
    spec: type[RaftSpec]
    config: dict[str, Any] = attrs.field(factory=dict)
    """Features and bounds the bug needs in order to show, applied over the defaults."""

    @property
    def description(self) -> str:
        return (self.spec.__doc__ or "").strip()

    def configure(self, base: RaftConfig) -> RaftConfig:
        return attrs.evolve(base, **self.config)


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
    )
}
