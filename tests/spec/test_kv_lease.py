"""Examples of etcd's lease semantics in the model, with time as an explicit input."""

from __future__ import annotations

from raftkube_spec.kv import (
    MAX_LEASE_TTL,
    DeleteRangeRequest,
    ErrorCode,
    Event,
    EventType,
    KeyValue,
    KVError,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseKeepAliveRequest,
    LeaseKeepAliveResponse,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
    PutRequest,
    apply,
    attached_keys,
    expired_leases,
    initial_state,
    watch_events,
)
from tests.helpers.kv_model import err, kv_of, run


def test_grant_and_time_to_live() -> None:
    s, [g] = run(LeaseGrantRequest(7, 10, now_ms=1_000))
    assert g == LeaseGrantResponse(g.header, 7, 10)
    assert s.revision == 1  # leases do not touch the KV revision
    _, ttl = apply(s, LeaseTimeToLiveRequest(7, now_ms=1_000))
    assert isinstance(ttl, LeaseTimeToLiveResponse) and (ttl.ttl, ttl.granted_ttl) == (10, 10)
    # Remaining time is truncated to whole seconds.
    _, ttl = apply(s, LeaseTimeToLiveRequest(7, now_ms=1_001))
    assert isinstance(ttl, LeaseTimeToLiveResponse) and ttl.ttl == 9
    _, ttl = apply(s, LeaseTimeToLiveRequest(7, now_ms=10_999))
    assert isinstance(ttl, LeaseTimeToLiveResponse) and ttl.ttl == 0
    # Past expiry but not yet revoked: 0, never negative.
    _, ttl = apply(s, LeaseTimeToLiveRequest(7, now_ms=50_000))
    assert isinstance(ttl, LeaseTimeToLiveResponse) and ttl.ttl == 0 and ttl.granted_ttl == 10


def test_missing_lease_time_to_live_is_minus_one() -> None:
    _, ttl = apply(initial_state(), LeaseTimeToLiveRequest(3, now_ms=0, keys=True))
    assert ttl == LeaseTimeToLiveResponse(ttl.header, 3, -1, 0, ())


def test_grant_rejections() -> None:
    s, _ = run(LeaseGrantRequest(1, 5, 0))
    for req, code in (
        (LeaseGrantRequest(1, 5, 0), ErrorCode.LEASE_EXISTS),
        (LeaseGrantRequest(0, 5, 0), ErrorCode.LEASE_NOT_FOUND),
        (LeaseGrantRequest(2, MAX_LEASE_TTL + 1, 0), ErrorCode.LEASE_TTL_TOO_LARGE),
    ):
        after, r = apply(s, req)
        assert err(r) is code and after is s
    _, r = apply(s, LeaseGrantRequest(1, 5, 0))
    assert isinstance(r, KVError) and r.message == "etcdserver: lease already exists"
    s, [r] = run(LeaseGrantRequest(2, 0, 0), state=s)
    assert isinstance(r, LeaseGrantResponse) and r.ttl == 1


def test_keep_alive_renews_full_ttl() -> None:
    s, _ = run(LeaseGrantRequest(1, 10, now_ms=0))
    s, [k] = run(LeaseKeepAliveRequest(1, now_ms=9_000), state=s)
    assert isinstance(k, LeaseKeepAliveResponse) and (k.id, k.ttl) == (1, 10)
    assert expired_leases(s, 10_000) == ()
    assert expired_leases(s, 19_000) == (1,)
    for req in (LeaseKeepAliveRequest(2, now_ms=0), LeaseKeepAliveRequest(1, now_ms=19_000)):
        after, r = apply(s, req)
        assert err(r) is ErrorCode.LEASE_NOT_FOUND and after is s


def test_expired_leases_sorted() -> None:
    s, _ = run(
        LeaseGrantRequest(9, 1, 0), LeaseGrantRequest(-4, 1, 0), LeaseGrantRequest(3, 100, 0)
    )
    assert expired_leases(s, 999) == ()
    assert expired_leases(s, 1_000) == (-4, 9)


def test_keys_attach_detach_and_move_between_leases() -> None:
    s, _ = run(
        LeaseGrantRequest(1, 10, 0),
        LeaseGrantRequest(2, 10, 0),
        PutRequest(b"b", b"v", lease=1),
        PutRequest(b"a", b"v", lease=1),
        PutRequest(b"c", b"v", lease=1),
        PutRequest(b"c", b"w", lease=2),  # moves c to lease 2
        DeleteRangeRequest(b"b"),  # detaches b
        PutRequest(b"d", b"v"),
    )
    assert attached_keys(s, 1) == (b"a",)
    assert attached_keys(s, 2) == (b"c",)
    _, ttl = apply(s, LeaseTimeToLiveRequest(1, now_ms=0, keys=True))
    assert isinstance(ttl, LeaseTimeToLiveResponse) and ttl.keys == (b"a",)
    _, ttl = apply(s, LeaseTimeToLiveRequest(1, now_ms=0))
    assert isinstance(ttl, LeaseTimeToLiveResponse) and ttl.keys == ()


def test_revoke_deletes_attached_keys_at_one_revision() -> None:
    s, _ = run(
        LeaseGrantRequest(1, 10, 0),
        PutRequest(b"x", b"1", lease=1),
        PutRequest(b"a", b"1", lease=1),
        PutRequest(b"m", b"1"),
    )
    assert s.revision == 4
    s, [r] = run(LeaseRevokeRequest(1), state=s)
    assert isinstance(r, LeaseRevokeResponse) and r.header.revision == 5 == s.revision
    assert kv_of(s, b"a") is None and kv_of(s, b"x") is None and kv_of(s, b"m") is not None
    assert s.lease(1) is None
    assert watch_events(s, b"\x00", b"\x00", start_revision=5) == (
        Event(EventType.DELETE, KeyValue(b"a", mod_revision=5)),
        Event(EventType.DELETE, KeyValue(b"x", mod_revision=5)),
    )
    after, r = apply(s, LeaseRevokeRequest(1))
    assert err(r) is ErrorCode.LEASE_NOT_FOUND and after is s
    after, r = apply(s, PutRequest(b"a", b"2", lease=1))
    assert err(r) is ErrorCode.LEASE_NOT_FOUND and after is s


def test_revoke_of_empty_lease_does_not_bump_revision() -> None:
    s, _ = run(LeaseGrantRequest(1, 10, 0), PutRequest(b"a", b"1", lease=1), PutRequest(b"a", b"2"))
    s, [r] = run(LeaseRevokeRequest(1), state=s)
    assert isinstance(r, LeaseRevokeResponse) and r.header.revision == 3 == s.revision
    assert kv_of(s, b"a") is not None
    assert s.leases == ()


def test_expired_but_unrevoked_lease_still_accepts_puts() -> None:
    # The lease is gone only once the leader's revoke is applied.
    s, _ = run(LeaseGrantRequest(1, 1, 0))
    assert expired_leases(s, 5_000) == (1,)
    s, [r] = run(PutRequest(b"a", lease=1), state=s)
    assert not isinstance(r, KVError)
