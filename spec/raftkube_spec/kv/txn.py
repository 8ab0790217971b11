"""Txn: guarded, all-or-nothing multi-op requests, checked and run the way etcd does.

etcd processes a Txn in stages, and the stage order is observable (it decides
which error wins and what nested guards see):

1. request shape, over every op of both branches at every depth (gRPC layer);
2. the duplicate-key rule, per top-level branch (:func:`duplicate_write`);
3. every guard of the chosen path is evaluated against the store as it was
   *before* the txn — including guards of nested txns, which therefore do not
   see writes made earlier in the same txn;
4. along the chosen path, first every Put's lease/previous-key check, then
   every Range's revision check, all against the pre-txn store;
5. the chosen ops run in order, each seeing the writes of those before it, and
   everything they write shares one revision (none if nothing was written).

A failure in stages 1–4 rejects the whole txn with the store untouched.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from raftkube_spec.kv import history
from raftkube_spec.kv.errors import ErrorCode, KVError, error
from raftkube_spec.kv.keyrange import KeyRange
from raftkube_spec.kv.requests import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)
from raftkube_spec.kv.responses import ResponseOp, TxnResponse
from raftkube_spec.kv.state import KVState
from raftkube_spec.kv.store import (
    Draft,
    check_read_revision,
    draft_delete,
    draft_put,
    draft_range,
    put_lacks_previous,
    put_lease_missing,
    put_shape_error,
)
from raftkube_spec.kv.types import KeyValue

# -- stage 1: shape -----------------------------------------------------------------------


def _shape_error(txn: TxnRequest) -> ErrorCode | None:
    if any(not c.key for c in txn.compare):
        return ErrorCode.EMPTY_KEY
    for op in (*txn.success, *txn.failure):
        bad = _op_shape_error(op)
        if bad is not None:
            return bad
    return None


def _op_shape_error(op: RequestOp) -> ErrorCode | None:
    if isinstance(op, PutRequest):
        return put_shape_error(op)
    if isinstance(op, TxnRequest):
        return _shape_error(op)
    return None if op.key else ErrorCode.EMPTY_KEY


# -- stage 2: duplicate keys --------------------------------------------------------------


@attrs.frozen
class _Writes:
    puts: frozenset[bytes]
    deletes: tuple[KeyRange, ...]


def _writes_of(ops: tuple[RequestOp, ...]) -> _Writes | None:
    """etcd's ``checkIntervals``: the keys a branch may write, or None if it breaks the rule.

    It is deliberately not "no key written twice": it forbids two puts of a
    key (unless they sit in the two exclusive branches of one nested txn) and
    a put of a key that a delete of the same level, or of an *earlier* nested
    txn, covers — but it lets an earlier nested txn put a key that a later
    nested txn deletes. That asymmetry is etcd's and is kept.

    One etcd quirk is not kept: etcd builds the delete interval from the raw
    ``range_end``, so a "from key" delete (``range_end == b"\x00"``) covers
    nothing and never conflicts. Here it covers every key ``>= key``, as the
    delete itself does.
    """
    deletes = [
        KeyRange.of(op.key, op.range_end) for op in ops if isinstance(op, DeleteRangeRequest)
    ]
    puts: set[bytes] = set()

    def fits(key: bytes) -> bool:
        return not any(key in r for r in deletes)

    for op in ops:
        if not isinstance(op, TxnRequest):
            continue
        then = _writes_of(op.success)
        other = _writes_of(op.failure)
        if then is None or other is None:
            return None
        for key in then.puts:
            if key in puts or not fits(key):
                return None
        puts |= then.puts
        for key in other.puts:
            if (key in puts and key not in then.puts) or not fits(key):
                return None
        puts |= other.puts
        deletes.extend(then.deletes)
        deletes.extend(other.deletes)
    for op in ops:
        if not isinstance(op, PutRequest):
            continue
        if op.key in puts or not fits(op.key):
            return None
        puts.add(op.key)
    return _Writes(frozenset(puts), tuple(deletes))


def duplicate_write(txn: TxnRequest) -> bool:
    """Whether etcd rejects ``txn`` with "duplicate key given in txn request"."""
    return _writes_of(txn.success) is None or _writes_of(txn.failure) is None


# -- stage 3: guards ----------------------------------------------------------------------


def _order(c: Compare, kv: KeyValue) -> int:
    """Sign of ``kv``'s target field minus the guard's value (-1, 0 or 1)."""
    if c.target is CompareTarget.VALUE:
        wanted = c.value if isinstance(c.value, bytes) else b""
        return (kv.value > wanted) - (kv.value < wanted)
    actual = {
        CompareTarget.VERSION: kv.version,
        CompareTarget.CREATE: kv.create_revision,
        CompareTarget.MOD: kv.mod_revision,
        CompareTarget.LEASE: kv.lease,
    }[c.target]
    expected = c.value if isinstance(c.value, int) else 0
    return (actual > expected) - (actual < expected)


def _holds_for(c: Compare, kv: KeyValue) -> bool:
    order = _order(c, kv)
    match c.result:
        case CompareResult.EQUAL:
            return order == 0
        case CompareResult.NOT_EQUAL:
            return order != 0
        case CompareResult.GREATER:
            return order > 0
        case CompareResult.LESS:
            return order < 0


def compare_holds(state: KVState, c: Compare) -> bool:
    """etcd's ``applyCompare``: every key in range must satisfy the guard.

    With no key in range a VALUE guard fails outright (etcd cannot tell a
    missing value from an empty one), while other targets are compared
    against the zero record — so ``version == 0`` means "absent".
    """
    found = history.visible(state.keys, KeyRange.of(c.key, c.range_end), state.revision)
    if not found:
        return c.target is not CompareTarget.VALUE and _holds_for(c, KeyValue(c.key))
    return all(_holds_for(c, kv) for kv in found)


def _branch(base: KVState, txn: TxnRequest) -> tuple[bool, tuple[RequestOp, ...]]:
    succeeded = all(compare_holds(base, c) for c in txn.compare)
    return succeeded, txn.success if succeeded else txn.failure


def _path(base: KVState, txn: TxnRequest) -> Iterator[RequestOp]:
    """The non-txn ops that will run, depth first, guards judged on the pre-txn store."""
    for op in _branch(base, txn)[1]:
        if isinstance(op, TxnRequest):
            yield from _path(base, op)
        else:
            yield op


# -- stage 4: per-op checks ---------------------------------------------------------------


def _path_error(base: KVState, txn: TxnRequest) -> ErrorCode | None:
    path = tuple(_path(base, txn))
    for op in path:
        if isinstance(op, PutRequest):
            # In a txn etcd looks for the previous record before the lease.
            if put_lacks_previous(base, op):
                return ErrorCode.KEY_NOT_FOUND
            if put_lease_missing(base, op):
                return ErrorCode.LEASE_NOT_FOUND
    for op in path:
        if isinstance(op, RangeRequest):
            bad = check_read_revision(base, op.revision)
            if bad is not None:
                return bad
    return None


# -- stage 5: execution -------------------------------------------------------------------


def _run(draft: Draft, base: KVState, txn: TxnRequest) -> tuple[Draft, TxnResponse]:
    succeeded, ops = _branch(base, txn)
    responses: list[ResponseOp] = []
    for op in ops:
        resp: ResponseOp
        if isinstance(op, RangeRequest):
            resp = draft_range(draft, op)
        elif isinstance(op, PutRequest):
            draft, resp = draft_put(draft, op)
        elif isinstance(op, DeleteRangeRequest):
            draft, resp = draft_delete(draft, op)
        else:
            draft, resp = _run(draft, base, op)
        responses.append(resp)
    return draft, TxnResponse(draft.header(), succeeded, tuple(responses))


def txn(state: KVState, req: TxnRequest) -> tuple[KVState, TxnResponse | KVError]:
    shape = _shape_error(req)
    if shape is not None:
        return state, error(shape, state.revision)
    if duplicate_write(req):
        return state, error(ErrorCode.DUPLICATE_KEY, state.revision)
    bad = _path_error(state, req)
    if bad is not None:
        return state, error(bad, state.revision)
    draft, resp = _run(Draft(state), state, req)
    return draft.commit(), resp
