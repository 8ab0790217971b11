"""The reflector: client-go's ``cache.Reflector``, keeping a store equal to one collection.

:meth:`Reflector.run` repeats *list and watch* for ever, waiting a :class:`Backoff` delay
between attempts:

1. **List** at ``resourceVersion`` "0" the first time (any cached state will do), then at the
   last resourceVersion seen (not older than it); if the server answers 410 Gone to that, list
   again with "" (a consistent read). The store is *replaced* with the items, and the list's
   resourceVersion becomes ``last_sync_resource_version``.
2. **Watch** from ``last_sync_resource_version`` with ``allowWatchBookmarks``, applying every
   ADDED/MODIFIED/DELETED to the store and moving ``last_sync_resource_version`` to each
   event's (and each BOOKMARK's) resourceVersion. A watch the server ends normally (its
   ``timeoutSeconds`` ran out, or it cut off a slow watcher) is opened again from there, with
   no list: nothing was missed.
3. A 410 Gone, as the watch's answer or as an ERROR event, means events after
   ``last_sync_resource_version`` are no longer available: the attempt ends and the next one
   lists again. So does any other failure (connection lost, an error status), after the
   back-off, as client-go does.

A watch that ends within a second without a single event is treated as a failure ("very short
watch"), so a server that closes watches at once is not hammered in a tight loop.

Simplifications against client-go: no paging of the initial list, no watch-list streaming, and
no periodic resync (every controller here is driven by events and its own re-queues).
"""

from __future__ import annotations

import logging
import random
from typing import Any, Protocol

import attrs

from raftkube.clock import Clock, sleep_for
from raftkube.controllers.backoff import Backoff
from raftkube.controllers.listwatch import ListerWatcher, WatchEvent
from raftkube.kubeclient import KubeAPIError, KubeConnectionError

logger = logging.getLogger("raftkube.controllers.reflector")

Obj = dict[str, Any]

MIN_WATCH_TIMEOUT = 300.0
"""client-go's ``minWatchTimeout``: each watch asks the server to end it after 5 to 10 min."""


class ReflectorStore(Protocol):
    """What a reflector writes to (an informer, or a bare store in a test)."""

    def add(self, obj: Obj) -> None: ...

    def update(self, obj: Obj) -> None: ...

    def delete(self, obj: Obj) -> None: ...

    def replace(self, items: list[Obj], resource_version: str) -> None: ...


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class ShortWatch(Exception):
    """The watch ended within a second with no event."""


def resource_version_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@attrs.define(eq=False)
class Reflector:
    """Keeps ``store`` equal to what ``lister_watcher`` lists; see the module docstring.

    ``lists`` counts the lists made (1 after the first), ``watches`` the watches opened.
    """

    name: str
    lister_watcher: ListerWatcher
    store: ReflectorStore
    clock: Clock
    rng: random.Random = attrs.field(factory=random.Random)
    min_watch_timeout: float = MIN_WATCH_TIMEOUT
    backoff: Backoff = attrs.field(
        default=attrs.Factory(lambda self: Backoff(self.clock, rng=self.rng), takes_self=True)
    )
    last_sync_resource_version: str = attrs.field(init=False, default="")
    lists: int = attrs.field(init=False, default=0)
    watches: int = attrs.field(init=False, default=0)
    _last_sync_unavailable: bool = attrs.field(init=False, default=False)

    async def run(self) -> None:
        """List and watch until cancelled (see the module docstring)."""
        while True:
            try:
                await self.list_and_watch()
            except WatchExpired as exc:
                logger.info("%s: watch ended: %s", self.name, exc)
            except (KubeAPIError, KubeConnectionError, ShortWatch) as exc:
                logger.warning("%s: list and watch failed: %s", self.name, exc)
            await sleep_for(self.clock, self.backoff.next())

    def _relist_resource_version(self) -> str:
        """client-go's ``relistResourceVersion``."""
        if self._last_sync_unavailable:
            return ""
        return self.last_sync_resource_version or "0"

    async def list_and_watch(self) -> None:
        """One attempt: list, then watch until the watch fails or expires (which raises)."""
        await self._list()
        while True:
            await self._watch_once()

    async def _list(self) -> None:
        try:
            listed = await self.lister_watcher.list(self._relist_resource_version())
        except KubeAPIError as exc:
            if exc.code != 410:
                raise
            # The resourceVersion we asked to be "not older than" is gone: read the latest.
            self._last_sync_unavailable = True
            listed = await self.lister_watcher.list("")
        self.lists += 1
        self._last_sync_unavailable = False
        version = resource_version_of(listed)
        self.store.replace(list(listed.get("items") or []), version)
        self.last_sync_resource_version = version

    async def _watch_once(self) -> None:
        timeout = int(self.min_watch_timeout * (1.0 + self.rng.random()))
        started = self.clock.now()
        self.watches += 1
        try:
            async with self.lister_watcher.watch(
                self.last_sync_resource_version, timeout
            ) as events:
                received = 0
                async for event in events:
                    received += 1
                    self._handle(event)
        except KubeAPIError as exc:
            if exc.code == 410:
                raise WatchExpired(exc.message) from None
            raise
        if received == 0 and self.clock.now() - started < 1.0:
            raise ShortWatch(
                "very short watch: unexpected watch close - "
                "watch lasted less than a second and no items received"
            )

    def _handle(self, event: WatchEvent) -> None:
        kind, obj = event
        if kind == "ERROR":
            error = KubeAPIError(obj)
            if error.code == 410:
                raise WatchExpired(error.message)
            raise error
        version = resource_version_of(obj)
        if kind == "ADDED":
            self.store.add(obj)
        elif kind == "MODIFIED":
            self.store.update(obj)
        elif kind == "DELETED":
            self.store.delete(obj)
        elif kind != "BOOKMARK":
            logger.warning("%s: unknown watch event type %r", self.name, kind)
            return
        if version:
            self.last_sync_resource_version = version
