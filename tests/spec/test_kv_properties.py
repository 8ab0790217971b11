"""Hypothesis properties of the KV model over random request sequences.

Most properties cross-check two independent routes to the same answer: reads
at an old revision against the current reads of the replayed state that had
that revision; watch events against the difference of consecutive snapshots;
a txn against the same writes sent one by one.
"""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

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
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    Request,
    RequestOp,
    Result,
    TxnRequest,
    TxnResponse,
    WatchCompacted,
    apply,
    attached_keys,
    initial_state,
    prefix_range_end,
    watch_events,
)
from raftkube_spec.kv.txn import duplicate_write

# -- strategies ---------------------------------------------------------------------------

KEYS = (b"a", b"ab", b"abc", b"b", b"c\xff", b"d")
keys = st.sampled_from(KEYS)
values = st.sampled_from((b"", b"x", b"y"))
lease_ids = st.sampled_from((0, 0, 0, 1, 2, 3))  # 3 is never granted
revisions = st.one_of(st.just(0), st.integers(1, 12))
range_ends = st.one_of(
    st.just(b""), st.just(FROM_KEY), keys, keys.map(prefix_range_end), st.just(b"c")
)

ranges = st.builds(
    RangeRequest,
    keys,
    range_ends,
    limit=st.integers(0, 3),
    revision=revisions,
    keys_only=st.booleans(),
    count_only=st.booleans(),
)


@st.composite
def _puts(draw: st.DrawFn) -> PutRequest:
    """Mostly plain puts; now and then one that keeps the old value or lease."""
    key, kind = draw(keys), draw(st.integers(0, 7))
    if kind == 6:
        return PutRequest(key, lease=draw(lease_ids), ignore_value=True)
    if kind == 7:
        return PutRequest(key, draw(values), ignore_lease=True)
    return PutRequest(key, draw(values), lease=draw(lease_ids), prev_kv=draw(st.booleans()))


puts = _puts()
deletes = st.one_of(
    st.builds(DeleteRangeRequest, keys, range_ends, prev_kv=st.booleans()),
    st.builds(DeleteRangeRequest, st.just(b"a"), st.just(FROM_KEY), prev_kv=st.booleans()),
)
compares = st.builds(
    Compare,
    keys,
    st.sampled_from(CompareTarget),
    st.sampled_from(CompareResult),
    st.one_of(st.integers(0, 8), values),
    range_ends,
)


def _txns(ops: st.SearchStrategy[RequestOp]) -> st.SearchStrategy[TxnRequest]:
    return st.builds(
        TxnRequest,
        st.lists(compares, max_size=2).map(tuple),
        st.lists(ops, max_size=3).map(tuple),
        st.lists(ops, max_size=3).map(tuple),
    )


leaf_ops: st.SearchStrategy[RequestOp] = st.one_of(ranges, puts, deletes)
# Two levels of nesting reach every duplicate-key and nested-guard rule; deeper adds only cost.
txns = _txns(st.one_of(leaf_ops, leaf_ops, _txns(leaf_ops)))
times = st.integers(0, 6_000)
lease_ops = st.one_of(
    st.builds(LeaseGrantRequest, st.integers(0, 3), st.integers(0, 3), times),
    st.builds(LeaseKeepAliveRequest, st.integers(1, 3), times),
    st.builds(LeaseRevokeRequest, st.integers(1, 3)),
    st.builds(LeaseTimeToLiveRequest, st.integers(1, 3), times, st.booleans()),
)
compactions = st.builds(CompactionRequest, st.integers(0, 10))
# Weighted so that histories reach double-digit revisions: puts dominate.
_MIX: tuple[st.SearchStrategy[Request], ...] = (
    *[puts] * 5,
    deletes,
    txns,
    txns,
    ranges,
    lease_ops,
    compactions,
)
requests: st.SearchStrategy[Request] = st.integers(0, len(_MIX) - 1).flatmap(lambda i: _MIX[i])
GRANTS: list[Request] = [LeaseGrantRequest(1, 2, 0), LeaseGrantRequest(2, 4, 0)]
histories = st.lists(requests, min_size=6, max_size=24).map(lambda reqs: GRANTS + reqs)

EVERYTHING = RangeRequest(b"\x00", FROM_KEY)
PROBES = (
    EVERYTHING,
    RangeRequest(b"a", prefix_range_end(b"a")),
    RangeRequest(b"ab"),
    RangeRequest(b"ab", b"c\xff", limit=2),
    RangeRequest(b"b", FROM_KEY, count_only=True),
    RangeRequest(b"a", FROM_KEY, keys_only=True, limit=1),
)

# -- helpers ------------------------------------------------------------------------------

Step = tuple[KVState, Request, KVState, Result]


def replay(reqs: Iterable[Request], state: KVState | None = None) -> list[Step]:
    s = initial_state() if state is None else state
    steps = []
    for req in reqs:
        after, result = apply(s, req)
        steps.append((s, req, after, result))
        s = after
    return steps


def final(steps: list[Step]) -> KVState:
    return steps[-1][2] if steps else initial_state()


def read(state: KVState, req: RangeRequest) -> RangeResponse:
    _, r = apply(state, req)
    assert isinstance(r, RangeResponse), r
    return r


def snapshot(state: KVState) -> dict[bytes, KeyValue]:
    return {kv.key: kv for kv in read(state, EVERYTHING).kvs}


def snapshots(steps: list[Step]) -> dict[int, KVState]:
    """The last replayed state at each revision: current reads there are reads at that revision."""
    at = {1: initial_state()}
    for _, _, after, _ in steps:
        at[after.revision] = after
    return at


def wrote(result: TxnResponse) -> bool:
    for r in result.responses:
        if isinstance(r, PutResponse):
            return True
        if isinstance(r, DeleteRangeResponse) and r.deleted:
            return True
        if isinstance(r, TxnResponse) and wrote(r):
            return True
    return False


def expected_bump(before: KVState, req: Request, result: Result) -> int:
    if isinstance(result, KVError):
        return 0
    if isinstance(req, PutRequest):
        return 1
    if isinstance(result, DeleteRangeResponse):
        return int(result.deleted > 0)
    if isinstance(result, TxnResponse):
        return int(wrote(result))
    if isinstance(req, LeaseRevokeRequest):
        return int(bool(attached_keys(before, req.id)))
    return 0


def _header_revision(result: Result) -> int:
    return result.header.revision


# -- properties ---------------------------------------------------------------------------


@settings(max_examples=120)
@given(histories)
def test_revision_increments_exactly_on_writes_and_failures_change_nothing(
    reqs: list[Request],
) -> None:
    for before, req, after, result in replay(reqs):
        bump = expected_bump(before, req, result)
        assert after.revision == before.revision + bump
        assert _header_revision(result) == after.revision
        changes = watch_events(after, b"\x00", FROM_KEY, before.revision + 1)
        assert isinstance(changes, tuple)
        assert bool(changes) == bool(bump)
        assert all(e.kv.mod_revision == after.revision for e in changes)
        if not bump:
            assert snapshot(after) == snapshot(before)
        if isinstance(result, KVError):
            assert after is before
            assert result.message == result.code.value
        if isinstance(req, DeleteRangeRequest) and isinstance(result, DeleteRangeResponse):
            doomed = read(before, RangeRequest(req.key, req.range_end)).kvs
            assert result.deleted == len(doomed)
            assert result.prev_kvs == (doomed if req.prev_kv else ())
            assert not read(after, RangeRequest(req.key, req.range_end)).kvs


@settings(max_examples=120)
@given(histories)
def test_reads_at_old_revisions_equal_replay_and_replay_is_deterministic(
    reqs: list[Request],
) -> None:
    steps = replay(reqs)
    end = final(steps)
    # Replaying is deterministic and the result is a hashable value.
    again = final(replay(reqs))
    assert again == end and hash(again) == hash(end) and len({again, end}) == 1
    at = snapshots(steps)
    for r in range(1, end.revision + 3):
        for probe in PROBES:
            _, got = apply(
                end,
                RangeRequest(
                    probe.key, probe.range_end, probe.limit, r, probe.keys_only, probe.count_only
                ),
            )
            if r > end.revision:
                assert isinstance(got, KVError) and got.code is ErrorCode.FUTURE_REVISION
            elif r < end.compact_revision:
                assert isinstance(got, KVError) and got.code is ErrorCode.COMPACTED
            else:
                assert isinstance(got, RangeResponse)
                then = read(at[r], probe)
                assert (got.kvs, got.count, got.more) == (then.kvs, then.count, then.more)
                assert got.header.revision == end.revision


def _expected_events(at: dict[int, KVState], start: int, end: KVState) -> list[Event]:
    expected = []
    for rev in range(max(start, 2), end.revision + 1):
        old, new = snapshot(at[rev - 1]), snapshot(at[rev])
        prev_ok = rev - 1 >= end.compact_revision
        for key in sorted(old.keys() | new.keys()):
            prev = old.get(key) if prev_ok else None
            if key in new and old.get(key) != new[key]:
                expected.append(Event(EventType.PUT, new[key], prev))
            elif key in old and key not in new:
                expected.append(Event(EventType.DELETE, KeyValue(key, mod_revision=rev), prev))
    return expected


def _net(events: tuple[Event, ...], at: dict[int, KVState]) -> list[Event]:
    """Fold same-key same-revision events (etcd's put-then-nested-delete) into their net effect."""
    out: list[Event] = []
    for e in events:
        if out and out[-1].kv.key == e.kv.key and out[-1].kv.mod_revision == e.kv.mod_revision:
            first = out.pop()
            assert (first.type, e.type) == (EventType.PUT, EventType.DELETE)
            if e.kv.key not in snapshot(at[e.kv.mod_revision - 1]):
                continue  # created and deleted within one revision: no net change
        out.append(e)
    return out


@settings(max_examples=120)
@given(histories)
def test_watch_events_equal_snapshot_diffs(reqs: list[Request]) -> None:
    steps = replay(reqs)
    end = final(steps)
    at = snapshots(steps)
    for start in range(0, end.revision + 2):
        got = watch_events(end, b"\x00", FROM_KEY, start, prev_kv=True)
        if 0 < start < end.compact_revision:
            assert got == WatchCompacted(end.compact_revision)
            continue
        assert isinstance(got, tuple)
        from_rev = end.revision + 1 if start == 0 else start
        assert _net(got, at) == _expected_events(at, from_rev, end)
        revs = [e.kv.mod_revision for e in got]
        assert revs == sorted(revs)
        # A narrower watch sees exactly the matching subsequence, without prev_kv if not asked.
        sub = watch_events(end, b"a", prefix_range_end(b"a"), start)
        assert isinstance(sub, tuple)
        assert sub == tuple(Event(e.type, e.kv) for e in got if e.kv.key.startswith(b"a"))


@settings(max_examples=120)
@given(histories, st.integers(1, 20))
def test_compaction_never_changes_reads_at_or_above_it(reqs: list[Request], c: int) -> None:
    state = final(replay(reqs))
    compacted, result = apply(state, CompactionRequest(c))
    if isinstance(result, KVError):
        assert compacted is state
        assert c <= state.compact_revision or c > state.revision
        return
    assert compacted.revision == state.revision and compacted.leases == state.leases
    for r in range(c, state.revision + 1):
        for probe in PROBES:
            args = (probe.key, probe.range_end, probe.limit, r, probe.keys_only, probe.count_only)
            assert apply(compacted, RangeRequest(*args))[1] == apply(state, RangeRequest(*args))[1]
        for prev in (False, True):
            before = watch_events(state, b"\x00", FROM_KEY, r, prev_kv=prev)
            after = watch_events(compacted, b"\x00", FROM_KEY, r, prev_kv=prev)
            assert isinstance(before, tuple) and isinstance(after, tuple)
            if prev and r == c:
                # Events at the compact revision lose prev_kv: it is a read at c - 1.
                before = tuple(
                    Event(e.type, e.kv, None if e.kv.mod_revision == c else e.prev_kv)
                    for e in before
                )
            assert after == before
    if c > 1:
        _, low = apply(compacted, RangeRequest(b"a", revision=c - 1))
        assert isinstance(low, KVError) and low.code is ErrorCode.COMPACTED


flat_writes = st.lists(st.one_of(puts, deletes), min_size=1, max_size=4)


def _visible(state: KVState) -> dict[bytes, tuple[bytes, int, int]]:
    return {k: (kv.value, kv.lease, kv.version) for k, kv in snapshot(state).items()}


def _kind(code: ErrorCode) -> ErrorCode:
    return ErrorCode.KEY_NOT_FOUND if code is ErrorCode.LEASE_NOT_FOUND else code


@settings(max_examples=120)
@given(histories, flat_writes)
def test_txn_is_all_or_nothing(
    reqs: list[Request], ops: list[PutRequest | DeleteRangeRequest]
) -> None:
    state = final(replay(reqs))
    req = TxnRequest(success=tuple(ops))
    after, result = apply(state, req)
    if duplicate_write(req):
        assert isinstance(result, KVError) and result.code is ErrorCode.DUPLICATE_KEY
        assert after is state
        return
    one_by_one = replay(ops, state)
    failures = [r for _, _, _, r in one_by_one if isinstance(r, KVError)]
    if isinstance(result, KVError):
        # Nothing was written, and the same check fails when the ops go one by one
        # (a txn looks for the previous record before the lease, a lone Put the reverse).
        assert after is state
        assert _kind(result.code) in {_kind(f.code) for f in failures}
        return
    assert not failures
    assert _visible(after) == _visible(final(one_by_one))
    assert after.revision - state.revision == int(final(one_by_one).revision > state.revision)
    # Appending an op that must fail rejects everything, including the earlier writes.
    poisoned = TxnRequest(success=(*ops, PutRequest(b"zz", lease=99)))
    if not duplicate_write(poisoned):
        again, bad = apply(state, poisoned)
        assert isinstance(bad, KVError) and again is state


simple_ops = st.lists(
    st.one_of(
        st.builds(PutRequest, keys, values),
        st.builds(DeleteRangeRequest, keys, range_ends),
    ),
    max_size=25,
)


@settings(max_examples=120)
@given(simple_ops)
def test_current_records_match_a_naive_dictionary_model(
    reqs: list[PutRequest | DeleteRangeRequest],
) -> None:
    """An independent model of generations: (create_revision, version) per live key."""
    revision = 1
    live: dict[bytes, KeyValue] = {}
    for req in reqs:
        if isinstance(req, PutRequest):
            revision += 1
            old = live.get(req.key)
            create = old.create_revision if old else revision
            version = old.version + 1 if old else 1
            live[req.key] = KeyValue(req.key, create, revision, version, req.value, 0)
        else:
            end = req.range_end
            doomed = [
                k
                for k in live
                if (k == req.key if end == b"" else k >= req.key and (end == FROM_KEY or k < end))
            ]
            if doomed:
                revision += 1
                for k in doomed:
                    del live[k]
    state = final(replay(reqs))
    assert state.revision == revision
    assert snapshot(state) == dict(sorted(live.items()))
