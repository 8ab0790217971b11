"""Range, Put, DeleteRange and Compact, plus the write-in-progress they share with Txn.

Every write goes through a :class:`Draft`: records are stamped with the next
revision as they are made, later steps read them back, and only committing
moves the store's revision — and only if something was actually written. That
is how etcd gives a whole request (a Put, a multi-key delete, a Txn, a lease
revoke) a single revision, and how a no-op write leaves the revision alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from raftkube_spec.kv import history
from raftkube_spec.kv.errors import ErrorCode, KVError, error
from raftkube_spec.kv.keyrange import KeyRange
from raftkube_spec.kv.requests import (
    CompactionRequest,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
)
from raftkube_spec.kv.responses import (
    CompactionResponse,
    DeleteRangeResponse,
    PutResponse,
    RangeResponse,
)
from raftkube_spec.kv.state import KVState
from raftkube_spec.kv.types import KeyValue, ResponseHeader


@attrs.frozen
class Draft:
    """A write request part-way through: ``state`` may hold records at the next revision."""

    state: KVState
    changed: bool = False

    @property
    def write_revision(self) -> int:
        return self.state.revision + 1

    @property
    def reached_revision(self) -> int:
        """The revision a response given now reports: the next one once anything changed."""
        return self.write_revision if self.changed else self.state.revision

    def header(self) -> ResponseHeader:
        return ResponseHeader(self.reached_revision)

    def commit(self) -> KVState:
        if not self.changed:
            return self.state
        return attrs.evolve(self.state, revision=self.write_revision)


def current(state: KVState, key: bytes) -> KeyValue | None:
    """The live record of ``key`` at the latest revision (including a draft's own writes)."""
    found = history.find(state.keys, key)
    return None if found is None else found.at(state.revision + 1)


# -- validation ---------------------------------------------------------------------------


def check_read_revision(state: KVState, revision: int) -> ErrorCode | None:
    """etcd's read-revision rule: reading *at* the compact revision is still allowed."""
    if revision <= 0:
        return None
    if revision > state.revision:
        return ErrorCode.FUTURE_REVISION
    if revision < state.compact_revision:
        return ErrorCode.COMPACTED
    return None


def put_shape_error(req: PutRequest) -> ErrorCode | None:
    """The stateless checks etcd's gRPC layer makes before a Put is even proposed."""
    if not req.key:
        return ErrorCode.EMPTY_KEY
    if req.ignore_value and req.value:
        return ErrorCode.VALUE_PROVIDED
    if req.ignore_lease and req.lease != 0:
        return ErrorCode.LEASE_PROVIDED
    return None


def put_lease_missing(state: KVState, req: PutRequest) -> bool:
    return req.lease != 0 and state.lease(req.lease) is None


def put_lacks_previous(state: KVState, req: PutRequest) -> bool:
    """ignore_value/ignore_lease keep something of the old record, so one must exist."""
    return (req.ignore_value or req.ignore_lease) and current(state, req.key) is None


# -- reads --------------------------------------------------------------------------------


def _read(space: history.KeySpace, req: RangeRequest, revision: int, header: int) -> RangeResponse:
    found = history.visible(space, KeyRange.of(req.key, req.range_end), revision)
    count = len(found)
    if req.count_only:
        return RangeResponse(ResponseHeader(header), count=count)
    more = 0 < req.limit < count
    if more:
        found = found[: req.limit]
    if req.keys_only:
        found = [attrs.evolve(kv, value=b"") for kv in found]
    return RangeResponse(ResponseHeader(header), kvs=tuple(found), more=more, count=count)


def range_keys(state: KVState, req: RangeRequest) -> RangeResponse | KVError:
    """A standalone Range. The header carries the current revision even for an old read."""
    if not req.key:
        return error(ErrorCode.EMPTY_KEY, state.revision)
    bad = check_read_revision(state, req.revision)
    if bad is not None:
        return error(bad, state.revision)
    at = req.revision if req.revision > 0 else state.revision
    return _read(state.keys, req, at, state.revision)


def draft_range(draft: Draft, req: RangeRequest) -> RangeResponse:
    """A Range inside a write: a current read sees the draft's own writes."""
    at = req.revision if req.revision > 0 else draft.write_revision
    return _read(draft.state.keys, req, at, draft.reached_revision)


# -- writes -------------------------------------------------------------------------------


def _append(draft: Draft, records: Iterable[KeyValue]) -> Draft:
    updates: dict[bytes, history.KeyHistory] = {}
    for kv in records:
        old = updates.get(kv.key)
        if old is None:
            old = history.find(draft.state.keys, kv.key)
        updates[kv.key] = history.KeyHistory(kv.key, (kv,)) if old is None else old.appended(kv)
    if not updates:
        return draft
    space = history.replaced(draft.state.keys, updates)
    return Draft(attrs.evolve(draft.state, keys=space), changed=True)


def draft_put(draft: Draft, req: PutRequest) -> tuple[Draft, PutResponse]:
    """Write one key; assumes the request already passed its checks."""
    rev = draft.write_revision
    prev = current(draft.state, req.key)
    value = prev.value if req.ignore_value and prev is not None else req.value
    lease = prev.lease if req.ignore_lease and prev is not None else req.lease
    if prev is None:
        # A new generation: absent before, or its last record is a tombstone.
        kv = KeyValue(req.key, rev, rev, 1, value, lease)
    else:
        kv = KeyValue(req.key, prev.create_revision, rev, prev.version + 1, value, lease)
    after = _append(draft, (kv,))
    return after, PutResponse(after.header(), prev_kv=prev if req.prev_kv else None)


def draft_delete_keys(draft: Draft, keys: Iterable[bytes]) -> Draft:
    """Tombstone each listed key that is live; a lease revoke deletes this way."""
    rev = draft.write_revision
    tombs = [KeyValue(k, mod_revision=rev) for k in keys if current(draft.state, k) is not None]
    return _append(draft, tombs)


def draft_delete(draft: Draft, req: DeleteRangeRequest) -> tuple[Draft, DeleteRangeResponse]:
    found = history.visible(
        draft.state.keys, KeyRange.of(req.key, req.range_end), draft.write_revision
    )
    after = draft_delete_keys(draft, (kv.key for kv in found))
    prev = tuple(found) if req.prev_kv else ()
    return after, DeleteRangeResponse(after.header(), deleted=len(found), prev_kvs=prev)


def put(state: KVState, req: PutRequest) -> tuple[KVState, PutResponse | KVError]:
    """A standalone Put; etcd checks the lease before looking for a previous record."""
    shape = put_shape_error(req)
    if shape is not None:
        return state, error(shape, state.revision)
    if put_lease_missing(state, req):
        return state, error(ErrorCode.LEASE_NOT_FOUND, state.revision)
    if put_lacks_previous(state, req):
        return state, error(ErrorCode.KEY_NOT_FOUND, state.revision)
    draft, resp = draft_put(Draft(state), req)
    return draft.commit(), resp


def delete_range(
    state: KVState, req: DeleteRangeRequest
) -> tuple[KVState, DeleteRangeResponse | KVError]:
    if not req.key:
        return state, error(ErrorCode.EMPTY_KEY, state.revision)
    draft, resp = draft_delete(Draft(state), req)
    return draft.commit(), resp


def compact(state: KVState, req: CompactionRequest) -> tuple[KVState, CompactionResponse | KVError]:
    """Forget history below ``req.revision``; current data and the revision are untouched."""
    if req.revision <= state.compact_revision:
        return state, error(ErrorCode.COMPACTED, state.revision)
    if req.revision > state.revision:
        return state, error(ErrorCode.FUTURE_REVISION, state.revision)
    after = attrs.evolve(
        state,
        compact_revision=req.revision,
        keys=history.compacted(state.keys, req.revision),
    )
    return after, CompactionResponse(ResponseHeader(after.revision))
