"""Deep random walks of the Raft model: 5 servers, every feature on, hundreds of steps.

Exhaustive checking covers small bounds completely; these walks go far past them (more servers,
terms, entries and messages) at the cost of completeness. Every step checks every invariant and
step property. Hypothesis chooses the steps, so a failure shrinks to a short walk.
Set RAFTKUBE_WALK_EXAMPLES to walk longer than CI does.
"""

from __future__ import annotations

import os

from hypothesis import Phase, given, settings, target
from hypothesis import strategies as st

from raftkube_spec.raft import events as ev
from raftkube_spec.raft import render
from raftkube_spec.raft.config import RaftConfig, all_features
from raftkube_spec.raft.invariants import first_violation
from raftkube_spec.raft.model import RaftSpec
from raftkube_spec.raft.state import RaftState
from raftkube_spec.raft.types import Role

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


def walk(spec: RaftSpec, choose: st.DataObject, steps: int) -> RaftState:
    s = spec.initial()
    trail: list[str] = []
    for _ in range(steps):
        options = list(spec.successors(s))
        if not options:
            break
        # Choose the kind of action first, so rare actions get a fair share of the steps.
        kinds = sorted({type(e).__name__ for e, _ in options})
        kind = choose.draw(st.sampled_from(kinds), label="action")
        event, t = choose.draw(st.sampled_from([o for o in options if type(o[0]).__name__ == kind]))
        trail.append(render.event(event))
        problem = first_violation(s, t)
        assert problem is None, f"{problem[0]}: {problem[1]}\n" + "\n".join(trail)
        s = t
    return s


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
@given(st.data())
def test_random_walks_keep_every_invariant(data: st.DataObject) -> None:
    s = walk(RaftSpec(WALK), data, STEPS)
    target(float(len(s.committed)), label="committed entries")
    target(float(max(v.term for v in s.servers)), label="highest term")


def test_the_walker_makes_progress() -> None:
    """A walk that favours delivery over loss reaches leaders, commits and reads, so the walks
    above are not stuck in a corner of the state space."""
    spec = RaftSpec(WALK)
    s = spec.initial()
    seen_leader = False
    for n in range(600):
        options = list(spec.successors(s))
        deliveries = [o for o in options if not isinstance(o[0], ev.DropMessage | ev.Restart)]
        _, t = deliveries[(n * 7919) % len(deliveries)]
        assert first_violation(s, t) is None
        seen_leader = seen_leader or any(v.role is Role.LEADER for v in t.servers)
        s = t
    assert seen_leader
    assert len(s.committed) >= 2
