"""The one source of randomness production code takes: injected, never global.

Election timeouts, retry jitter and the like draw from a :class:`RandomSource` handed in by
whoever builds the component, so the fuzzer can drive every choice from one seed and a trace
replays exactly. :class:`random.Random` is one; nothing here may read OS entropy itself.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class RandomSource(Protocol):
    """The part of :class:`random.Random` components use."""

    def random(self) -> float:
        """The next uniform float in [0, 1)."""
        ...

    def randrange(self, start: int, stop: int) -> int:
        """A uniform integer in [start, stop)."""
        ...
