"""Checking a slice: every safety property in every reachable state and step, and ESR from every
reachable state, in one breadth-first exploration (so a violation of either comes with a
shortest trace to the state that shows it)."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from raftkube_spec.control.esr import UNSETTLED, Reconciliation
from raftkube_spec.control.model import Action, ClusterState
from raftkube_spec.control.slices import Slice
from raftkube_spec.explore import Exploration, Problem, SearchStats, Violation, explore

ESR = "EventualStableReconciliation"


@attrs.frozen
class SliceResult:
    slice: Slice
    exploration: Exploration[ClusterState, Action]
    esr_rounds: int
    """The most rounds of the fair schedule any reachable state took to be reconciled."""


def problem(
    sl: Slice, reconciliation: Reconciliation, esr: bool = True
) -> Problem[ClusterState, Action]:
    def check_state(s: ClusterState) -> Violation | None:
        for prop in sl.invariants:
            found = prop(s)
            if found is not None:
                return found
        if esr:
            rounds = reconciliation.rounds(s)
            if rounds == UNSETTLED:
                return ESR, "the fault-free fair schedule never settles in a reconciled state"
            if rounds > sl.esr_bound:
                return ESR, f"reconciled only after {rounds} rounds (bound {sl.esr_bound})"
        return None

    def check_step(before: ClusterState, after: ClusterState) -> Violation | None:
        for prop in sl.step_properties:
            found = prop(before, after)
            if found is not None:
                return found
        return None

    return Problem(
        initial=sl.initial,
        successors=sl.model.explore_successors,
        check_state=check_state,
        check_step=check_step,
        canonical=sl.model.canonical,
    )


def check(
    sl: Slice,
    *,
    esr: bool = True,
    max_states: int | None = None,
    on_progress: Callable[[SearchStats], None] | None = None,
) -> SliceResult:
    reconciliation = Reconciliation(sl.model, sl.converged)
    result = explore(
        problem(sl, reconciliation, esr), max_states=max_states, on_progress=on_progress
    )
    return SliceResult(sl, result, reconciliation.worst)
