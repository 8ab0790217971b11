"""The sync listener: a worker tells the listener of its own context which key it syncs from
which informers, before the sync runs, and tasks the sync starts inherit what the listener
set; a context without a listener is told nothing."""

from __future__ import annotations

import contextvars

import pytest
import trio
import trio.testing

from raftkube.clock import TrioClock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.synctrace import listen_to_syncs

CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="")


@pytest.mark.trio
async def test_the_listener_is_told_before_the_sync_and_its_context_reaches_child_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    told: list[tuple[str, str]] = []
    seen_in_child: list[str] = []

    def listener(loop: str, key: str, informers: object) -> None:
        told.append((loop, key))
        CURRENT.set(key)

    async def child() -> None:
        seen_in_child.append(CURRENT.get())

    async def sync(key: str) -> None:
        assert told[-1] == ("loop", key)  # told before the sync ran
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)

    queue = new_queue(TrioClock(), "loop")
    worker = Worker("loop", queue, sync)
    async with trio.open_nursery() as nursery:
        listen_to_syncs(listener)
        nursery.start_soon(worker.run, 1)
        queue.add("ns/a")
        queue.add("ns/b")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert told == [("loop", "ns/a"), ("loop", "ns/b")]
    assert seen_in_child == ["ns/a", "ns/b"]


@pytest.mark.trio
async def test_without_a_listener_nothing_is_told(autojump_clock: trio.testing.MockClock) -> None:
    synced: list[str] = []

    async def sync(key: str) -> None:
        synced.append(key)

    queue = new_queue(TrioClock(), "loop")
    worker = Worker("loop", queue, sync)
    async with trio.open_nursery() as nursery:
        listen_to_syncs(None)
        nursery.start_soon(worker.run, 1)
        queue.add("k")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert synced == ["k"]
