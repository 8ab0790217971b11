"""``Linearizability`` of the user's object requests in the cluster suite, against the object
model (:mod:`raftkube_fuzz.checks.linearizability.object_model`), at the end of an example.

The user's creates, patches and deletes are recorded per object key
(:mod:`raftkube_fuzz.cluster.object_history`); each key's history is searched alone with the
store's search (Wing and Gong's, with Lowe's memo), and the creates across keys must get
``resourceVersion``s that grow in real-time order. A failure is the search's own report (the
operations it could not place and why the model refused each); a search out of budget is
``LinearizabilityUndecided``, never a pass.

Run once, at the end: the histories are a few dozen operations a key, so one search each costs
little, and a violation found at the end names the same operations one found earlier would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkube_fuzz.checks.api import Check
from raftkube_fuzz.checks.linearizability import (
    LinearizabilityUndecided,
    SearchMemo,
    find_linearization,
)
from raftkube_fuzz.checks.linearizability.object_model import OBJECT_MODEL, check_creates_in_order
from raftkube_fuzz.checks.linearizability.search import prepared_entries
from raftkube_fuzz.cluster.object_history import ObjectHistories
from raftkube_fuzz.violation import Violation

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run

MAX_STEPS = 1_000_000
"""The search's budget for one key's history."""


def check_object_histories(histories: ObjectHistories, max_steps: int = MAX_STEPS) -> None:
    """Raise a Violation unless every key's history is linearizable against the object model
    and creates across keys get growing ``resourceVersion``s."""
    entries = []
    for key in sorted(histories.by_key):
        history = histories.by_key[key]
        memo = SearchMemo(model=OBJECT_MODEL)
        try:
            find_linearization(history, memo=memo, max_steps=max_steps)
        except LinearizabilityUndecided as exc:
            raise Violation(
                "LinearizabilityUndecided",
                f"the object search for {key} ran out of budget: {exc} (not a pass)",
                {"key": key, "operations": len(history)},
            ) from None
        except Violation as exc:
            raise Violation(exc.prop, f"{key}: {exc.message}", exc.evidence) from None
        entries.extend(prepared_entries(history, memo))
    check_creates_in_order(entries)


HISTORIES = "object_histories"
"""Where a run keeps its :class:`ObjectHistories` (``run.extras``)."""


def histories_of(run: Run) -> ObjectHistories:
    """The run's object histories, made on first use (the suite's user actions record into
    them)."""
    found = run.extras.setdefault(HISTORIES, ObjectHistories())
    assert isinstance(found, ObjectHistories)
    return found


class ObjectLinearizabilityCheck(Check):
    """The user's object requests, at the end of an example (see the module docstring)."""

    name = "object-linearizability"

    def at_end(self, run: Run) -> None:
        check_object_histories(histories_of(run))
