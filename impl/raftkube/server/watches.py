"""Watchers that survive the member replacing its MVCC store (installing a leader's snapshot).

A :class:`~raftkube.mvcc.watch.WatchHub` follows one store. When a lagging follower installs
a snapshot, its store is replaced wholesale and the revisions it skipped never pass through
the hub as writes, so its watchers would silently miss events. :class:`MemberWatches` gives the
client service stable watcher ids and, on :meth:`MemberWatches.replace_store`, re-creates every
watcher on a hub over the new store starting at the first revision it has not delivered yet:
the new store's retained history then yields the missed events as a backlog (or a compacted
notice if that history is gone), which is what etcd does with its "unsynced" watchers.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from raftkube.mvcc import MvccStore, WatchHub
from raftkube_spec.kv.types import Event
from raftkube_spec.kv.watch import WatchCompacted, WatchFilter


@attrs.define(eq=False)
class _Spec:
    """What is needed to re-create a watcher, and where its delivery has got to."""

    key: bytes
    range_end: bytes
    next_revision: int
    prev_kv: bool
    filters: frozenset[WatchFilter]
    hub_id: int = 0
    carried: list[Event] = attrs.Factory(list)
    """Events taken from a replaced hub but not yet handed to the service."""
    compacted: WatchCompacted | None = None
    """A final notice taken from a replaced hub; the watcher is not re-created."""


class MemberWatches:
    """The watch API the client service uses (``watch``/``take``/``has_pending``/``cancel``)."""

    def __init__(self, store: MvccStore, on_ready: Callable[[int], None]) -> None:
        self._on_ready = on_ready
        self._specs: dict[int, _Spec] = {}
        self._by_hub: dict[int, int] = {}
        self._next_id = 1
        self._store = store
        self._hub = WatchHub(store, on_ready=self._hub_ready)

    def _hub_ready(self, hub_id: int) -> None:
        wid = self._by_hub.get(hub_id)
        if wid is not None:
            self._on_ready(wid)

    def __len__(self) -> int:
        return len(self._specs)

    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: frozenset[WatchFilter] = frozenset(),
    ) -> int:
        """Register a watcher (see :meth:`WatchHub.watch`); returns its stable id."""
        wid = self._next_id
        self._next_id += 1
        first = self._store.revision + 1 if start_revision == 0 else start_revision
        spec = _Spec(key, range_end, first, prev_kv, filters)
        self._specs[wid] = spec
        self._attach(wid, spec)
        return wid

    def _attach(self, wid: int, spec: _Spec) -> None:
        # The hub reports a backlog from inside watch(), before its id is mapped here, so
        # readiness is checked again once the mapping exists.
        spec.hub_id = self._hub.watch(
            spec.key, spec.range_end, spec.next_revision, spec.prev_kv, spec.filters
        )
        self._by_hub[spec.hub_id] = wid
        if spec.carried or self._hub.has_pending(spec.hub_id):
            self._on_ready(wid)

    def take(self, wid: int) -> tuple[Event, ...] | WatchCompacted:
        """Drain a watcher; a compacted notice is final (the watcher is forgotten)."""
        spec = self._specs[wid]
        if spec.compacted is not None:
            self._forget(wid)
            return spec.compacted
        taken = self._hub.take(spec.hub_id)
        if isinstance(taken, WatchCompacted):
            self._forget(wid)
            return taken
        events = (*spec.carried, *taken)
        spec.carried.clear()
        if events:
            spec.next_revision = events[-1].kv.mod_revision + 1
        return events

    def has_pending(self, wid: int) -> bool:
        spec = self._specs[wid]
        if spec.compacted is not None or spec.carried:
            return True
        return self._hub.has_pending(spec.hub_id)

    def cancel(self, wid: int) -> None:
        """Forget a watcher; unknown ids are ignored."""
        if wid in self._specs:
            if self._specs[wid].compacted is None:
                self._hub.cancel(self._specs[wid].hub_id)
            self._forget(wid)

    def _forget(self, wid: int) -> None:
        spec = self._specs.pop(wid)
        if self._by_hub.get(spec.hub_id) == wid:
            del self._by_hub[spec.hub_id]

    def replace_store(self, store: MvccStore) -> None:
        """Follow ``store`` from now on; every watcher resumes where its delivery stopped."""
        old = self._hub
        for spec in self._specs.values():
            if spec.compacted is not None:
                continue
            taken = old.take(spec.hub_id)
            if isinstance(taken, WatchCompacted):
                spec.compacted = taken
            elif taken:
                spec.carried.extend(taken)
                spec.next_revision = taken[-1].kv.mod_revision + 1
        old.close()
        self._by_hub.clear()
        self._store = store
        self._hub = WatchHub(store, on_ready=self._hub_ready)
        for wid, spec in self._specs.items():
            if spec.compacted is None:
                self._attach(wid, spec)
            else:
                self._on_ready(wid)
