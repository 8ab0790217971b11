"""The checks ``MvccStore`` makes before a request writes anything, in etcd's order: the
request's shape (stage 1), etcd's duplicate-key rule for a txn's branches (stage 2), and the
guards that choose a txn's path (stage 3, :class:`TxnPlan`). They are what lets the store
write without ever rolling back (see :mod:`raftkube.mvcc.store`): once they pass, executing
the request cannot fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from raftkube.mvcc.index import decode_range
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.requests import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RequestOp,
    TxnRequest,
)
from raftkube_spec.kv.types import KeyValue, ResponseHeader


def kv_error(code: ErrorCode, revision: int) -> KVError:
    return KVError(code=code, header=ResponseHeader(revision))


def put_shape_error(req: PutRequest) -> ErrorCode | None:
    """The stateless checks etcd's gRPC layer makes before a Put is even proposed."""
    if not req.key:
        return ErrorCode.EMPTY_KEY
    if req.ignore_value and req.value:
        return ErrorCode.VALUE_PROVIDED
    if req.ignore_lease and req.lease != 0:
        return ErrorCode.LEASE_PROVIDED
    return None


def txn_shape_error(txn: TxnRequest) -> ErrorCode | None:
    """Stage 1: every guard and op of both branches at every depth, guards first, in order."""
    for c in txn.compare:
        if not c.key:
            return ErrorCode.EMPTY_KEY
    for op in (*txn.success, *txn.failure):
        if isinstance(op, PutRequest):
            bad = put_shape_error(op)
        elif isinstance(op, TxnRequest):
            bad = txn_shape_error(op)
        else:
            bad = None if op.key else ErrorCode.EMPTY_KEY
        if bad is not None:
            return bad
    return None


# -- stage 2: etcd's duplicate-key rule ---------------------------------------------------

Interval = tuple[bytes, bytes | None]


def covered(key: bytes, intervals: list[Interval]) -> bool:
    return any(start <= key and (end is None or key < end) for start, end in intervals)


def branch_writes(ops: tuple[RequestOp, ...]) -> tuple[set[bytes], list[Interval]] | None:
    """The keys a branch may put and the intervals it may delete, or None if etcd refuses it.

    This is etcd's ``checkIntervals``, quirks included: two puts of one key are
    refused unless they sit in the two exclusive branches of one nested txn; a
    put is refused when a delete of its own level, or of an earlier nested txn,
    covers it; but an earlier nested txn may put a key a later one deletes. As
    in the spec (and unlike etcd), a "from key" delete covers every key from
    its start.
    """
    deletes = [
        decode_range(op.key, op.range_end) for op in ops if isinstance(op, DeleteRangeRequest)
    ]
    puts: set[bytes] = set()
    for op in ops:
        if not isinstance(op, TxnRequest):
            continue
        then = branch_writes(op.success)
        other = branch_writes(op.failure)
        if then is None or other is None:
            return None
        then_puts, then_deletes = then
        other_puts, other_deletes = other
        for key in then_puts:
            if key in puts or covered(key, deletes):
                return None
        puts |= then_puts
        for key in other_puts:
            if (key in puts and key not in then_puts) or covered(key, deletes):
                return None
        puts |= other_puts
        deletes.extend(then_deletes)
        deletes.extend(other_deletes)
    for op in ops:
        if not isinstance(op, PutRequest):
            continue
        if op.key in puts or covered(op.key, deletes):
            return None
        puts.add(op.key)
    return puts, deletes


# -- stage 3: guards ----------------------------------------------------------------------


def compare_one(c: Compare, kv: KeyValue) -> bool:
    """Whether ``kv``'s target field stands in relation ``c.result`` to ``c.value``.

    A value of the wrong kind behaves like etcd's unset oneof: ``b""`` or ``0``.
    """
    target = c.target
    order: int
    if target is CompareTarget.VALUE:
        wanted = c.value if isinstance(c.value, bytes) else b""
        order = (kv.value > wanted) - (kv.value < wanted)
    else:
        if target is CompareTarget.VERSION:
            actual = kv.version
        elif target is CompareTarget.CREATE:
            actual = kv.create_revision
        elif target is CompareTarget.MOD:
            actual = kv.mod_revision
        else:
            actual = kv.lease
        expected = c.value if isinstance(c.value, int) else 0
        order = (actual > expected) - (actual < expected)
    result = c.result
    if result is CompareResult.EQUAL:
        return order == 0
    if result is CompareResult.NOT_EQUAL:
        return order != 0
    if result is CompareResult.GREATER:
        return order > 0
    return order < 0


@attrs.define(slots=True, eq=False)
class TxnPlan:
    """The branch a (nested) txn takes, decided on the pre-txn store before anything runs."""

    succeeded: bool
    ops: tuple[RequestOp, ...]
    nested: list[TxnPlan]
    """Plans of the TxnRequest ops among ``ops``, in order."""

    def path(self) -> Iterator[RequestOp]:
        """The non-txn ops that will run, depth first."""
        nested = iter(self.nested)
        for op in self.ops:
            if isinstance(op, TxnRequest):
                yield from next(nested).path()
            else:
                yield op
