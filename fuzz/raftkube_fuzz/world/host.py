"""Simulated machines: any process-like component, its clock, disk and network, across crashes.

A :class:`Host` runs one *program* (a :data:`Boot`: given the machine's :class:`HostEnv`,
build the incarnation's :class:`Process`, whose ``run`` is its main) and gives every program
the same life: ``crash`` (every task of the incarnation ends at its next checkpoint, the disk
keeps only what was synced, the host's connections are reset), ``restart`` (a new
incarnation from the same disk), ``pause``/``resume`` (SIGSTOP: its clock's timers and
timeouts, its stream reads, writes and accepts all freeze while time passes) and its own
clock's offset and drift. The disk and the clock belong to the machine and outlive a crash;
the process object, its tasks and its connections belong to one incarnation.

:class:`MemberHost` is the host of a Raft member: its program is a :class:`MemberProcess`
(the unmodified :class:`~raftkube.server.member.Member` plus its client listener, on the
host's stream network), and it adds the member's message endpoint on the
:class:`~raftkube_fuzz.world.network.SimNetwork`.

A bug in the program (an exception escaping its tasks) must neither kill the simulated world,
which would hide which host failed and when, nor hang it: the host records it in
``failures`` (and, for a checker's :class:`~raftkube_fuzz.violation.Violation` raised from
inside a member through its observer, the object itself in ``violations``) and takes the
incarnation down; the runner turns these into violations.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

import attrs
import trio

from raftkube.clock import sleep_for
from raftkube.server.member import Member, MemberConfig
from raftkube.server.service import serve_clients
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.clock import SimClock
from raftkube_fuzz.world.disk import SimDisk
from raftkube_fuzz.world.network import SimNetwork
from raftkube_fuzz.world.streams import HostNetwork, StreamNetwork

CLIENT_PORT = 2379
"""Where every simulated member listens for clients (etcd's client port)."""


@attrs.frozen
class HostEnv:
    """What one incarnation of a program gets from its machine."""

    name: str
    node: int
    """The host's id in the network topology (what partitions name)."""
    incarnation: int
    clock: SimClock
    network: HostNetwork
    disk: SimDisk | None
    rng: random.Random
    """Seeded per host and incarnation."""


class Process(Protocol):
    """One incarnation of a program: ``run`` is its main, cancelled by a crash."""

    async def run(self) -> None: ...


Boot = Callable[[HostEnv], Process]
"""Builds an incarnation from the machine; an exception here is a failure of the program."""


def _violations_in(exc: BaseException) -> list[Violation]:
    if isinstance(exc, Violation):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [v for sub in exc.exceptions for v in _violations_in(sub)]
    return []


class Host:
    """One machine: ``start``, ``crash``, ``restart``, ``pause``, ``resume``."""

    def __init__(
        self,
        name: str,
        node: int,
        boot: Boot,
        *,
        seed: int,
        clock: SimClock,
        streams: StreamNetwork,
        disk: SimDisk | None = None,
        failures: list[tuple[int, str]],
        violations: list[Violation],
    ) -> None:
        self.name = name
        self.node = node
        self.boot = boot
        self.clock = clock
        self.disk = disk
        self._seed = seed
        self.streams = streams
        self.network = streams.add_host(name, node)
        self._failures = failures
        self._violations = violations
        self._nursery: trio.Nursery | None = None
        self._scope: trio.CancelScope | None = None
        self.process: Process | None = None
        self.incarnation = 0
        self.paused = False
        self._resumed = trio.Event()
        self.stopped = trio.Event()
        """Set when the current incarnation ends (crash or failure); replaced on restart."""

    @property
    def up(self) -> bool:
        return self.process is not None

    def start(self, nursery: trio.Nursery) -> None:
        """Boot the first incarnation in ``nursery`` (the world's)."""
        self._nursery = nursery
        self._boot()

    def _env(self) -> HostEnv:
        return HostEnv(
            name=self.name,
            node=self.node,
            incarnation=self.incarnation,
            clock=self.clock,
            network=self.network,
            disk=self.disk,
            rng=random.Random(f"host:{self._seed}:{self.name}:{self.incarnation}"),
        )

    def _boot(self) -> None:
        assert self._nursery is not None, "start() first"
        self.incarnation += 1
        self.stopped = trio.Event()
        try:
            process = self.boot(self._env())
        except Exception as exc:
            self._record(exc)
            self._incarnation_ended()
            self.stopped.set()
            return
        self.process = process
        self._scope = trio.CancelScope()
        self._nursery.start_soon(self._run, process, self._scope, name=f"host-{self.name}")

    async def _run(self, process: Process, scope: trio.CancelScope) -> None:
        with scope:
            try:
                await process.run()
            except Exception as exc:
                self._record(exc)
                if self.process is process:
                    self._go_down()

    def _record(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(exc))
        self._failures.append((self.node, text))
        self._violations.extend(_violations_in(exc))

    def _incarnation_ended(self) -> None:
        """The process is gone: its connections are reset and its listeners vanish."""
        self.streams.crash(self.node)

    def _go_down(self) -> None:
        """End the incarnation without touching the disk (what a crash does before power loss)."""
        if self._scope is not None:
            self._scope.cancel()
        self._scope = None
        self.process = None
        self._incarnation_ended()
        if self.paused:
            self._set_paused(False)
        self.stopped.set()

    def crash(self, torn_records: int = 0) -> None:
        """Kill the process and cut the power: the disk keeps what was synced plus the first
        ``torn_records`` unsynced records."""
        if not self.up:
            raise ValueError(f"host {self.name} is already down")
        self._go_down()
        if self.disk is not None:
            self.disk.crash(keep_unsynced=torn_records)
        self._crashed()

    def _crashed(self) -> None:
        """Hook: after a crash has taken the disk down too."""

    def restart(self) -> None:
        """Boot a new incarnation from what the disk holds."""
        if self.up:
            raise ValueError(f"host {self.name} is up")
        self._boot()
        if self.process is not None:
            self._restarted()

    def _restarted(self) -> None:
        """Hook: a new incarnation is up (not called for the first boot)."""

    def _set_paused(self, paused: bool) -> None:
        self.paused = paused
        if paused:
            self.clock.pause()
            self.streams.pause(self.node)
        else:
            self.clock.resume()
            self.streams.resume(self.node)
            self._resumed.set()
            self._resumed = trio.Event()

    def pause(self) -> None:
        """SIGSTOP: timers, timeouts, stream I/O and accepts freeze; time keeps passing. Work
        the process was already doing still finishes: Trio cannot stop a task from outside,
        but with no inputs and no timers it soon has nothing to do."""
        if not self.up:
            raise ValueError(f"host {self.name} is down")
        self._set_paused(True)

    def resume(self) -> None:
        if self.paused:
            self._set_paused(False)

    async def wait_resumed(self) -> None:
        """Return at once unless paused; otherwise when resumed (or taken down)."""
        while self.paused:
            await self._resumed.wait()


class HostListener(Protocol):
    """The part of the world's listener a member host calls."""

    def observer_for(self, member_id: int) -> Callable[[Any], None] | None: ...

    def crashed(self, member_id: int, disk: SimDisk) -> None: ...

    def restarted(self, member_id: int, member: Member) -> None: ...


@attrs.define(eq=False)
class MemberProcess:
    """A Raft member and its client listener: one incarnation of a member host."""

    member: Member
    network: HostNetwork
    address: tuple[str, int]
    nursery: trio.Nursery | None = None
    """The incarnation's nursery while it runs. A request this process serves (an
    operator's membership change, say) runs here, so a crash ends it as it ends the member's
    own tasks, instead of letting it call into a member that no longer exists."""

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            await nursery.start(self.member.run)
            listeners = await self.network.open_listeners(*self.address)
            await nursery.start(partial(serve_clients, self.member, listeners=listeners))


class MemberHost(Host):
    """The machine of Raft member ``config.member_id`` (its node id too)."""

    def __init__(
        self,
        config: MemberConfig,
        *,
        seed: int,
        disk: SimDisk,
        clock: SimClock,
        network: SimNetwork,
        streams: StreamNetwork,
        client_endpoints: Mapping[int, str],
        listener: HostListener,
        failures: list[tuple[int, str]],
        violations: list[Violation],
        sync_latency: float = 0.0,
    ) -> None:
        self.member_id = config.member_id
        self.config = config
        self.sync_latency = sync_latency
        """Virtual seconds each fsync takes (:attr:`WorldConfig.sync_latency`); 0: none."""
        self._network = network
        self.client_endpoints = dict(client_endpoints)
        self.listener = listener
        """Hears of each incarnation, crash and restart (:meth:`World.stop_listening`
        replaces it)."""
        self.disk: SimDisk = disk
        super().__init__(
            f"m{config.member_id}",
            config.member_id,
            self._boot_member,
            seed=seed,
            clock=clock,
            streams=streams,
            disk=disk,
            failures=failures,
            violations=violations,
        )

    @property
    def member(self) -> Member | None:
        process = self.process
        return process.member if isinstance(process, MemberProcess) else None

    @property
    def client_endpoint(self) -> str:
        return self.client_endpoints[self.member_id]

    def _boot_member(self, env: HostEnv) -> MemberProcess:
        endpoint = self._network.attach(self.member_id)
        # Seeded as before hosts were generic, so a member's random choices stay its own.
        rng = random.Random(f"member:{self._seed}:{self.member_id}:{env.incarnation}")
        member = Member(
            self.config,
            storage=self.disk,
            transport=endpoint,
            clock=env.clock,
            rng=rng,
            run_sync=None if self.sync_latency <= 0 else partial(self._slow_sync, env.clock),
            observer=self.listener.observer_for(self.member_id),
        )
        member.client_endpoints.update(self.client_endpoints)
        return MemberProcess(member, env.network, (env.name, CLIENT_PORT))

    async def _slow_sync(self, clock: SimClock, sync: Callable[[], None]) -> None:
        """The member's ``run_sync`` hook: the write becomes durable only when the fsync's
        time is up (a crash before then loses it), and the member's tasks run meanwhile, as
        with the real runner's sync thread."""
        await sleep_for(clock, self.sync_latency)
        sync()

    def _incarnation_ended(self) -> None:
        super()._incarnation_ended()
        self._network.detach(self.member_id)

    def _crashed(self) -> None:
        self.listener.crashed(self.member_id, self.disk)

    def _restarted(self) -> None:
        member = self.member
        assert member is not None
        self.listener.restarted(self.member_id, member)

    def _set_paused(self, paused: bool) -> None:
        super()._set_paused(paused)
        endpoint = self._network.endpoint(self.member_id)
        if endpoint is not None:
            if paused:
                endpoint.pause()
            else:
                endpoint.resume()
