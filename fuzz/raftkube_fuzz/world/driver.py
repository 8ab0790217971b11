"""One long-lived, deterministic Trio run that a synchronous caller steps through.

A Hypothesis ``RuleBasedStateMachine`` calls its rules one at a time from ordinary synchronous
code, but the simulated cluster is a set of Trio tasks that must keep living between rules
(members keep their timers, the network its in-flight messages). :class:`Simulation` runs Trio
in *guest mode* on a trivial host loop: the host loop is a deque of callbacks, and the host
runs them only while it waits for something it asked the run to do (:meth:`Simulation.call`).
Between calls nothing runs and virtual time stands still, so a rule or an invariant can read the
world's plain Python state at a well-defined instant.

Determinism (see /work/shared/notes/determinism.md for the measurements behind this):

* A fresh :class:`trio.testing.MockClock` with ``autojump_threshold=0`` per simulation: time is
  purely virtual and jumps to the next deadline whenever every task is blocked. With threshold 0
  the guest run never starts a host thread to wait for I/O.
* Trio shuffles each batch of runnable tasks with its module-level ``_r``. The simulation turns
  on Trio's deterministic scheduling (batches sorted by task creation, then shuffled by ``_r``,
  which is what Trio's Hypothesis plugin also does) and seeds ``_r`` with its own seed, so a
  replay in a fresh process, with or without Hypothesis, follows the same schedule.
* Every call runs under a *virtual* time limit: with autojump and nothing left to wait for, a
  deadlocked run would otherwise spin the CPU forever.

An unfinished guest run makes the next ``start_guest_run`` in the same thread fail, so
:meth:`Simulation.close` cancels everything and drains the run to completion; use the
simulation as a context manager or call ``close`` in teardown.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import outcome
import trio
import trio.testing
from trio._core import _run as trio_run

T = TypeVar("T")


class SimulationError(Exception):
    """The simulation cannot do what was asked (not started, already finished, crashed)."""


class SimulationTimeout(SimulationError):
    """A call did not finish within its virtual time limit (a deadlock or a livelock)."""


def deterministic_scheduling(seed: int) -> None:
    """Make Trio's scheduler a function of ``seed`` (for every run started afterwards)."""
    # Trio declares the flag Final because only its Hypothesis plugin is meant to set it;
    # a replay without Hypothesis needs it set just the same.
    setattr(trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # noqa: B010
    trio_run._r.seed(seed)


class SimTask(Generic[T]):
    """A task started in the run by :meth:`Simulation.spawn`; its result once it is done."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._outcome: outcome.Outcome[T] | None = None

    @property
    def done(self) -> bool:
        return self._outcome is not None

    def result(self) -> T:
        """The task's return value, or its exception re-raised; only once done."""
        if self._outcome is None:
            raise SimulationError(f"task {self.name} has not finished")
        return self._outcome.unwrap()

    def _finish(self, result: outcome.Outcome[T]) -> None:
        self._outcome = result


class Simulation:
    """A guest-mode Trio run with a virtual clock, stepped by synchronous code."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.clock = trio.testing.MockClock(autojump_threshold=0)
        self._queue: deque[Callable[[], object]] = deque()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._root: trio.CancelScope | None = None
        self._ready = False
        self._result: outcome.Outcome[None] | None = None
        self.callbacks_run = 0
        """Host callbacks (guest ticks) run so far: a cost measure."""

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._result is not None

    @property
    def now(self) -> float:
        """Virtual time (Trio's global clock)."""
        return self.clock.current_time()

    def start(self, main: Callable[..., Awaitable[object]] | None = None) -> None:
        """Start the run and, inside it, ``await nursery.start(main)`` (e.g. ``World.run``);
        returns once ``main`` has called ``task_status.started()``."""
        if self._token is not None or self.finished:
            raise SimulationError("a simulation can be started once")
        deterministic_scheduling(self.seed)
        trio.lowlevel.start_guest_run(
            self._main,
            main,
            run_sync_soon_threadsafe=self._queue.append,
            done_callback=self._done,
            clock=self.clock,
        )
        self._pump_until(lambda: self._ready)

    async def _main(self, main: Callable[..., Awaitable[object]] | None) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as root:
            self._root = root
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if main is not None:
                    await nursery.start(main)
                self._ready = True
                await trio.sleep_forever()

    def _done(self, result: outcome.Outcome[None]) -> None:
        self._result = result

    def close(self) -> None:
        """Cancel every task and run the guest run to completion. Idempotent."""
        if self._token is None and not self._queue:
            return
        if not self.finished:
            root = self._root
            if root is not None:
                assert self._token is not None
                self._token.run_sync_soon(root.cancel)
            while not self.finished:
                if not self._queue:
                    raise SimulationError("the guest run stalled while closing")
                self._queue.popleft()()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def run_error(self) -> BaseException | None:
        """The exception that ended the run, if it ended with one."""
        if isinstance(self._result, outcome.Error):
            return self._result.error
        return None

    # -- stepping -------------------------------------------------------------------------

    def _pump_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            if self.finished:
                raise SimulationError("the simulation's run has ended") from self.run_error
            if not self._queue:
                raise SimulationError("the guest run has no pending work (host queue empty)")
            self.callbacks_run += 1
            self._queue.popleft()()

    def spawn(
        self,
        async_fn: Callable[..., Awaitable[T]],
        *args: Any,
        limit: float = math.inf,
        **kwargs: Any,
    ) -> SimTask[T]:
        """Start ``async_fn(*args, **kwargs)`` in the run as a background task; it starts
        running at the next :meth:`call`/:meth:`advance`/:meth:`wait`. Its exception is kept in
        the task, never raised into the run, so one failed client operation does not tear the
        world down. ``limit`` (virtual seconds) is reserved and never passed on."""
        if self._nursery is None or self._token is None or self.finished:
            raise SimulationError("the simulation is not running")
        task: SimTask[T] = SimTask(getattr(async_fn, "__qualname__", repr(async_fn)))
        nursery = self._nursery
        call = functools.partial(async_fn, *args, **kwargs)
        self._token.run_sync_soon(lambda: nursery.start_soon(self._run_task, task, call, limit))
        return task

    async def _run_task(
        self,
        task: SimTask[T],
        call: Callable[[], Awaitable[T]],
        limit: float,
    ) -> None:
        try:
            with trio.fail_after(limit):
                value = await call()
        except trio.TooSlowError:
            task._finish(
                outcome.Error(
                    SimulationTimeout(
                        f"{task.name} did not finish within {limit} virtual seconds "
                        f"(started at {trio.current_time() - limit:.3f})"
                    )
                )
            )
        except Exception as exc:
            task._finish(outcome.Error(exc))
        else:
            task._finish(outcome.Value(value))

    def call(
        self,
        async_fn: Callable[..., Awaitable[T]],
        *args: Any,
        limit: float = 60.0,
        **kwargs: Any,
    ) -> T:
        """Run ``async_fn(*args, **kwargs)`` in the run and return its result (or raise its
        exception), pumping the run meanwhile. Raises :class:`SimulationTimeout` after
        ``limit`` virtual seconds."""
        task = self.spawn(async_fn, *args, limit=limit, **kwargs)
        self._pump_until(lambda: task.done)
        return task.result()

    def wait(self, task: SimTask[T]) -> T:
        """Pump until a spawned task is done; its result (use a ``limit`` when spawning)."""
        self._pump_until(lambda: task.done)
        return task.result()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass with everything running."""
        self.call(trio.sleep, seconds, limit=seconds + 1.0)
