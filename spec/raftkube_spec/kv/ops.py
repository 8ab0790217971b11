"""One entry point for checkers: ``apply(state, request) -> (state, result)``.

A linearizability search or a stateful test only needs to replay requests in
some order; routing every request kind through one total function keeps those
tools ignorant of which requests read and which write.
"""

from __future__ import annotations

from raftkube_spec.kv.lease import lease_grant, lease_keep_alive, lease_revoke, lease_time_to_live
from raftkube_spec.kv.requests import (
    CompactionRequest,
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
from raftkube_spec.kv.responses import Result
from raftkube_spec.kv.state import KVState
from raftkube_spec.kv.store import compact, delete_range, put, range_keys
from raftkube_spec.kv.txn import txn


def apply(state: KVState, request: Request) -> tuple[KVState, Result]:
    """Run one request. A rejected request returns the very same state object."""
    match request:
        case RangeRequest():
            return state, range_keys(state, request)
        case PutRequest():
            return put(state, request)
        case DeleteRangeRequest():
            return delete_range(state, request)
        case TxnRequest():
            return txn(state, request)
        case CompactionRequest():
            return compact(state, request)
        case LeaseGrantRequest():
            return lease_grant(state, request)
        case LeaseRevokeRequest():
            return lease_revoke(state, request)
        case LeaseKeepAliveRequest():
            return lease_keep_alive(state, request)
        case LeaseTimeToLiveRequest():
            return state, lease_time_to_live(state, request)
