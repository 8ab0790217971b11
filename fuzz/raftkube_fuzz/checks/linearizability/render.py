"""What a linearizability failure says: operations as evidence, and the report of a search
that found no order (how far it got, why each candidate there was refused, the operations
last placed on the same keys)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import Operation, describe
from raftkube_fuzz.violation import Violation

if TYPE_CHECKING:
    from raftkube_fuzz.checks.linearizability.normalise import Entry
    from raftkube_fuzz.checks.linearizability.search import Frame


def stuck_violation(
    entries: Sequence[Entry],
    deepest: tuple[int, list[int], Frame],
    rejected: Mapping[int, tuple[kv.Result, str]],
) -> Violation:
    """The failure of a search that found no order: where it got deepest (``deepest``:
    how many entries, the path of entry indexes, the frame there), what each candidate there
    was ``rejected`` for, and the last operations placed, on the same keys and overall."""
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
        keys.update(keys_of(entries[i].request))
    related = [i for i in path if keys & set(keys_of(entries[i].request))][-8:]
    evidence: dict[str, Any] = {
        "operations": len(entries),
        "linearized": count,
        "model_revision": frame.state.revision,
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
        f"revision {frame.state.revision}{detail}",
        evidence,
    )


def keys_of(request: kv.Request | kv.RequestOp) -> list[str]:
    """The keys a request names (for picking related operations in evidence)."""
    match request:
        case kv.RangeRequest() | kv.PutRequest() | kv.DeleteRangeRequest():
            return [describe(request.key)]
        case kv.TxnRequest():
            found = [describe(c.key) for c in request.compare]
            for op in (*request.success, *request.failure):
                found.extend(keys_of(op))
            return found
        case kv.CompactionRequest():
            return ["compaction"]
        case (
            kv.LeaseGrantRequest()
            | kv.LeaseRevokeRequest()
            | kv.LeaseKeepAliveRequest()
            | kv.LeaseTimeToLiveRequest()
        ):
            return [f"lease {request.id}"]


def render(op: Operation) -> dict[str, Any]:
    return {
        "op": op.op_id,
        "client": op.client_id,
        "call": op.call,
        "ret": op.ret,
        "request": describe(op.request),
        "outcome": describe(op.outcome) if op.outcome is not None else "pending",
    }
