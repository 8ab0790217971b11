"""Garbage-collection pauses, timed and logged: a diagnostic for member processes.

CPython's cyclic collector stops the whole process while it runs, and a collection of the
older generations walks every tracked object they hold: in a member holding an aged store
(hundreds of thousands of records) that took 0.5-1.2 s (docs/performance.md), longer than
the election timeout. Followers that hear nothing from a paused leader for that long elect
another, and an operator sees only the new term. etcd logs the equivalent stalls of its own
("apply request took too long", "leader failed to send out heartbeat on time"); this logs a
collection that took longer than a threshold, with its generation, so a term change in the
log can be matched with the pause that caused it.

:class:`GcPauseLog` hooks ``gc.callbacks``; it reads a monotonic real-time timer (never the
member's :class:`~raftkube.clock.Clock`: a pause is real time lost by the whole process), so
it belongs in processes only, never in a simulated run, and it only logs and counts.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs

DEFAULT_THRESHOLD: float = 0.1
"""Seconds: a collection longer than this is logged (etcd's expected duration for an apply)."""


@attrs.define(eq=False)
class GcPauseLog:
    """Times every collection of this process; logs each one longer than ``threshold``.

    Use as a context manager (or :meth:`install`/:meth:`uninstall`). ``pauses`` counts the
    collections and ``longest`` holds the longest pause seen, per generation."""

    logger: logging.Logger
    threshold: float = DEFAULT_THRESHOLD
    timer: Callable[[], float] = time.perf_counter
    collections: list[int] = attrs.field(factory=lambda: [0, 0, 0])
    long_pauses: list[int] = attrs.field(factory=lambda: [0, 0, 0])
    longest: list[float] = attrs.field(factory=lambda: [0.0, 0.0, 0.0])
    _started: float | None = None

    def install(self) -> None:
        gc.callbacks.append(self)

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def __enter__(self) -> GcPauseLog:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        """The ``gc.callbacks`` protocol: ``phase`` is ``"start"`` or ``"stop"``."""
        if phase == "start":
            self._started = self.timer()
            return
        if self._started is None:
            return  # installed during a collection
        took = self.timer() - self._started
        self._started = None
        generation = int(info.get("generation", 2))
        self.collections[generation] += 1
        self.longest[generation] = max(self.longest[generation], took)
        if took > self.threshold:
            self.long_pauses[generation] += 1
            self.logger.warning(
                "garbage collection took too long: generation %d, %.3f s (expected under "
                "%.3f s), %d objects collected",
                generation,
                took,
                self.threshold,
                int(info.get("collected", 0)),
            )
