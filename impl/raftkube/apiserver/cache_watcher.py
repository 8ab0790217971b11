"""One watcher of the watch cache (:mod:`raftkube.apiserver.watchcache`): the events it is
offered, what it sees of each through its filter (upstream's ``cacheWatcher``: an object that
comes into the selector is ADDED, one that leaves it is DELETED, changes within it are
MODIFIED), and its stream, which never makes the cache wait: a full buffer cuts the watcher
off and the client watches again.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

import attrs
import trio

from raftkube.apiserver.errors import APIError
from raftkube.apiserver.listing import (
    Filter,
    Obj,
)
from raftkube.apiserver.storage import (
    with_resource_version,
)

if TYPE_CHECKING:
    from raftkube.apiserver.watchcache import WatchCache

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
BOOKMARK: Final = "BOOKMARK"
INITIAL_EVENTS_END: Final = "k8s.io/initial-events-end"
"""The annotation on the bookmark that closes a watch's initial events (watch-list)."""

CHECKPOINT_EVERY: Final = 64
"""A watcher's stream yields to the scheduler at least once per this many items."""

WatchItem = tuple[str, Obj]
"""What a watcher's stream yields: ``(type, object)``."""


@attrs.frozen
class CacheEvent:
    """One change to one object: ``obj`` is its new state (for DELETED, its last state at the
    delete's revision), ``prev`` its state before (None for ADDED)."""

    revision: int
    type: str
    obj: Obj
    prev: Obj | None


def transition(event: CacheEvent, selection: Filter) -> WatchItem | None:
    """What one watcher sees of ``event`` through its filter (upstream's
    ``cacheWatcher.convertToWatchEvent``)."""
    now = event.type != DELETED and selection.matches(event.obj)
    before = event.prev is not None and selection.matches(event.prev)
    if now and before:
        return MODIFIED, event.obj
    if now:
        return ADDED, event.obj
    if before:
        if event.type == DELETED:
            return DELETED, event.obj
        assert event.prev is not None
        return DELETED, with_resource_version(event.prev, event.revision)
    return None


class CacheWatcher:
    """One watcher's stream: ``async for type, obj in watcher``; ``await watcher.aclose()``
    (or ``async with``) to leave. The stream ends when the cache cuts the watcher off (too
    slow, or the cache had to list again) or stops; the client then watches again."""

    def __init__(
        self,
        cache: WatchCache,
        selection: Filter,
        start: int,
        initial: bool,
        bookmarks: bool,
    ) -> None:
        self.cache = cache
        self.selection = selection
        self.start = start
        """Events after this revision are the watcher's."""
        self.initial = initial
        self.bookmarks = bookmarks
        self.bookmarked = 0
        self.ending_bookmark = False
        self.backlog: collections.deque[WatchItem] = collections.deque()
        self.overflowed = False
        self.registered = False
        self.trigger_value: str | None = None
        """The trigger value the cache indexes this watcher by (None: not indexed)."""
        self.error: APIError | None = None
        self._send, self._receive = trio.open_memory_channel[WatchItem](cache.buffer)
        self._unchecked = 0

    def register(self) -> None:
        if self.registered:
            return
        self.registered = True
        try:
            self.cache._register(self)
        except APIError as exc:
            self.error = exc
            self._send.close()

    def offer(self, item: WatchItem, *, optional: bool = False) -> None:
        """Queue ``item`` without waiting; a full buffer ends the watcher, unless the item is
        optional (a bookmark), which is then dropped."""
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            if not optional:
                self.overflowed = True
                self.end()
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.end()

    def end(self) -> None:
        """End the stream once what is queued has been read."""
        self.cache._unregister(self)
        self._send.close()

    def __aiter__(self) -> AsyncIterator[WatchItem]:
        return self

    async def __anext__(self) -> WatchItem:
        if not self.registered:
            await self.cache.wait_ready()
            self.register()
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if self.backlog:
            await trio.lowlevel.checkpoint()
            return self.backlog.popleft()
        try:
            # What is already queued is handed over without a schedule point (but for one in
            # every CHECKPOINT_EVERY items), so a watcher drains as fast as the cache fills it
            # instead of one item per scheduling round.
            self._unchecked += 1
            if self._unchecked < CHECKPOINT_EVERY:
                with contextlib.suppress(trio.WouldBlock):
                    return self._receive.receive_nowait()
            self._unchecked = 0
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.end()
        await self._receive.aclose()

    async def __aenter__(self) -> CacheWatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
