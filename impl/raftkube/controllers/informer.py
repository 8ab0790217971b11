"""Shared informers: client-go's ``SharedIndexInformer``, ``SharedInformerFactory`` and listers.

A :class:`SharedIndexInformer` is one :class:`~raftkube.controllers.reflector.Reflector`
feeding one :class:`~raftkube.controllers.store.Indexer`, with any number of event handlers:
every controller that cares about pods shares the one pod watch and the one pod cache.

Handlers are called by the informer's single task right after the cache took the change, so a
handler always sees a cache that already includes the object it is told about. They must be
quick and must not block (they are plain functions: controllers' handlers only put keys on a
work queue). client-go gives each handler its own goroutine and unbounded buffer between the
DeltaFIFO and the handler; with handlers that only enqueue, calling them in place gives the same
order of notifications with no queue to grow and no hidden task.

When a relist replaces the cache, objects still present are reported as updates, new ones as
adds, and objects that vanished meanwhile as deletions of a
:class:`~raftkube.controllers.store.DeletedFinalStateUnknown`, as client-go's DeltaFIFO does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs
import trio

from raftkube.apiserver.resources import ResourceInfo
from raftkube.clock import Clock
from raftkube.controllers.listwatch import ListerWatcher, ListWatch
from raftkube.controllers.reflector import Reflector
from raftkube.controllers.store import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Indexer,
    IndexFunc,
    meta_namespace_index,
    meta_namespace_key,
)
from raftkube.kubeclient import KubeClient

Obj = dict[str, Any]


class ResourceEventHandler(Protocol):
    """client-go's ``ResourceEventHandler``."""

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None: ...


@attrs.frozen
class ResourceEventHandlerFuncs:
    """client-go's ``ResourceEventHandlerFuncs``: a handler from up to three functions."""

    add_func: Callable[[Obj], None] | None = None
    update_func: Callable[[Obj, Obj], None] | None = None
    delete_func: Callable[[Obj | DeletedFinalStateUnknown], None] | None = None

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        if self.add_func is not None:
            self.add_func(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self.update_func is not None:
            self.update_func(old, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if self.delete_func is not None:
            self.delete_func(obj)


class SharedIndexInformer:
    """See the module docstring. Run :meth:`run` in a nursery the caller owns."""

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        *,
        clock: Clock,
        name: str = "",
        indexers: Mapping[str, IndexFunc] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.indexer = Indexer({NAMESPACE_INDEX: meta_namespace_index, **(indexers or {})})
        self.reflector = Reflector(name, lister_watcher, self, clock, rng=rng or random.Random())
        self._handlers: list[ResourceEventHandler] = []
        self._synced = trio.Event()
        self.started = False

    # --- the public face -------------------------------------------------------------------

    def add_event_handler(self, handler: ResourceEventHandler) -> ResourceEventHandler:
        """Register ``handler``; objects already cached are reported to it as adds at once
        (with ``is_in_initial_list``), as client-go does for a late handler."""
        self._handlers.append(handler)
        for obj in self.indexer.list():
            handler.on_add(obj, True)
        return handler

    def remove_event_handler(self, handler: ResourceEventHandler) -> None:
        self._handlers.remove(handler)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    def has_synced(self) -> bool:
        """Whether the first list is in the cache (and every handler was told about it)."""
        return self._synced.is_set()

    async def wait_for_sync(self) -> None:
        await self._synced.wait()

    @property
    def last_sync_resource_version(self) -> str:
        return self.reflector.last_sync_resource_version

    async def run(self) -> None:
        """Fill and follow the cache until cancelled."""
        self.started = True
        await self.reflector.run()

    # --- the reflector's store (the informer's one task calls these) -----------------------

    def add(self, obj: Obj) -> None:
        old = self.indexer.add(obj)
        if old is None:
            for handler in list(self._handlers):
                handler.on_add(obj, False)
        else:
            for handler in list(self._handlers):
                handler.on_update(old, obj)

    update = add

    def delete(self, obj: Obj) -> None:
        self.indexer.delete(obj)
        for handler in list(self._handlers):
            handler.on_delete(obj)

    def replace(self, items: list[Obj], resource_version: str) -> None:
        initial = not self._synced.is_set()
        fresh = {meta_namespace_key(obj) for obj in items}
        for obj in items:
            old = self.indexer.add(obj)
            for handler in list(self._handlers):
                if old is None:
                    handler.on_add(obj, initial)
                else:
                    handler.on_update(old, obj)
        for key in [k for k in self.indexer.list_keys() if k not in fresh]:
            gone = self.indexer.delete_key(key)
            assert gone is not None
            tombstone = DeletedFinalStateUnknown(key, gone)
            for handler in list(self._handlers):
                handler.on_delete(tombstone)
        self._synced.set()


@attrs.frozen
class Lister:
    """client-go's generated listers in one shape: reads of an informer's cache."""

    indexer: Indexer

    def get(self, name: str, namespace: str = "") -> Obj | None:
        """The cached object (None when the cache has none): callers must not change it."""
        return self.indexer.get_by_key(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str = "", *, labels: Mapping[str, str] | None = None) -> list[Obj]:
        """Cached objects of ``namespace`` ("" = all), with every label of ``labels``."""
        if namespace:
            objs = self.indexer.by_index(NAMESPACE_INDEX, namespace)
        else:
            objs = self.indexer.list()
        if labels:
            objs = [o for o in objs if _has_labels(o, labels)]
        return objs


def _has_labels(obj: Obj, labels: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())


class SharedInformerFactory:
    """client-go's ``SharedInformerFactory``: one informer per resource, shared by everyone who
    asks. :meth:`start` runs every informer asked for so far in the caller's nursery (call it
    again after asking for more); :meth:`wait_for_cache_sync` waits for their first lists."""

    def __init__(
        self,
        client: KubeClient,
        *,
        clock: Clock,
        namespace: str = "",
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.namespace = namespace
        self.rng = rng or random.Random()
        self._informers: dict[str, SharedIndexInformer] = {}

    def informer_for(self, resource: ResourceInfo) -> SharedIndexInformer:
        informer = self._informers.get(resource.qualified)
        if informer is None:
            namespace = self.namespace if resource.namespaced else ""
            informer = SharedIndexInformer(
                ListWatch(self.client, resource, namespace),
                clock=self.clock,
                name=resource.qualified,
                rng=random.Random(self.rng.random()),
            )
            self._informers[resource.qualified] = informer
        return informer

    def lister(self, resource: ResourceInfo) -> Lister:
        return Lister(self.informer_for(resource).indexer)

    def start(self, nursery: trio.Nursery) -> None:
        for informer in self._informers.values():
            if not informer.started:
                informer.started = True  # before the task runs, so a second start skips it
                nursery.start_soon(informer.run, name=f"informer {informer.name}")

    async def wait_for_cache_sync(self) -> None:
        for informer in list(self._informers.values()):
            await informer.wait_for_sync()
