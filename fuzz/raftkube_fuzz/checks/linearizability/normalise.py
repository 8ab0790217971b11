"""Preparing a history for the linearizability search: which operations take part, their
requests as the model must replay them, and what each one's response pins down.

What is left out and why (serializable reads, failed operations, Unknown operations that
cannot change the state) is argued in the package docstring
(:mod:`raftkube_fuzz.checks.linearizability`); what a request is replayed as, and what a
response pins down, is the model's to say (:class:`~.model.Model`).
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from raftkube_fuzz.checks.history import Failed, Ok, Operation, Unknown
from raftkube_fuzz.checks.linearizability.model import Model


@attrs.frozen
class Entry:
    """One operation as the search sees it: normalized request, bounds, and what to match.

    The fields after ``order_hint`` are derived from the others once, when the operation is
    prepared, because the checks before the search and the search itself read them for every
    operation on every search of a run's growing history.
    """

    op: Operation
    request: Any
    call: float
    ret: float
    expected: Any
    """The recorded result; None for an operation whose outcome is Unknown (or pending)."""
    order_hint: tuple[int, int, float]
    revision: int
    """The header revision of ``expected`` (0 when there is none, or the model has none)."""
    facts: Any
    """What ``expected`` pins down, in the model's terms (:meth:`.Model.facts`)."""


def prepare(op: Operation, model: Model[Any, Any, Any]) -> Entry | None:
    """``op`` as the search sees it; None when the search leaves it out (see module doc)."""
    if op.serializable or isinstance(op.outcome, Failed):
        return None
    outcome = op.outcome if op.outcome is not None else Unknown("pending at the end")
    if isinstance(outcome, Unknown) and model.is_read_only(op.request):
        return None
    request = model.normalized(op.request, outcome)
    if request is None:
        return None
    if isinstance(outcome, Ok):
        assert op.ret is not None, f"operation {op.op_id} is Ok without a return time"
        result = outcome.result
        if result is None:
            raise ValueError(f"operation {op.op_id}: a model's result is never None ({op!r})")
        rev = model.result_revision(result)
        facts = model.facts(request, result)
        return Entry(op, request, op.call, op.ret, result, (0, rev, op.ret), rev, facts)
    facts = model.facts(request, None)
    return Entry(op, request, op.call, math.inf, None, (1, 0, -op.call), 0, facts)


def precedes(p: Entry, o: Entry) -> bool:
    if p.ret < o.call:
        return True
    seen = p.op.invoked_before_ret
    return p.ret == o.call and seen is not None and seen <= o.op.op_id
