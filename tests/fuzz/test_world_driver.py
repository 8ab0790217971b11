"""The simulation driver: virtual clock, timers, and what it does when a run cannot go on."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from raftkube_fuzz.world import driver
from raftkube_fuzz.world.clock import SimClock
from raftkube_fuzz.world.driver import (
    Simulation,
    SimulationError,
    SimulationStalled,
    Wakeup,
    current_timers,
)


def test_time_jumps_exactly_to_the_next_timer_or_deadline() -> None:
    fired: list[tuple[str, float]] = []

    async def main() -> None:
        timers = current_timers()
        timers.at(0.3, lambda: fired.append(("b", trio.current_time())))
        timers.at(0.1, lambda: fired.append(("a", trio.current_time())))
        cancelled = timers.at(0.2, lambda: fired.append(("never", trio.current_time())))
        cancelled.cancel()
        await trio.sleep(0.25)
        fired.append(("slept", trio.current_time()))
        await trio.sleep(0.1)

    with Simulation(seed=1) as sim:
        sim.start()
        sim.call(main)
        assert fired == [("a", 0.1), ("slept", 0.25), ("b", 0.3)]
        assert sim.now == 0.35


def test_standalone_timers_fire_in_a_plain_trio_run() -> None:
    fired: list[float] = []

    async def main() -> None:
        timers = current_timers()
        assert current_timers() is timers
        timers.at(0.5, lambda: fired.append(trio.current_time()))
        await trio.sleep(0.1)
        timers.at(0.2, lambda: fired.append(trio.current_time()))
        await trio.sleep(1.0)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert fired == [0.2, 0.5]


def test_a_parked_wakeup_is_cancellable_and_a_woken_one_returns_at_once() -> None:
    async def main() -> None:
        early = Wakeup()
        early.wake()
        await early.wait()
        parked = Wakeup()
        with trio.move_on_after(1.0) as scope:
            await parked.wait()
        assert scope.cancelled_caught
        parked.wake()  # after an abort: nothing to wake, no error

    with Simulation(seed=2) as sim:
        sim.start()
        sim.call(main)
        assert sim.now == 1.0


def test_a_sim_clock_sleeper_notices_a_jump_at_once() -> None:
    clock = SimClock()

    async def sleeper() -> float:
        await clock.sleep_until(10.0)
        return trio.current_time()

    with Simulation(seed=3) as sim:
        sim.start()
        task = sim.spawn(sleeper, limit=20.0)
        sim.advance(1.0)
        clock.jump(5.0)
        assert sim.wait(task) == 5.0


def test_a_run_with_every_task_blocked_forever_is_an_error() -> None:
    with Simulation(seed=4) as sim:
        sim.start()
        task = sim.spawn(trio.sleep_forever)
        with pytest.raises(SimulationError, match="no deadline"):
            sim.wait(task)


def test_a_task_that_never_blocks_stalls_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "STALL_PASSES", 50)

    async def spin() -> None:
        while True:
            await trio.lowlevel.checkpoint()

    with Simulation(seed=5) as sim:
        sim.start()
        with pytest.raises(SimulationStalled):
            sim.call(spin, limit=1.0)


def test_a_busy_loop_that_lets_time_creep_stalls_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tasks answering each other with the smallest delay never stall one instant, but
    thousands of passes per virtual second are a storm, not progress."""
    monkeypatch.setattr(driver, "STORM_PASSES", 2_000)

    async def storm() -> None:
        while True:
            await trio.sleep(1e-6)

    with Simulation(seed=5) as sim:
        sim.start()
        with pytest.raises(SimulationStalled, match="busy loop"):
            sim.call(storm, limit=10.0)


def test_steady_work_below_the_storm_bound_is_not_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "STORM_PASSES", 2_000)

    async def ticker() -> None:
        for _ in range(3_000):  # 1,000 passes per virtual second, for 3 seconds
            await trio.sleep(0.001)

    with Simulation(seed=5) as sim:
        sim.start()
        sim.call(ticker, limit=10.0)
