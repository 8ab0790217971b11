"""Client sessions: tagged requests are applied at most once, and expire deterministically."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from raftkube.mvcc import (
    MvccStore,
    SessionError,
    SessionRejection,
    SessionTable,
    dump_snapshot,
    load_snapshot,
)
from raftkube_spec.kv import (
    DeleteRangeRequest,
    ErrorCode,
    KVError,
    KVState,
    PutRequest,
    PutResponse,
    RangeRequest,
    Request,
    ResponseHeader,
    Result,
    TxnRequest,
    apply,
    initial_state,
)


def test_unregistered_client_is_refused_and_nothing_is_applied() -> None:
    store = MvccStore()
    got = store.apply_for_client(PutRequest(b"k", b"v"), client_id=7, sequence=1)
    assert got == SessionError(SessionRejection.EXPIRED, 7, 1)
    assert store.revision == 1


def test_retry_returns_the_cached_response_without_reapplying() -> None:
    store = MvccStore()
    store.register_client(7)
    first = store.apply_for_client(PutRequest(b"k", b"v", prev_kv=True), client_id=7, sequence=1)
    assert isinstance(first, PutResponse) and store.revision == 2
    retry = store.apply_for_client(PutRequest(b"k", b"v", prev_kv=True), client_id=7, sequence=1)
    assert retry == first and store.revision == 2
    # A rejected request is remembered too: the retry must get the same answer.
    bad = PutRequest(b"k", ignore_value=True, value=b"x")
    refused = store.apply_for_client(bad, client_id=7, sequence=2)
    assert isinstance(refused, KVError) and refused.code is ErrorCode.VALUE_PROVIDED
    assert store.apply_for_client(bad, client_id=7, sequence=2) == refused
    second = store.apply_for_client(PutRequest(b"k", b"w"), client_id=7, sequence=3)
    assert isinstance(second, PutResponse) and store.revision == 3


def test_concurrent_sequences_and_acknowledgement() -> None:
    store = MvccStore()
    store.register_client(1)
    one = store.apply_for_client(PutRequest(b"a"), client_id=1, sequence=1, lowest_unacked=1)
    two = store.apply_for_client(PutRequest(b"b"), client_id=1, sequence=2, lowest_unacked=1)
    # Both answers are kept while the client has not acknowledged either.
    assert (
        store.apply_for_client(PutRequest(b"a"), client_id=1, sequence=1, lowest_unacked=1) == one
    )
    assert (
        store.apply_for_client(PutRequest(b"b"), client_id=1, sequence=2, lowest_unacked=1) == two
    )
    # Sequence 3 acknowledges everything below 3; a late retry of 1 is refused, not re-applied.
    store.apply_for_client(PutRequest(b"c"), client_id=1, sequence=3)
    late = store.apply_for_client(PutRequest(b"a"), client_id=1, sequence=1, lowest_unacked=1)
    assert late == SessionError(SessionRejection.STALE_SEQUENCE, 1, 1)
    assert store.revision == 4


def test_sessions_expire_least_recently_used_first() -> None:
    table = SessionTable(capacity=2)
    table.register(1)
    table.register(2)
    assert table.begin(1, 1) is None  # uses session 1
    table.finish(1, 1, KVError(ErrorCode.EMPTY_KEY, ResponseHeader(1)))
    table.register(3)  # evicts 2, the least recently used
    assert 1 in table and 3 in table and 2 not in table
    assert table.begin(2, 1) == SessionError(SessionRejection.EXPIRED, 2, 1)
    table.unregister(1)
    assert len(table) == 1
    with pytest.raises(ValueError):
        SessionTable(capacity=0)


def test_snapshot_keeps_sessions_cached_results_and_expiry_order() -> None:
    store = MvccStore(session_capacity=2)
    store.register_client(1)
    store.register_client(2)
    put = store.apply_for_client(
        TxnRequest(success=(PutRequest(b"k", b"v"), RangeRequest(b"k"))), client_id=1, sequence=5
    )
    deleted = store.apply_for_client(
        DeleteRangeRequest(b"k", prev_kv=True), client_id=2, sequence=9
    )
    restored = load_snapshot(dump_snapshot(store))
    assert dump_snapshot(restored) == dump_snapshot(store)
    for s in (store, restored):
        assert s.apply_for_client(PutRequest(b"k"), client_id=1, sequence=5) == put
        assert s.apply_for_client(PutRequest(b"k"), client_id=2, sequence=9) == deleted
        s.register_client(3)  # 1 was used least recently: it expires on both
        assert 1 not in s.sessions and 2 in s.sessions
    assert dump_snapshot(restored) == dump_snapshot(store)


# -- property: with retries, the store applies exactly the de-duplicated sequence ---------

tagged_requests = st.lists(
    st.tuples(
        st.sampled_from([1, 2]),  # client
        st.one_of(
            st.builds(PutRequest, st.sampled_from([b"a", b"b"]), st.sampled_from([b"", b"x"])),
            st.builds(DeleteRangeRequest, st.sampled_from([b"a", b"b"])),
            st.builds(RangeRequest, st.sampled_from([b"a", b"b", b""])),
        ),
    ),
    max_size=15,
)


@settings(max_examples=100)
@given(
    requests=tagged_requests, retries=st.lists(st.tuples(st.integers(0, 14), st.integers(0, 99)))
)
def test_retries_are_applied_once(
    requests: list[tuple[int, Request]], retries: list[tuple[int, int]]
) -> None:
    """Commit each request once, plus re-commits of earlier ones (as after a leader change)."""
    store = MvccStore()
    store.register_client(1)
    store.register_client(2)
    model: KVState = initial_state()
    answers: dict[tuple[int, int], Result] = {}
    next_sequence = {1: 1, 2: 1}
    log: list[tuple[int, int, Request]] = []
    for i, (client, request) in enumerate(requests):
        log.append((client, next_sequence[client], request))
        next_sequence[client] += 1
        log.extend(log[j % len(log)] for at, j in retries if at == i)
    for client, sequence, request in log:
        # The client never acknowledges here, so every answer stays cached.
        got = store.apply_for_client(request, client_id=client, sequence=sequence, lowest_unacked=1)
        if (client, sequence) in answers:
            assert got == answers[client, sequence]
            continue
        model, expected = apply(model, request)
        assert got == expected
        answers[client, sequence] = expected
    assert store.revision == model.revision
