"""The watch cache: one store watch per resource, fanned out to every watcher of it.

Upstream's ``Cacher`` in front of etcd, in the same shape. :meth:`WatchCache.run` lists the
resource's prefix at some revision R, then watches the store from R+1 and applies each event to

- a snapshot of the current objects (which serves ``resourceVersion=0`` gets and lists), and
- a ring of the last ``capacity`` events ``(revision, type, object, previous object)``, which
  serves watches that start from a recent resourceVersion.

Every event is offered at once to every registered :class:`CacheWatcher` without waiting:
a watcher whose buffer is full is cut off (its stream ends, as upstream closes a slow
watcher; the client watches again from the last resourceVersion it saw), so a slow client
never holds up the others or the cache. Each watcher sees events through its filter the way
upstream's ``cacheWatcher`` does: an object that comes into the selector is ADDED, one that
leaves it is DELETED (the previous state, at the event's revision), changes within it are
MODIFIED.

What the cache promises, and why it holds:

- *Every event once, in revision order, after the watcher's start.* Events are applied and
  dispatched by one task in the order the store watch delivers them (revision order); a
  watcher is registered without an await between reading the snapshot or the ring and
  joining the dispatch list, so nothing falls between its backlog and its live events.
- *No silent gaps.* A broken store watch (connection lost, member restarted, this task too
  slow) is resumed from the last applied revision + 1, which loses nothing. Only if that
  revision has been compacted does the cache list again; the events in between are gone,
  so every watcher's stream is ended then (they re-watch; one whose resourceVersion is now
  older than the ring gets 410 and relists), exactly upstream's behaviour on a relist.
- *Bookmarks tell the truth.* A BOOKMARK carries the cache's revision, and every event up to
  it has been put in the watcher's stream before the bookmark.

Watchers pinned to one node (a kubelet's ``fieldSelector=spec.nodeName=NAME`` watch of pods) are
indexed by that node, as upstream's cacher indexes them with the pod's ``NodeNameTriggerFunc``:
an event is offered only to the watchers of the node it names before or after, and to the
unindexed ones, instead of being matched against every kubelet's selector (with 1,000 nodes,
that matching was a fifth of the API server's time).

Simplifications: the store has no progress notifications, so the cache's revision is the last
revision that touched this resource, not the store's; a watch from a resourceVersion newer than
that simply starts there (every event after it is delivered) instead of waiting for the cache,
and :meth:`WatchCache.wait_until_fresh` can only be satisfied by this resource's own writes.
"""

from __future__ import annotations

import builtins
import collections
import math
from collections.abc import Callable
from typing import Final

import trio

from raftkube.apiserver.cache_watcher import (
    ADDED,
    BOOKMARK,
    DELETED,
    INITIAL_EVENTS_END,
    MODIFIED,
    CacheEvent,
    CacheWatcher,
    WatchItem,
    transition,
)
from raftkube.apiserver.errors import APIError, gone
from raftkube.apiserver.listing import (
    FieldFn,
    Filter,
    ListResult,
    Obj,
    make_filter,
    parse_resource_version,
    too_large_resource_version,
)
from raftkube.apiserver.resources import ResourceInfo
from raftkube.apiserver.selectors import FieldSelector, LabelSelector, object_meta_fields
from raftkube.apiserver.storage import (
    ObjectStore,
    decode_object,
    key_of,
    object_key,
    resource_prefix,
    with_resource_version,
)
from raftkube.client import Client
from raftkube.client.client import ClientError
from raftkube.client.connection import BrokenError
from raftkube.client.keys import prefix_end
from raftkube.clock import Clock, TrioClock, move_on_after, sleep_for
from raftkube_spec.kv.types import Event, EventType


def not_ready() -> APIError:
    """Upstream's answer while the cache is (re)initializing: 429, retry in a second."""
    return APIError(
        429,
        "TooManyRequests",
        "storage is (re)initializing",
        details={"retryAfterSeconds": 1},
        headers=(("Retry-After", "1"),),
    )


def _pod_node_name(obj: Obj) -> str:
    """Upstream's ``NodeNameTriggerFunc``: the node a pod is bound to ("" for none yet)."""
    spec = obj.get("spec")
    return str(spec.get("nodeName") or "") if isinstance(spec, dict) else ""


TRIGGERS: Final[dict[tuple[str, str], tuple[str, Callable[[Obj], str]]]] = {
    ("", "pods"): ("spec.nodeName", _pod_node_name),
}
"""Per resource (group, plural): the field whose ``=`` selector indexes a watcher, and the
function reading that field's value from an object (upstream's cacher ``IndexerFuncs``)."""


class WatchCache:
    """The cache of one resource; run :meth:`run` in a nursery the caller owns.

    Objects it hands out (events, list items, :meth:`get`) are shared with the cache and
    with other watchers: callers must not change them.
    """

    def __init__(
        self,
        client: Client,
        info: ResourceInfo,
        *,
        clock: Clock | None = None,
        capacity: int = 1024,
        buffer: int = 1024,
        bookmark_interval: float = 5.0,
        retry_delay: float = 0.5,
    ) -> None:
        self.client = client
        self.info = info
        self.clock: Clock = clock or TrioClock()
        self.capacity = capacity
        self.buffer = buffer
        self.bookmark_interval = bookmark_interval
        self.retry_delay = retry_delay
        self.store = ObjectStore(client)
        self.prefix = resource_prefix(info).encode()
        self.revision = 0
        """Every event up to this revision has been applied and dispatched."""
        self.window_start = 0
        """The ring holds every event after this revision."""
        self.relists = 0
        """How many times the cache listed (1 after the first list); tests and metrics."""
        self.store_watches = 0
        """How many store watches the cache has opened so far."""
        self._objects: dict[str, Obj] = {}
        self._events: collections.deque[CacheEvent] = collections.deque()
        self._watchers: set[CacheWatcher] = set()
        """The watchers not indexed by a trigger value."""
        self._indexed: dict[str, set[CacheWatcher]] = {}
        """Watchers whose selector pins the trigger field, by the value it pins it to."""
        self._trigger = TRIGGERS.get((info.group, info.resource))
        self._ready = trio.Event()
        self._progress = trio.Event()

    # --- state ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        while not self._ready.is_set():
            await self._ready.wait()

    async def wait_until_fresh(self, revision: int, *, timeout: float = 3.0) -> None:
        """Wait until the cache has applied ``revision``; upstream's 504 "Too large resource
        version" if it has not within ``timeout`` seconds on the cache's clock."""
        with move_on_after(self.clock, timeout):
            await self.wait_ready()
            while self.revision < revision:
                await self._progress.wait()
            return
        raise too_large_resource_version(revision, self.revision)

    def get(self, namespace: str, name: str) -> Obj | None:
        """The cached object (``resourceVersion=0``: possibly stale), None if absent."""
        if not self.ready:
            raise not_ready()
        return self._objects.get(object_key(self.info, namespace, name))

    def list(
        self,
        namespace: str,
        *,
        resource_version: str = "0",
        label_selector: LabelSelector | str | None = None,
        field_selector: FieldSelector | str | None = None,
        field_fn: FieldFn = object_meta_fields,
    ) -> ListResult:
        """Every matching object at the cache's revision, in key order, without paging (as
        upstream serves ``resourceVersion=0`` lists from its cache). A resourceVersion newer
        than the cache is upstream's 504; the caller may read the store instead."""
        if not self.ready:
            raise not_ready()
        minimum = parse_resource_version(resource_version)
        if minimum > self.revision:
            raise too_large_resource_version(minimum, self.revision)
        selection = make_filter(self.info, namespace, label_selector, field_selector, field_fn)
        return ListResult(self._matching(selection), self.revision)

    def _matching(self, selection: Filter) -> builtins.list[Obj]:
        # Key order, as a list from the store: namespace, then name.
        objects = (self._objects[key] for key in sorted(self._objects))
        return [obj for obj in objects if selection.matches(obj)]

    # --- watchers ------------------------------------------------------------------------

    def watch(
        self,
        namespace: str,
        *,
        resource_version: str = "",
        label_selector: LabelSelector | str | None = None,
        field_selector: FieldSelector | str | None = None,
        field_fn: FieldFn = object_meta_fields,
        allow_bookmarks: bool = False,
        send_initial_events: bool | None = None,
        name: str = "",
    ) -> CacheWatcher:
        """A stream of ``(type, object)`` for the matching objects of ``namespace`` ("" = all).

        ``resource_version`` unset or "0": an ADDED for every matching object, then every
        change; a revision: every change after it (410 Expired, raised by the stream, if the
        ring no longer reaches back to it). ``send_initial_events`` (watch-list) forces the
        initial ADDEDs on (and ends them with a bookmark annotated
        ``k8s.io/initial-events-end`` when bookmarks are allowed) or off. ``name`` watches one
        object. Selector errors are raised here; the rest by the stream's first ``anext``,
        which also waits for the cache to be ready."""
        selection = make_filter(
            self.info, namespace, label_selector, field_selector, field_fn, name
        )
        start = parse_resource_version(resource_version)
        initial = send_initial_events
        if initial is None:
            initial = start == 0
        watcher = CacheWatcher(self, selection, start, initial, allow_bookmarks)
        watcher.ending_bookmark = bool(send_initial_events) and allow_bookmarks
        if self.ready:
            watcher.register()
        return watcher

    def _register(self, watcher: CacheWatcher) -> None:
        """Fill the watcher's backlog and join the dispatch list, with no await between."""
        selection = watcher.selection
        if watcher.initial:
            watcher.start = self.revision
            for obj in self._matching(selection):
                watcher.backlog.append((ADDED, obj))
            if watcher.ending_bookmark:
                watcher.backlog.append(self._bookmark(initial_end=True))
        elif watcher.start == 0:
            watcher.start = self.revision
        elif watcher.start < self.window_start:
            raise gone(f"too old resource version: {watcher.start} ({self.window_start})")
        else:
            for event in self._events:
                if event.revision > watcher.start:
                    item = transition(event, selection)
                    if item is not None:
                        watcher.backlog.append(item)
        watcher.trigger_value = self._trigger_value_of(selection)
        if watcher.trigger_value is None:
            self._watchers.add(watcher)
        else:
            self._indexed.setdefault(watcher.trigger_value, set()).add(watcher)

    def _trigger_value_of(self, selection: Filter) -> str | None:
        """The value the selection pins this resource's trigger field to, if it does."""
        if self._trigger is None or selection.fields is None:
            return None
        return selection.fields.value_of(self._trigger[0])

    def _unregister(self, watcher: CacheWatcher) -> None:
        if watcher.trigger_value is None:
            self._watchers.discard(watcher)
            return
        indexed = self._indexed.get(watcher.trigger_value)
        if indexed is not None:
            indexed.discard(watcher)
            if not indexed:
                del self._indexed[watcher.trigger_value]

    def _all_watchers(self) -> builtins.list[CacheWatcher]:
        every = builtins.list(self._watchers)
        for value in sorted(self._indexed):
            every.extend(self._indexed[value])
        return every

    def _candidates(self, event: CacheEvent) -> builtins.list[CacheWatcher]:
        """The watchers ``event`` may concern: the unindexed ones, and the indexed ones of the
        trigger value the object has now or had before."""
        candidates = builtins.list(self._watchers)
        if self._trigger is not None and self._indexed:
            trigger = self._trigger[1]
            values = {trigger(event.obj)}
            if event.prev is not None:
                values.add(trigger(event.prev))
            for value in sorted(values):
                candidates.extend(self._indexed.get(value, ()))
        return candidates

    def _bookmark(self, *, initial_end: bool = False) -> WatchItem:
        meta: Obj = {"resourceVersion": str(self.revision)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": self.info.kind, "apiVersion": self.info.group_version, "metadata": meta}
        return BOOKMARK, obj

    def _dispatch(self, event: CacheEvent) -> None:
        for watcher in self._candidates(event):
            if event.revision <= watcher.start:
                continue  # a watcher from a revision the cache had not reached yet
            item = transition(event, watcher.selection)
            if item is not None:
                watcher.offer(item)

    def _send_bookmarks(self) -> None:
        for watcher in self._all_watchers():
            due = self.revision > watcher.bookmarked and self.revision >= watcher.start
            if watcher.bookmarks and due:
                watcher.bookmarked = self.revision
                watcher.offer(self._bookmark(), optional=True)

    def _end_all(self) -> None:
        for watcher in self._all_watchers():
            watcher.end()

    # --- following the store -------------------------------------------------------------

    async def run(self) -> None:
        """List, then follow the store's watch for ever: resume a broken watch from the last
        applied revision, list again only when that revision was compacted. Ends every
        watcher's stream when cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._bookmark_ticker)
                await self._follow_forever()
        finally:
            self._end_all()

    async def _follow_forever(self) -> None:
        must_list = True
        while True:
            try:
                if must_list:
                    await self._list()
                    must_list = False
                await self._follow()
            except ClientError as exc:
                must_list = exc.code == "compacted"
            except (BrokenError, OSError, trio.BrokenResourceError, trio.EndOfChannel):
                # A lost connection (the client's watch may end with EndOfChannel if it is lost
                # before the watch is confirmed): watch again from where the cache is.
                pass
            except trio.TooSlowError:
                # The store client's read timed out (no leader, a partition): the store is
                # unreachable for now, as for a failed list; try again rather than take the
                # server down (upstream's cacher reflector retries too).
                pass
            except APIError as exc:  # the list failed: the store is unreachable
                if exc.code < 500:
                    raise
            await sleep_for(self.clock, self.retry_delay)

    async def _list(self) -> None:
        if self.relists:
            # The events between what was applied and this list are lost: every watcher must
            # start again from what it has seen (and relist if that is now too old). A list
            # that failed already replaced the event: those waiting on it must keep it.
            if self._ready.is_set():
                self._ready = trio.Event()
            self._end_all()
        result = await self.store.list(self.info, "")
        self.relists += 1
        self._objects = {key_of(self.info, obj): obj for obj in result.items}
        self._events.clear()
        self._advance(result.resource_version)
        self.window_start = result.resource_version
        self._ready.set()

    async def _follow(self) -> None:
        """Apply the store's events from ``revision + 1`` until its watch ends or fails."""
        self.store_watches += 1
        async with self.client.watch(
            self.prefix, prefix_end(self.prefix), start_revision=self.revision + 1
        ) as events:
            async for event in events:
                self._apply(event)

    def _apply(self, raw: Event) -> None:
        key = raw.kv.key.decode()
        revision = raw.kv.mod_revision
        prev = self._objects.get(key)
        if raw.type is EventType.PUT:
            obj = decode_object(raw.kv.value, revision)
            self._objects[key] = obj
            event = CacheEvent(revision, ADDED if prev is None else MODIFIED, obj, prev)
        else:
            if prev is None:
                self._advance(revision)
                return
            del self._objects[key]
            event = CacheEvent(revision, DELETED, with_resource_version(prev, revision), prev)
        if len(self._events) >= self.capacity:
            self.window_start = self._events.popleft().revision
        self._events.append(event)
        self._advance(revision)
        self._dispatch(event)

    def _advance(self, revision: int) -> None:
        if revision > self.revision:
            self.revision = revision
            self._progress.set()
            self._progress = trio.Event()

    async def _bookmark_ticker(self) -> None:
        if not math.isfinite(self.bookmark_interval) or self.bookmark_interval <= 0:
            return
        while True:
            await sleep_for(self.clock, self.bookmark_interval)
            self._send_bookmarks()


__all__ = ["CacheEvent", "CacheWatcher", "WatchCache", "WatchItem", "not_ready"]
