"""The time source the Raft driver and the transport read.

Raft's timers (election timeouts, heartbeats, reconnect backoff) are the only way real time
enters the protocol. Keeping them behind :class:`Clock` lets the deterministic simulator in
``fuzz/`` drive time itself, while production uses :class:`TrioClock`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import attrs
import trio


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock in seconds with the ability to wait for a point on it.

    ``now()`` has no fixed epoch: only differences and comparisons between its values mean
    anything, which is all timers need and what keeps a simulated clock free to start at 0.
    """

    def now(self) -> float:
        """The current time in seconds; never goes backwards."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (immediately if it already is)."""
        ...

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        """A cancel scope (not yet entered) that is cancelled once ``now() >= deadline``.

        Timeouts go through this instead of ``trio.move_on_after``, which reads the run's one
        global clock: a simulated host whose clock is paused or drifting must time out by its
        own reading."""
        ...


@attrs.frozen
class TrioClock:
    """The clock of the running Trio event loop.

    It reads :func:`trio.current_time` rather than :func:`time.monotonic`, so a test that runs
    under :class:`trio.testing.MockClock` gets virtual time (and autojump) for free, and
    deadlines agree with Trio's own cancel scopes.
    """

    def now(self) -> float:
        """Trio's current time; only valid inside ``trio.run``."""
        return trio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until Trio's clock reaches ``deadline``; a checkpoint even if it has."""
        await trio.sleep_until(deadline)

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        """Trio's own deadline: this clock *is* the run's clock."""
        return trio.CancelScope(deadline=deadline)


async def sleep_for(clock: Clock, seconds: float) -> None:
    """Sleep ``seconds`` on ``clock``: a convenience for relative waits such as backoff."""
    await clock.sleep_until(clock.now() + seconds)


def move_on_after(clock: Clock, seconds: float) -> trio.CancelScope:
    """``trio.move_on_after`` on ``clock``: ``with move_on_after(clock, 5) as scope: ...``."""
    return clock.cancel_scope_at(clock.now() + seconds)


@contextmanager
def fail_after(clock: Clock, seconds: float) -> Iterator[trio.CancelScope]:
    """``trio.fail_after`` on ``clock``: raises :class:`trio.TooSlowError` if the body is
    cancelled by the deadline."""
    with move_on_after(clock, seconds) as scope:
        yield scope
    if scope.cancelled_caught:
        raise trio.TooSlowError
