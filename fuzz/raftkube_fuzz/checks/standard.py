"""The checks every store suite runs, as :class:`~raftkube_fuzz.checks.api.Check` objects,
and :func:`standard_checks`, the list a suite gets unless it assembles its own.

In the order they run (which is the order their verdicts win in):

* :class:`ShadowCheck`: each member's events conform to the spec's Raft (the shadow replays
  them as they happen) and the spec's invariants hold on the real members and the shadow;
* :class:`AgreementCheck`: members that applied the same index hold the same state;
* :class:`PendingDoneCheck`: every client operation returned once the cluster healed;
* the suite's own checks (:class:`SuiteHooks`, its ``check_step``/``check_end``);
* :class:`WatchCheck`: every watch delivered every committed event, in order;
* :class:`LinearizabilityCheck`: the client history, searched again whenever something new
  completed, and at the end together with what the watches saw. Only where the history's
  clients are the store's only writers (:attr:`Suite.sole_writers`), since the model cannot
  know other programs' writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raftkube_fuzz.checks.agreement import check_agreement
from raftkube_fuzz.checks.api import Check
from raftkube_fuzz.checks.conformance import RaftShadow
from raftkube_fuzz.checks.linearizability import (
    LinearizabilityUndecided,
    SearchMemo,
    find_linearization,
)
from raftkube_fuzz.checks.watches import WatchRecord, check_client_views, check_complete
from raftkube_fuzz.example_end import check_pending_done, watch_record
from raftkube_fuzz.timeline import CHECK
from raftkube_fuzz.violation import Violation

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run

FINAL_SEARCH_STEPS = 5_000_000
"""The linearizability search's budget for the whole history at the end of an example (the
checks after each step use the checker's smaller default and only note an undecided search):
a burst of concurrent operations around a leader change can need a few million model steps
to place, about a second's work, and an undecided search fails the run."""


class ShadowCheck(Check):
    """Raft conformance (per event) and the spec's invariants (per step), through the run's
    :class:`~raftkube_fuzz.checks.conformance.RaftShadow`. The shadow also follows messages,
    crashes and syncs, which the run's listener hands it directly."""

    name = "shadow"

    def __init__(self, shadow: RaftShadow) -> None:
        self.shadow = shadow

    def on_event(self, member_id: int, event: Any) -> None:
        self.shadow.observe(member_id, event)

    def after_step(self, run: Run) -> None:
        self.shadow.check_invariants()


class AgreementCheck(Check):
    """State-machine agreement between the members."""

    name = "agreement"

    def after_step(self, run: Run) -> None:
        check_agreement(run.world.members)


class PendingDoneCheck(Check):
    """Liveness of the clients: nothing is still pending once the cluster served again."""

    name = "pending-done"

    def at_end(self, run: Run) -> None:
        check_pending_done(run.history)


class SuiteHooks(Check):
    """A suite's own ``check_step`` and ``check_end`` functions, as a check."""

    name = "suite"

    def after_step(self, run: Run) -> None:
        run.suite.check_step(run)

    def at_end(self, run: Run) -> None:
        run.suite.check_end(run)


class WatchCheck(Check):
    """Every watch got every committed event of its range, in order; keeps the watches'
    records for the final linearizability search, which takes their events as evidence."""

    name = "watches"

    def __init__(self) -> None:
        self.records: list[WatchRecord] = []

    def at_end(self, run: Run) -> None:
        self.records = [watch_record(w, run.world) for w in run.watches]
        check_complete(self.records, run.written)


class LinearizabilityCheck(Check):
    """The history against the KV model, after every step that completed something (sharing
    one :class:`SearchMemo`, so the prefix the last search placed is walked again without
    any model work), and at the end with the watches' events (``watches``)."""

    name = "linearizability"

    def __init__(self, watches: WatchCheck) -> None:
        self.watches = watches
        self.memo = SearchMemo()
        """Shared by every search of this run: each replays the last one's prefix, which the
        memo makes free of model work (it never changes a verdict)."""
        self.checked = 0

    def after_step(self, run: Run) -> None:
        completed = sum(1 for op in run.history.operations() if op.outcome is not None)
        if completed == self.checked:
            return
        self.checked = completed
        # A search that runs out of budget here is noted and left to the end, which checks
        # the whole history and counts "undecided" as a failure.
        try:
            find_linearization(run.history, memo=self.memo)
        except LinearizabilityUndecided as exc:
            run.timeline.add(run.sim.now, None, CHECK, f"linearizability undecided: {exc}")

    def at_end(self, run: Run) -> None:
        try:
            check_client_views(
                run.history, self.watches.records, max_steps=FINAL_SEARCH_STEPS, memo=self.memo
            )
        except LinearizabilityUndecided as exc:
            raise Violation(
                "LinearizabilityUndecided",
                f"the linearizability search ran out of budget: {exc} (not a pass)",
                {"operations": len(run.history)},
            ) from None


def standard_checks(run: Run) -> list[Check]:
    """The checks of a store suite, in the order they run (see the module docstring)."""
    watches = WatchCheck()
    checks: list[Check] = [
        ShadowCheck(run.shadow),
        AgreementCheck(),
        PendingDoneCheck(),
        SuiteHooks(),
        watches,
    ]
    if run.suite.sole_writers:
        checks.append(LinearizabilityCheck(watches))
    return checks
