"""The paged range reader (``raftkube.mvcc.reader``): while writes and compactions go on between
its steps, the parts it hands out join into exactly the answer ``MvccStore.apply`` gave when the
read opened, each part within its size; and the index keeps what an open read needs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.mvcc import MvccStore
from raftkube.mvcc.reader import RangeReader, open_range
from raftkube_spec.kv import (
    FROM_KEY,
    CompactionRequest,
    DeleteRangeRequest,
    ErrorCode,
    KeyValue,
    KVError,
    PutRequest,
    RangeRequest,
    RangeResponse,
    prefix_range_end,
)

OVERHEAD = 8
KEYS = [b"k%d" % i for i in range(12)]


def _cost(kv: KeyValue) -> int:
    return len(kv.key) + len(kv.value) + OVERHEAD


def _write(store: MvccStore, op: tuple[str, int, int]) -> None:
    kind, key, n = op
    if kind == "put":
        store.apply(PutRequest(KEYS[key], b"v" * n))
    elif kind == "del":
        store.apply(DeleteRangeRequest(KEYS[key], KEYS[max(key, n % len(KEYS))]))
    else:
        # A compaction near the newest revision: above an open read's revision, mostly.
        store.apply(CompactionRequest(max(1, store.revision - n % 3)))


writes = st.lists(
    st.tuples(
        st.sampled_from(["put", "put", "put", "del", "compact"]),
        st.integers(0, len(KEYS) - 1),
        st.integers(0, 12),
    ),
    max_size=60,
)
requests = st.builds(
    lambda lo, hi, kind, limit, keys_only, count_only, back: (
        RangeRequest(
            KEYS[lo],
            {"single": b"", "range": KEYS[hi], "from": FROM_KEY, "prefix": prefix_range_end(b"k")}[
                kind
            ],
            limit=limit,
            keys_only=keys_only,
            count_only=count_only,
        ),
        back,
    ),
    st.integers(0, len(KEYS) - 1),
    st.integers(0, len(KEYS) - 1),
    st.sampled_from(["single", "range", "from", "prefix"]),
    st.integers(0, 6),
    st.booleans(),
    st.booleans(),
    st.integers(0, 8),
)


def _read_all(
    store: MvccStore, reader: RangeReader, between: list[tuple[str, int, int]], budget: int
) -> tuple[list[KeyValue], RangeResponse]:
    """Step the reader to the end one or two keys a step, applying the next few writes
    between steps (so compactions and the trimming they start land mid-read); check each
    part's size."""
    kvs: list[KeyValue] = []
    step = 0
    while not reader.done:
        step += 1
        part = reader.step(max_keys=1 + step % 2)
        if part is not None:
            assert part or reader.done
            assert len(part) <= 1 or sum(map(_cost, part)) <= budget
            kvs.extend(part)
        for op in between[:4]:
            _write(store, op)
        del between[:4]
    return kvs, reader.response(tuple(kvs))


@settings(max_examples=200)
@given(before=writes, request=requests, between=writes, budget=st.integers(1, 40))
def test_a_paged_read_answers_as_apply_did_when_it_opened(
    before: list[tuple[str, int, int]],
    request: tuple[RangeRequest, int],
    between: list[tuple[str, int, int]],
    budget: int,
) -> None:
    store = MvccStore()
    for key in KEYS:
        store.apply(PutRequest(key, key))
    for op in before:
        _write(store, op)
    req, back = request
    if back:
        req = RangeRequest(
            req.key,
            req.range_end,
            limit=req.limit,
            revision=max(1, store.revision - back),
            keys_only=req.keys_only,
            count_only=req.count_only,
        )
    expected = store.apply(req)
    reader = open_range(store, req, part_bytes=budget, overhead=OVERHEAD)
    if isinstance(expected, KVError):
        assert reader == expected
        return
    assert isinstance(reader, RangeReader)
    with reader:
        kvs, got = _read_all(store, reader, between, budget)
    assert got == expected
    assert kvs == list(expected.kvs)  # type: ignore[union-attr]
    # Once closed, nothing is held: trimming catches up with the last compaction.
    store.index.trim_all()
    assert not store.index.trim_pending


def test_an_open_read_keeps_its_revision_through_a_compaction_above_it() -> None:
    store = MvccStore()
    for i in range(50):
        store.apply(PutRequest(b"k%02d" % i, b"old"))
    at = store.revision
    expected = store.apply(RangeRequest(b"k", prefix_range_end(b"k")))
    reader = open_range(
        store, RangeRequest(b"k", prefix_range_end(b"k")), part_bytes=64, overhead=0
    )
    assert isinstance(reader, RangeReader)
    first = reader.step(max_keys=5)
    # Every key rewritten and deleted, then compacted well above the read's revision.
    for i in range(50):
        store.apply(PutRequest(b"k%02d" % i, b"new"))
    store.apply(DeleteRangeRequest(b"k", prefix_range_end(b"k")))
    store.apply(PutRequest(b"z", b"after"))  # so the compaction passes the tombstones
    store.apply(CompactionRequest(store.revision))
    store.index.trim_all()
    assert store.apply(RangeRequest(b"k", prefix_range_end(b"k"))).count == 0  # type: ignore[union-attr]
    # A new read below the compaction is refused as etcd refuses it ...
    refused = open_range(store, RangeRequest(b"k", revision=at), part_bytes=64, overhead=0)
    assert isinstance(refused, KVError) and refused.code is ErrorCode.COMPACTED
    # ... but the open one still reads its revision in full.
    kvs = list(first or [])
    while not reader.done:
        kvs.extend(reader.step(max_keys=5) or [])
    reader.close()
    assert tuple(kvs) == expected.kvs  # type: ignore[union-attr]
    assert all(kv.value == b"old" for kv in kvs) and len(kvs) == 50
    # Released: the held history is trimmed (every k key was deleted before the compaction).
    store.index.trim_all()
    assert len(store.index) == 1


def test_a_read_visits_a_bounded_number_of_keys_per_step_however_sparse_the_range() -> None:
    store = MvccStore()
    for i in range(1000):
        store.apply(PutRequest(b"k%04d" % i, b"v"))
    store.apply(DeleteRangeRequest(b"k0", b"k0999"))  # only k0999 is left
    reader = open_range(
        store, RangeRequest(b"k", prefix_range_end(b"k")), part_bytes=1 << 20, overhead=0
    )
    assert isinstance(reader, RangeReader)
    steps = 0
    while (part := reader.step(max_keys=100)) is None:
        steps += 1
    assert steps == 9 and reader.done and [kv.key for kv in part] == [b"k0999"]
    assert reader.response(tuple(part)).count == 1
