"""The context a suite machine runs in: which mutant is patched in, and running totals.

Hypothesis constructs state machines itself, so the runner cannot hand them arguments; it
installs a :class:`MachineContext` instead (:func:`use`), and the machines report to it. Outside the
runner (a plain pytest run of a suite) a default context with no mutant applies.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run


class BudgetSpent(BaseException):
    """The runner's budget is spent: raised from a step to end the Hypothesis run early. A
    BaseException, so Hypothesis neither records it as a failure nor shrinks it."""


@attrs.define
class MachineContext:
    mutant: str | None = None
    on_violation: Callable[[Run], None] | None = None
    """Called the first time a run fails (the runner notes the time to find)."""
    config_overrides: dict[str, Any] = attrs.Factory(dict)
    """Suite configuration forced for every example (a mutant that needs lease reads)."""
    on_step: Callable[[], None] | None = None
    """Called after every step (the runner's progress display)."""
    spent: Callable[[], bool] = lambda: False
    """Whether the runner's budget is used up; checked before every step."""
    budget_hit: bool = False
    """Set once a step found the budget spent and stopped the Hypothesis run."""
    examples: int = 0
    steps: int = 0
    virtual_seconds: float = 0.0
    deliveries: int = 0
    events: int = 0
    faults: collections.Counter[str] = attrs.Factory(collections.Counter)
    failures: int = 0
    last_run: Run | None = None
    """The run in progress or, once it ended, the last one if it failed (None if it passed)."""
    current_run: Run | None = None
    _last_failed: Run | None = None

    def started(self, run: Run) -> None:
        self.last_run = self.current_run = run

    def stepped(self, run: Run) -> None:
        self.steps += 1
        if run.violation is not None:
            self._failed(run)
        if self.on_step is not None:
            self.on_step()

    def finished(self, run: Run) -> None:
        stats = run.stats
        self.examples += 1
        self.virtual_seconds += stats["virtual_seconds"]
        self.deliveries += stats["deliveries"]
        self.events += stats["events"]
        self.faults.update(stats["faults"])
        self.current_run = None
        if run.violation is not None:
            self._failed(run)
        elif self.last_run is run:
            # Only a failed run is wanted afterwards (the runner shrinks and saves it); a
            # passed one holds all it recorded (a long cluster example's timeline is tens of
            # megabytes), which would otherwise stay alive while the next example is drawn
            # and its world built.
            self.last_run = None

    def _failed(self, run: Run) -> None:
        if run is self._last_failed:
            return
        self._last_failed = run
        if self.failures == 0 and self.on_violation is not None:
            self.on_violation(run)
        self.failures += 1

    def totals(self) -> dict[str, float]:
        """Totals including the run in progress."""
        live = self.current_run.stats if self.current_run is not None else None
        return {
            "examples": self.examples,
            "steps": self.steps,
            "virtual_seconds": self.virtual_seconds + (live["virtual_seconds"] if live else 0),
            "deliveries": self.deliveries + (live["deliveries"] if live else 0),
            "events": self.events + (live["events"] if live else 0),
        }


_current = MachineContext()


def current() -> MachineContext:
    return _current


@contextmanager
def use(s: MachineContext) -> Iterator[MachineContext]:
    global _current
    previous, _current = _current, s
    try:
        yield s
    finally:
        _current = previous
