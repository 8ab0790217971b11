"""SimClock: the affine local-time map, its faults, and sleepers that notice them."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from raftkube.clock import fail_after, move_on_after
from raftkube_fuzz.world.clock import SimClock


def run(fn: Callable[[], Awaitable[None]]) -> None:
    trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))


def test_offset_and_rate_map_global_time() -> None:
    async def main() -> None:
        clock = SimClock(offset=5.0)
        assert clock.now() == 5.0
        await trio.sleep(1.0)
        assert clock.now() == 6.0
        clock.set_rate(0.5)
        await trio.sleep(2.0)
        assert clock.now() == pytest.approx(7.0)
        clock.resync()
        await trio.sleep(1.0)
        assert clock.now() == pytest.approx(8.0)
        assert clock.rate == 1.0

    run(main)


def test_jump_is_forward_only() -> None:
    async def main() -> None:
        clock = SimClock()
        clock.jump(3.0)
        assert clock.now() == 3.0
        with pytest.raises(ValueError):
            clock.jump(-1.0)
        with pytest.raises(ValueError):
            clock.set_rate(0.0)

    run(main)


def test_sleep_until_converts_to_global_time() -> None:
    async def main() -> None:
        clock = SimClock(offset=100.0)
        clock.set_rate(2.0)
        await clock.sleep_until(104.0)
        assert trio.current_time() == pytest.approx(2.0)
        assert clock.now() >= 104.0
        before = trio.current_time()
        await clock.sleep_until(50.0)  # already past: returns at once
        assert trio.current_time() == before

    run(main)


def test_sleeper_notices_jump_and_rate_change() -> None:
    async def main() -> None:
        clock = SimClock()
        woke: list[float] = []

        async def sleeper() -> None:
            await clock.sleep_until(10.0)
            woke.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sleeper)
            await trio.sleep(1.0)
            clock.set_rate(3.0)  # 9 local seconds left take 3 global seconds
            await trio.sleep(1.0)
            clock.jump(3.0)  # local 7 at global 2: 3 local seconds left take 1 global second
        assert woke == [pytest.approx(3.0)]

    run(main)


def test_pause_holds_sleepers_until_resume() -> None:
    async def main() -> None:
        clock = SimClock()
        woke: list[float] = []

        async def sleeper() -> None:
            await clock.sleep_until(1.0)
            woke.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            clock.pause()
            nursery.start_soon(sleeper)
            await trio.sleep(5.0)
            assert woke == []
            assert clock.now() == 5.0  # time passes while paused
            clock.resume()
        assert woke == [5.0]

    run(main)


async def _timed_out_at(clock: SimClock, seconds: float, at: list[float]) -> None:
    """Wait forever under ``move_on_after(clock, seconds)``; record the global instant it
    fired."""
    with move_on_after(clock, seconds) as scope:
        await trio.sleep_forever()
    assert scope.cancelled_caught
    at.append(trio.current_time())


def test_timeout_follows_a_rate_change_and_a_jump_made_after_it() -> None:
    async def main() -> None:
        clock = SimClock(offset=3.0)
        fired: list[float] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_timed_out_at, clock, 10.0, fired)
            await trio.sleep(1.0)
            clock.set_rate(3.0)  # 9 local seconds left take 3 global seconds
            await trio.sleep(1.0)
            clock.jump(3.0)  # 3 local seconds left: 1 global second
        assert fired == [pytest.approx(3.0)]

    run(main)


def test_a_paused_clock_never_times_out_until_resumed() -> None:
    async def main() -> None:
        clock = SimClock()
        fired: list[float] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_timed_out_at, clock, 1.0, fired)
            await trio.sleep(0.5)
            clock.pause()
            await trio.sleep(10.0)
            assert fired == []
            clock.resume()  # overdue: fires at once
        assert fired == [10.5]
        with fail_after(clock, 2.0):  # a scope closed in time never fires afterwards
            await trio.sleep(1.0)
        await trio.sleep(5.0)
        with pytest.raises(trio.TooSlowError), fail_after(clock, 0.25):
            await trio.sleep(1.0)

    run(main)


def test_a_scope_made_past_its_deadline_is_cancelled_on_entry() -> None:
    async def main() -> None:
        clock = SimClock(offset=4.0)
        with clock.cancel_scope_at(2.0) as scope:
            await trio.sleep(1.0)
        assert scope.cancelled_caught
        assert trio.current_time() == 0.0

    run(main)


def test_sleep_until_keeps_its_promise_despite_rounding() -> None:
    """``now() >= deadline`` on return, also when mapping the deadline to global time and
    back rounds just below it (a caller that re-checks and sleeps again would spin)."""

    async def main() -> None:
        clock = SimClock(offset=0.7310546875, rate=1.5)
        draws = random.Random(1)
        for _ in range(500):
            deadline = clock.now() + draws.random()
            await clock.sleep_until(deadline)
            assert clock.now() >= deadline

    run(main)


def test_a_cancel_scope_fires_only_once_its_deadline_reads_on_the_clock() -> None:
    """Once a ``cancel_scope_at`` scope fires, ``now() >= deadline``, also when mapping the
    deadline to global time and back rounds just below it: a kubelet's pod worker that woke
    from such a scope found its probe not yet due, waited on a scope for the same deadline
    (already past globally, so cancelled at once) and spun at one instant (a Livelock the
    cluster suite found with a kubelet's clock at rate 1.25)."""

    async def main() -> None:
        clock = SimClock(offset=0.7310546875, rate=1.25)
        draws = random.Random(1)
        for _ in range(500):
            deadline = clock.now() + draws.random()
            with clock.cancel_scope_at(deadline):
                await trio.sleep_forever()
            assert clock.now() >= deadline

    run(main)
