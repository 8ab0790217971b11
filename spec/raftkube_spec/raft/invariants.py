"""Safety properties of Raft as plain functions.

Each check returns ``None`` when the property holds and a sentence of evidence when it does not,
so that a model checker, a random walk and the simulated world can all report *why*. State
invariants take one state; step properties take the states before and after one step (TLA+'s
``[][A]_vars``), for properties that are about change, like "terms never decrease".

The paper's five properties (Figure 3) come first; then the stronger ones etcd's and CCF's
specifications check, which catch a broken protocol earlier in a trace.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import attrs

from .state import RaftState
from .types import Entry, Role

Problem = str | None


@attrs.frozen
class Invariant:
    name: str
    check: Callable[[RaftState], Problem]


@attrs.frozen
class StepProperty:
    name: str
    check: Callable[[RaftState, RaftState], Problem]


def election_safety(s: RaftState) -> Problem:
    """At most one leader can be elected in a given term (over the whole history)."""
    leader_of: dict[int, int] = {}
    for e in s.elections:
        other = leader_of.setdefault(e.term, e.leader)
        if other != e.leader:
            return f"servers {other} and {e.leader} were both elected leader in term {e.term}"
    return None


def log_matching(s: RaftState) -> Problem:
    """If two logs contain an entry with the same index and term, the logs are identical in
    all entries up through that index."""
    for i, a in enumerate(s.servers):
        for j in range(i + 1, len(s.servers)):
            b = s.servers[j]
            for index in range(min(a.last_index, b.last_index), 0, -1):
                if a.term_at(index) == b.term_at(index):
                    if a.log[:index] != b.log[:index]:
                        return (
                            f"servers {i} and {j} agree on the term ({a.term_at(index)}) of "
                            f"index {index} but their logs differ before it"
                        )
                    break
    return None


def leader_completeness(s: RaftState) -> Problem:
    """If an entry is committed in a term, every leader of a later term was elected with it."""
    for e in s.elections:
        log = e.log
        for index, c in enumerate(s.committed, start=1):
            # Identity first: an entry equals itself, and the logs of a run share their entry
            # objects, so most tests end without attrs' ``__eq__``.
            if c.commit_term < e.term and (
                len(log) < index or (log[index - 1] is not c.entry and log[index - 1] != c.entry)
            ):
                return (
                    f"server {e.leader} was elected in term {e.term} without index {index} "
                    f"({c.entry}), committed in term {c.commit_term}"
                )
    return None


def state_machine_safety(s: RaftState) -> Problem:
    """No two servers apply different entries at the same index: every server's committed
    prefix is a prefix of the one committed history."""
    history = tuple(c.entry for c in s.committed)
    for i, v in enumerate(s.servers):
        if v.log[: v.commit_index] != history[: v.commit_index]:
            index = next(
                n
                for n in range(1, v.commit_index + 1)
                if n > len(history) or v.log[n - 1] != history[n - 1]
            )
            theirs = history[index - 1] if index <= len(history) else "nothing"
            return (
                f"server {i} committed {v.log[index - 1]} at index {index}, where another "
                f"server committed {theirs}"
            )
    return None


def committed_in_quorum(s: RaftState) -> Problem:
    """Every committed entry is held by a quorum of servers' logs (with membership changes: a
    majority of the voters of the configuration it was committed in)."""
    if any(c.voters is not None for c in s.committed):
        return _committed_in_voter_quorum(s)
    quorum = len(s.servers) // 2 + 1
    # A server whose log starts with the very entry objects of the committed history holds
    # all of those (an entry is equal to itself), so every index up to the quorum-th longest
    # such shared prefix is held by a quorum and needs no comparison: the logs of a run share
    # their entries, and comparing every committed entry with every log was the cost.
    history = tuple(c.entry for c in s.committed)
    shared = sorted((_shared_prefix(v.log, history) for v in s.servers), reverse=True)
    for index in range(shared[quorum - 1] + 1, len(history) + 1):
        entry = history[index - 1]
        holders = [
            i
            for i, v in enumerate(s.servers)
            if v.last_index >= index and v.log[index - 1] == entry
        ]
        if len(holders) < quorum:
            return f"committed index {index} ({entry}) is held only by servers {holders}"
    return None


def _committed_in_voter_quorum(s: RaftState) -> Problem:
    for index, c in enumerate(s.committed, start=1):
        voters = c.voters if c.voters is not None else tuple(range(len(s.servers)))
        holders = [
            i
            for i in voters
            if s.servers[i].last_index >= index and s.servers[i].log[index - 1] == c.entry
        ]
        if 2 * len(holders) <= len(voters):
            return (
                f"committed index {index} ({c.entry}) is held only by servers {holders} of the "
                f"voters {list(voters)} it was committed by"
            )
    return None


def _shared_prefix(log: tuple[Entry, ...], history: tuple[Entry, ...]) -> int:
    """How many leading entries of ``log`` are the very objects of ``history``."""
    if len(log) >= len(history) and all(map(operator.is_, log, history)):
        return len(history)
    for n, (mine, theirs) in enumerate(zip(log, history, strict=False)):
        if mine is not theirs:
            return n
    return min(len(log), len(history))


def leader_has_committed_before_term(s: RaftState) -> Problem:
    """A current leader's log holds every entry committed before its term."""
    for i, v in enumerate(s.servers):
        if v.role is not Role.LEADER:
            continue
        log = v.log
        for index, c in enumerate(s.committed, start=1):
            if c.commit_term < v.term and (
                len(log) < index or (log[index - 1] is not c.entry and log[index - 1] != c.entry)
            ):
                return (
                    f"leader {i} of term {v.term} lacks index {index} ({c.entry}), committed "
                    f"in term {c.commit_term}"
                )
    return None


def commit_within_log(s: RaftState) -> Problem:
    """A commit index never exceeds its log, and a snapshot never exceeds the commit index."""
    for i, v in enumerate(s.servers):
        if not v.snapshot_index <= v.commit_index <= v.last_index:
            return (
                f"server {i} has snapshot index {v.snapshot_index}, commit index "
                f"{v.commit_index} and log length {v.last_index}"
            )
    return None


def read_index_safety(s: RaftState) -> Problem:
    """A linearizable read is served at an index covering every write committed (anywhere)
    before the read began."""
    for r in s.reads:
        if r.index < r.required_index:
            return (
                f"read {r.read_id} by leader {r.server} (term {r.term}) was served at index "
                f"{r.index}, but index {r.required_index} was committed before it began"
            )
    return None


def leader_append_only(before: RaftState, after: RaftState) -> Problem:
    """A leader never overwrites or deletes entries in its log; it only appends."""
    for i, (a, b) in enumerate(zip(before.servers, after.servers, strict=True)):
        same_reign = a.role is Role.LEADER and b.role is Role.LEADER and a.term == b.term
        if same_reign and b.log[: a.last_index] != a.log:
            return f"leader {i} of term {a.term} changed its log from {a.log} to {b.log}"
    return None


def terms_never_decrease(before: RaftState, after: RaftState) -> Problem:
    for i, (a, b) in enumerate(zip(before.servers, after.servers, strict=True)):
        if b.term < a.term:
            return f"server {i} went back from term {a.term} to term {b.term}"
    return None


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("ElectionSafety", election_safety),
    Invariant("LogMatching", log_matching),
    Invariant("LeaderCompleteness", leader_completeness),
    Invariant("StateMachineSafety", state_machine_safety),
    Invariant("CommittedInQuorum", committed_in_quorum),
    Invariant("LeaderHasCommittedBeforeTerm", leader_has_committed_before_term),
    Invariant("CommitWithinLog", commit_within_log),
    Invariant("ReadIndexSafety", read_index_safety),
)

STEP_PROPERTIES: tuple[StepProperty, ...] = (
    StepProperty("LeaderAppendOnly", leader_append_only),
    StepProperty("TermsNeverDecrease", terms_never_decrease),
)


def state_violation(s: RaftState) -> tuple[str, str] | None:
    """The first state invariant ``s`` breaks, as (name, evidence)."""
    for inv in INVARIANTS:
        problem = inv.check(s)
        if problem is not None:
            return inv.name, problem
    return None


def step_violation(before: RaftState, after: RaftState) -> tuple[str, str] | None:
    """The first step property the step from ``before`` to ``after`` breaks."""
    for prop in STEP_PROPERTIES:
        problem = prop.check(before, after)
        if problem is not None:
            return prop.name, problem
    return None


def first_violation(before: RaftState | None, after: RaftState) -> tuple[str, str] | None:
    """The first property broken by reaching ``after`` (from ``before``, if it was a step)."""
    found = state_violation(after)
    if found is None and before is not None:
        found = step_violation(before, after)
    return found
