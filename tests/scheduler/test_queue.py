"""The scheduling queue in virtual time: priority order, back-off growth, unschedulable pods
waiting for an event (or five minutes), and a move request during an attempt."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from raftkube.clock import TrioClock
from raftkube.scheduler.queue import SchedulingQueue
from tests.helpers.scheduler_objects import pod


class _Fixed:
    """A clock that never moves: enough where only order matters."""

    def now(self) -> float:
        return 0.0

    async def sleep_until(self, deadline: float) -> None:
        raise AssertionError("not used")

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        return trio.CancelScope()


def test_priority_then_arrival_order() -> None:
    q = SchedulingQueue(_Fixed())
    q.add(pod("low-1"))
    q.add(pod("high", priority=100))
    q.add(pod("low-2"))
    popped = [q.try_pop() for _ in range(3)]
    assert [p.key if p else None for p in popped] == ["default/high", "default/low-1",
                                                      "default/low-2"]  # fmt: skip
    assert q.try_pop() is None


def test_backoff_doubles_to_ten_seconds() -> None:
    q = SchedulingQueue(_Fixed())
    q.add(pod("p"))
    info = q.try_pop()
    assert info is not None
    durations = []
    for attempts in range(1, 7):
        info.attempts = attempts
        durations.append(q.backoff_duration(info))
    assert durations == [1, 2, 4, 8, 10, 10]


@pytest.mark.trio
async def test_unschedulable_waits_for_an_event_then_its_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = TrioClock()
    q = SchedulingQueue(clock)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(q.run)
        q.add(pod("p"))
        info = await q.pop()
        cycle = q.scheduling_cycle
        q.add_unschedulable(info, cycle)
        assert q.where("default/p") == "unschedulable"
        await trio.sleep(60)
        assert q.where("default/p") == "unschedulable"  # no event: it waits
        q.move_all_to_active_or_backoff()  # its 1 s back-off is long over
        assert q.where("default/p") == "active"
        info = await q.pop()
        q.add_unschedulable(info, q.scheduling_cycle)
        q.move_all_to_active_or_backoff()  # second attempt: 2 s back-off, not over
        assert q.where("default/p") == "backoff"
        started = trio.current_time()
        again = await q.pop()
        assert again.key == "default/p" and trio.current_time() - started == pytest.approx(2)
        # Left alone, an unschedulable pod is retried after five minutes.
        q.add_unschedulable(again, q.scheduling_cycle)
        started = trio.current_time()
        await q.pop()
        assert 300 <= trio.current_time() - started <= 331
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_move_request_during_the_attempt_sends_it_to_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    q = SchedulingQueue(TrioClock())
    q.add(pod("p"))
    q.add(pod("other"))
    info = await q.pop()
    cycle = q.scheduling_cycle
    q.move_all_to_active_or_backoff()  # a node appeared while p was being decided
    q.add_unschedulable(info, cycle)
    assert q.where("default/p") == "backoff"


def test_updates_and_deletes() -> None:
    q = SchedulingQueue(_Fixed())
    q.add(pod("p"))
    info = q.try_pop()
    assert info is not None
    q.update(pod("p", labels={"a": "b"}))  # in flight: the newest object is kept
    assert info.pod["metadata"]["labels"] == {"a": "b"}
    q.add_unschedulable(info, q.scheduling_cycle)
    q.update(pod("p", labels={"a": "b"}))  # nothing that matters changed
    assert q.where("default/p") == "unschedulable"
    q.update(pod("p", labels={"a": "c"}))  # a change may make it fit
    assert q.where("default/p") in ("active", "backoff")
    q.delete(pod("p"))
    assert q.where("default/p") is None and len(q) == 0
    assert q.try_pop() is None
