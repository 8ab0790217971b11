"""``WatchHub``: sans-I/O watch delivery on top of an :class:`MvccStore`.

A watcher is registered with a key range, a start revision, ``prev_kv`` and
filters. Registration immediately queues the *backlog* — every retained event
in range from the start revision up to the store's current revision, taken
from the store's own history — and from then on the hub, subscribed to the
store, routes each committed write's events to every matching watcher. The
backlog ends exactly where live routing begins (the store's revision at
registration), so each event arrives once, in revision order.

Delivery order matches the spec's ``watch_events``: ascending revision; within
a revision ascending key; for one key within one revision (a txn that puts a
key in one nested txn and deletes it in a later one) the order it was written.

A watch starting below the compaction point gets a :class:`WatchCompacted`
notice instead and is dead: etcd cancels it. A live watcher is never affected
by later compactions; its events were decided when they were routed.

No I/O and no async: the serving layer calls :meth:`WatchHub.take` to drain a
watcher and may pass ``on_ready`` to learn when one goes from idle to having
events, e.g. to wake a task. Queues are unbounded; throttling or cancelling a
slow consumer is the serving layer's policy.

Routing cost per event: a dict look-up for single-key watchers plus a check of
each range watcher (Kubernetes-style deployments hold few, mostly prefix, watches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter

import attrs

from raftkube.mvcc.index import KeyHistory, decode_range
from raftkube.mvcc.store import MvccStore
from raftkube_spec.kv.types import Event, EventType, KeyValue
from raftkube_spec.kv.watch import WatchCompacted, WatchFilter

_by_key = attrgetter("key")


@attrs.define(slots=True, eq=False)
class _Watcher:
    id: int
    start: bytes
    end: bytes | None
    single: bool
    start_revision: int
    """The first revision delivered (0 at registration already resolved to "next")."""
    prev_kv: bool
    keep_puts: bool
    keep_deletes: bool
    pending: list[Event] = attrs.field(factory=list)
    compacted: WatchCompacted | None = None

    def covers(self, key: bytes) -> bool:
        return self.start <= key and (self.end is None or key < self.end)

    def wants(self, kv: KeyValue) -> bool:
        return self.keep_deletes if kv.version == 0 else self.keep_puts


def _event(kv: KeyValue, prev: KeyValue | None) -> Event:
    return Event(EventType.DELETE if kv.version == 0 else EventType.PUT, kv, prev)


class WatchHub:
    """Every watcher of one store; subscribes itself to the store's writes."""

    __slots__ = ("_next_id", "_on_ready", "_ranged", "_single", "_store", "_watchers")

    def __init__(self, store: MvccStore, *, on_ready: Callable[[int], None] | None = None) -> None:
        self._store = store
        self._on_ready = on_ready
        self._next_id = 1
        self._watchers: dict[int, _Watcher] = {}
        self._single: dict[bytes, dict[int, _Watcher]] = {}
        self._ranged: dict[int, _Watcher] = {}
        store.subscribe(self._on_write)

    def __len__(self) -> int:
        return len(self._watchers)

    def close(self) -> None:
        """Stop following the store and drop every watcher."""
        self._store.unsubscribe(self._on_write)
        self._watchers.clear()
        self._single.clear()
        self._ranged.clear()

    # -- watchers -------------------------------------------------------------------------

    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: frozenset[WatchFilter] = frozenset(),
    ) -> int:
        """Register a watcher; its backlog (or compacted notice) is queued at once.

        ``start_revision == 0`` means "from the next write on".
        """
        store = self._store
        start, end = decode_range(key, range_end)
        wid = self._next_id
        self._next_id += 1
        first = store.revision + 1 if start_revision == 0 else start_revision
        watcher = _Watcher(
            id=wid,
            start=start,
            end=end,
            single=not range_end,
            start_revision=first,
            prev_kv=prev_kv,
            keep_puts=WatchFilter.NOPUT not in filters,
            keep_deletes=WatchFilter.NODELETE not in filters,
        )
        self._watchers[wid] = watcher
        if store.compact_revision > 0 and first < store.compact_revision:
            watcher.compacted = WatchCompacted(store.compact_revision)
        else:
            watcher.pending = self._backlog(watcher)
            if watcher.single:
                self._single.setdefault(start, {})[wid] = watcher
            else:
                self._ranged[wid] = watcher
        if (watcher.pending or watcher.compacted) and self._on_ready is not None:
            self._on_ready(wid)
        return wid

    def take(self, watcher_id: int) -> tuple[Event, ...] | WatchCompacted:
        """Drain a watcher's queued events; a compacted notice is final and ends the watcher."""
        watcher = self._watchers[watcher_id]
        if watcher.compacted is not None:
            del self._watchers[watcher_id]
            return watcher.compacted
        events = tuple(watcher.pending)
        watcher.pending.clear()
        return events

    def has_pending(self, watcher_id: int) -> bool:
        watcher = self._watchers[watcher_id]
        return bool(watcher.pending) or watcher.compacted is not None

    def cancel(self, watcher_id: int) -> None:
        """Forget a watcher and anything still queued for it; unknown ids are ignored."""
        watcher = self._watchers.pop(watcher_id, None)
        if watcher is None:
            return
        if watcher.single:
            same_key = self._single.get(watcher.start)
            if same_key is not None:
                same_key.pop(watcher_id, None)
                if not same_key:
                    del self._single[watcher.start]
        else:
            self._ranged.pop(watcher_id, None)

    # -- delivery -------------------------------------------------------------------------

    def _prev(self, history: KeyHistory | None, kv: KeyValue) -> KeyValue | None:
        """What etcd attaches as ``prev_kv``: a read of the key at ``mod_revision - 1``.

        None for a creation, and when that revision is already compacted (which
        only a backlog event at exactly the compact revision can hit).
        """
        before = kv.mod_revision - 1
        if history is None or kv.create_revision == kv.mod_revision:
            return None
        if before < self._store.compact_revision:
            return None
        return history.at(before)

    def _backlog(self, watcher: _Watcher) -> list[Event]:
        """Retained events in the watcher's range from its start revision, in delivery order."""
        first = watcher.start_revision
        if first > self._store.revision:
            return []
        tagged: list[tuple[int, bytes, KeyValue, KeyHistory]] = []
        for key, history in self._store.index.scan(watcher.start, watcher.end):
            if history.revs[-1] < first:
                continue
            for kv in history.since(first):
                if watcher.wants(kv):
                    tagged.append((kv.mod_revision, key, kv, history))
        # Stable: one key's same-revision records keep their write order.
        tagged.sort(key=lambda t: (t[0], t[1]))
        if watcher.prev_kv:
            return [_event(kv, self._prev(history, kv)) for _, _, kv, history in tagged]
        return [_event(kv, None) for _, _, kv, _ in tagged]

    def _on_write(self, revision: int, records: Sequence[KeyValue]) -> None:
        if not self._watchers:
            return
        if len(records) > 1:
            records = sorted(records, key=_by_key)
        single = self._single
        ranged = self._ranged.values()
        index = self._store.index
        for kv in records:
            same_key = single.get(kv.key)
            targets = [] if same_key is None else list(same_key.values())
            if ranged:
                targets.extend(w for w in ranged if w.covers(kv.key))
            plain: Event | None = None
            with_prev: Event | None = None
            for watcher in targets:
                if revision < watcher.start_revision or not watcher.wants(kv):
                    continue
                if watcher.prev_kv:
                    if with_prev is None:
                        with_prev = _event(kv, self._prev(index.get(kv.key), kv))
                    event = with_prev
                else:
                    if plain is None:
                        plain = _event(kv, None)
                    event = plain
                if not watcher.pending and self._on_ready is not None:
                    watcher.pending.append(event)
                    self._on_ready(watcher.id)
                else:
                    watcher.pending.append(event)
