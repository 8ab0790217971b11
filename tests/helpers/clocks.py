"""Clocks for tests that run components against a real API server in real time: one that runs
faster than Trio's, so back-offs of tens of seconds pass in a fraction of that, and one that
reads a fixed offset ahead of another."""

from __future__ import annotations

import attrs
import trio

from raftkube.clock import Clock


@attrs.frozen
class FastClock:
    """A :class:`~raftkube.clock.Clock` running ``factor`` times faster than Trio's: the
    kubelet's waits are real waits, only shorter, so it talks to a real API server meanwhile."""

    factor: float = 20.0

    def now(self) -> float:
        return trio.current_time() * self.factor

    async def sleep_until(self, deadline: float) -> None:
        await trio.sleep_until(deadline / self.factor)

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        return trio.CancelScope(deadline=deadline / self.factor)


@attrs.frozen
class OffsetClock:
    """``base`` read ``offset`` seconds ahead (or behind): a host whose clock disagrees with
    the others' by a fixed amount while time passes at the same rate for all."""

    base: Clock
    offset: float

    def now(self) -> float:
        return self.base.now() + self.offset

    async def sleep_until(self, deadline: float) -> None:
        await self.base.sleep_until(deadline - self.offset)

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        return self.base.cancel_scope_at(deadline - self.offset)
