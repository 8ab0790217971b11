"""Examples of etcd's Txn semantics: guards, branch choice, duplicate keys, atomicity."""

from __future__ import annotations

from raftkube_spec.kv import (
    FROM_KEY,
    CompactionRequest,
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
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    TxnRequest,
    TxnResponse,
    apply,
    initial_state,
    prefix_range_end,
    watch_events,
)
from raftkube_spec.kv.txn import duplicate_write
from tests.helpers.kv_model import err, kv_of, run

C = CompareTarget
R = CompareResult


def txn_ok(state: KVState, req: TxnRequest) -> tuple[KVState, TxnResponse]:
    after, r = apply(state, req)
    assert isinstance(r, TxnResponse), r
    return after, r


def test_compare_on_missing_key() -> None:
    s = initial_state()
    # Non-value targets compare against zeros: "version == 0" means "absent".
    for target in (C.VERSION, C.CREATE, C.MOD, C.LEASE):
        assert txn_ok(s, TxnRequest(compare=(Compare(b"k", target, R.EQUAL, 0),)))[1].succeeded
        assert not txn_ok(s, TxnRequest(compare=(Compare(b"k", target, R.GREATER, 0),)))[
            1
        ].succeeded
    # A value compare on a missing key always fails, even against b"" and with NOT_EQUAL.
    for result in R:
        c = Compare(b"k", C.VALUE, result, b"")
        assert not txn_ok(s, TxnRequest(compare=(c,)))[1].succeeded


def test_create_if_absent_idiom() -> None:
    absent = Compare(b"lock", C.CREATE, R.EQUAL, 0)
    req = TxnRequest(
        compare=(absent,),
        success=(PutRequest(b"lock", b"me"),),
        failure=(RangeRequest(b"lock"),),
    )
    s, first = txn_ok(initial_state(), req)
    assert first.succeeded and s.revision == 2
    s2, second = txn_ok(s, req)
    assert not second.succeeded and s2 == s
    (got,) = second.responses
    assert isinstance(got, RangeResponse) and got.kvs[0].value == b"me"


def test_compare_over_a_range_must_hold_for_every_key() -> None:
    s, _ = run(PutRequest(b"a1", b"x"), PutRequest(b"a2", b"x"), PutRequest(b"b", b"y"))
    every = Compare(b"a", C.VALUE, R.EQUAL, b"x", range_end=prefix_range_end(b"a"))
    assert txn_ok(s, TxnRequest(compare=(every,)))[1].succeeded
    everything = Compare(b"a", C.VALUE, R.EQUAL, b"x", range_end=FROM_KEY)
    assert not txn_ok(s, TxnRequest(compare=(everything,)))[1].succeeded
    mods = Compare(b"a", C.MOD, R.LESS, 4, range_end=FROM_KEY)
    assert not txn_ok(s, TxnRequest(compare=(mods,)))[1].succeeded
    assert txn_ok(s, TxnRequest(compare=(attrs_value(mods, 5),)))[1].succeeded


def attrs_value(c: Compare, value: int | bytes) -> Compare:
    return Compare(c.key, c.target, c.result, value, c.range_end)


def test_all_compares_must_hold_and_value_kind_mismatch_is_zero() -> None:
    s, _ = run(PutRequest(b"a", b""))
    both = (Compare(b"a", C.VERSION, R.EQUAL, 1), Compare(b"a", C.VALUE, R.EQUAL, b""))
    assert txn_ok(s, TxnRequest(compare=both))[1].succeeded
    assert not txn_ok(s, TxnRequest(compare=(*both, Compare(b"a", C.LEASE, R.GREATER, 0))))[
        1
    ].succeeded
    # A bytes value on an int target is etcd's unset oneof: compared as 0 (and vice versa).
    assert txn_ok(s, TxnRequest(compare=(Compare(b"a", C.LEASE, R.EQUAL, b"zz"),)))[1].succeeded
    assert txn_ok(s, TxnRequest(compare=(Compare(b"a", C.VALUE, R.EQUAL, 5),)))[1].succeeded


def test_later_ops_see_earlier_writes_and_share_one_revision() -> None:
    s, _ = run(PutRequest(b"a", b"1"))
    s, r = txn_ok(
        s,
        TxnRequest(
            success=(
                RangeRequest(b"a"),
                PutRequest(b"b", b"2"),
                RangeRequest(b"a", FROM_KEY),
                DeleteRangeRequest(b"a", prev_kv=True),
                RangeRequest(b"a", FROM_KEY),
            )
        ),
    )
    before, put_b, mid, dele, after = r.responses
    assert isinstance(before, RangeResponse) and isinstance(mid, RangeResponse)
    assert isinstance(after, RangeResponse) and isinstance(dele, DeleteRangeResponse)
    assert isinstance(put_b, PutResponse)
    assert [kv.key for kv in before.kvs] == [b"a"]
    assert [kv.key for kv in mid.kvs] == [b"a", b"b"]
    assert [kv.key for kv in after.kvs] == [b"b"]
    assert dele.deleted == 1 and dele.prev_kvs[0].value == b"1"
    # Inner headers report the revision reached so far; the txn's is the one committed.
    assert [x.header.revision for x in r.responses] == [2, 3, 3, 3, 3]
    assert r.header.revision == 3 == s.revision
    assert kv_of(s, b"b") == KeyValue(b"b", 3, 3, 1, b"2", 0)


def test_read_only_txn_does_not_bump_revision() -> None:
    s, _ = run(PutRequest(b"a", b"1"))
    after, r = txn_ok(s, TxnRequest(success=(RangeRequest(b"a"), DeleteRangeRequest(b"zz"))))
    assert after == s and r.header.revision == 2


def test_nested_guards_see_the_store_before_the_txn() -> None:
    s, _ = run(PutRequest(b"a", b"old"))
    nested = TxnRequest(
        compare=(Compare(b"a", C.VALUE, R.EQUAL, b"old"),),
        success=(PutRequest(b"seen", b"old"),),
        failure=(PutRequest(b"seen", b"new"),),
    )
    s, r = txn_ok(s, TxnRequest(success=(PutRequest(b"a", b"new"), nested)))
    seen = kv_of(s, b"seen")
    assert seen is not None and seen.value == b"old"
    inner = r.responses[1]
    assert isinstance(inner, TxnResponse) and inner.succeeded
    assert inner.header.revision == 3


def _dup(*ops: RequestOp) -> bool:
    return duplicate_write(TxnRequest(success=ops))


def test_duplicate_key_rules() -> None:
    put_a = PutRequest(b"a", b"1")
    del_a = DeleteRangeRequest(b"a")
    assert _dup(put_a, put_a)
    assert _dup(put_a, del_a)
    assert _dup(del_a, put_a)
    assert _dup(PutRequest(b"ab"), DeleteRangeRequest(b"a", b"b"))
    assert _dup(PutRequest(b"z"), DeleteRangeRequest(b"a", FROM_KEY))
    assert not _dup(PutRequest(b"b"), DeleteRangeRequest(b"a", b"b"))
    assert not _dup(del_a, del_a, DeleteRangeRequest(b"a", FROM_KEY))
    assert not _dup(PutRequest(b"a"), PutRequest(b"b"), RangeRequest(b"a"))
    # Nested: a put in a nested txn against puts and deletes of the enclosing level.
    assert _dup(put_a, TxnRequest(success=(put_a,)))
    assert _dup(del_a, TxnRequest(failure=(put_a,)))
    assert _dup(TxnRequest(success=(del_a,)), TxnRequest(success=(put_a,)))
    assert _dup(put_a, TxnRequest(success=(TxnRequest(success=(del_a,)),)))
    # The two branches of one nested txn are exclusive, so they may put the same key...
    assert not _dup(TxnRequest(success=(put_a,), failure=(put_a,)))
    # ...but two nested txns may not.
    assert _dup(TxnRequest(success=(put_a,)), TxnRequest(failure=(put_a,)))
    # The top-level branches are checked separately.
    assert not duplicate_write(TxnRequest(success=(put_a,), failure=(put_a,)))
    # etcd's blind spot: an earlier nested put, a later nested delete.
    assert not _dup(TxnRequest(success=(put_a,)), TxnRequest(success=(del_a,)))


def test_duplicate_key_txn_is_rejected_even_if_branch_not_taken() -> None:
    s, _ = run(PutRequest(b"x", b"1"))
    req = TxnRequest(
        compare=(Compare(b"x", C.VALUE, R.EQUAL, b"1"),),
        success=(PutRequest(b"y"),),
        failure=(PutRequest(b"a"), PutRequest(b"a")),
    )
    after, r = apply(s, req)
    assert err(r) is ErrorCode.DUPLICATE_KEY and after is s
    assert isinstance(r, KVError)
    assert r.message == "etcdserver: duplicate key given in txn request"
    assert r.header.revision == 2


def test_put_then_nested_delete_writes_both_at_one_revision() -> None:
    s, _ = run(PutRequest(b"a", b"0"))
    s, r = txn_ok(
        s,
        TxnRequest(
            success=(
                TxnRequest(success=(PutRequest(b"a", b"1"),)),
                TxnRequest(success=(DeleteRangeRequest(b"a", prev_kv=True),)),
            )
        ),
    )
    assert s.revision == 3 and kv_of(s, b"a") is None
    deleted = r.responses[1]
    assert isinstance(deleted, TxnResponse)
    (d,) = deleted.responses
    assert isinstance(d, DeleteRangeResponse) and d.prev_kvs[0].value == b"1"
    events = watch_events(s, b"a", start_revision=3, prev_kv=True)
    before = KeyValue(b"a", 2, 2, 1, b"0", 0)
    assert events == (
        Event(EventType.PUT, KeyValue(b"a", 2, 3, 2, b"1", 0), before),
        Event(EventType.DELETE, KeyValue(b"a", mod_revision=3), before),
    )


def test_failed_checks_on_the_chosen_path_reject_the_whole_txn() -> None:
    s, _ = run(PutRequest(b"a", b"1"), PutRequest(b"a", b"2"), LeaseGrantRequest(5, 10, 0))
    cases = [
        (
            TxnRequest(success=(PutRequest(b"b"), PutRequest(b"c", lease=9))),
            ErrorCode.LEASE_NOT_FOUND,
        ),
        (
            TxnRequest(success=(PutRequest(b"b"), RangeRequest(b"a", revision=99))),
            ErrorCode.FUTURE_REVISION,
        ),
        (
            TxnRequest(success=(TxnRequest(success=(PutRequest(b"zz", ignore_value=True),)),)),
            ErrorCode.KEY_NOT_FOUND,
        ),
        # In a txn the previous record is looked for before the lease...
        (
            TxnRequest(success=(PutRequest(b"zz", lease=9, ignore_value=True),)),
            ErrorCode.KEY_NOT_FOUND,
        ),
        # ...and every put is checked before any range.
        (
            TxnRequest(success=(RangeRequest(b"a", revision=99), PutRequest(b"b", lease=9))),
            ErrorCode.LEASE_NOT_FOUND,
        ),
    ]
    for req, code in cases:
        after, r = apply(s, req)
        assert err(r) is code and after is s, req
    # A bad op on the branch not taken does not matter.
    ok = TxnRequest(success=(PutRequest(b"b"),), failure=(PutRequest(b"c", lease=9),))
    after, r = apply(s, ok)
    assert isinstance(r, TxnResponse) and after.revision == s.revision + 1


def test_txn_range_at_compacted_revision_fails() -> None:
    s, _ = run(PutRequest(b"a", b"1"), PutRequest(b"a", b"2"), PutRequest(b"a", b"3"))
    s, _ = run(CompactionRequest(3), state=s)
    after, r = apply(s, TxnRequest(success=(PutRequest(b"b"), RangeRequest(b"a", revision=2))))
    assert err(r) is ErrorCode.COMPACTED and after is s
    _, r = apply(s, TxnRequest(success=(RangeRequest(b"a", revision=3),)))
    assert isinstance(r, TxnResponse)
    (got,) = r.responses
    assert isinstance(got, RangeResponse) and got.kvs[0].value == b"2"
