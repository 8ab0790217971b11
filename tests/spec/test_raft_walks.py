"""Deep random walks of the Raft model: 5 servers, every feature on, hundreds of steps.

Exhaustive checking covers small bounds completely; these walks go far past them (more servers,
terms, entries and messages) at the cost of completeness. Every step checks every invariant and
step property. Hypothesis chooses the steps, so a failure shrinks to a short walk.
Set RAFTKUBE_WALK_EXAMPLES to walk longer than CI does.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from hypothesis import Phase, given, settings, target
from hypothesis import strategies as st

from raftkube_spec.raft import render
from raftkube_spec.raft.config import RaftConfig, all_features
from raftkube_spec.raft.invariants import first_violation
from raftkube_spec.raft.model import RaftSpec
from raftkube_spec.raft.state import RaftState

WALK = all_features(
    RaftConfig(
        servers=5,
        max_term=8,
        max_log=10,
        max_messages=16,
        max_restarts=6,
        max_reads=6,
        values=("a", "b"),
    ),
    max_batch=3,
)
STEPS = 400
EXAMPLES = int(os.environ.get("RAFTKUBE_WALK_EXAMPLES", "25"))
T = TypeVar("T")


# Actions that disturb progress. Each walk draws how often it takes one (one step in 5, 10 or
# 20), so some walks are storms of timeouts, crashes and losses and others get far enough to
# elect leaders, commit and serve reads.
DISRUPTIVE = frozenset(
    {"Timeout", "Restart", "DropMessage", "DuplicateMessage", "CheckQuorum", "TransferLeadership"}
)


class Chooser(Protocol):
    """Where a walk's choices come from: Hypothesis in the property test, a seeded generator in
    the progress test."""

    def one_in(self, n: int) -> bool: ...

    def pick(self, options: Sequence[T]) -> T: ...


class FromHypothesis:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def one_in(self, n: int) -> bool:
        return self.data.draw(st.integers(0, n - 1), label="disrupt") == n - 1

    def pick(self, options: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(options))


class FromSeed:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def one_in(self, n: int) -> bool:
        return self.random.randrange(n) == n - 1

    def pick(self, options: Sequence[T]) -> T:
        return self.random.choice(options)


def walk(spec: RaftSpec, choose: Chooser, steps: int) -> RaftState:
    s = spec.initial()
    trail: list[str] = []
    every = choose.pick([5, 10, 20])
    for _ in range(steps):
        options = list(spec.successors(s))
        if not options:
            break
        pool = [o for o in options if type(o[0]).__name__ not in DISRUPTIVE]
        if not pool or (len(pool) < len(options) and choose.one_in(every)):
            pool = [o for o in options if type(o[0]).__name__ in DISRUPTIVE]
        event, t = choose.pick(pool)
        trail.append(render.event(event))
        problem = first_violation(s, t)
        assert problem is None, f"{problem[0]}: {problem[1]}\n" + "\n".join(trail)
        s = t
    return s


@settings(
    max_examples=EXAMPLES,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
@given(st.data())
def test_random_walks_keep_every_invariant(data: st.DataObject) -> None:
    s = walk(RaftSpec(WALK), FromHypothesis(data), STEPS)
    target(float(len(s.committed)), label="committed entries")
    target(float(max(v.term for v in s.servers)), label="highest term")


def test_the_walker_makes_progress() -> None:
    """Walks drawn the way the property test draws them reach commits and served reads, so the
    random walks are not stuck in a corner of the state space."""
    spec = RaftSpec(WALK)
    ends = [walk(spec, FromSeed(seed), STEPS) for seed in range(8)]
    assert max(len(s.committed) for s in ends) >= 3
    assert max(len(s.reads) for s in ends) >= 1
