"""``MvccStore`` and ``WatchHub`` against the sequential spec, on random request sequences.

The centrepiece is a Hypothesis state machine that drives the store and the
spec model side by side: every response must equal the model's, the retained
history, leases and expiry must match after every step, every watcher must
have received exactly the model's ``watch_events``, and stores restored from
snapshots taken along the way must keep answering exactly like the original.
"""

from __future__ import annotations

from typing import TypeVar

import attrs
import hypothesis.strategies as st
from hypothesis import given, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from raftkube.mvcc import MvccStore, WatchHub, dump_snapshot, load_snapshot
from raftkube.mvcc.index import first_retained
from raftkube.mvcc.snapshot import StoreView, capture, encode_view
from raftkube_spec.kv import (
    FROM_KEY,
    MAX_LEASE_TTL,
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    Event,
    KVState,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    PutRequest,
    RangeRequest,
    Request,
    RequestOp,
    Result,
    TxnRequest,
    WatchCompacted,
    WatchFilter,
    apply,
    attached_keys,
    expired_leases,
    initial_state,
    prefix_range_end,
    watch_events,
)

# -- request strategies -------------------------------------------------------------------

# Few keys, with prefixes of each other, 0x00 successors and 0xff bytes, so ranges,
# prefixes and the "from key" form overlap a lot and the duplicate-key rule bites.
KEYS = [b"a", b"a\x00", b"ab", b"abc", b"b", b"ba", b"c", b"\xff", b"\xff\xff"]
LEASE_IDS = [1, 2, 3]

keys = st.sampled_from(KEYS)
values = st.sampled_from([b"", b"x", b"y", b"zz"])


T = TypeVar("T")


def rarely(strategy: st.SearchStrategy[T], odd: T) -> st.SearchStrategy[T]:
    """``strategy`` with, once in a while, ``odd`` (say the empty key, to provoke errors)."""
    return st.integers(0, 24).flatmap(lambda n: st.just(odd) if n == 0 else strategy)


keys_or_empty = rarely(keys, b"")


def range_end_for(key: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(b""),
        st.just(FROM_KEY),
        st.just(prefix_range_end(key)),
        keys,
    )


def keyed_range(
    key: st.SearchStrategy[bytes] = keys_or_empty,
) -> st.SearchStrategy[tuple[bytes, bytes]]:
    return key.flatmap(lambda k: st.tuples(st.just(k), range_end_for(k)))


def revisions(max_rev: int) -> st.SearchStrategy[int]:
    return st.one_of(st.just(0), st.integers(-1, max_rev + 1))


@st.composite
def range_requests(draw: st.DrawFn, max_rev: int) -> RangeRequest:
    key, end = draw(keyed_range())
    return RangeRequest(
        key,
        end,
        limit=draw(st.sampled_from([0, 0, 1, 2, -1])),
        revision=draw(revisions(max_rev)),
        keys_only=draw(st.booleans()),
        count_only=draw(st.sampled_from([False, False, True])),
    )


@st.composite
def put_requests(draw: st.DrawFn, leases: tuple[int, ...] = tuple(LEASE_IDS)) -> PutRequest:
    """Puts; ``leases`` are the ids worth naming (the granted ones), 9 never exists."""
    ignore_value = draw(st.sampled_from([False, False, False, True]))
    ignore_lease = draw(st.sampled_from([False, False, False, True]))
    return PutRequest(
        draw(keys_or_empty),
        draw(rarely(st.just(b""), b"x")) if ignore_value else draw(values),
        lease=draw(rarely(st.just(0), 1))
        if ignore_lease
        else draw(st.sampled_from([0, 0, 0, *leases, *leases, 9])),
        prev_kv=draw(st.booleans()),
        ignore_value=ignore_value,
        ignore_lease=ignore_lease,
    )


@st.composite
def delete_requests(draw: st.DrawFn) -> DeleteRangeRequest:
    key, end = draw(keyed_range())
    return DeleteRangeRequest(key, end, prev_kv=draw(st.booleans()))


@st.composite
def compares(draw: st.DrawFn, max_rev: int) -> Compare:
    key, end = draw(keyed_range())
    target = draw(st.sampled_from(list(CompareTarget)))
    value: int | bytes
    if target is CompareTarget.VALUE:
        value = draw(st.one_of(values, values, st.integers(0, 1)))
    elif target is CompareTarget.LEASE:
        value = draw(st.one_of(st.sampled_from([0, *LEASE_IDS]), st.just(b"x")))
    else:
        value = draw(st.one_of(st.integers(-1, max_rev + 1), st.integers(-1, max_rev + 1), values))
    result = draw(st.sampled_from(list(CompareResult)))
    return Compare(key, target, result, value, range_end=draw(st.sampled_from([b"", end])))


def request_ops(max_rev: int, depth: int, leases: tuple[int, ...]) -> st.SearchStrategy[RequestOp]:
    flat: list[st.SearchStrategy[RequestOp]] = [
        range_requests(max_rev),
        put_requests(leases),
        put_requests(leases),
        delete_requests(),
    ]
    if depth > 0:
        flat.append(txn_requests(max_rev, depth - 1, leases))
        flat.append(txn_requests(max_rev, depth - 1, leases))
    return st.one_of(*flat)


@st.composite
def txn_requests(
    draw: st.DrawFn, max_rev: int, depth: int = 2, leases: tuple[int, ...] = tuple(LEASE_IDS)
) -> TxnRequest:
    ops = st.lists(request_ops(max_rev, depth, leases), max_size=3).map(tuple)
    return TxnRequest(
        compare=tuple(draw(st.lists(compares(max_rev), max_size=2))),
        success=draw(ops),
        failure=draw(ops),
    )


def lease_requests(now_ms: int) -> st.SearchStrategy[Request]:
    ids = st.sampled_from([0, *LEASE_IDS, 9])
    ttls = st.sampled_from([-1, 0, 1, 2, 5, MAX_LEASE_TTL, MAX_LEASE_TTL + 1])
    return st.one_of(
        st.builds(LeaseGrantRequest, ids, ttls, st.just(now_ms)),
        st.builds(LeaseRevokeRequest, ids),
        st.builds(LeaseKeepAliveRequest, ids, st.just(now_ms)),
        st.builds(LeaseTimeToLiveRequest, ids, st.just(now_ms), st.booleans()),
    )


def any_requests(max_rev: int, now_ms: int) -> st.SearchStrategy[Request]:
    return st.one_of(
        put_requests(),
        put_requests(),
        range_requests(max_rev),
        delete_requests(),
        txn_requests(max_rev),
        st.builds(CompactionRequest, st.integers(-1, max_rev + 1)),
        lease_requests(now_ms),
    )


# -- helpers ------------------------------------------------------------------------------


def retained(store: MvccStore) -> list[tuple[bytes, tuple[object, ...]]]:
    """The store's history as the last compaction left it. Trimming is done in batches after
    each write (mvcc.index), so some records may still await it: they are left out here, by
    the rule, without trimming anything (the other checks must see the store as it is)."""
    compacted = store.compact_revision
    out = []
    for key, h in store.index.items():
        start = first_retained(h.kvs, len(h.kvs), compacted) if compacted else 0
        if start < len(h.kvs):
            out.append((key, tuple(h.kvs[start:])))
    return out


def model_retained(state: KVState) -> list[tuple[bytes, tuple[object, ...]]]:
    return [(h.key, h.records) for h in state.keys]


def assert_same_state(store: MvccStore, model: KVState, now_ms: int) -> None:
    """Everything a client could observe, plus the retained history record for record."""
    assert store.revision == model.revision
    assert store.compact_revision == model.compact_revision
    assert retained(store) == model_retained(model)
    leases = [(x.id, x.ttl, x.expiry_ms) for x in store.lessor.leases()]
    assert leases == [(x.id, x.ttl, x.expiry_ms) for x in model.leases]
    for lease in store.lessor.leases():
        assert tuple(sorted(lease.keys)) == attached_keys(model, lease.id)
    assert store.expired_leases(now_ms) == expired_leases(model, now_ms)


@attrs.define
class TrackedWatch:
    """One watcher of the hub and what the test knows it must have received."""

    key: bytes
    range_end: bytes
    start: int
    """The effective start revision (a requested 0 resolved to "the next revision")."""
    prev_kv: bool
    filters: frozenset[WatchFilter]
    seen_revision: int
    """The model revision up to which the delivered events have been checked."""
    compact_at_start: int
    delivered: list[Event] = attrs.field(factory=list)

    def expected(self, model: KVState, start: int) -> tuple[Event, ...] | WatchCompacted:
        return watch_events(model, self.key, self.range_end, start, self.prev_kv, self.filters)


# -- the state machine --------------------------------------------------------------------


class StoreVersusModel(RuleBasedStateMachine):
    """Drive ``MvccStore`` (+ restored replicas, + a watch hub) and the spec side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.model: KVState = initial_state()
        self.store = MvccStore()
        self.hub = WatchHub(self.store)
        self.replicas: list[MvccStore] = []
        self.views: list[tuple[StoreView, bytes]] = []
        self.watches: dict[int, TrackedWatch] = {}
        self.now_ms = 1_000_000

    @initialize()
    def start(self) -> None:
        assert_same_state(self.store, self.model, self.now_ms)
        # Two long-lived watchers over (nearly) everything, so live delivery is exercised
        # on every write; more come and go through the ``watch`` rule.
        self.register(b"a", FROM_KEY, 0, True, frozenset())
        self.register(b"a", prefix_range_end(b"a"), 1, False, frozenset({WatchFilter.NODELETE}))

    def lease_ids(self) -> tuple[int, ...]:
        return tuple(lease.id for lease in self.model.leases)

    def do(self, request: Request) -> Result:
        self.model, expected = apply(self.model, request)
        got = self.store.apply(request)
        assert got == expected, request
        for replica in self.replicas:
            assert replica.apply(request) == expected, request
        return got

    # -- KV requests --

    @rule(data=st.data())
    def put(self, data: st.DataObject) -> None:
        puts = put_requests(self.lease_ids())
        for request in data.draw(st.lists(puts, min_size=1, max_size=4)):
            self.do(request)

    @rule(data=st.data())
    def range(self, data: st.DataObject) -> None:
        self.do(data.draw(range_requests(self.model.revision)))

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.do(data.draw(delete_requests()))

    @rule(data=st.data())
    def txn(self, data: st.DataObject) -> None:
        self.do(data.draw(txn_requests(self.model.revision, leases=self.lease_ids())))

    @rule(data=st.data(), key=keys, value=values)
    def put_then_delete_in_one_txn(self, data: st.DataObject, key: bytes, value: bytes) -> None:
        """etcd's sub-revisions: a put and a tombstone of one key at one revision."""
        _, range_end = data.draw(keyed_range(st.just(key)))
        guards = tuple(data.draw(st.lists(compares(self.model.revision), max_size=1)))
        self.do(
            TxnRequest(
                guards,
                success=(
                    TxnRequest(success=(PutRequest(key, value, prev_kv=True),)),
                    TxnRequest(success=(DeleteRangeRequest(key, range_end, prev_kv=True),)),
                    RangeRequest(key, range_end),
                ),
                failure=(TxnRequest(success=(PutRequest(key, value),)),),
            )
        )

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        rev = self.model.revision
        low = self.model.compact_revision
        valid = st.integers(low + 1, rev) if low < rev else st.nothing()
        revision = data.draw(st.one_of(valid, st.integers(-1, rev + 1)))
        self.do(CompactionRequest(revision))

    # -- leases and time --

    @rule(data=st.data())
    def lease(self, data: st.DataObject) -> None:
        self.do(data.draw(lease_requests(self.now_ms)))

    @rule(lease_id=st.sampled_from(LEASE_IDS), ttl=st.integers(1, 5))
    def grant_lease(self, lease_id: int, ttl: int) -> None:
        """Valid grants are rare among random lease requests; keep some leases around."""
        self.do(LeaseGrantRequest(lease_id, ttl, self.now_ms))

    @rule(ms=st.sampled_from([0, 1, 999, 1000, 1001, 2500, 6000]))
    def advance_clock(self, ms: int) -> None:
        self.now_ms += ms

    @rule()
    def expire_leases(self) -> None:
        """What a leader does: revoke, through the log, every lease its clock says expired."""
        due = self.store.expired_leases(self.now_ms)
        assert due == expired_leases(self.model, self.now_ms)
        for lease_id in due:
            self.do(LeaseRevokeRequest(lease_id))

    # -- watches --

    @rule(
        data=st.data(),
        prev_kv=st.booleans(),
        filters=st.frozensets(st.sampled_from(list(WatchFilter))),
    )
    def watch(self, data: st.DataObject, prev_kv: bool, filters: frozenset[WatchFilter]) -> None:
        key, range_end = data.draw(keyed_range(keys))
        rev = self.model.revision
        low = max(self.model.compact_revision, 1)
        requested = data.draw(
            st.one_of(st.just(0), st.integers(low, rev + 2), st.integers(-1, rev + 2)),
            label="start",
        )
        self.register(key, range_end, requested, prev_kv, filters)

    def register(
        self,
        key: bytes,
        range_end: bytes,
        requested: int,
        prev_kv: bool,
        filters: frozenset[WatchFilter],
    ) -> None:
        wid = self.hub.watch(key, range_end, requested, prev_kv, filters)
        expected = watch_events(self.model, key, range_end, requested, prev_kv, filters)
        got = self.hub.take(wid)
        assert got == expected
        if isinstance(got, WatchCompacted):
            assert len(self.hub) == len(self.watches)  # a compacted watcher is gone
            return
        start = self.model.revision + 1 if requested == 0 else requested
        self.watches[wid] = TrackedWatch(
            key,
            range_end,
            start,
            prev_kv,
            filters,
            seen_revision=self.model.revision,
            compact_at_start=self.model.compact_revision,
            delivered=list(got),
        )

    @precondition(lambda self: bool(self.watches))
    @rule(data=st.data())
    def cancel_watch(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(self.watches)))
        self.hub.cancel(wid)
        del self.watches[wid]
        assert len(self.hub) == len(self.watches)

    # -- snapshots --

    @rule()
    def snapshot_and_restore(self) -> None:
        data = dump_snapshot(self.store)
        replica = load_snapshot(data)
        assert dump_snapshot(replica) == data
        assert_same_state(replica, self.model, self.now_ms)
        self.replicas = [*self.replicas[-1:], replica]

    @rule()
    def capture_a_view(self) -> None:
        """A member encodes a captured view while writes and compactions go on."""
        for view, _ in self.views[:-1]:
            view.release()  # as a member does once it has encoded one
        self.views = [*self.views[-1:], (capture(self.store), dump_snapshot(self.store))]

    # -- invariants --

    @invariant()
    def same_state(self) -> None:
        assert_same_state(self.store, self.model, self.now_ms)
        if self.replicas:
            data = dump_snapshot(self.store)
            for replica in self.replicas:
                assert dump_snapshot(replica) == data

    @invariant()
    def captured_views_encode_the_store_as_it_was(self) -> None:
        for view, image in self.views:
            assert encode_view(view) == image

    @invariant()
    def retained_history_is_observably_the_models(self) -> None:
        """Black-box probe of all retained history: a read and a watch at the compact revision."""
        oldest = max(self.model.compact_revision, 1)
        everything = (b"a", FROM_KEY)  # every key in KEYS is >= b"a"
        for store in (self.store, *self.replicas):
            read = RangeRequest(*everything, revision=oldest)
            assert store.apply(read) == apply(self.model, read)[1]
        # Backlogs from the oldest, a middle and the newest revision (the latter two start
        # inside keys' histories, where an off-by-one in "records since" would show).
        newest = self.model.revision
        for start in sorted({oldest, (oldest + newest) // 2, newest}):
            wid = self.hub.watch(*everything, start_revision=start, prev_kv=True)
            assert self.hub.take(wid) == watch_events(self.model, *everything, start, True)
            self.hub.cancel(wid)

    @invariant()
    def watchers_got_exactly_the_model_events(self) -> None:
        for wid, w in self.watches.items():
            got = self.hub.take(wid)
            assert isinstance(got, tuple)
            # The events of the revisions committed since the last check...
            new = w.expected(self.model, max(w.start, w.seen_revision + 1))
            assert got == new
            w.delivered.extend(got)
            w.seen_revision = self.model.revision
            # ...and, while no later compaction changed the model's answer for the whole
            # watch (it would say "compacted" or drop prev_kv at the compact revision),
            # the whole sequence since the start.
            if self.model.compact_revision == w.compact_at_start:
                assert tuple(w.delivered) == w.expected(self.model, w.start)


StoreVersusModel.TestCase.settings = settings(max_examples=150, stateful_step_count=50)
TestStoreVersusModel = StoreVersusModel.TestCase


# -- snapshot in the middle of a random sequence ------------------------------------------


@st.composite
def request_sequences(draw: st.DrawFn) -> list[Request]:
    """A random history; revision bounds follow a rough running estimate, which is enough."""
    out: list[Request] = []
    now_ms = 0
    for _ in range(draw(st.integers(0, 30))):
        now_ms += draw(st.sampled_from([0, 500, 1500]))
        out.append(draw(any_requests(len(out) + 1, now_ms)))
    return out


@settings(max_examples=60)
@given(requests=request_sequences(), data=st.data())
def test_restored_snapshot_behaves_like_the_original(
    requests: list[Request], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(requests)), label="split")
    store = MvccStore()
    model = initial_state()
    for request in requests[:split]:
        model, expected = apply(model, request)
        assert store.apply(request) == expected
    restored = load_snapshot(dump_snapshot(store))
    for request in requests[split:]:
        model, expected = apply(model, request)
        assert store.apply(request) == expected
        assert restored.apply(request) == expected
    assert dump_snapshot(restored) == dump_snapshot(store)
    assert_same_state(restored, model, 10**9)
