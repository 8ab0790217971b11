"""What a watch must deliver: the complete event sequence for a range from a revision.

A watch is not a state change, so the model answers it as a query over the
retained history: given everything committed so far, these are exactly the
events a watch created with ``start_revision`` must have delivered by now.
A live watch over time is checked by asking again after more writes.

Order: ascending revision; within one revision, ascending key; for one key
within one revision (a txn that puts a key in one nested txn and deletes it in
a later one), the order the txn wrote them. etcd itself emits a revision's
events in the order the txn wrote them, so comparing against real etcd needs
the events of each revision sorted by key (stably) first.
"""

from __future__ import annotations

import enum

import attrs

from raftkube_spec.kv import history
from raftkube_spec.kv.keyrange import KeyRange
from raftkube_spec.kv.state import KVState
from raftkube_spec.kv.types import Event, EventType, KeyValue


class WatchFilter(enum.Enum):
    """etcd's server-side watch filters: drop the named kind of event."""

    NOPUT = "NOPUT"
    NODELETE = "NODELETE"


@attrs.frozen
class WatchCompacted:
    """The watch starts below the compaction point, so etcd cancels it with this revision."""

    compact_revision: int


def _prev_kv(state: KVState, found: history.KeyHistory, kv: KeyValue) -> KeyValue | None:
    """What etcd attaches: a read of the key at ``mod_revision - 1``.

    etcd makes that read when delivering the event, so it fails — and the
    event carries no ``prev_kv`` — when ``mod_revision - 1`` is already
    compacted, i.e. for events at exactly the compact revision. Creations
    never carry one.
    """
    before = kv.mod_revision - 1
    if kv.create_revision == kv.mod_revision or before < state.compact_revision:
        return None
    return found.at(before)


def watch_events(
    state: KVState,
    key: bytes,
    range_end: bytes = b"",
    start_revision: int = 0,
    prev_kv: bool = False,
    filters: frozenset[WatchFilter] = frozenset(),
) -> tuple[Event, ...] | WatchCompacted:
    """Every event on ``[key, range_end)`` with revision ``>= start_revision``, in order.

    ``start_revision == 0`` means "from now", i.e. nothing committed so far.
    Starting exactly at the compact revision is allowed and delivers all of
    that revision's events, deletions included (etcd's compactor physically
    drops a tombstone at exactly the compact revision, so a real etcd can miss
    such a DELETE; the model states the intended guarantee).
    """
    start = state.revision + 1 if start_revision == 0 else start_revision
    if state.compact_revision > 0 and start < state.compact_revision:
        return WatchCompacted(state.compact_revision)
    keep_puts = WatchFilter.NOPUT not in filters
    keep_deletes = WatchFilter.NODELETE not in filters
    tagged: list[tuple[int, bytes, int, Event]] = []
    for found in history.scan(state.keys, KeyRange.of(key, range_end)):
        for i, kv in enumerate(found.since(start)):
            if kv.is_tombstone:
                if not keep_deletes:
                    continue
                kind = EventType.DELETE
            else:
                if not keep_puts:
                    continue
                kind = EventType.PUT
            prev = _prev_kv(state, found, kv) if prev_kv else None
            tagged.append((kv.mod_revision, kv.key, i, Event(kind, kv, prev)))
    tagged.sort(key=lambda t: t[:3])
    return tuple(t[3] for t in tagged)
