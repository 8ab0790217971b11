"""Examples of the event sequence a watch must deliver."""

from __future__ import annotations

from raftkube_spec.kv import (
    FROM_KEY,
    CompactionRequest,
    DeleteRangeRequest,
    Event,
    EventType,
    KeyValue,
    PutRequest,
    Request,
    TxnRequest,
    WatchCompacted,
    WatchFilter,
    prefix_range_end,
    watch_events,
)
from tests.helpers.kv_model import run


def _history() -> list[Request]:
    return [
        PutRequest(b"a", b"1"),  # 2
        PutRequest(b"b", b"1"),  # 3
        PutRequest(b"a", b"2"),  # 4
        DeleteRangeRequest(b"a"),  # 5
        TxnRequest(success=(PutRequest(b"c", b"1"), PutRequest(b"a", b"3"))),  # 6
    ]


def test_events_in_revision_then_key_order() -> None:
    s, _ = run(*_history())
    a1 = KeyValue(b"a", 2, 2, 1, b"1", 0)
    a2 = KeyValue(b"a", 2, 4, 2, b"2", 0)
    events = watch_events(s, b"a", FROM_KEY, start_revision=4, prev_kv=True)
    assert events == (
        Event(EventType.PUT, a2, a1),
        Event(EventType.DELETE, KeyValue(b"a", mod_revision=5), a2),
        Event(EventType.PUT, KeyValue(b"a", 6, 6, 1, b"3", 0)),
        Event(EventType.PUT, KeyValue(b"c", 6, 6, 1, b"1", 0)),
    )
    assert watch_events(s, b"a", start_revision=1) == (
        Event(EventType.PUT, a1),
        Event(EventType.PUT, a2),
        Event(EventType.DELETE, KeyValue(b"a", mod_revision=5)),
        Event(EventType.PUT, KeyValue(b"a", 6, 6, 1, b"3", 0)),
    )
    assert watch_events(s, b"b", prefix_range_end(b"b"), start_revision=0) == ()


def test_filters() -> None:
    s, _ = run(*_history())
    no_put = watch_events(s, b"a", start_revision=1, filters=frozenset({WatchFilter.NOPUT}))
    assert isinstance(no_put, tuple) and [e.type for e in no_put] == [EventType.DELETE]
    no_del = watch_events(s, b"a", start_revision=1, filters=frozenset({WatchFilter.NODELETE}))
    assert isinstance(no_del, tuple) and len(no_del) == 3
    assert all(e.type is EventType.PUT for e in no_del)


def test_watch_from_compact_revision_is_allowed_below_is_compacted() -> None:
    s, _ = run(*_history(), CompactionRequest(5))
    assert watch_events(s, b"a", start_revision=4) == WatchCompacted(5)
    events = watch_events(s, b"a", start_revision=5, prev_kv=True)
    # The delete at the compact revision is still delivered, but its prev_kv
    # would need a read at revision 4, which is compacted.
    assert events == (
        Event(EventType.DELETE, KeyValue(b"a", mod_revision=5)),
        Event(EventType.PUT, KeyValue(b"a", 6, 6, 1, b"3", 0)),
    )


def test_put_after_compaction_gets_prev_kv_from_before_compaction() -> None:
    s, _ = run(
        PutRequest(b"k", b"1"), PutRequest(b"x", b"1"), CompactionRequest(3), PutRequest(b"k", b"2")
    )
    assert watch_events(s, b"k", start_revision=3, prev_kv=True) == (
        Event(EventType.PUT, KeyValue(b"k", 2, 4, 2, b"2", 0), KeyValue(b"k", 2, 2, 1, b"1", 0)),
    )
