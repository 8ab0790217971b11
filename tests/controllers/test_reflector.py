"""The reflector against a real API server: list then watch, re-watch without a list when a
watch simply ends, and list again after a 410 Gone."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.backoff import Backoff
from raftkube.controllers.listwatch import ListWatch, WatchEvent
from raftkube.controllers.reflector import Reflector
from raftkube.controllers.resources import CONFIG_MAPS
from raftkube.controllers.store import Indexer, meta_namespace_key
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import configmap
from tests.helpers.polling import wait_for

Obj = dict[str, Any]


@attrs.define
class RecordingStore:
    """An :class:`Indexer` that also records what the reflector did to it."""

    indexer: Indexer = attrs.Factory(Indexer)
    calls: list[tuple[str, str]] = attrs.Factory(list)

    def add(self, obj: Obj) -> None:
        self.calls.append(("add", meta_namespace_key(obj)))
        self.indexer.add(obj)

    def update(self, obj: Obj) -> None:
        self.calls.append(("update", meta_namespace_key(obj)))
        self.indexer.update(obj)

    def delete(self, obj: Obj) -> None:
        self.calls.append(("delete", meta_namespace_key(obj)))
        self.indexer.delete(obj)

    def replace(self, items: list[Obj], resource_version: str) -> None:
        self.calls.append(("replace", resource_version))
        self.indexer.replace(items)

    def names(self) -> set[str]:
        return {meta_namespace_key(o) for o in self.indexer.list()}


@attrs.define
class CutAndGatedListWatch:
    """A real :class:`ListWatch` whose first watch is cut short after ``cut_after`` events
    (as a broken connection would end it) and whose second waits for ``gate``."""

    inner: ListWatch
    cut_after: int
    gate: trio.Event = attrs.Factory(trio.Event)
    lists: list[str] = attrs.Factory(list)
    watches: list[str] = attrs.Factory(list)

    async def list(self, resource_version: str) -> Obj:
        self.lists.append(resource_version)
        return await self.inner.list(resource_version)

    @asynccontextmanager
    async def watch(self, resource_version: str, timeout_seconds: int) -> AsyncIterator[Any]:
        self.watches.append(resource_version)
        number = len(self.watches)
        if number == 2:
            await self.gate.wait()
        async with self.inner.watch(resource_version, timeout_seconds) as events:
            yield self._first(events) if number == 1 else events

    async def _first(self, events: AsyncIterator[WatchEvent]) -> AsyncIterator[WatchEvent]:
        count = 0
        async for event in events:
            if event[0] == "BOOKMARK":
                continue
            yield event
            count += 1
            if count >= self.cut_after:
                return


@pytest.mark.trio
async def test_lists_then_follows_every_change(api: APIHarness) -> None:
    await api.admin.create(CONFIG_MAPS, configmap("before"))
    store = RecordingStore()
    lw = ListWatch(api.admin, CONFIG_MAPS, "default")
    reflector = Reflector("configmaps", lw, store, TrioClock(), rng=random.Random(1))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reflector.run)
            await wait_for(lambda: reflector.lists == 1, "the first list")
            assert "default/before" in store.names()
            listed_version = reflector.last_sync_resource_version
            assert store.calls[0] == ("replace", listed_version)
            await api.admin.create(CONFIG_MAPS, configmap("after"))
            await api.admin.patch(CONFIG_MAPS, "before", {"data": {"k": "x"}}, namespace="default")
            await api.admin.delete(CONFIG_MAPS, "after", namespace="default")
            await wait_for(lambda: ("delete", "default/after") in store.calls, "the delete")
            assert store.calls[1:] == [
                ("add", "default/after"),
                ("update", "default/before"),
                ("delete", "default/after"),
            ]
            cached = store.indexer.get_by_key("default/before")
            assert cached is not None and cached["data"] == {"k": "x"}
            assert int(reflector.last_sync_resource_version) > int(listed_version)
            assert reflector.lists == 1 and reflector.watches == 1
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_relists_after_410_gone(api: APIHarness, caplog: pytest.LogCaptureFixture) -> None:
    """The first watch is cut after one event; while the reflector is away, enough writes go
    by that the watch cache's window no longer reaches its resourceVersion: the re-watch is
    answered 410 and the reflector lists again, ending with every object."""
    caplog.set_level(logging.INFO, "raftkube.controllers.reflector")
    api.running.caches[CONFIG_MAPS.qualified].capacity = 4
    store = RecordingStore()
    lw = CutAndGatedListWatch(ListWatch(api.admin, CONFIG_MAPS, "default"), cut_after=1)
    clock = TrioClock()
    backoff = Backoff(clock, initial=0.01, maximum=0.05, rng=random.Random(2))
    reflector = Reflector("configmaps", lw, store, clock, backoff=backoff)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reflector.run)
            await wait_for(lambda: reflector.lists == 1 and lw.watches, "the first watch")
            await api.admin.create(CONFIG_MAPS, configmap("a"))
            await wait_for(lambda: len(lw.watches) == 2, "the second watch")
            seen_version = lw.watches[1]
            assert store.names() >= {"default/a"}
            for i in range(10):
                await api.admin.create(CONFIG_MAPS, configmap(f"b{i}"))
            lw.gate.set()
            await wait_for(lambda: reflector.lists == 2, "the relist")
            # The relist asked for "not older than" what it had seen.
            assert lw.lists == ["0", seen_version]
            await wait_for(lambda: len(store.names()) >= 11, "every object")
            assert {f"default/b{i}" for i in range(10)} <= store.names()
            assert [c for c, _ in store.calls].count("replace") == 2
            assert "watch ended: too old resource version" in caplog.text
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_watch_that_ends_is_resumed_without_a_list(api: APIHarness) -> None:
    store = RecordingStore()
    lw = CutAndGatedListWatch(ListWatch(api.admin, CONFIG_MAPS, "default"), cut_after=1)
    lw.gate.set()
    reflector = Reflector("configmaps", lw, store, TrioClock(), rng=random.Random(3))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reflector.run)
            await wait_for(lambda: lw.watches, "the first watch")
            await api.admin.create(CONFIG_MAPS, configmap("one"))
            await wait_for(lambda: len(lw.watches) == 2, "the second watch")
            await api.admin.create(CONFIG_MAPS, configmap("two"))
            await wait_for(lambda: "default/two" in store.names(), "the second event")
            assert reflector.lists == 1
            assert (
                lw.watches[1]
                == store.indexer.get_by_key("default/one")["metadata"]["resourceVersion"]
            )
            nursery.cancel_scope.cancel()
