"""Eventual stable reconciliation, checked from every reachable state.

Anvil states ESR as: if from some point on the desired state stops changing (and faults stop),
the cluster eventually matches it and keeps matching. The model checker makes that finite:
from a state ``s`` with the environment switched off, the fault-free fair schedule
(:meth:`Model.fair_round`: every loop runs, every kubelet acts, every informer delivers, the
clock ticks) is deterministic, so the rounds from ``s`` form a path that, in a finite
canonical state space, ends in a cycle. ``s`` is **stably reconciled within k rounds** if the
``k``-th round's state and every state after it (the rest of the path and the whole cycle)
match the desired state. :class:`Reconciliation` computes k for every state it is asked about,
memoizing along paths (paths merge quickly), and reports a state whose k exceeds the bound, or
whose path never settles into matching states.

What this does not check: every *other* fair schedule. The schedule fixes one order of the
loops within a round; a loop that starves another under some other order would not be found.
The exploration of every interleaving with faults (the safety check) covers the states such
orders reach, but not their convergence.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from raftkube_spec.control.model import ClusterState, Model

UNSETTLED = -1
MAX_ROUNDS = 500


@attrs.define
class Reconciliation:
    """Rounds to stable reconciliation, memoized; ``worst`` is the largest seen so far."""

    model: Model
    converged: Callable[[ClusterState], bool]
    memo: dict[ClusterState, int] = attrs.field(factory=dict)
    worst: int = 0

    def _quiet(self, s: ClusterState) -> ClusterState:
        return attrs.evolve(s, faults=0, changes=0, ticks=0)

    def rounds(self, start: ClusterState) -> int:
        """Rounds until the path from ``start`` only visits matching states, or UNSETTLED."""
        canonical = self.model.canonical
        path: list[ClusterState] = []
        index: dict[ClusterState, int] = {}
        s = canonical(self._quiet(start))
        while s not in self.memo and s not in index and len(path) < MAX_ROUNDS:
            index[s] = len(path)
            path.append(s)
            s = canonical(self.model.fair_round(s))
        if s in self.memo:
            after = self.memo[s]
        elif s in index:
            cycle = path[index[s] :]
            settled = all(self.converged(c) for c in cycle)
            for c in cycle:
                self.memo[c] = 0 if settled else UNSETTLED
            path = path[: index[s]]
            after = self.memo[s]
        else:
            after = UNSETTLED
        for p in reversed(path):
            if after == UNSETTLED:
                value = UNSETTLED
            elif after == 0 and self.converged(p):
                value = 0
            else:
                value = after + 1
            self.memo[p] = after = value
        result = self.memo.get(canonical(self._quiet(start)), after)
        self.worst = max(self.worst, result)
        return result
