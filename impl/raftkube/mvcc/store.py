"""``MvccStore``: the etcd-role state machine a Raft member applies committed entries to.

It answers every request exactly as the sequential specification
(``raftkube_spec.kv.apply``) does, but keeps mutable, indexed structures so a
put or a point read costs a few microseconds rather than a copy of the state.

Atomicity without rollback
--------------------------
A rejected request must change nothing, and a Txn is all-or-nothing. Rather
than undoing writes, every check etcd makes happens before the first write:
shape, the duplicate-key rule, every guard on the chosen path (all judged on
the pre-txn store, as etcd does), then the per-op lease/previous-key and
read-revision checks. Once execution starts it cannot fail, so it writes
straight into the index at the next revision. Reads during execution see those
writes because they are simply the newest records; reads at an older revision
never see them because they carry a higher revision. The checks are
:mod:`raftkube.mvcc.checks`.

A write that changes nothing (a delete of absent keys, a txn of reads, the
revoke of a lease holding no keys) does not consume a revision; one that does
gives all of its records that single revision.

Observers
---------
After each write that consumed a revision the store calls its observers with
that revision and the records written, in write order. The watch hub is one;
building the list costs nothing extra because the write needs it anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from raftkube.mvcc.checks import (
    TxnPlan,
    branch_writes,
    compare_one,
    kv_error,
    put_shape_error,
    txn_shape_error,
)
from raftkube.mvcc.index import KeyIndex, decode_range
from raftkube.mvcc.lease import MAX_LEASE_TTL, MIN_LEASE_TTL, Lessor
from raftkube.mvcc.sessions import DEFAULT_SESSION_CAPACITY, SessionError, SessionTable
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.requests import (
    CompactionRequest,
    Compare,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    PutRequest,
    RangeRequest,
    Request,
    TxnRequest,
)
from raftkube_spec.kv.responses import (
    CompactionResponse,
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutResponse,
    RangeResponse,
    ResponseOp,
    Result,
    TxnResponse,
)
from raftkube_spec.kv.types import KeyValue, ResponseHeader

WriteObserver = Callable[[int, Sequence[KeyValue]], None]
"""Called after a write with its revision and its records (tombstones included) in write order."""


@attrs.define(slots=True, eq=False)
class _Write:
    """A write in progress: records made so far all carry ``revision``."""

    revision: int
    records: list[KeyValue] = attrs.field(factory=list)


class MvccStore:
    """The multi-version KV store, lessor and client sessions of one Raft member.

    Not thread-safe and not async: the Raft layer applies committed entries one
    at a time, in log order, which is exactly the sequential model it mirrors.
    """

    __slots__ = (
        "_compact_revision",
        "_handlers",
        "_index",
        "_lessor",
        "_observers",
        "_revision",
        "sessions",
    )

    def __init__(self, *, session_capacity: int = DEFAULT_SESSION_CAPACITY) -> None:
        self._index = KeyIndex()
        self._lessor = Lessor()
        self._revision = 1  # an empty etcd store is at revision 1
        self._compact_revision = 0  # 0: never compacted
        self._observers: list[WriteObserver] = []
        self.sessions = SessionTable(session_capacity)
        self._handlers: dict[type, Callable[[Any], Result]] = {
            RangeRequest: self._range,
            PutRequest: self._put,
            DeleteRangeRequest: self._delete_range,
            TxnRequest: self._txn,
            CompactionRequest: self._compact,
            LeaseGrantRequest: self._lease_grant,
            LeaseRevokeRequest: self._lease_revoke,
            LeaseKeepAliveRequest: self._lease_keep_alive,
            LeaseTimeToLiveRequest: self._lease_time_to_live,
        }

    # -- inspection -----------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The revision of the last write (1 on an empty store)."""
        return self._revision

    @property
    def compact_revision(self) -> int:
        """The last compaction point; reads below it fail, 0 means never compacted."""
        return self._compact_revision

    @property
    def index(self) -> KeyIndex:
        """The key index, for read-only use by the watch hub and snapshots."""
        return self._index

    @property
    def lessor(self) -> Lessor:
        """The lessor, for read-only use by snapshots and inspection."""
        return self._lessor

    def expired_leases(self, now_ms: int) -> tuple[int, ...]:
        """Leases past expiry at ``now_ms``, ascending: the leader commits a revoke for each."""
        return self._lessor.expired(now_ms)

    # -- observers ------------------------------------------------------------------------

    def subscribe(self, observer: WriteObserver) -> None:
        self._observers.append(observer)

    def unsubscribe(self, observer: WriteObserver) -> None:
        self._observers.remove(observer)

    # -- entry points ---------------------------------------------------------------------

    def apply(self, request: Request) -> Result:
        """Apply one committed request; a rejected one (a ``KVError``) changes nothing.

        There is no clock argument: the spec has the leader put its clock
        reading inside the lease requests before logging them, so every replica
        applies the same reading.
        """
        handler = self._handlers.get(type(request))
        if handler is None:
            raise TypeError(f"not a KV request: {request!r}")
        result = handler(request)
        if type(request) is not RangeRequest:
            # A slice of a compaction's trimming rides on every replicated request (reads
            # are served by one member only, so they never trim): see mvcc.index.
            self._index.trim()
        return result

    def register_client(self, client_id: int) -> None:
        """Open (or refresh) a client session; see :mod:`raftkube.mvcc.sessions`."""
        self.sessions.register(client_id)

    def apply_for_client(
        self,
        request: Request,
        *,
        client_id: int,
        sequence: int,
        lowest_unacked: int | None = None,
    ) -> Result | SessionError:
        """Apply ``request`` at most once for ``(client_id, sequence)``.

        A retry of an applied sequence returns the cached result without
        applying anything; an unknown or expired session is refused, because a
        retry could otherwise be applied twice. ``lowest_unacked`` is the
        client's lowest sequence still awaiting an answer (default: this one).
        """
        known = self.sessions.begin(client_id, sequence, lowest_unacked)
        if known is not None:
            return known
        result = self.apply(request)
        self.sessions.finish(client_id, sequence, result)
        return result

    # -- reads ----------------------------------------------------------------------------

    def _read(self, req: RangeRequest, at: int, header: int) -> RangeResponse:
        if req.range_end:
            start, end = decode_range(req.key, req.range_end)
            found = self._index.visible(start, end, at)
        else:
            history = self._index.get(req.key)
            kv = None if history is None else history.at(at)
            found = [] if kv is None else [kv]
        count = len(found)
        if req.count_only:
            return RangeResponse(ResponseHeader(header), count=count)
        limit = req.limit
        more = 0 < limit < count
        if more:
            found = found[:limit]
        if req.keys_only:
            found = [
                KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease)
                for kv in found
            ]
        return RangeResponse(ResponseHeader(header), kvs=tuple(found), more=more, count=count)

    def read_revision_error(self, revision: int) -> ErrorCode | None:
        """etcd's rule: reading *at* the compact revision is still allowed."""
        if revision <= 0:
            return None
        if revision > self._revision:
            return ErrorCode.FUTURE_REVISION
        if revision < self._compact_revision:
            return ErrorCode.COMPACTED
        return None

    def _range(self, req: RangeRequest) -> RangeResponse | KVError:
        """A standalone Range; the header carries the current revision even for an old read."""
        if not req.key:
            return kv_error(ErrorCode.EMPTY_KEY, self._revision)
        bad = self.read_revision_error(req.revision)
        if bad is not None:
            return kv_error(bad, self._revision)
        at = req.revision if req.revision > 0 else self._revision
        return self._read(req, at, self._revision)

    # -- writes ---------------------------------------------------------------------------

    def _reached(self, write: _Write) -> int:
        """The revision a response given now reports: the write's once it changed anything."""
        return write.revision if write.records else self._revision

    def _commit(self, write: _Write) -> None:
        if not write.records:
            return
        self._revision = write.revision
        for observer in self._observers:
            observer(write.revision, write.records)

    def _write_put(self, write: _Write, req: PutRequest) -> PutResponse:
        """Write one key at the write's revision; the request already passed its checks."""
        key = req.key
        rev = write.revision
        prev = self._index.latest(key)
        lessor = self._lessor
        if prev is None:
            # A new generation: absent before, or its last record is a tombstone.
            lease = req.lease
            kv = KeyValue(key, rev, rev, 1, req.value, lease)
        else:
            value = prev.value if req.ignore_value else req.value
            lease = prev.lease if req.ignore_lease else req.lease
            kv = KeyValue(key, prev.create_revision, rev, prev.version + 1, value, lease)
            if prev.lease and prev.lease != lease:
                lessor.detach(prev.lease, key)
        if lease:
            lessor.attach(lease, key)
        self._index.append(kv)
        write.records.append(kv)
        return PutResponse(ResponseHeader(rev), prev_kv=prev if req.prev_kv else None)

    def _tombstone(self, write: _Write, kv: KeyValue) -> None:
        """End ``kv``'s generation at the write's revision."""
        tomb = KeyValue(kv.key, mod_revision=write.revision)
        self._index.append(tomb)
        write.records.append(tomb)
        if kv.lease:
            self._lessor.detach(kv.lease, kv.key)

    def _write_delete(self, write: _Write, req: DeleteRangeRequest) -> DeleteRangeResponse:
        if req.range_end:
            start, end = decode_range(req.key, req.range_end)
            found = self._index.visible(start, end, write.revision)
        else:
            kv = self._index.latest(req.key)
            found = [] if kv is None else [kv]
        for kv in found:
            self._tombstone(write, kv)
        return DeleteRangeResponse(
            ResponseHeader(self._reached(write)),
            deleted=len(found),
            prev_kvs=tuple(found) if req.prev_kv else (),
        )

    def _put(self, req: PutRequest) -> PutResponse | KVError:
        """A standalone Put; etcd checks the lease before looking for a previous record."""
        bad = put_shape_error(req)
        if bad is not None:
            return kv_error(bad, self._revision)
        if req.lease and req.lease not in self._lessor:
            return kv_error(ErrorCode.LEASE_NOT_FOUND, self._revision)
        if (req.ignore_value or req.ignore_lease) and self._index.latest(req.key) is None:
            return kv_error(ErrorCode.KEY_NOT_FOUND, self._revision)
        write = _Write(self._revision + 1)
        resp = self._write_put(write, req)
        self._commit(write)
        return resp

    def _delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse | KVError:
        if not req.key:
            return kv_error(ErrorCode.EMPTY_KEY, self._revision)
        write = _Write(self._revision + 1)
        resp = self._write_delete(write, req)
        self._commit(write)
        return resp

    # -- txn ------------------------------------------------------------------------------

    def _compare_holds(self, c: Compare) -> bool:
        """etcd's ``applyCompare`` on the current store: every key in range must satisfy it.

        With no key in range a VALUE guard fails outright, while other targets
        are compared against the zero record (so ``version == 0`` means absent).
        """
        if c.range_end:
            start, end = decode_range(c.key, c.range_end)
            found = self._index.visible(start, end, self._revision)
        else:
            kv = self._index.latest(c.key)
            found = [] if kv is None else [kv]
        if not found:
            return c.target is not CompareTarget.VALUE and compare_one(c, KeyValue(c.key))
        return all(compare_one(c, kv) for kv in found)

    def _plan(self, txn: TxnRequest) -> TxnPlan:
        succeeded = all(self._compare_holds(c) for c in txn.compare)
        ops = txn.success if succeeded else txn.failure
        nested = [self._plan(op) for op in ops if isinstance(op, TxnRequest)]
        return TxnPlan(succeeded, ops, nested)

    def _path_error(self, plan: TxnPlan) -> ErrorCode | None:
        """Stage 4, on the pre-txn store: every Put's checks first, then every Range's."""
        path = list(plan.path())
        for op in path:
            if isinstance(op, PutRequest):
                # In a txn etcd looks for the previous record before the lease.
                if (op.ignore_value or op.ignore_lease) and self._index.latest(op.key) is None:
                    return ErrorCode.KEY_NOT_FOUND
                if op.lease and op.lease not in self._lessor:
                    return ErrorCode.LEASE_NOT_FOUND
        for op in path:
            if isinstance(op, RangeRequest):
                bad = self.read_revision_error(op.revision)
                if bad is not None:
                    return bad
        return None

    def _run(self, write: _Write, plan: TxnPlan) -> TxnResponse:
        responses: list[ResponseOp] = []
        nested = iter(plan.nested)
        for op in plan.ops:
            resp: ResponseOp
            if isinstance(op, RangeRequest):
                at = op.revision if op.revision > 0 else write.revision
                resp = self._read(op, at, self._reached(write))
            elif isinstance(op, PutRequest):
                resp = self._write_put(write, op)
            elif isinstance(op, DeleteRangeRequest):
                resp = self._write_delete(write, op)
            else:
                resp = self._run(write, next(nested))
            responses.append(resp)
        return TxnResponse(ResponseHeader(self._reached(write)), plan.succeeded, tuple(responses))

    def _txn(self, req: TxnRequest) -> TxnResponse | KVError:
        bad = txn_shape_error(req)
        if bad is not None:
            return kv_error(bad, self._revision)
        if branch_writes(req.success) is None or branch_writes(req.failure) is None:
            return kv_error(ErrorCode.DUPLICATE_KEY, self._revision)
        plan = self._plan(req)
        bad = self._path_error(plan)
        if bad is not None:
            return kv_error(bad, self._revision)
        write = _Write(self._revision + 1)
        resp = self._run(write, plan)
        self._commit(write)
        return resp

    # -- compaction -----------------------------------------------------------------------

    def _compact(self, req: CompactionRequest) -> CompactionResponse | KVError:
        """Forget history below ``req.revision``; current data and the revision are untouched."""
        if req.revision <= self._compact_revision:
            return kv_error(ErrorCode.COMPACTED, self._revision)
        if req.revision > self._revision:
            return kv_error(ErrorCode.FUTURE_REVISION, self._revision)
        self._compact_revision = req.revision
        self._index.compact(req.revision)
        return CompactionResponse(ResponseHeader(self._revision))

    # -- leases ---------------------------------------------------------------------------

    def _lease_grant(self, req: LeaseGrantRequest) -> LeaseGrantResponse | KVError:
        """Checks in etcd's lessor order: id 0 is "not found", then TTL bound, then duplicates."""
        if req.id == 0:
            return kv_error(ErrorCode.LEASE_NOT_FOUND, self._revision)
        if req.ttl > MAX_LEASE_TTL:
            return kv_error(ErrorCode.LEASE_TTL_TOO_LARGE, self._revision)
        if req.id in self._lessor:
            return kv_error(ErrorCode.LEASE_EXISTS, self._revision)
        ttl = max(req.ttl, MIN_LEASE_TTL)
        self._lessor.grant(req.id, ttl, req.now_ms + ttl * 1000)
        return LeaseGrantResponse(ResponseHeader(self._revision), req.id, ttl)

    def _lease_revoke(self, req: LeaseRevokeRequest) -> LeaseRevokeResponse | KVError:
        """Delete every attached key as one write (one revision, or none if it held nothing)."""
        lease = self._lessor.get(req.id)
        if lease is None:
            return kv_error(ErrorCode.LEASE_NOT_FOUND, self._revision)
        write = _Write(self._revision + 1)
        for key in sorted(lease.keys):
            kv = self._index.latest(key)
            if kv is not None:  # always, while the attach bookkeeping holds
                self._tombstone(write, kv)
        self._lessor.remove(req.id)
        self._commit(write)
        return LeaseRevokeResponse(ResponseHeader(self._revision))

    def _lease_keep_alive(self, req: LeaseKeepAliveRequest) -> LeaseKeepAliveResponse | KVError:
        """Restart the full TTL from ``now_ms``; a lease already past expiry is "not found"."""
        lease = self._lessor.get(req.id)
        if lease is None or lease.is_expired(req.now_ms):
            return kv_error(ErrorCode.LEASE_NOT_FOUND, self._revision)
        self._lessor.renew(lease, req.now_ms + lease.ttl * 1000)
        return LeaseKeepAliveResponse(ResponseHeader(self._revision), lease.id, lease.ttl)

    def _lease_time_to_live(self, req: LeaseTimeToLiveRequest) -> LeaseTimeToLiveResponse:
        """A missing lease is an ordinary answer with ``ttl == -1``, as etcd's gRPC layer gives."""
        header = ResponseHeader(self._revision)
        lease = self._lessor.get(req.id)
        if lease is None:
            return LeaseTimeToLiveResponse(header, req.id, ttl=-1)
        keys = tuple(sorted(lease.keys)) if req.keys else ()
        return LeaseTimeToLiveResponse(
            header, req.id, lease.remaining_seconds(req.now_ms), granted_ttl=lease.ttl, keys=keys
        )

    # -- restore --------------------------------------------------------------------------

    @classmethod
    def restored(
        cls,
        *,
        revision: int,
        compact_revision: int,
        index: KeyIndex,
        lessor: Lessor,
        sessions: SessionTable,
    ) -> MvccStore:
        """Assemble a store from restored parts (used by :mod:`raftkube.mvcc.snapshot`)."""
        store = cls()
        store._revision = revision
        store._compact_revision = compact_revision
        store._index = index
        store._lessor = lessor
        store.sessions = sessions
        return store
