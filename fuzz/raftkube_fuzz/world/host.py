"""One simulated machine: a member's disk, clock and network endpoint across its incarnations.

The disk and the clock belong to the machine and outlive a crash; the :class:`Member` object,
its tasks and its network endpoint belong to one process incarnation and die with it. A crash
cancels the incarnation's cancel scope (every task of the member ends at its next checkpoint,
with no chance to write anything more) and then tells the disk to lose what was not synced.

A bug in the implementation (an exception escaping the member's tasks) must neither kill the
simulated world, which would hide which member failed and when, nor hang it: the host records
it in ``failures`` (and, for a checker's :class:`~raftkube_fuzz.violation.Violation` raised
from inside the member through the observer, the object itself in ``violations``) and takes the
member down; the runner turns these into violations.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from typing import Any, Protocol

import trio

from raftkube.server.member import Member, MemberConfig
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.clock import SimClock
from raftkube_fuzz.world.disk import SimDisk
from raftkube_fuzz.world.network import SimNetwork


class HostListener(Protocol):
    """The part of the world's listener a host calls."""

    def observer_for(self, member_id: int) -> Callable[[Any], None] | None: ...

    def crashed(self, member_id: int, disk: SimDisk) -> None: ...

    def restarted(self, member_id: int, member: Member) -> None: ...


def _violations_in(exc: BaseException) -> list[Violation]:
    if isinstance(exc, Violation):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [v for sub in exc.exceptions for v in _violations_in(sub)]
    return []


class MemberHost:
    """The life of one member: ``start``, ``crash``, ``restart``, ``pause``, ``resume``."""

    def __init__(
        self,
        config: MemberConfig,
        *,
        seed: int,
        disk: SimDisk,
        clock: SimClock,
        network: SimNetwork,
        listener: HostListener,
        failures: list[tuple[int, str]],
        violations: list[Violation],
    ) -> None:
        self.member_id = config.member_id
        self.config = config
        self.disk = disk
        self.clock = clock
        self._seed = seed
        self._network = network
        self.listener = listener
        """Hears of each incarnation, crash and restart (:meth:`World.stop_listening`
        replaces it)."""
        self._failures = failures
        self._violations = violations
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None
        self.member: Member | None = None
        self.incarnation = 0
        self.paused = False
        self._resumed = trio.Event()
        self.stopped = trio.Event()
        """Set when the current incarnation ends (crash or failure); replaced on restart."""

    @property
    def up(self) -> bool:
        return self.member is not None

    def start(self, nursery: trio.Nursery) -> None:
        """Boot the first incarnation in ``nursery`` (the world's)."""
        self._nursery = nursery
        self._boot()

    def _boot(self) -> None:
        assert self._nursery is not None, "start() first"
        self.incarnation += 1
        endpoint = self._network.attach(self.member_id)
        rng = random.Random(f"member:{self._seed}:{self.member_id}:{self.incarnation}")
        self.stopped = trio.Event()
        try:
            member = Member(
                self.config,
                storage=self.disk,
                transport=endpoint,
                clock=self.clock,
                rng=rng,
                run_sync=None,
                observer=self.listener.observer_for(self.member_id),
            )
        except Exception as exc:
            self._record(exc)
            self._network.detach(self.member_id)
            self.stopped.set()
            return
        self.member = member
        self._scope = trio.CancelScope()
        self._nursery.start_soon(self._run, member, self._scope, name=f"member-{self.member_id}")

    async def _run(self, member: Member, scope: trio.CancelScope) -> None:
        with scope:
            try:
                await member.run()
            except Exception as exc:
                self._record(exc)
                if self.member is member:
                    self._go_down()

    def _record(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc))
        self._failures.append((self.member_id, text))
        self._violations.extend(_violations_in(exc))

    def _go_down(self) -> None:
        """End the incarnation without touching the disk (what a crash does before power loss)."""
        if self._scope is not None:
            self._scope.cancel()
        self._scope = None
        self.member = None
        self._network.detach(self.member_id)
        if self.paused:
            self._set_paused(False)
        self.stopped.set()

    def crash(self, torn_records: int = 0) -> None:
        """Kill the process and cut the power: the disk keeps what was synced plus the first
        ``torn_records`` unsynced records."""
        if not self.up:
            raise ValueError(f"member {self.member_id} is already down")
        self._go_down()
        self.disk.crash(keep_unsynced=torn_records)
        self.listener.crashed(self.member_id, self.disk)

    def restart(self) -> None:
        """Boot a new incarnation from what the disk holds; ``listener.restarted`` hears of it
        (the first boot in :meth:`start` is not reported: the checkers start from the initial
        state)."""
        if self.up:
            raise ValueError(f"member {self.member_id} is up")
        self._boot()
        if self.member is not None:
            self.listener.restarted(self.member_id, self.member)

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        endpoint = self._network.endpoint(self.member_id)
        if paused:
            self.clock.pause()
            if endpoint is not None:
                endpoint.pause()
        else:
            self.clock.resume()
            if endpoint is not None:
                endpoint.resume()
            self._resumed.set()
            self._resumed = trio.Event()

    def pause(self) -> None:
        """SIGSTOP: timers, inbox and new client calls freeze; time keeps passing. Work the
        member was already doing (a Ready being handled) still finishes: Trio cannot stop a
        task from outside, but with no inputs the member soon has nothing to do."""
        if not self.up:
            raise ValueError(f"member {self.member_id} is down")
        self._set_paused(True)

    def resume(self) -> None:
        if self.paused:
            self._set_paused(False)

    async def wait_resumed(self) -> None:
        """Return at once unless paused; otherwise when resumed (or taken down)."""
        while self.paused:
            await self._resumed.wait()
