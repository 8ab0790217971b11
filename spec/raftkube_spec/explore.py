"""Exhaustive breadth-first exploration of a transition system, TLC-style.

Breadth-first order means the first violation found is reached by a shortest trace, which is
what makes a counterexample readable. The explorer is generic: it needs initial states, a
successor function yielding (label, state) pairs, and the properties to check. It keeps every
distinct state with a pointer to the state it was first reached from, so a trace is rebuilt by
walking back; memory, not time, is what bounds how far it can go.

With a ``canonical`` function (symmetry reduction) the visited set holds one representative per
class of equivalent states. Traces are then rebuilt *concretely*: from the initial state, each
step is re-found among the real successors by its representative, so a printed counterexample
is a run of the model as written, not a chain of renamed states.

It does no I/O and reads no clock: progress goes to an optional callback, and the shell that
calls it (``raftkube spec check``) does the timing and printing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

import attrs

S = TypeVar("S", bound=Hashable)
L = TypeVar("L")

Violation = tuple[str, str]
"""(property name, evidence)."""


@attrs.frozen
class Counterexample(Generic[S, L]):
    """A shortest path from an initial state to a state (or step) that breaks ``property``."""

    property: str
    evidence: str
    initial: S
    steps: tuple[tuple[L, S], ...]


@attrs.frozen
class Exploration(Generic[S, L]):
    distinct_states: int
    transitions: int
    depth: int
    complete: bool
    """False when the search stopped (a violation, or ``max_states``) before exhausting."""
    violation: Counterexample[S, L] | None


@attrs.frozen
class SearchStats:
    """How far a search has got, reported to ``on_progress`` as it goes (not Raft's
    per-follower ``Progress``, nor a fuzz run's totals)."""

    distinct_states: int
    transitions: int
    depth: int
    queued: int


def _no_step_check(before: object, after: object) -> Violation | None:
    return None


def _identity(s: S) -> S:
    return s


@attrs.frozen
class Problem(Generic[S, L]):
    """What the explorer is asked to explore and check."""

    initial: Iterable[S]
    successors: Callable[[S], Iterable[tuple[L, S]]]
    check_state: Callable[[S], Violation | None]
    check_step: Callable[[S, S], Violation | None] = _no_step_check
    canonical: Callable[[S], S] = _identity


def explore(
    problem: Problem[S, L],
    *,
    max_states: int | None = None,
    on_progress: Callable[[SearchStats], None] | None = None,
    progress_every: int = 50_000,
) -> Exploration[S, L]:
    successors = problem.successors
    canonical = problem.canonical
    check_state = problem.check_state
    check_step = problem.check_step
    parent: dict[S, S | None] = {}
    frontier: deque[tuple[S, int]] = deque()
    transitions = 0
    depth = 0

    def found(violation: Violation, path_end: S, last: tuple[S, S] | None) -> Exploration[S, L]:
        path = [path_end]
        while (before := parent[path[-1]]) is not None:
            path.append(before)
        path.reverse()
        trace = _concretize(problem, path, violation, last)
        return Exploration(len(parent), transitions, depth, False, trace)

    for state in problem.initial:
        key = canonical(state)
        if key in parent:
            continue
        parent[key] = None
        problem_found = check_state(key)
        if problem_found is not None:
            return found(problem_found, key, None)
        frontier.append((key, 0))

    while frontier:
        state, level = frontier.popleft()
        for _label, nxt in successors(state):
            transitions += 1
            step_problem = check_step(state, nxt)
            if step_problem is not None:
                return found(step_problem, state, (state, nxt))
            key = canonical(nxt)
            if key in parent:
                continue
            parent[key] = state
            state_problem = check_state(key)
            if state_problem is not None:
                return found(state_problem, key, None)
            frontier.append((key, level + 1))
            depth = max(depth, level + 1)
            if on_progress is not None and len(parent) % progress_every == 0:
                on_progress(SearchStats(len(parent), transitions, depth, len(frontier)))
            if max_states is not None and len(parent) >= max_states:
                return Exploration(len(parent), transitions, depth, False, None)
    return Exploration(len(parent), transitions, depth, True, None)


def _concretize(
    problem: Problem[S, L], path: list[S], violation: Violation, last: tuple[S, S] | None
) -> Counterexample[S, L]:
    """Re-run ``path`` (a chain of representatives) as a run of real steps.

    Each representative's successors include, up to renaming, the next representative; from
    the concrete state reached so far we look for the successor whose representative matches.
    When the violation is a step (``last``), the final step is one breaking the same property.
    The evidence is recomputed on the concrete states, so the server ids it names are the
    trace's own.
    """
    canonical = problem.canonical
    start = path[0]
    steps: list[tuple[L, S]] = []
    current = start
    for target in path[1:]:
        for label, nxt in problem.successors(current):
            if canonical(nxt) == target:
                steps.append((label, nxt))
                current = nxt
                break
        else:  # pragma: no cover - would mean the successor function is not deterministic
            raise AssertionError("could not re-find a step of the counterexample")
    if last is None:
        again = problem.check_state(current)
    else:
        wanted = canonical(last[1])
        for label, nxt in problem.successors(current):
            again = problem.check_step(current, nxt)
            if again is not None and again[0] == violation[0] and canonical(nxt) == wanted:
                steps.append((label, nxt))
                break
        else:  # pragma: no cover
            raise AssertionError("could not re-find the violating step")
    name, evidence = again or violation
    return Counterexample(name, evidence, start, tuple(steps))
