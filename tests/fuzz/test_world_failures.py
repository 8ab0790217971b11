"""An exception escaping a member is recorded and takes only that member down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.driver import Simulation
from raftkube_fuzz.world.world import NullListener, World, WorldConfig
from raftkube_spec.raft.events import BecomeLeader


class FailOnFirstLeader(NullListener):
    """Raises from inside the first member that becomes leader (as a checker would)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.raised_in: int | None = None

    def observer_for(self, member_id: int) -> Callable[[Any], None]:
        def observe(event: Any) -> None:
            if isinstance(event, BecomeLeader) and self.raised_in is None:
                self.raised_in = member_id
                raise self.error

        return observe


def run_until_second_leader(listener: FailOnFirstLeader) -> World:
    world = World(WorldConfig(servers=3), 21, listener)
    with Simulation(21) as sim:
        sim.start(world.run)

        async def second_leader() -> None:
            while world.leader() is None or world.leader() == listener.raised_in:
                await trio.sleep(0.01)

        sim.call(second_leader, limit=10)
        assert not sim.finished
    return world


def test_a_bug_in_a_member_is_recorded_and_the_rest_keep_going() -> None:
    listener = FailOnFirstLeader(RuntimeError("boom"))
    world = run_until_second_leader(listener)
    failed = listener.raised_in
    assert failed is not None and not world.up(failed)
    assert len(world.failures) == 1
    member_id, text = world.failures[0]
    assert member_id == failed and "RuntimeError: boom" in text
    assert world.violations == []


def test_a_violation_raised_inside_a_member_is_kept_as_an_object() -> None:
    violation = Violation("ElectionSafety", "two leaders")
    world = run_until_second_leader(FailOnFirstLeader(violation))
    assert world.violations == [violation]
