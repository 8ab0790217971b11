"""Hand-written examples for ``MvccStore`` and ``WatchHub``: the quirks, spelled out.

Each example also runs the spec model where it answers the same question, so a
reader sees the intended behaviour and the test still fails if either drifts.
"""

from __future__ import annotations

from typing import TypeVar

import msgpack  # type: ignore[import-untyped]
import pytest

from raftkube.mvcc import MvccStore, SnapshotFormatError, WatchHub, dump_snapshot, load_snapshot
from raftkube.mvcc.snapshot import capture, encode_parts
from raftkube_spec.kv import (
    FROM_KEY,
    CompactionRequest,
    CompactionResponse,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    ErrorCode,
    Event,
    EventType,
    KeyValue,
    KVError,
    KVState,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
    PutRequest,
    RangeRequest,
    RangeResponse,
    Request,
    RequestOp,
    ResponseHeader,
    Result,
    TxnRequest,
    TxnResponse,
    WatchCompacted,
    WatchFilter,
    apply,
    initial_state,
    prefix_range_end,
    watch_events,
)

R = TypeVar("R")


class Both:
    """A store and the model, fed the same requests; every answer must agree."""

    def __init__(self) -> None:
        self.store = MvccStore()
        self.hub = WatchHub(self.store)
        self.model: KVState = initial_state()

    def __call__(self, request: Request) -> Result:
        self.model, expected = apply(self.model, request)
        got = self.store.apply(request)
        assert got == expected
        return got

    def ok(self, request: Request, kind: type[R]) -> R:
        """Run ``request``, which must succeed with a ``kind`` response."""
        got = self(request)
        assert isinstance(got, kind), got
        return got

    def read(self, request: RangeRequest) -> RangeResponse:
        return self.ok(request, RangeResponse)

    def fails(self, request: Request) -> ErrorCode:
        """Run ``request``, which must be rejected; the revision in the error is the store's."""
        got = self(request)
        assert isinstance(got, KVError), got
        assert got.header.revision == self.store.revision
        return got.code


def kv(key: bytes, create: int, mod: int, version: int, value: bytes = b"") -> KeyValue:
    return KeyValue(key, create, mod, version, value)


def test_revisions_versions_and_generations() -> None:
    run = Both()
    assert run.store.revision == 1  # an empty etcd store is at revision 1
    run(PutRequest(b"k", b"v1"))
    run(PutRequest(b"k", b"v2"))
    run(DeleteRangeRequest(b"k"))
    run(PutRequest(b"k", b"v3"))
    assert run.read(RangeRequest(b"k")).kvs == (kv(b"k", 5, 5, 1, b"v3"),)
    assert run.read(RangeRequest(b"k", revision=3)).kvs == (kv(b"k", 2, 3, 2, b"v2"),)
    assert run.read(RangeRequest(b"k", revision=4)).kvs == ()
    assert run.store.revision == 5


def test_no_op_writes_keep_the_revision() -> None:
    run = Both()
    run(PutRequest(b"a", b"1"))
    resp = run.ok(DeleteRangeRequest(b"x", b"z"), DeleteRangeResponse)
    assert (resp.header.revision, resp.deleted) == (2, 0)
    run(TxnRequest(success=(RangeRequest(b"a"),)))
    run(LeaseGrantRequest(7, 10, now_ms=0))
    run(LeaseRevokeRequest(7))  # held no keys: no revision
    assert run.store.revision == 2


def test_range_limit_count_and_keys_only() -> None:
    run = Both()
    for key in (b"a", b"ab", b"abc", b"b"):
        run(PutRequest(key, b"value"))
    resp = run.read(RangeRequest(b"a", prefix_range_end(b"a"), limit=2, keys_only=True))
    assert [x.key for x in resp.kvs] == [b"a", b"ab"]
    assert all(x.value == b"" for x in resp.kvs)
    assert (resp.more, resp.count) == (True, 3)
    assert run.read(RangeRequest(b"a", FROM_KEY, count_only=True)).count == 4
    assert run.read(RangeRequest(b"b", b"a")).count == 0


def test_read_revision_errors_and_compaction() -> None:
    run = Both()
    for value in (b"1", b"2", b"3"):
        run(PutRequest(b"k", value))
    assert run.fails(CompactionRequest(0)) is ErrorCode.COMPACTED  # etcd: once, as a no-op
    run.ok(CompactionRequest(3), CompactionResponse)
    assert run.fails(RangeRequest(b"k", revision=2)) is ErrorCode.COMPACTED
    # Reading *at* the compact revision is still allowed.
    assert run.read(RangeRequest(b"k", revision=3)).kvs == (kv(b"k", 2, 3, 2, b"2"),)
    assert run.fails(RangeRequest(b"k", revision=5)) is ErrorCode.FUTURE_REVISION
    assert run.fails(CompactionRequest(3)) is ErrorCode.COMPACTED
    assert run.fails(CompactionRequest(9)) is ErrorCode.FUTURE_REVISION


def test_compaction_forgets_deleted_keys_entirely() -> None:
    store = MvccStore()
    for i in range(100):
        store.apply(PutRequest(b"k%03d" % i, b"v"))
    store.apply(DeleteRangeRequest(b"k", prefix_range_end(b"k")))
    store.apply(PutRequest(b"k000", b"again"))
    assert len(store.index) == 100
    store.apply(CompactionRequest(store.revision))
    # The trimming is done in batches, one after each write (mvcc.index): 201 triggers (100
    # superseded records, 100 tombstones, k000's new generation) take 7 writes of 32.
    assert len(store.index) > 1 and store.index.trim_pending
    reads_at_the_compact_revision = store.apply(RangeRequest(b"k", prefix_range_end(b"k")))
    for n in range(6):
        store.apply(PutRequest(b"other%d" % n, b"x"))
    assert len(store.index) == 1 + 6 and not store.index.trim_pending
    history = store.index.get(b"k000")
    assert history is not None and len(history.kvs) == 1
    assert store.apply(RangeRequest(b"k", prefix_range_end(b"k"))) == RangeResponse(
        ResponseHeader(store.revision),
        reads_at_the_compact_revision.kvs,  # type: ignore[union-attr]
        count=1,
    )


def test_put_then_delete_in_one_txn_shares_a_revision() -> None:
    """etcd's sub-revisions: nested txns put and then delete one key at one revision."""
    run = Both()
    run(PutRequest(b"k", b"old"))
    watcher = run.hub.watch(b"k", prev_kv=True)
    resp = run.ok(
        TxnRequest(
            success=(
                TxnRequest(success=(PutRequest(b"k", b"new"),)),
                TxnRequest(success=(DeleteRangeRequest(b"k", prev_kv=True),)),
            )
        ),
        TxnResponse,
    )
    assert resp.header.revision == 3
    old = kv(b"k", 2, 2, 1, b"old")
    new = kv(b"k", 2, 3, 2, b"new")
    # Both events carry the record a read at revision 2 sees, as etcd's prev_kv read does.
    expected = (
        Event(EventType.PUT, new, old),
        Event(EventType.DELETE, KeyValue(b"k", mod_revision=3), old),
    )
    assert run.hub.take(watcher) == expected
    assert watch_events(run.model, b"k", start_revision=3, prev_kv=True) == expected
    assert run.read(RangeRequest(b"k")).count == 0


def test_txn_guards_see_the_store_before_the_txn() -> None:
    run = Both()
    absent = Compare(b"a", CompareTarget.VERSION, CompareResult.EQUAL, 0)
    resp = run.ok(
        TxnRequest(
            success=(
                PutRequest(b"a", b"1"),
                # A nested guard is judged before the txn ran, so "a" is still absent;
                # a read in the nested txn does see the write.
                TxnRequest(compare=(absent,), success=(RangeRequest(b"a"),)),
            )
        ),
        TxnResponse,
    )
    nested = resp.responses[1]
    assert isinstance(nested, TxnResponse) and nested.succeeded
    assert nested.responses == (
        RangeResponse(ResponseHeader(2), (kv(b"a", 2, 2, 1, b"1"),), count=1),
    )
    assert run.fails(TxnRequest(success=(PutRequest(b"a"), PutRequest(b"a")))) is (
        ErrorCode.DUPLICATE_KEY
    )
    # Unlike etcd, a "from key" delete covers the keys after it in the duplicate check.
    from_key = TxnRequest(success=(DeleteRangeRequest(b"a", FROM_KEY), PutRequest(b"b")))
    assert run.fails(from_key) is ErrorCode.DUPLICATE_KEY


def test_duplicate_key_rule_is_etcds_check_intervals() -> None:
    run = Both()

    def nested(*success: RequestOp, failure: tuple[RequestOp, ...] = ()) -> TxnRequest:
        return TxnRequest(success=success, failure=failure)

    put, delete = PutRequest(b"k"), DeleteRangeRequest(b"k")
    # The two exclusive branches of one nested txn may put the same key...
    run.ok(TxnRequest(success=(nested(put, failure=(put,)),)), TxnResponse)
    # ...an earlier nested txn may put a key a later one deletes...
    run.ok(TxnRequest(success=(nested(put), nested(delete))), TxnResponse)
    # ...but not the other way round, nor a put beside a nested put of the same key.
    refused = [
        TxnRequest(success=(nested(delete), nested(put))),
        TxnRequest(success=(put, nested(put))),
        TxnRequest(success=(nested(put), nested(failure=(put,)))),
        TxnRequest(failure=(delete, nested(put))),
    ]
    for txn in refused:
        assert run.fails(txn) is ErrorCode.DUPLICATE_KEY


def test_leases_attach_revoke_and_time_to_live() -> None:
    run = Both()
    run(LeaseGrantRequest(1, ttl=10, now_ms=1_000))
    run(PutRequest(b"x", b"1", lease=1))
    run(PutRequest(b"y", b"1", lease=1))
    run(PutRequest(b"y", b"2"))  # moves y off the lease
    ttl = run.ok(LeaseTimeToLiveRequest(1, now_ms=2_999, keys=True), LeaseTimeToLiveResponse)
    assert (ttl.ttl, ttl.granted_ttl, ttl.keys) == (8, 10, (b"x",))
    assert run.store.expired_leases(10_999) == ()
    assert run.store.expired_leases(11_000) == (1,)
    doomed = LeaseKeepAliveRequest(1, now_ms=11_000)  # already expired, not yet revoked
    assert run.fails(doomed) is ErrorCode.LEASE_NOT_FOUND
    assert run.ok(LeaseTimeToLiveRequest(1, now_ms=20_000), LeaseTimeToLiveResponse).ttl == 0
    run(LeaseRevokeRequest(1))
    assert run.store.revision == 5
    assert run.read(RangeRequest(b"x")).count == 0
    assert run.ok(LeaseTimeToLiveRequest(1, now_ms=0), LeaseTimeToLiveResponse).ttl == -1
    assert run.fails(PutRequest(b"z", lease=1)) is ErrorCode.LEASE_NOT_FOUND


def test_watch_backlog_compacted_notice_and_filters() -> None:
    run = Both()
    run(PutRequest(b"a", b"1"))
    run(DeleteRangeRequest(b"a"))
    run(PutRequest(b"b", b"1"))
    run(CompactionRequest(3))
    hub = run.hub
    dead = hub.watch(b"a", FROM_KEY, start_revision=2)
    assert hub.take(dead) == WatchCompacted(3)
    with pytest.raises(KeyError):
        hub.take(dead)
    # From exactly the compact revision the DELETE there is still delivered (without prev_kv).
    at_compact = hub.watch(b"a", FROM_KEY, start_revision=3, prev_kv=True)
    expected = watch_events(run.model, b"a", FROM_KEY, 3, prev_kv=True)
    assert hub.take(at_compact) == expected
    assert isinstance(expected, tuple)
    assert [e.type for e in expected] == [EventType.DELETE, EventType.PUT]
    no_puts = hub.watch(b"a", FROM_KEY, filters=frozenset({WatchFilter.NOPUT}))
    run(PutRequest(b"c"))
    run(DeleteRangeRequest(b"b"))
    assert hub.take(no_puts) == (Event(EventType.DELETE, KeyValue(b"b", mod_revision=6)),)


def test_watch_from_the_future_and_ready_notifications() -> None:
    store = MvccStore()
    ready: list[int] = []
    hub = WatchHub(store, on_ready=ready.append)
    future = hub.watch(b"k", start_revision=3)
    store.apply(PutRequest(b"k", b"1"))  # revision 2: before the watch starts
    assert not hub.has_pending(future) and ready == []
    store.apply(PutRequest(b"k", b"2"))
    store.apply(PutRequest(b"k", b"3"))
    assert ready == [future]  # once, on going from idle to pending
    events = hub.take(future)
    assert isinstance(events, tuple)
    assert [e.kv.value for e in events] == [b"2", b"3"]
    hub.cancel(future)
    store.apply(PutRequest(b"k", b"4"))
    assert len(hub) == 0 and ready == [future]
    hub.close()


def test_snapshot_round_trip_and_corruption() -> None:
    run = Both()
    run(LeaseGrantRequest(5, ttl=3, now_ms=0))
    run(PutRequest(b"a", b"1", lease=5))
    run(PutRequest(b"a", b"2", lease=5))
    run(DeleteRangeRequest(b"a"))
    run(PutRequest(b"b", b"1", lease=5))
    data = dump_snapshot(run.store)
    restored = load_snapshot(data)
    assert dump_snapshot(restored) == data
    assert restored.apply(RangeRequest(b"a", revision=3)) == run(RangeRequest(b"a", revision=3))
    assert restored.apply(LeaseRevokeRequest(5)) == run(LeaseRevokeRequest(5))
    for bad in (b"", b"\x01\x02", data[:-3], dump_snapshot(MvccStore())[:1] + b"\x07"):
        with pytest.raises(SnapshotFormatError):
            load_snapshot(bad)


def test_snapshot_parts_are_the_whole_document_packed_at_once() -> None:
    """The image is packed a key at a time (``encode_parts``), records as tuples: the bytes
    must be exactly those of the whole document packed in one call, the canonical form, with
    tombstones, a txn's two records at one revision, leases, sessions and records a
    compaction dropped but trimming has not reached yet (left out, as the rule says)."""
    store = MvccStore()
    store.apply(LeaseGrantRequest(5, ttl=3, now_ms=0))
    store.register_client(7)
    store.apply_for_client(PutRequest(b"a", b"1", lease=5), client_id=7, sequence=1)
    store.apply(PutRequest(b"a", b"2"))
    store.apply(PutRequest(b"b", b"1"))
    store.apply(DeleteRangeRequest(b"b"))
    for n in range(40):  # more triggers than one batch trims
        store.apply(PutRequest(b"e", b"%d" % n))
    store.apply(
        TxnRequest(
            success=(
                TxnRequest(success=(PutRequest(b"c", b"1"),)),
                TxnRequest(success=(DeleteRangeRequest(b"c"),)),
            )
        )
    )
    store.apply(PutRequest(b"d", b"1", lease=5))
    store.apply(CompactionRequest(store.revision))
    assert store.index.trim_pending  # what it drops goes later, in batches
    view = capture(store)
    try:
        parts = encode_parts(view)
    finally:
        view.release()
    latest = [store.index.latest(k) for k in (b"a", b"d", b"e")]
    records = [
        [kv.key, [[kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease]]]
        for kv in latest
        if kv is not None
    ]
    assert len(records) == 3
    document = msgpack.unpackb(b"".join(parts), raw=False, strict_map_key=False)
    assert document[3] == records  # b's tombstone and c's records: compacted away
    assert b"".join(parts) == msgpack.packb(document, use_bin_type=True) == dump_snapshot(store)
    store.index.trim_all()
    assert dump_snapshot(store) == b"".join(parts)
    assert dump_snapshot(load_snapshot(memoryview(b"xx" + b"".join(parts))[2:])) == b"".join(parts)


def test_a_snapshot_whose_key_names_a_missing_lease_is_refused() -> None:
    store = MvccStore()
    store.apply(LeaseGrantRequest(5, ttl=3, now_ms=0))
    store.apply(PutRequest(b"a", b"1", lease=5))
    document = msgpack.unpackb(dump_snapshot(store), raw=False, strict_map_key=False)
    assert load_snapshot(msgpack.packb(document, use_bin_type=True)).lessor.get(5) is not None
    document[4] = []  # the leases
    with pytest.raises(SnapshotFormatError, match="key b'a' names missing lease 5"):
        load_snapshot(msgpack.packb(document, use_bin_type=True))


def test_apply_refuses_what_is_not_a_request() -> None:
    with pytest.raises(TypeError):
        MvccStore().apply("put k v")  # type: ignore[arg-type]
