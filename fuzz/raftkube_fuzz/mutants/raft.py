"""The ``raft`` suite's mutants: bugs in the Raft core and its configuration."""

from __future__ import annotations

from raftkube.raft.config import NodeConfig
from raftkube.raft.node import RaftNode
from raftkube.raft.ready_output import ReadyOutput
from raftkube.raft.replication import Replication
from raftkube.storage.state import HardState
from raftkube_fuzz.mutants.base import Mutant, patch
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import AppendEntriesRequest, AppendEntriesResponse
from raftkube_spec.raft.types import Entry

# --- commit-old-term-by-count --------------------------------------------------------------------


def _maybe_commit_any_term(self: RaftNode) -> None:
    matches = [self.match_index(j) for j in self.membership.voters]
    matches.sort(reverse=True)
    candidate = matches[len(matches) // 2]
    if candidate <= self.commit:  # MUTANT: no check that the entry is of the current term.
        return
    self.commit = candidate
    if self._observer is not None:
        self._observer(ev.AdvanceCommitIndex(self.id, candidate))


# --- unsynced-vote -------------------------------------------------------------------------------


def _must_sync_ignoring_vote(self: ReadyOutput, hs: HardState | None, log_changed: bool) -> bool:
    if log_changed:  # noqa: SIM103 (shaped as the original but for the planted line)
        return True
    # MUTANT: the hard state is taken as advisory like the commit index, so a new term or vote
    # is answered (a vote granted) before it is durable.
    return False


# --- no-conflict-truncation ----------------------------------------------------------------------


def _merge_without_truncation(self: RaftNode, prev: int, entries: tuple[Entry, ...]) -> None:
    log = self.log
    for n, entry in enumerate(entries):  # noqa: B007 (the check that read it is gone)
        index = prev + 1 + n
        if index > log.last_index:
            log.entries.extend(entries[n:])
            self._membership.appended(index, entries[n:])
            return
        # MUTANT: an entry already held at ``index`` is kept even if the leader's term differs.


# --- commit-beyond-match -------------------------------------------------------------------------


def _maybe_commit_by_next(self: RaftNode) -> None:
    # MUTANT: the optimistic next index (advanced on send with pipelining) instead of the
    # acknowledged match index.
    matches = [
        self.own_match if j == self.id else self.progress[j].next - 1
        for j in self.membership.voters
    ]
    matches.sort(reverse=True)
    candidate = matches[len(matches) // 2]
    if candidate <= self.commit or self.log.term_at(candidate) != self.term:
        return
    self.commit = candidate
    if self._observer is not None:
        self._observer(ev.AdvanceCommitIndex(self.id, candidate))


# --- accept-stale-term-append --------------------------------------------------------------------


def _on_append_any_term(self: RaftNode, m: AppendEntriesRequest) -> None:
    # MUTANT: no rejection of a request from a leader of an older term.
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


# --- config-change-before-own-term-commit --------------------------------------------------------


def _may_change_membership_before_own_term(self: RaftNode) -> bool:
    """The spec's ``may_change_membership``: an entry of this term is committed (etcd's
    pendingConfIndex rule) and so is the last configuration change."""
    # MUTANT: a new leader may change the configuration before an entry of its own term is
    # committed (Ongaro, raft-dev 2015): its change and a deposed leader's uncommitted one
    # can then both commit with disjoint majorities.
    return self._membership.index <= self.commit


# --- lease-read-ignores-drift --------------------------------------------------------------------


def _lease_ticks_without_margin(self: NodeConfig) -> int:
    # MUTANT: a follower's protection is taken to last the whole election timeout of the
    # leader's own ticks, with no allowance for clock-rate drift.
    return self.election_timeout


MUTANTS = (
    Mutant(
        "commit-old-term-by-count",
        "the leader commits an entry of an earlier term by counting its replicas (Figure 8)",
        "raft",
        "Conformance",
        False,
        patch(Replication, "_maybe_commit", _maybe_commit_any_term),
    ),
    Mutant(
        "unsynced-vote",
        "a member answers a vote request before the new term and vote are durable",
        "raft",
        "Durability",
        False,
        patch(ReadyOutput, "_must_sync", _must_sync_ignoring_vote),
    ),
    Mutant(
        "no-conflict-truncation",
        "a follower keeps its own entries where the leader's conflict instead of cutting them",
        "raft",
        "Conformance",
        False,
        patch(Replication, "_merge", _merge_without_truncation),
    ),
    Mutant(
        "commit-beyond-match",
        "the leader's commit rule counts next indexes (sent) instead of match indexes (acked)",
        "raft",
        "Conformance",
        False,
        patch(Replication, "_maybe_commit", _maybe_commit_by_next),
    ),
    Mutant(
        "accept-stale-term-append",
        "a follower accepts AppendEntries from a leader of an older term",
        "raft",
        "Conformance",
        False,
        patch(Replication, "_on_append", _on_append_any_term),
    ),
    Mutant(
        "config-change-before-own-term-commit",
        "a new leader changes the membership before an entry of its own term is committed",
        "raft",
        "Conformance",
        False,
        patch(RaftNode, "_may_change_membership", _may_change_membership_before_own_term),
        {"membership": "on"},
    ),
    Mutant(
        "lease-read-ignores-drift",
        "lease mode lasts a whole election timeout, with no margin for clock-rate drift",
        "raft",
        "LeaseSafety",
        True,
        patch(NodeConfig, "lease_ticks", property(_lease_ticks_without_margin)),
        {"read_mode": "lease", "load": "reads", "clocks": "slow_leader"},
    ),
)
