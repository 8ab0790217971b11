"""One long-lived, deterministic Trio run that a synchronous caller steps through.

A Hypothesis ``RuleBasedStateMachine`` calls its rules one at a time from ordinary synchronous
code, but the simulated cluster is a set of Trio tasks that must keep living between rules
(members keep their timers, the network its in-flight messages). :class:`Simulation` therefore
drives Trio's run loop itself, one scheduler pass (a *tick*) at a time, and only while it waits
for something it asked the run to do (:meth:`Simulation.call`). Between calls nothing runs and
virtual time stands still, so a rule or an invariant can read the world's plain Python state at
a well-defined instant.

Why not ``trio.lowlevel.start_guest_run``: guest mode is built for a real host loop, so every
tick polls epoll, goes through the host's callback queue and, with a ``MockClock`` autojumping,
spends one whole tick only to move the clock. A simulation has no I/O and no other host work,
so the driver steps the same generator Trio's ``run`` and guest mode step (``unrolled_run``)
directly, with its own :class:`VirtualClock`: when no task can run, time jumps straight to the
earliest deadline before the next pass, which then runs the tasks that deadline wakes. Epoll is
polled only when Trio's entry queue has work (a :meth:`TrioToken.run_sync_soon`, e.g. from
:meth:`Simulation.spawn`), which is the only way anything outside the run reaches it here.
These are Trio internals, so pyproject.toml pins Trio's minor version and the world's tests
(tests/fuzz/test_world_*.py) fail loudly if a release moves them; the guest-mode design they
replace needed internals too (the deterministic-scheduling flag).

Timers (:class:`Timers`, :class:`Wakeup`): a Trio sleep is a cancel scope whose deadline
expiry cancels the sleeper, i.e. deadline bookkeeping plus a raised and caught exception per
wake-up. The world's hot timers (members' clocks, message deliveries) instead register a
callback here; when every task is blocked the driver jumps to the earlier of Trio's next
deadline and the next timer and fires the timers due, which reschedule parked tasks (or deliver
messages) directly. Deliveries therefore need no task of their own, and a message due at the
same instant as a timer wakes its receiver in the same pass.

Determinism:

* A fresh :class:`VirtualClock` per simulation: time is purely virtual and moves only when
  every task is blocked, to the next deadline exactly.
* Trio shuffles each batch of runnable tasks with its module-level ``_r``. The simulation turns
  on Trio's deterministic scheduling (batches sorted by task creation, then shuffled by ``_r``,
  which is what Trio's Hypothesis plugin also does) and seeds ``_r`` with its own seed, so a
  replay in a fresh process, with or without Hypothesis, follows the same schedule.
* Every call runs under a *virtual* time limit, and a run with every task blocked and no
  deadline left raises :class:`SimulationError` instead of waiting forever.

An unfinished run makes the next run in the same thread fail to start ("run() from inside a
run()"), so :meth:`Simulation.close` cancels everything and drives the run to completion; use the
simulation as a context manager or call ``close`` in teardown.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

import outcome
import sniffio
import trio
from trio._core import _run as trio_run

T = TypeVar("T")


class SimulationError(Exception):
    """The simulation cannot do what was asked (not started, already finished, crashed)."""


class SimulationTimeout(SimulationError):
    """A call did not finish within its virtual time limit (a deadlock or a livelock)."""


class SimulationStalled(SimulationError):
    """Virtual time stopped advancing while tasks kept running: something spins (a livelock)
    at one instant. Time only moves when every task is blocked, so a busy task would
    otherwise hang the host forever."""


STALL_PASSES = 200_000
"""Scheduler passes at one virtual instant after which the run counts as stalled (a busy
instant with every member and client active takes a few hundred)."""
STORM_PASSES = 500_000
"""Scheduler passes within one virtual second after which the run counts as stalled too: a
busy loop that lets time creep forward (a message storm between members that answer each
other at once) would otherwise run for hours of wall time per virtual second. Five members
under full client load take about 5,000."""


def deterministic_scheduling(seed: int) -> None:
    """Make Trio's scheduler a function of ``seed`` (for every run started afterwards)."""
    # Trio declares the flag Final because only its Hypothesis plugin is meant to set it;
    # a replay without Hypothesis needs it set just the same.
    setattr(trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # noqa: B010
    trio_run._r.seed(seed)


class Timer:
    """One callback due at an instant; :meth:`cancel` makes it a no-op."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], object]) -> None:
        self.callback: Callable[[], object] | None = callback

    def cancel(self) -> None:
        self.callback = None


class Timers:
    """Callbacks at instants of virtual time, without a cancel scope (and its deadline
    bookkeeping, cancellation and exception) per wake-up.

    A :class:`Simulation` fires them itself whenever it moves time. In a plain ``trio.run``
    (the world's unit tests) :func:`current_timers` starts a system task that sleeps until the
    earliest one instead. Due callbacks fire in (instant, registration) order, cancelled ones
    are skipped (and dropped lazily from the heap).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0
        self._changed: trio.Event | None = None
        """Set when a new earliest timer arrives (only while a standalone task serves)."""

    def at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(callback)
        self._seq += 1
        heap = self._heap
        if self._changed is not None and (not heap or when < heap[0][0]):
            self._changed.set()
        heapq.heappush(heap, (when, self._seq, timer))
        return timer

    def next_time(self) -> float:
        """The instant of the earliest live timer (infinity if none)."""
        heap = self._heap
        while heap and heap[0][2].callback is None:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def fire_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            callback = heapq.heappop(heap)[2].callback
            if callback is not None:
                callback()

    async def _serve(self) -> None:
        """The standalone mode's system task."""
        while True:
            self.fire_due(trio.current_time())
            changed = self._changed = trio.Event()
            with trio.move_on_at(self.next_time()):
                await changed.wait()


_TIMERS: trio.lowlevel.RunVar[Timers] = trio.lowlevel.RunVar("raftkube_fuzz_timers")


def current_timers() -> Timers:
    """The current run's :class:`Timers` (a simulation's, or a standalone one made now)."""
    try:
        return _TIMERS.get()
    except LookupError:
        timers = Timers()
        _TIMERS.set(timers)
        trio.lowlevel.spawn_system_task(timers._serve, name="timers")
        return timers


class Wakeup:
    """One parked task that anything (a timer, a clock change, the host between ticks) may
    wake, once; cheaper than a ``trio.Event`` plus a cancel scope per wait."""

    __slots__ = ("_done", "_task")

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None
        self._done = False

    def wake(self) -> None:
        if self._done:
            return
        self._done = True
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    async def wait(self) -> None:
        """Park until :meth:`wake` (a checkpoint either way; cancellable)."""
        if self._done:
            await trio.lowlevel.checkpoint()
            return
        self._task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        self._task = None
        self._done = True
        return trio.lowlevel.Abort.SUCCEEDED


async def sleep(seconds: float) -> None:
    """``trio.sleep`` for the world's own tasks (clients, background load, nemeses): a timer
    and a parked task, instead of a cancel scope, a registered deadline and a raised and
    caught ``Cancelled`` per wake-up. Cancellable like any checkpoint; a timer that outlives
    a cancelled sleeper is dropped with it."""
    wakeup = Wakeup()
    timer = current_timers().at(trio.current_time() + seconds, wakeup.wake)
    try:
        await wakeup.wait()
    finally:
        timer.cancel()


class CancelAfter:
    """``trio.move_on_after`` for the world's own tasks: a cancel scope without a deadline,
    cancelled by a timer, so the run keeps no deadline per client operation. Use as ``with
    CancelAfter(seconds) as scope:`` and read ``scope.cancelled_caught`` afterwards."""

    __slots__ = ("_scope", "_seconds", "_timer")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._scope = trio.CancelScope()
        self._timer: Timer | None = None

    def __enter__(self) -> trio.CancelScope:
        if self._seconds != math.inf:
            self._timer = current_timers().at(
                trio.current_time() + self._seconds, self._scope.cancel
            )
        return self._scope.__enter__()

    def __exit__(self, *exc_info: Any) -> bool:
        if self._timer is not None:
            self._timer.cancel()
        return self._scope.__exit__(*exc_info)


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


class VirtualClock(trio.abc.Clock):
    """Trio's clock in a simulation: a number that only :class:`Simulation` moves forward."""

    def __init__(self) -> None:
        self._now = 0.0

    def start_clock(self) -> None:
        pass

    def current_time(self) -> float:
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        return max(0.0, deadline - self._now)

    def advance_to(self, instant: float) -> None:
        if instant < self._now:
            raise ValueError(f"virtual time cannot go back from {self._now} to {instant}")
        self._now = instant


class Simulation:
    """A Trio run with a virtual clock, stepped by synchronous code (see module docstring)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.clock = VirtualClock()
        self.timers = Timers()
        self._runner: Any = None
        self._loop: Generator[float, Any, None] | None = None
        self._events: Any = None
        """What the next pass receives as the result of its I/O wait (None for the first)."""
        self._idle = False
        """The last pass left nothing runnable: time may jump before the next one."""
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._root: trio.CancelScope | None = None
        self._ready = False
        self._result: outcome.Outcome[None] | None = None
        self.callbacks_run = 0
        """Scheduler passes (ticks) run so far: a cost measure."""
        self._instant = 0.0
        self._instant_began = 0
        """:attr:`callbacks_run` before the first pass at :attr:`_instant`."""
        self._second = 0
        self._second_began = 0
        """:attr:`callbacks_run` before the first pass within :attr:`_second`."""

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
        if self._loop is not None or self.finished:
            raise SimulationError("a simulation can be started once")
        deterministic_scheduling(self.seed)
        self._runner = trio_run.setup_runner(
            self.clock,
            instruments=(),
            restrict_keyboard_interrupt_to_checkpoints=False,
            strict_exception_groups=True,
        )
        self._loop = trio_run.unrolled_run(self._runner, self._main, (main,))
        self._pump_until(lambda: self._ready)

    async def _main(self, main: Callable[..., Awaitable[object]] | None) -> None:
        self._token = trio.lowlevel.current_trio_token()
        _TIMERS.set(self.timers)
        with trio.CancelScope() as root:
            self._root = root
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if main is not None:
                    await nursery.start(main)
                self._ready = True
                await trio.sleep_forever()

    def close(self) -> None:
        """Cancel every task and run the run to completion. Idempotent."""
        if self._loop is None or self.finished:
            return
        root = self._root
        if root is None:
            raise SimulationError("the run was closed before it started")
        assert self._token is not None
        self._token.run_sync_soon(root.cancel)
        # Winding down gets its own budget of passes, even right after a stall.
        self._instant_began = self._second_began = self.callbacks_run
        try:
            self._pump_until(lambda: self.finished)
        except SimulationError as exc:
            raise SimulationError(f"the run stalled while closing: {exc}") from exc

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

    def _tick(self) -> None:
        """One pass of Trio's run loop: jump time if nothing could run, then run a batch."""
        runner = self._runner
        queue = runner.entry_queue
        events = self._events
        if queue.queue or queue.idempotent_queue:
            # Something called run_sync_soon: its wakeup byte is on Trio's socket.
            events = runner.io_manager.get_events(0)
        if self._idle and not runner.runq and not events:
            deadline = min(runner.deadlines.next_deadline(), self.timers.next_time())
            if deadline == math.inf:
                raise SimulationError("every task is blocked and no deadline is pending")
            self.clock.advance_to(deadline)
            self.timers.fire_due(deadline)
        # Every scheduler pass comes through here: the stall guards are differences of the
        # one pass counter rather than two more counters bumped on each pass.
        passes = self.callbacks_run = self.callbacks_run + 1
        now = self.clock._now
        if now != self._instant:
            self._instant = now
            self._instant_began = passes - 1
            second = int(now)
            if second != self._second:
                self._second = second
                self._second_began = passes - 1
        if passes - self._instant_began > STALL_PASSES:
            raise SimulationStalled(
                f"{STALL_PASSES} scheduler passes at virtual time {now:.6f} without time moving: "
                "some task never blocks (a livelock)"
            )
        if passes - self._second_began > STORM_PASSES:
            raise SimulationStalled(
                f"{STORM_PASSES} scheduler passes within virtual second {self._second}: time "
                "barely moves while tasks keep running (a busy loop, such as a message storm)"
            )
        loop = self._loop
        assert loop is not None
        try:
            timeout = loop.send(events)
        except StopIteration:
            self._result = runner.main_task_outcome
            return
        except trio.TrioInternalError as exc:
            self._result = outcome.Error(exc)
            return
        # The run hands over an empty I/O result (nothing can happen on a socket here) and
        # asks for a wait of ``timeout`` seconds only when no task is runnable.
        self._events = []
        self._idle = timeout > 0

    def _pump_until(self, condition: Callable[[], bool]) -> None:
        # The tasks see Trio as the running async library while the run is stepped (set once
        # per call rather than once per pass: nothing outside the run executes in between).
        previous, sniffio.thread_local.name = sniffio.thread_local.name, "trio"
        try:
            while not condition():
                if self._result is not None:
                    raise SimulationError("the simulation's run has ended") from self.run_error
                self._tick()
        finally:
            sniffio.thread_local.name = previous

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
            with CancelAfter(limit) as scope:
                value = await call()
            if scope.cancelled_caught:
                raise trio.TooSlowError
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
        self.call(sleep, seconds, limit=seconds + 1.0)
