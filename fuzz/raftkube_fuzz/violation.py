"""The one way a check reports a failure.

Every checker in :mod:`raftkube_fuzz` (spec invariants, conformance, linearizability, watches,
liveness) raises :class:`Violation`. The runner turns it into a trace file, so what a checker
puts in ``evidence`` is what a user reads when a fuzz run fails: it must be JSON-compatible
(str, int, float, bool, None, lists and dicts of those) and enough on its own to see the bug.
"""

from __future__ import annotations

from typing import Any


class Violation(Exception):
    """A property of the system did not hold.

    ``prop`` names the property (an invariant's name such as ``"ElectionSafety"``, or one of
    ``"Conformance"``, ``"Durability"``, ``"Linearizability"``, ``"WatchOrder"``,
    ``"Liveness"``, ``"MemberCrashed"``); ``step`` is the index of the suite step after which it
    was detected (the runner fills it in).
    """

    def __init__(self, prop: str, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(f"{prop}: {message}")
        self.prop = prop
        self.message = message
        self.evidence: dict[str, Any] = evidence if evidence is not None else {}
        self.step: int | None = None
