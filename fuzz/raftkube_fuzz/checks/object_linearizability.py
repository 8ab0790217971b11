"""``Linearizability`` of every API client's single-object requests in the cluster suite,
against the object model (:mod:`raftkube_fuzz.checks.linearizability.object_model`), at the
end of an example.

Every component's and the user's creates, GETs, updates, patches, deletes, bindings and
evictions are recorded per object key (:mod:`raftkube_fuzz.cluster.object_history`); each
key's history is searched alone with the store's search (Wing and Gong's, with Lowe's memo),
with the model told what writers outside the history may do to that key
(:meth:`~raftkube_fuzz.cluster.object_history.ObjectHistories.others`: exact, for most), and
the creates across keys must get ``resourceVersion``s that grow in real-time order. A failure
is the search's own report (the operations it could not place and why the model refused each);
a search out of budget is ``LinearizabilityUndecided``, never a pass.

Run once, at the end: most keys' requests come from one client at a time (a kubelet's Node
and Lease, a leader's Lease), so they rarely overlap and the memo keeps each search close to
linear; a violation found at the end names the same operations one found earlier would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkube_fuzz.checks.api import Check
from raftkube_fuzz.checks.linearizability import (
    LinearizabilityUndecided,
    SearchMemo,
    find_linearization,
)
from raftkube_fuzz.checks.linearizability.object_model import ObjectModel, check_creates_in_order
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
        memo = SearchMemo(model=ObjectModel(histories.others(key)))
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


def histories_of(run: Run) -> ObjectHistories:
    """The run's object histories: its control plane's, into which every client records."""
    found = getattr(run.extras.get("plane"), "histories", None)
    assert isinstance(found, ObjectHistories), "the run has no control plane"
    return found


class ObjectLinearizabilityCheck(Check):
    """Every client's object requests, at the end of an example (see the module docstring)."""

    name = "object-linearizability"

    def at_end(self, run: Run) -> None:
        check_object_histories(histories_of(run))
