"""Linearizability of every API client's LIST requests in the cluster suite, after every step.

Every page a client was answered (:mod:`raftkube_fuzz.cluster.list_history`) is judged against
the store's history (:mod:`raftkube_fuzz.checks.linearizability.list_model`): its items are the
store's objects of its range at its resourceVersion, and that resourceVersion keeps the rule the
request asked for (a consistent list at least as new as anything answered before it was sent,
``NotOlderThan``, ``Exact``, a continued page at its first page's revision) and is no newer than
the store was when the answer came. A list reveals the store's revision, so unlike the object
search this is one comparison per page, done after the step the answer came in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from raftkube_fuzz.checks.api import Check
from raftkube_fuzz.checks.linearizability.list_model import (
    ListPage,
    RegistryHistory,
    page_mismatch,
    parse_terms,
)
from raftkube_fuzz.cluster.list_history import ListHistories
from raftkube_fuzz.timeline import CHECK
from raftkube_fuzz.violation import Violation

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run


def violation_of(page: ListPage, why: str) -> Violation:
    return Violation(
        "ListLinearizability",
        f"{page.client}'s LIST {page.target} (answered resourceVersion {page.revision}): {why}",
        {
            "client": page.client,
            "list": page.target,
            "rule": page.rule,
            "resourceVersion": page.revision,
            "floor": page.floor,
            "ceiling": page.ceiling,
            "items": [f"{i.key.decode()}@{i.rv} uid={i.uid}" for i in page.items[:50]],
        },
    )


@attrs.define(eq=False)
class ListJudge:
    """Judges the recorded pages and counts them."""

    history: RegistryHistory = attrs.field(factory=RegistryHistory)
    checked: dict[str, int] = attrs.field(factory=dict)
    """Pages judged, by revision rule."""
    revision_only: int = 0
    """Pages whose selectors the check cannot read: judged on their revision only."""

    def judge(self, run: Run, recorded: ListHistories) -> None:
        """Judge every pending page; raise the first violation."""
        if not recorded.pending:
            return
        pages, recorded.pending = recorded.pending, []
        self.history.follow(run.written, max(page.ceiling for page in pages))
        for page in pages:
            self.checked[page.rule] = self.checked.get(page.rule, 0) + 1
            if parse_terms(page.label_selector) is None or parse_terms(page.field_selector) is None:
                self.revision_only += 1
            why = page_mismatch(self.history, page)
            if why is not None:
                raise violation_of(page, why)

    def summary(self) -> str:
        rules = ", ".join(f"{rule} {n}" for rule, n in sorted(self.checked.items()))
        only = f"; {self.revision_only} on their revision only" if self.revision_only else ""
        return (
            f"list linearizability: {sum(self.checked.values())} lists checked"
            f"{f' ({rules})' if rules else ''}{only}"
        )


def lists_of(run: Run) -> ListHistories:
    found = getattr(run.extras.get("plane"), "lists", None)
    assert isinstance(found, ListHistories), "the run has no control plane"
    return found


class ListLinearizabilityCheck(Check):
    """Every client's lists, after every step (see the module docstring)."""

    name = "list-linearizability"

    def __init__(self) -> None:
        self.judge = ListJudge()

    def after_step(self, run: Run) -> None:
        if "plane" in run.extras:
            self.judge.judge(run, lists_of(run))

    def at_end(self, run: Run) -> None:
        self.judge.judge(run, lists_of(run))
        run.timeline.add(run.sim.now, None, CHECK, self.judge.summary())
