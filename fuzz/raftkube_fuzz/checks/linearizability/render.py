"""What a linearizability failure says: operations as evidence, and the report of a search
that found no order (how far it got, why each candidate there was refused, the operations
last placed on the same keys)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from raftkube_fuzz.checks.history import Operation, describe
from raftkube_fuzz.violation import Violation

if TYPE_CHECKING:
    from raftkube_fuzz.checks.linearizability.model import Model
    from raftkube_fuzz.checks.linearizability.normalise import Entry
    from raftkube_fuzz.checks.linearizability.search import Frame


def stuck_violation(
    entries: Sequence[Entry],
    deepest: tuple[int, list[int], Frame],
    rejected: Mapping[int, tuple[Any, str]],
    model: Model[Any, Any, Any],
) -> Violation:
    """The failure of a search that found no order: where it got deepest (``deepest``:
        how many entries, the path of entry indexes, the frame there), what each candidate there
        was ``rejected`` for, and the last operations placed, on the same keys (``model``'s
    :meth:`~.model.Model.keys_of`) and overall."""
    count, path, frame = deepest
    stuck = [
        {
            **render(entries[i].op),
            "model_result": describe(rejected[i][0]),
            "why_not": rejected[i][1],
        }
        for i in frame.candidates
        if i in rejected
    ]
    keys: set[str] = set()
    for i in rejected:
        keys.update(model.keys_of(entries[i].request))
    related = [i for i in path if keys & set(model.keys_of(entries[i].request))][-8:]
    evidence: dict[str, Any] = {
        "operations": len(entries),
        "linearized": count,
        "model_revision": model.revision(frame.state),
        "no_valid_next": stuck,
        "last_linearized_on_same_keys": [render(entries[i].op) for i in related],
        "last_linearized": [render(entries[i].op) for i in path[-4:]],
    }
    first = stuck[0] if stuck else None
    detail = (
        f"; e.g. op {first['op']} ({first['request']}) got {first['outcome']}, "
        f"the model says {first['model_result']}: {first['why_not']}"
        if first
        else ""
    )
    return Violation(
        "Linearizability",
        f"no linearization: stuck after {count} of {len(entries)} operations at "
        f"revision {model.revision(frame.state)}{detail}",
        evidence,
    )


def render(op: Operation) -> dict[str, Any]:
    return {
        "op": op.op_id,
        "client": op.client_id,
        "call": op.call,
        "ret": op.ret,
        "request": describe(op.request),
        "outcome": describe(op.outcome) if op.outcome is not None else "pending",
    }
