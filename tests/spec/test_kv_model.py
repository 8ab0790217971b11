"""Hand-written examples of etcd v3's documented KV behaviour, against the pure model."""

from __future__ import annotations

import attrs

from raftkube_spec.kv import (
    FROM_KEY,
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    ErrorCode,
    KeyValue,
    KVError,
    KVState,
    LeaseGrantRequest,
    PutRequest,
    PutResponse,
    RangeRequest,
    TxnRequest,
    TxnResponse,
    apply,
    initial_state,
    prefix_range_end,
)
from tests.helpers.kv_model import err, get, kv_of, run

EQ = CompareResult.EQUAL


# -- revisions and versions ---------------------------------------------------------------


def test_empty_store_is_at_revision_one() -> None:
    s = initial_state()
    assert s.revision == 1
    r = get(s, b"a")
    assert r.header.revision == 1 and r.kvs == () and r.count == 0 and not r.more


def test_each_put_bumps_revision_and_tracks_version() -> None:
    s, rs = run(PutRequest(b"a", b"1"), PutRequest(b"b", b"x"), PutRequest(b"a", b"2"))
    assert [r.header.revision for r in rs] == [2, 3, 4]
    assert kv_of(s, b"a") == KeyValue(b"a", 2, 4, 2, b"2", 0)
    assert kv_of(s, b"b") == KeyValue(b"b", 3, 3, 1, b"x", 0)


def test_delete_then_reput_starts_a_new_generation() -> None:
    s, rs = run(
        PutRequest(b"a", b"1"),
        PutRequest(b"a", b"2"),
        DeleteRangeRequest(b"a"),
        PutRequest(b"a", b"3"),
    )
    assert rs[2] == DeleteRangeResponse(header=rs[2].header, deleted=1)
    assert s.revision == 5
    assert kv_of(s, b"a") == KeyValue(b"a", 5, 5, 1, b"3", 0)
    # The old generation is still readable at its revisions.
    assert kv_of(s, b"a", revision=3) == KeyValue(b"a", 2, 3, 2, b"2", 0)
    assert kv_of(s, b"a", revision=4) is None


def test_noop_delete_does_not_bump_revision() -> None:
    s, [r] = run(DeleteRangeRequest(b"missing", b"\xff"))
    assert isinstance(r, DeleteRangeResponse)
    assert r.deleted == 0 and r.header.revision == 1 and s == initial_state()


def test_put_prev_kv_and_delete_prev_kvs() -> None:
    s, rs = run(
        PutRequest(b"a", b"1", prev_kv=True),
        PutRequest(b"a", b"2", prev_kv=True),
        PutRequest(b"b", b"3"),
        DeleteRangeRequest(b"a", b"c", prev_kv=True),
    )
    assert rs[0] == PutResponse(header=rs[0].header, prev_kv=None)
    assert isinstance(rs[1], PutResponse)
    assert rs[1].prev_kv == KeyValue(b"a", 2, 2, 1, b"1", 0)
    assert isinstance(rs[3], DeleteRangeResponse)
    assert rs[3].deleted == 2
    assert [kv.key for kv in rs[3].prev_kvs] == [b"a", b"b"]
    assert rs[3].header.revision == 5 == s.revision


def test_delete_range_deletes_many_keys_at_one_revision() -> None:
    s, rs = run(
        *(PutRequest(k, b"v") for k in (b"a", b"b", b"bb", b"c")), DeleteRangeRequest(b"a", b"c")
    )
    assert isinstance(rs[-1], DeleteRangeResponse) and rs[-1].deleted == 3
    assert s.revision == 6 == rs[-1].header.revision
    assert get(s, b"a", range_end=FROM_KEY).kvs == (KeyValue(b"c", 5, 5, 1, b"v", 0),)


# -- ranges -------------------------------------------------------------------------------


def test_prefix_range_end() -> None:
    assert prefix_range_end(b"abc") == b"abd"
    assert prefix_range_end(b"a\xff") == b"b"
    assert prefix_range_end(b"a\xff\xff") == b"b"
    assert prefix_range_end(b"\xff\xff") == b"\x00"
    assert prefix_range_end(b"") == b"\x00"
    assert prefix_range_end(b"\x00") == b"\x01"


def _abc_store() -> KVState:
    keys = (b"a", b"ab", b"abc", b"b", b"b\xff", b"c")
    return run(*(PutRequest(k, k.upper()) for k in keys))[0]


def test_prefix_and_from_key_and_interval_ranges() -> None:
    s = _abc_store()

    def keys(key: bytes, end: bytes) -> list[bytes]:
        return [kv.key for kv in get(s, key, range_end=end).kvs]

    assert keys(b"a", prefix_range_end(b"a")) == [b"a", b"ab", b"abc"]
    assert keys(b"ab", prefix_range_end(b"ab")) == [b"ab", b"abc"]
    assert keys(b"b", FROM_KEY) == [b"b", b"b\xff", b"c"]
    assert keys(b"ab", b"b\xff") == [b"ab", b"abc", b"b"]
    assert keys(b"ab", b"") == [b"ab"]
    assert keys(b"c", b"a") == []  # an inverted interval is empty
    assert keys(b"\x00", FROM_KEY) == [b"a", b"ab", b"abc", b"b", b"b\xff", b"c"]


def test_limit_more_count_keys_only_count_only() -> None:
    s = _abc_store()
    r = get(s, b"a", range_end=FROM_KEY, limit=2)
    assert [kv.key for kv in r.kvs] == [b"a", b"ab"] and r.more and r.count == 6
    r = get(s, b"a", range_end=FROM_KEY, limit=6)
    assert len(r.kvs) == 6 and not r.more and r.count == 6
    r = get(s, b"a", range_end=FROM_KEY, limit=-1)  # non-positive limit: unlimited
    assert len(r.kvs) == 6 and not r.more
    r = get(s, b"a", range_end=b"b", keys_only=True)
    assert [(kv.key, kv.value, kv.version) for kv in r.kvs] == [
        (b"a", b"", 1),
        (b"ab", b"", 1),
        (b"abc", b"", 1),
    ]
    r = get(s, b"a", range_end=FROM_KEY, count_only=True, limit=1)
    assert r.kvs == () and r.count == 6 and not r.more


def test_empty_key_is_rejected_everywhere() -> None:
    s = _abc_store()
    for req in (
        RangeRequest(b""),
        PutRequest(b"", b"v"),
        DeleteRangeRequest(b"", FROM_KEY),
        TxnRequest(compare=(Compare(b"", CompareTarget.VERSION, EQ, 0),)),
        TxnRequest(failure=(RangeRequest(b""),)),
        TxnRequest(success=(TxnRequest(failure=(PutRequest(b""),)),)),
    ):
        after, r = apply(s, req)
        assert err(r) is ErrorCode.EMPTY_KEY
        assert isinstance(r, KVError) and r.message == "etcdserver: key is not provided"
        assert after is s


def test_historical_read_reports_current_header() -> None:
    s, _ = run(PutRequest(b"a", b"1"), PutRequest(b"a", b"2"))
    r = get(s, b"a", revision=2)
    assert r.kvs[0].value == b"1" and r.header.revision == 3


# -- compaction ---------------------------------------------------------------------------


def test_compaction_errors_at_and_below_and_above() -> None:
    s, _ = run(*(PutRequest(b"a", bytes([i])) for i in range(5)))  # revisions 2..6
    s, [ok] = run(CompactionRequest(4), state=s)
    assert not isinstance(ok, KVError) and ok.header.revision == 6 and s.compact_revision == 4
    # Reading at the compact revision is allowed; below it is not.
    assert kv_of(s, b"a", revision=4) == KeyValue(b"a", 2, 4, 3, b"\x02", 0)
    _, r = apply(s, RangeRequest(b"a", revision=3))
    assert err(r) is ErrorCode.COMPACTED
    assert isinstance(r, KVError)
    assert r.message == "etcdserver: mvcc: required revision has been compacted"
    _, r = apply(s, RangeRequest(b"a", revision=7))
    assert err(r) is ErrorCode.FUTURE_REVISION
    assert isinstance(r, KVError)
    assert r.message == "etcdserver: mvcc: required revision is a future revision"
    # Compacting at or below the compaction point again, or into the future, fails.
    for rev, code in (
        (4, ErrorCode.COMPACTED),
        (2, ErrorCode.COMPACTED),
        (7, ErrorCode.FUTURE_REVISION),
    ):
        after, r = apply(s, CompactionRequest(rev))
        assert err(r) is code and after is s
    # Current data and the revision are unchanged.
    assert kv_of(s, b"a") == KeyValue(b"a", 2, 6, 5, b"\x04", 0)
    assert s.revision == 6


def test_compaction_keeps_create_revision_of_surviving_generation() -> None:
    s, _ = run(
        PutRequest(b"a", b"1"), PutRequest(b"b", b"1"), PutRequest(b"b", b"2"), CompactionRequest(4)
    )
    assert kv_of(s, b"a") == KeyValue(b"a", 2, 2, 1, b"1", 0)
    assert kv_of(s, b"b", revision=4) == KeyValue(b"b", 3, 4, 2, b"2", 0)


def test_compaction_forgets_unobservable_history_so_states_compare_equal() -> None:
    common = (PutRequest(b"a", b"1"),)
    one, _ = run(
        *common,
        PutRequest(b"x", b"1"),
        DeleteRangeRequest(b"x"),
        PutRequest(b"y", b"1"),
        CompactionRequest(5),
    )
    two, _ = run(
        *common,
        PutRequest(b"z", b"9"),
        DeleteRangeRequest(b"z"),
        PutRequest(b"y", b"1"),
        CompactionRequest(5),
    )
    assert one == two and hash(one) == hash(two)
    # Before compaction the difference was observable.
    pre_one, _ = run(*common, PutRequest(b"x", b"1"), DeleteRangeRequest(b"x"))
    pre_two, _ = run(*common, PutRequest(b"z", b"9"), DeleteRangeRequest(b"z"))
    assert pre_one != pre_two


def test_fresh_store_compaction() -> None:
    s, [r] = run(CompactionRequest(1))
    assert not isinstance(r, KVError) and s.compact_revision == 1
    assert kv_of(s, b"a", revision=1) is None
    _, [r] = run(CompactionRequest(0))
    assert err(r) is ErrorCode.COMPACTED


# -- put options and leases ---------------------------------------------------------------


def test_put_with_missing_lease_is_rejected_without_change() -> None:
    s, _ = run(PutRequest(b"a", b"1"))
    after, r = apply(s, PutRequest(b"a", b"2", lease=7))
    assert err(r) is ErrorCode.LEASE_NOT_FOUND and after is s
    assert isinstance(r, KVError) and r.message == "etcdserver: requested lease not found"


def test_ignore_value_and_ignore_lease() -> None:
    s, _ = run(
        LeaseGrantRequest(1, 10, 0),
        LeaseGrantRequest(2, 10, 0),
        PutRequest(b"a", b"v", lease=1),
        PutRequest(b"a", ignore_value=True, lease=2),
    )
    assert kv_of(s, b"a") == KeyValue(b"a", 2, 3, 2, b"v", 2)
    s, _ = run(PutRequest(b"a", b"w", ignore_lease=True), state=s)
    assert kv_of(s, b"a") == KeyValue(b"a", 2, 4, 3, b"w", 2)
    for req, code in (
        (PutRequest(b"nope", ignore_value=True), ErrorCode.KEY_NOT_FOUND),
        (PutRequest(b"nope", b"x", ignore_lease=True), ErrorCode.KEY_NOT_FOUND),
        (PutRequest(b"a", b"x", ignore_value=True), ErrorCode.VALUE_PROVIDED),
        (PutRequest(b"a", b"x", lease=1, ignore_lease=True), ErrorCode.LEASE_PROVIDED),
        # Standalone, the lease is checked before the previous record.
        (PutRequest(b"nope", lease=9, ignore_value=True), ErrorCode.LEASE_NOT_FOUND),
    ):
        after, r = apply(s, req)
        assert err(r) is code and after is s
    _, r = apply(s, PutRequest(b"nope", ignore_value=True))
    assert isinstance(r, KVError) and r.message == "etcdserver: key not found"


def test_state_equality_ignores_how_it_was_built() -> None:
    one, _ = run(PutRequest(b"a", b"1"), PutRequest(b"b", b"2"))
    two, _ = run(PutRequest(b"a", b"1"), PutRequest(b"b", b"2"))
    assert one == two and hash(one) == hash(two) and one is not two
    other, _ = run(PutRequest(b"b", b"2"), PutRequest(b"a", b"1"))
    assert other != one  # revisions differ, so reads at revision 2 differ


def test_responses_are_hashable_values() -> None:
    _, rs = run(PutRequest(b"a", b"1"), TxnRequest(success=(RangeRequest(b"a"),)))
    assert len({*rs}) == 2
    assert isinstance(rs[1], TxnResponse)
    assert attrs.evolve(rs[1]) == rs[1]
