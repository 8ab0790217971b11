"""The reflector's decisions against a scripted ListerWatcher, in virtual time: which
resourceVersion it lists and watches from, when it lists again, and its back-off."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from raftkube.clock import TrioClock
from raftkube.controllers.backoff import Backoff
from raftkube.controllers.reflector import Reflector
from raftkube.controllers.store import Indexer
from raftkube.kubeclient import KubeAPIError

Obj = dict[str, Any]

GONE = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}


def cm(name: str, rv: int) -> Obj:
    return {"metadata": {"name": name, "namespace": "n", "resourceVersion": str(rv)}}


@attrs.define
class Script:
    """Answers lists from ``lists`` and watches from ``watches`` in order; each watch is a
    list of events, a Status to refuse it with, or "hang" to stay open with nothing."""

    lists: list[Obj | dict[str, Any]]
    watches: list[Any]
    list_calls: list[tuple[float, str]] = attrs.Factory(list)
    watch_calls: list[tuple[float, str]] = attrs.Factory(list)

    async def list(self, resource_version: str) -> Obj:
        self.list_calls.append((trio.current_time(), resource_version))
        answer = self.lists.pop(0)
        if answer.get("kind") == "Status":
            raise KubeAPIError(answer)
        return answer

    @asynccontextmanager
    async def watch(self, resource_version: str, timeout_seconds: int) -> AsyncIterator[Any]:
        self.watch_calls.append((trio.current_time(), resource_version))
        answer = self.watches.pop(0) if self.watches else "hang"
        if isinstance(answer, dict):
            raise KubeAPIError(answer)

        async def events() -> AsyncIterator[tuple[str, Obj]]:
            if answer == "hang":
                await trio.sleep_forever()
            for event in answer:
                await trio.sleep(2)  # a watch that lasts: not a "very short" one
                yield event

        yield events()


@attrs.define
class Plain:
    indexer: Indexer = attrs.Factory(Indexer)

    def add(self, obj: Obj) -> None:
        self.indexer.add(obj)

    def update(self, obj: Obj) -> None:
        self.indexer.update(obj)

    def delete(self, obj: Obj) -> None:
        self.indexer.delete(obj)

    def replace(self, items: list[Obj], resource_version: str) -> None:
        self.indexer.replace(items)


def listing(rv: int, *items: Obj) -> Obj:
    return {"kind": "ConfigMapList", "metadata": {"resourceVersion": str(rv)}, "items": list(items)}


async def run_until(reflector: Reflector, script: Script, lists: int) -> None:
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reflector.run)
            while len(script.list_calls) < lists:
                await trio.sleep(0.5)
            await trio.sleep(10)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_410_error_event_relists_from_the_last_version_seen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(
        lists=[listing(10, cm("a", 5)), listing(40, cm("a", 5), cm("c", 30))],
        watches=[[("ADDED", cm("b", 20)), ("BOOKMARK", cm("", 25)), ("ERROR", GONE)]],
    )
    store = Plain()
    reflector = Reflector("cms", script, store, TrioClock(), rng=random.Random(1))
    await run_until(reflector, script, lists=2)
    assert [rv for _, rv in script.list_calls] == ["0", "25"]
    assert [rv for _, rv in script.watch_calls] == ["10", "40"]
    assert sorted(store.indexer.list_keys()) == ["n/a", "n/c"]  # b vanished meanwhile
    assert reflector.last_sync_resource_version == "40"


@pytest.mark.trio
async def test_a_too_old_list_is_retried_as_a_consistent_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(
        lists=[listing(10), GONE, listing(50)],
        watches=[GONE],
    )
    reflector = Reflector("cms", script, Plain(), TrioClock(), rng=random.Random(2))
    await run_until(reflector, script, lists=3)
    assert [rv for _, rv in script.list_calls] == ["0", "10", ""]
    assert [rv for _, rv in script.watch_calls] == ["10", "50"]


@pytest.mark.trio
async def test_short_watches_back_off_exponentially(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Watches that end at once with nothing are failures: each attempt lists again after a
    back-off that doubles (0.1, 0.2, 0.4 ... with no jitter here)."""
    script = Script(lists=[listing(i) for i in range(1, 7)], watches=[[], [], [], [], []])
    clock = TrioClock()
    backoff = Backoff(clock, initial=0.1, maximum=10.0, jitter=0.0)
    reflector = Reflector("cms", script, Plain(), clock, backoff=backoff)
    await run_until(reflector, script, lists=6)
    times = [t for t, _ in script.list_calls]
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert gaps == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert len(script.watch_calls) == 6  # the last one stays open


@pytest.mark.trio
async def test_a_watch_that_ends_normally_is_reopened_without_a_list(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(
        lists=[listing(10)],
        watches=[[("ADDED", cm("a", 11))], [("MODIFIED", cm("a", 12))], "hang"],
    )
    store = Plain()
    reflector = Reflector("cms", script, store, TrioClock(), rng=random.Random(3))
    await run_until(reflector, script, lists=1)
    assert [rv for _, rv in script.watch_calls] == ["10", "11", "12"]
    assert len(script.list_calls) == 1
    assert store.indexer.get_by_key("n/a") == cm("a", 12)
