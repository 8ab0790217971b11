"""Preparing a history for the linearizability search: which operations take part, their
requests as the model must replay them, and what each one's response pins down.

What is left out and why (serializable reads, failed operations, Unknown operations that
cannot change the state, grants whose id nobody learnt) and how lease clock readings are
zeroed is argued in the package docstring (:mod:`raftkube_fuzz.checks.linearizability`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import Failed, Ok, Operation, Unknown

if TYPE_CHECKING:
    pass


@attrs.frozen
class Entry:
    """One operation as the search sees it: normalized request, bounds, and what to match.

    The fields after ``order_hint`` are derived from the others once, when the operation is
    prepared, because the checks before the search and the search itself read them for every
    operation on every search of a run's growing history.
    """

    op: Operation
    request: kv.Request
    call: float
    ret: float
    expected: kv.Result | None
    order_hint: tuple[int, int, float]
    revision: int
    """The header revision of ``expected`` (0 when there is none)."""
    seen: tuple[kv.KeyValue, ...]
    """The complete records ``expected`` shows (see :func:`seen_records`)."""
    written: tuple[tuple[bytes, bytes], ...]
    """The (key, value) pairs ``request`` may write."""
    wrote: bool
    """Whether ``expected`` proves ``request`` created a new revision."""


def is_read_only(request: kv.Request) -> bool:
    match request:
        case kv.RangeRequest() | kv.LeaseTimeToLiveRequest() | kv.LeaseKeepAliveRequest():
            return True
        case kv.TxnRequest():
            return all(is_read_only(op) for op in (*request.success, *request.failure))
        case _:
            return False


def normalized(request: kv.Request, outcome: Ok | Unknown) -> kv.Request | None:
    """The request as the model must replay it; None when it is unobservable (see module doc)."""
    match request:
        case kv.LeaseGrantRequest():
            lease_id = request.id
            if lease_id == 0:
                if isinstance(outcome, Ok) and isinstance(outcome.result, kv.LeaseGrantResponse):
                    lease_id = outcome.result.id
                elif isinstance(outcome, Ok):
                    # Refused with an id we never learn: any id nobody uses gives the same error.
                    lease_id = -1
                else:
                    return None
            return kv.LeaseGrantRequest(lease_id, request.ttl, 0)
        case kv.LeaseKeepAliveRequest():
            return kv.LeaseKeepAliveRequest(request.id, 0)
        case kv.LeaseTimeToLiveRequest():
            return kv.LeaseTimeToLiveRequest(request.id, 0, request.keys)
        case _:
            return request


def prepare(op: Operation) -> Entry | None:
    """``op`` as the search sees it; None when the search leaves it out (see module doc)."""
    if op.serializable or isinstance(op.outcome, Failed):
        return None
    outcome = op.outcome if op.outcome is not None else Unknown("pending at the end")
    if isinstance(outcome, Unknown) and is_read_only(op.request):
        return None
    request = normalized(op.request, outcome)
    if request is None:
        return None
    written = tuple(written_values(request))
    if isinstance(outcome, Ok):
        assert op.ret is not None, f"operation {op.op_id} is Ok without a return time"
        result = outcome.result
        rev = result.header.revision
        seen = tuple(seen_records(request, result))
        return Entry(
            op,
            request,
            op.call,
            op.ret,
            result,
            (0, rev, op.ret),
            rev,
            seen,
            written,
            wrote_revision(result),
        )
    return Entry(op, request, op.call, math.inf, None, (1, 0, -op.call), 0, (), written, False)


def wrote_revision(result: kv.Result) -> bool:
    """Whether a response proves its request created a new revision."""
    match result:
        case kv.PutResponse():
            return True
        case kv.DeleteRangeResponse():
            return result.deleted > 0
        case kv.TxnResponse():
            return any(wrote_revision(r) for r in result.responses)
        case _:
            return False


def seen_records(
    request: kv.Request | kv.RequestOp, result: kv.Result | kv.ResponseOp
) -> list[kv.KeyValue]:
    """The complete records a response shows (keys-only reads strip values, so they don't count)."""
    match request, result:
        case kv.RangeRequest(), kv.RangeResponse():
            return [] if request.keys_only else list(result.kvs)
        case kv.PutRequest(), kv.PutResponse():
            return [] if result.prev_kv is None else [result.prev_kv]
        case kv.DeleteRangeRequest(), kv.DeleteRangeResponse():
            return list(result.prev_kvs)
        case kv.TxnRequest(), kv.TxnResponse():
            branch = request.success if result.succeeded else request.failure
            return [
                seen
                for op, r in zip(branch, result.responses, strict=False)
                for seen in seen_records(op, r)
            ]
        case _:
            return []


def written_values(request: kv.Request | kv.RequestOp) -> list[tuple[bytes, bytes]]:
    match request:
        case kv.PutRequest():
            return [] if request.ignore_value else [(request.key, request.value)]
        case kv.TxnRequest():
            return [
                kv_ for op in (*request.success, *request.failure) for kv_ in written_values(op)
            ]
        case _:
            return []


def precedes(p: Entry, o: Entry) -> bool:
    if p.ret < o.call:
        return True
    seen = p.op.invoked_before_ret
    return p.ret == o.call and seen is not None and seen <= o.op.op_id
