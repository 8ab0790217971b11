"""Executable sequential specification of etcd v3's KV, lease and watch semantics.

Theory of operation
-------------------
The model is a single immutable value, :class:`KVState`, and a total pure
function ``apply(state, request) -> (state, result)``. Results are response
values or :class:`KVError` values; a rejected request returns the state
unchanged. Watches are not requests: :func:`watch_events` says which events a
watch from a given revision must have delivered, and :func:`expired_leases`
says which leases a leader should revoke at a given time. Both are queries.

The store is multi-version exactly as etcd's MVCC store is: one revision per
write request (starting at 1 on an empty store), per-key create/mod revision
and version, tombstones that end a generation, reads at old revisions until
compaction, and compaction that forgets only what nothing can observe any
more. States compare equal exactly when no client could tell them apart,
which is what a memoizing linearizability search needs.

Left out: authentication, sort orders and revision filters on Range,
serializable reads, the txn op-count limit and other server configuration,
cluster/member/term header fields, watch progress notifications and
fragmentation, and lease checkpoints. Lease ids and clock readings arrive
inside requests because the leader chooses them before logging.

Choices where etcd is ambiguous or quirky (each documented where it is made):
events within one revision are in key order (etcd: write order); a "from key"
delete conflicts with puts in the txn duplicate-key check (etcd: it never
does); responses nested in a txn carry the revision reached so far (etcd
leaves a nested txn's header at 0); LeaseTimeToLive truncates to whole
seconds and never goes below 0 for a lease that still exists; a keep-alive of
an expired, not yet revoked lease is "not found"; a watch from the compact
revision still gets a DELETE at that revision; Compact(0) on a fresh store is
"compacted" (etcd accepts it once, as a no-op).

Rules for this package: pure and deterministic — no I/O, clock, randomness or
threads; standard library and ``attrs`` only; nothing from the implementation
(``raftkube``) or the fuzzer (``raftkube_fuzz``); all state and messages are
frozen ``attrs`` classes holding tuples and frozensets; ``mypy --strict`` clean.
"""

from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.keyrange import FROM_KEY, prefix_range_end
from raftkube_spec.kv.lease import (
    MAX_LEASE_TTL,
    attached_keys,
    expired_leases,
    lease_grant,
    lease_keep_alive,
    lease_revoke,
    lease_time_to_live,
)
from raftkube_spec.kv.ops import apply
from raftkube_spec.kv.requests import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    PutRequest,
    RangeRequest,
    Request,
    RequestOp,
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
    Response,
    ResponseOp,
    Result,
    TxnResponse,
)
from raftkube_spec.kv.state import KVState, Lease, initial_state
from raftkube_spec.kv.store import compact, delete_range, put, range_keys
from raftkube_spec.kv.txn import compare_holds, txn
from raftkube_spec.kv.types import Event, EventType, KeyValue, ResponseHeader
from raftkube_spec.kv.watch import WatchCompacted, WatchFilter, watch_events

__all__ = [
    "FROM_KEY",
    "MAX_LEASE_TTL",
    "CompactionRequest",
    "CompactionResponse",
    "Compare",
    "CompareResult",
    "CompareTarget",
    "DeleteRangeRequest",
    "DeleteRangeResponse",
    "ErrorCode",
    "Event",
    "EventType",
    "KVError",
    "KVState",
    "KeyValue",
    "Lease",
    "LeaseGrantRequest",
    "LeaseGrantResponse",
    "LeaseKeepAliveRequest",
    "LeaseKeepAliveResponse",
    "LeaseRevokeRequest",
    "LeaseRevokeResponse",
    "LeaseTimeToLiveRequest",
    "LeaseTimeToLiveResponse",
    "PutRequest",
    "PutResponse",
    "RangeRequest",
    "RangeResponse",
    "Request",
    "RequestOp",
    "Response",
    "ResponseHeader",
    "ResponseOp",
    "Result",
    "TxnRequest",
    "TxnResponse",
    "WatchCompacted",
    "WatchFilter",
    "apply",
    "attached_keys",
    "compact",
    "compare_holds",
    "delete_range",
    "expired_leases",
    "initial_state",
    "lease_grant",
    "lease_keep_alive",
    "lease_revoke",
    "lease_time_to_live",
    "prefix_range_end",
    "put",
    "range_keys",
    "txn",
    "watch_events",
]
