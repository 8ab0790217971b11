"""Per-member clocks with skew, drift, jumps and pauses over Trio's one virtual clock.

Trio has a single clock per run (the simulation's virtual clock), but real members each read
their own oscillator: clocks start at different offsets, run a little fast or slow, get stepped
forward by NTP, and stop while a process is suspended. Raft's timers (and the leases the leader
stamps with its local time) must survive all of that, so every simulated member reads time and
sleeps through a :class:`SimClock`, which maps global virtual time to local time with an
anchored affine function::

    local = local_anchor + rate * (global - global_anchor)

Every change (jump, new rate) re-anchors at the current instant, so local time is continuous
except for the explicit forward jumps, and never goes backwards (the Clock contract). A sleeper
parks until the global instant computed from the current map (a timer of the run's
:class:`~raftkube_fuzz.world.driver.Timers`, which costs no cancel scope); a change wakes every
sleeper to recompute, so a rate change or jump while sleeping takes effect at once.

A machine also has a wall clock (system time, what it stamps into records for others to read),
which NTP may *step* either way while the monotonic clock its timeouts use only drifts: the
wall clock is the local time plus a :attr:`SimClock.wall_offset` that only
:meth:`SimClock.set_wall_offset` changes (and :meth:`SimClock.resync` clears, as NTP brings
system time back). Code that judges durations by its monotonic clock never sees it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from raftkube_fuzz.world.driver import Timer, Timers, Wakeup, current_timers


class _Deadline:
    """One scope made by :meth:`SimClock.cancel_scope_at`: its local deadline and the timer
    armed for the global instant that deadline maps to under the current map."""

    __slots__ = ("deadline", "scope", "timer")

    def __init__(self, scope: trio.CancelScope, deadline: float) -> None:
        self.scope = scope
        self.deadline = deadline
        self.timer: Timer | None = None


class SimClock:
    """raftkube's :class:`~raftkube.clock.Clock` for one simulated member.

    ``offset`` is the local reading at global time 0 and ``rate`` its initial drift (local
    seconds per global second). The clock can be built outside a Trio run
    (the world builds its members before starting); only :meth:`now` and :meth:`sleep_until`
    need the run.
    """

    def __init__(self, offset: float = 0.0, rate: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError(f"a clock rate must be positive, got {rate}")
        self._local_anchor = offset
        self._global_anchor = 0.0
        self._rate = rate
        self._wall_offset = 0.0
        self._paused = False
        self._sleepers: list[Wakeup] = []
        self._deadlines: dict[_Deadline, None] = {}
        """Scopes whose deadline has not fired yet, in creation order (a dict, so re-arming
        them registers timers in the same order in every replay)."""
        self._global_now: Callable[[], float] = trio.current_time
        """Global virtual time; :meth:`use_run_clock` makes it the run's clock itself."""
        self._timers: Timers | None = None

    def use_run_clock(self) -> None:
        """Read the run's clock directly from now on, instead of through Trio's run-context
        lookup (members read their clocks several times per message), and keep the run's
        timers at hand (a member parks on them every tick). Call inside the run."""
        self._global_now = trio.lowlevel.current_clock().current_time
        self._timers = current_timers()

    @property
    def rate(self) -> float:
        """Local seconds per global second."""
        return self._rate

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def wall_offset(self) -> float:
        """How far NTP stepped the wall clock from the local (monotonic) time, in seconds."""
        return self._wall_offset

    def wall(self) -> float:
        """The wall clock's reading (seconds from the same origin as :meth:`now`): local time
        plus :attr:`wall_offset`; unlike :meth:`now`, it may go backwards."""
        return self.now() + self._wall_offset

    def set_wall_offset(self, seconds: float) -> None:
        """Step the wall clock to ``seconds`` off the local time, either way (an NTP step of
        system time); the monotonic clock, its sleepers and timeouts are untouched."""
        self._wall_offset = seconds

    def _local_at(self, global_time: float) -> float:
        return self._local_anchor + self._rate * (global_time - self._global_anchor)

    def _global_at(self, local_time: float) -> float:
        return self._global_anchor + (local_time - self._local_anchor) / self._rate

    def now(self) -> float:
        """The member's local time; keeps running while paused (wall time does)."""
        return self._local_at(self._global_now())

    def _reanchor(self) -> None:
        current = self._global_now()
        self._local_anchor = self._local_at(current)
        self._global_anchor = current

    def _notify(self) -> None:
        """Wake every sleeper so it recomputes its global deadline under the new map, and
        re-arm every open scope's timer under it."""
        for sleeper in self._sleepers:
            sleeper.wake()
        for entry in list(self._deadlines):
            self._arm(entry)

    def _arm(self, entry: _Deadline) -> None:
        """(Re-)arm ``entry``'s timer for its deadline under the current map: none while
        paused, and an overdue one fires now."""
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        if self._paused:
            return
        target = self._global_at(entry.deadline)
        if self._global_now() >= target or self.now() >= entry.deadline:
            self._fire(entry)
            return
        timers = self._timers or current_timers()
        entry.timer = timers.at(target, lambda: self._fire(entry))

    def _fire(self, entry: _Deadline) -> None:
        self._deadlines.pop(entry, None)
        entry.timer = None
        if self.now() < entry.deadline:
            # The global instant the deadline maps to has come, but mapping it back rounds
            # just below the deadline: move local time on by that rounding error (as
            # sleep_until does), or a caller that checks ``now() >= deadline`` after the scope
            # fired finds it not yet due and waits again at the same instant, forever.
            self._reanchor()
            self._local_anchor = entry.deadline
        entry.scope.cancel()

    def jump(self, seconds: float) -> None:
        """Step local time forward by ``seconds`` (an NTP step). Backward steps are refused:
        the Clock contract promises that ``now()`` never decreases."""
        if seconds < 0:
            raise ValueError(f"a clock may only jump forward, got {seconds}")
        self._reanchor()
        self._local_anchor += seconds
        self._notify()

    def set_rate(self, rate: float) -> None:
        """Run at ``rate`` local seconds per global second from now on (drift)."""
        if rate <= 0:
            raise ValueError(f"a clock rate must be positive, got {rate}")
        self._reanchor()
        self._rate = rate
        self._notify()

    def resync(self) -> None:
        """Stop drifting (rate 1.0) and step the wall clock back onto local time; the offset
        the monotonic clock accumulated so far stays."""
        self._wall_offset = 0.0
        self.set_rate(1.0)

    def pause(self) -> None:
        """Freeze the member's timers (SIGSTOP): no :meth:`sleep_until` returns until
        :meth:`resume`; local time keeps passing, so overdue timers fire at once on resume.
        Timeouts (:meth:`cancel_scope_at`) freeze the same way. Sleepers need no wake-up: each
        finds the clock paused when it next recomputes."""
        self._paused = True
        for entry in list(self._deadlines):
            self._arm(entry)

    def resume(self) -> None:
        self._paused = False
        self._notify()

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        """A cancel scope cancelled once this clock reads ``deadline`` while not paused.

        It has no Trio deadline (that would be global time): a timer of the run cancels it,
        re-armed whenever a jump or rate change moves the global instant ``deadline`` maps to,
        and disarmed while the clock is paused, so a paused host never times out until it is
        resumed. A scope made after its deadline is cancelled as soon as it is entered. The
        clock forgets a scope once it fires; one left early stays registered until its
        deadline passes (cancelling a scope that has exited does nothing)."""
        scope = trio.CancelScope()
        entry = _Deadline(scope, deadline)
        self._deadlines[entry] = None
        self._arm(entry)
        return scope

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` and the clock is not paused; always a checkpoint.

        The global target is recomputed after every change of the map. Reaching the global
        target also counts as done, because ``_local_at(_global_at(d))`` may round to just
        below ``d`` and waiting again for an instant that has passed would spin forever; local
        time is then moved forward by that rounding error, so that ``now() >= deadline``
        holds on return as the Clock contract says (a caller that checks it and sleeps
        again, as the client's request timer does, would otherwise spin at one instant).
        """
        slept = False
        while True:
            target = math.inf
            if not self._paused:
                target = self._global_at(deadline)
                if self._global_now() >= target or self.now() >= deadline:
                    if self.now() < deadline:
                        self._reanchor()
                        self._local_anchor = deadline
                    break
            await self._park(target)
            slept = True
        if not slept:
            await trio.lowlevel.checkpoint()

    async def _park(self, target: float) -> None:
        """Sleep until global time ``target`` (forever if infinite) or the next change."""
        sleeper = Wakeup()
        timers = self._timers or current_timers()
        timer = None if target == math.inf else timers.at(target, sleeper.wake)
        self._sleepers.append(sleeper)
        try:
            await sleeper.wait()
        finally:
            self._sleepers.remove(sleeper)
            if timer is not None:
                timer.cancel()
