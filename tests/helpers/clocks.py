"""Clocks for tests that run components against a real API server in real time: one that runs
faster than Trio's, so back-offs of tens of seconds pass in a fraction of that, one that
reads a fixed offset ahead of another, and one a test moves forward by whole intervals."""

from __future__ import annotations

import weakref

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


class JumpClock:
    """Trio's clock plus an offset that :meth:`advance` moves forward at once: a component's
    five-minute timer fires when the test says so, while its network and its store run in
    real time. Every deadline set through this clock (sleeps and cancel scopes) is moved with
    the jump, so whatever was due by the new time wakes."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._scopes: weakref.WeakSet[trio.CancelScope] = weakref.WeakSet()

    def now(self) -> float:
        return trio.current_time() + self.offset

    async def sleep_until(self, deadline: float) -> None:
        with self.cancel_scope_at(deadline):
            await trio.sleep_forever()

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        scope = trio.CancelScope(deadline=deadline - self.offset)
        self._scopes.add(scope)
        return scope

    def advance(self, seconds: float) -> None:
        """Move this clock ``seconds`` ahead of Trio's (every deadline on it comes closer)."""
        self.offset += seconds
        for scope in list(self._scopes):
            scope.deadline -= seconds
