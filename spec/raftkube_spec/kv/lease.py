"""Leases: grant, renew, revoke and inspect, with time as an explicit input.

Which keys a lease holds is not stored: it is exactly the set of live keys
whose current record names the lease, which is how etcd's attach/detach
bookkeeping behaves (a put moves a key between leases, a delete detaches it).

Expiry is not an operation here. The leader decides that a lease has expired
(:func:`expired_leases` tells it which) and commits an ordinary LeaseRevoke,
so every replica, and this model, sees expiry as that revoke.
"""

from __future__ import annotations

from raftkube_spec.kv.errors import ErrorCode, KVError, error
from raftkube_spec.kv.requests import (
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
)
from raftkube_spec.kv.responses import (
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
)
from raftkube_spec.kv.state import KVState, Lease
from raftkube_spec.kv.store import Draft, draft_delete_keys
from raftkube_spec.kv.types import ResponseHeader

MAX_LEASE_TTL = 9_000_000_000
"""etcd's ``lease.MaxLeaseTTL`` in seconds; larger grants are refused."""

MIN_LEASE_TTL = 1
"""Shorter grants are raised to this. etcd raises them to a minimum derived from its
election timeout (2 s by default); a server with a larger minimum applies it before
logging the grant, so the model only has to guarantee a positive TTL."""


def attached_keys(state: KVState, lease_id: int) -> tuple[bytes, ...]:
    """The live keys currently held by ``lease_id``, ascending."""
    return tuple(
        kv.key
        for h in state.keys
        if (kv := h.at(state.revision)) is not None and kv.lease == lease_id
    )


def _expired(lease: Lease, now_ms: int) -> bool:
    # etcd: a lease is expired once its remaining time is <= 0.
    return lease.expiry_ms <= now_ms


def expired_leases(state: KVState, now_ms: int) -> tuple[int, ...]:
    """Ids of leases past their expiry at ``now_ms``, ascending: what the leader should revoke."""
    return tuple(lease.id for lease in state.leases if _expired(lease, now_ms))


def lease_grant(
    state: KVState, req: LeaseGrantRequest
) -> tuple[KVState, LeaseGrantResponse | KVError]:
    """Checks in etcd's lessor order: id 0 is "not found", then TTL bound, then duplicates."""
    if req.id == 0:
        return state, error(ErrorCode.LEASE_NOT_FOUND, state.revision)
    if req.ttl > MAX_LEASE_TTL:
        return state, error(ErrorCode.LEASE_TTL_TOO_LARGE, state.revision)
    if state.lease(req.id) is not None:
        return state, error(ErrorCode.LEASE_EXISTS, state.revision)
    ttl = max(req.ttl, MIN_LEASE_TTL)
    after = state.with_lease(Lease(req.id, ttl, req.now_ms + ttl * 1000))
    return after, LeaseGrantResponse(ResponseHeader(after.revision), req.id, ttl)


def lease_revoke(
    state: KVState, req: LeaseRevokeRequest
) -> tuple[KVState, LeaseRevokeResponse | KVError]:
    """Delete every attached key as one write (one revision, or none if it held nothing)."""
    if state.lease(req.id) is None:
        return state, error(ErrorCode.LEASE_NOT_FOUND, state.revision)
    draft = draft_delete_keys(Draft(state), attached_keys(state, req.id))
    after = draft.commit().without_lease(req.id)
    return after, LeaseRevokeResponse(ResponseHeader(after.revision))


def lease_keep_alive(
    state: KVState, req: LeaseKeepAliveRequest
) -> tuple[KVState, LeaseKeepAliveResponse | KVError]:
    """Restart the lease's full TTL from ``now_ms``.

    A lease already past expiry is doomed: etcd's renew waits for the pending
    revoke and then reports the lease as not found, so the model refuses it
    without touching the state.
    """
    lease = state.lease(req.id)
    if lease is None or _expired(lease, req.now_ms):
        return state, error(ErrorCode.LEASE_NOT_FOUND, state.revision)
    after = state.with_lease(Lease(lease.id, lease.ttl, req.now_ms + lease.ttl * 1000))
    return after, LeaseKeepAliveResponse(ResponseHeader(after.revision), lease.id, lease.ttl)


def remaining_ttl(lease: Lease, now_ms: int) -> int:
    """Whole seconds left, truncated as etcd's ``int64(Remaining().Seconds())`` does.

    Past expiry (awaiting its revoke) this is 0, never negative, so it cannot
    be mistaken for the -1 that reports a missing lease.
    """
    return max(lease.expiry_ms - now_ms, 0) // 1000


def lease_time_to_live(state: KVState, req: LeaseTimeToLiveRequest) -> LeaseTimeToLiveResponse:
    """A missing lease is an ordinary answer with ``ttl == -1``, as etcd's gRPC layer gives."""
    header = ResponseHeader(state.revision)
    lease = state.lease(req.id)
    if lease is None:
        return LeaseTimeToLiveResponse(header, req.id, ttl=-1)
    keys = attached_keys(state, req.id) if req.keys else ()
    ttl = remaining_ttl(lease, req.now_ms)
    return LeaseTimeToLiveResponse(header, req.id, ttl, granted_ttl=lease.ttl, keys=keys)
