"""Exponential back-off with jitter, as client-go's ``wait.ExponentialBackoffManager``.

The reflector waits this long between one list-and-watch attempt and the next: 0.8 s doubling
to 30 s, jittered up to twice that, and back to 0.8 s once two minutes pass without a
failure. Time is read from the :class:`~raftkube.clock.Clock` passed in.
"""

from __future__ import annotations

import random

import attrs

from raftkube.clock import Clock


@attrs.define
class Backoff:
    """``next()`` is the delay before the next attempt; see the module docstring."""

    clock: Clock
    initial: float = 0.8
    maximum: float = 30.0
    reset_after: float = 120.0
    factor: float = 2.0
    jitter: float = 1.0
    rng: random.Random = attrs.field(factory=random.Random)
    _current: float = attrs.field(init=False, default=0.0)
    _last: float | None = attrs.field(init=False, default=None)

    def next(self) -> float:
        now = self.clock.now()
        if self._last is None or now - self._last > self.reset_after:
            self._current = self.initial
        else:
            self._current = min(self._current * self.factor, self.maximum)
        self._last = now
        return self._current * (1.0 + self.jitter * self.rng.random())
