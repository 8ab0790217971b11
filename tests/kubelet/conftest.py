"""Fixtures for the kubelet's tests: the API server harness, a node's own client, and a fast
clock so that back-offs of tens of seconds pass in a fraction of that."""

from __future__ import annotations

import attrs
import trio

from tests.apiserver.conftest import APIHarness, api

__all__ = ["APIHarness", "FastClock", "api"]


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
