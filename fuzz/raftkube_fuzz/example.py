"""One example of a suite: a simulated world, its checkers, and the steps applied to it.

A :class:`Run` is what a Hypothesis example drives and what a replay re-creates. It owns the
stepped :class:`~raftkube_fuzz.world.driver.Simulation`, the
:class:`~raftkube_fuzz.world.world.World` inside it, the client history, the watches, the
timeline, and the Raft shadow. What the world reports (every event a member's core reports,
every network fault and every crash) goes to the run's
:class:`~raftkube_fuzz.run_listener.RunListener`, which records it and runs the checkers that
must see it as it happens; the run drives the steps and the checks between them.

Checking, after every step (:meth:`Run.check`): first anything that escaped a member (an
exception is a bug) or that a checker raised from inside one (conformance and durability run
synchronously inside the members' event reports, so the first bad event is caught where it
happens); then the run's :attr:`Run.checks`, in order (:mod:`raftkube_fuzz.checks.api`), which
the suite assembles (:mod:`raftkube_fuzz.checks.standard` for the store suites: the spec's
Raft invariants, state-machine agreement, linearizability of the history so far).

At the end (:meth:`Run.finish`, the pseudo-step after the last one): every fault is undone,
the cluster must serve again and go quiet (:mod:`raftkube_fuzz.example_end`); then every
check's :meth:`~raftkube_fuzz.checks.api.Check.at_end` runs, in the same order (for the store
suites: no operation left pending, the suite's own end checks, every watch against the
committed events, the whole history for linearizability).
"""

from __future__ import annotations

import collections
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from raftkube_fuzz.checks.api import Check
from raftkube_fuzz.checks.conformance import RaftShadow
from raftkube_fuzz.checks.history import History, Ok, Outcome, describe
from raftkube_fuzz.code_version import code_stamp
from raftkube_fuzz.example_end import liveness_bound, probe
from raftkube_fuzz.run_listener import RunListener
from raftkube_fuzz.steps import Step
from raftkube_fuzz.timeline import CLIENT, FAULT, Lazy, Timeline, member_host
from raftkube_fuzz.trace import Trace, ViolationRecord
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.client import RequestClient, SimClient, WatchClient, WatchHandle
from raftkube_fuzz.world.driver import CancelAfter, Simulation, SimulationStalled, sleep
from raftkube_fuzz.world.wire_client import WireClient
from raftkube_fuzz.world.world import World
from raftkube_spec.kv.requests import Request
from raftkube_spec.kv.types import KeyValue

if TYPE_CHECKING:
    from raftkube_fuzz.suites.base import Suite

SETTLE_LIMIT = 5.0
"""Virtual seconds a fresh world gets to elect its first leader before the first step."""


class Run:
    """One example: build it, :meth:`apply` steps, :meth:`finish`, :meth:`close`."""

    def __init__(
        self,
        suite: Suite,
        config: Mapping[str, Any],
        seed: int,
        *,
        mutant: str | None = None,
    ) -> None:
        self.suite = suite
        self.config = dict(config)
        self.seed = seed
        self.mutant = mutant
        self.world_config = suite.world_config(self.config)
        self.timeline = Timeline()
        self.history = History()
        self.steps: list[Step] = []
        self.faults: collections.Counter[str] = collections.Counter()
        self.watches: list[WatchHandle] = []
        self._pending: list[Any] = []
        servers = self.world_config.servers
        self.shadow = RaftShadow.for_member_config(servers, self.world_config.member_config(0))
        self.checks: list[Check] = suite.checks(self)
        """What this example checks, in the order the checks run (the suite's choice)."""
        self._final_stats: dict[str, Any] | None = None
        """:attr:`stats` as of :meth:`close` (the world is let go of then)."""
        self.extras: dict[str, Any] = {}
        """What the suite keeps for this example (hosts it added, its checkers' state)."""
        self.sim = Simulation(seed)
        self.listener = RunListener(
            timeline=self.timeline,
            history=self.history,
            shadow=self.shadow,
            event_checks=[c for c in self.checks if c.watches_events()],
            clock=self.sim.clock,
            servers=servers,
        )
        self.world = World(self.world_config, seed, self.listener)
        self.listener.world = self.world
        self._watcher: WatchClient
        self._wire: list[WireClient] = []
        """The clients that start their library (and sessions) while the world settles."""
        if suite.wire_clients:
            history = self.history
            wire = [WireClient(self.world, i, history, session=i % 2 == 0) for i in range(servers)]
            self.clients: list[RequestClient] = list(wire)
            self._watcher = wire[-1]
            self._watcher_host = f"c{len(wire) - 1}"
            self._wire = wire
        else:
            direct = [SimClient(self.world, i, self.history) for i in range(servers)]
            self.clients = list(direct)
            self._watcher = direct[0]
            self._watcher_host = "c0"
        self._next_client = 0
        self._loading = True
        """Background load clients keep going while this is set; :meth:`finish` clears it."""
        self.sim.start(self.world.run)
        self.sim.call(self._settle, limit=SETTLE_LIMIT + 1.0)
        suite.prepare(self)

    @property
    def violation(self) -> Violation | None:
        """The run's first violation: a checker's inside the simulation, or a step's."""
        return self.listener.violation

    @violation.setter
    def violation(self, value: Violation | None) -> None:
        self.listener.violation = value

    @property
    def written(self) -> dict[int, tuple[KeyValue, ...]]:
        """Every write some member's store applied, by revision (see
        :attr:`RunListener.written <raftkube_fuzz.run_listener.RunListener.written>`)."""
        return self.listener.written

    # --- stepping -----------------------------------------------------------------------------

    async def _settle(self) -> None:
        deadline = trio.current_time() + SETTLE_LIMIT
        while self.world.leader() is None and trio.current_time() < deadline:
            await sleep(self.world_config.tick_interval)
        # Clients start up (sessions registered) before the first step, within the same limit;
        # one that could not finishes its start-up at its first request.
        with CancelAfter(max(0.0, deadline - trio.current_time())):
            async with trio.open_nursery() as nursery:
                for client in self._wire:
                    nursery.start_soon(client.open)

    def apply(self, step: Step) -> None:
        """Apply one step and check everything; raises :class:`Violation` (with ``step`` set)."""
        index = len(self.steps)
        self.steps.append(step)
        self.timeline.begin_step(self.sim.now, f"step {index}: {step.describe()}")
        try:
            self.suite.execute(self, step)
            self.check()
        except Violation as v:
            raise self._first(v, index) from None
        except Exception as exc:
            raise self._as_violation(exc, index) from exc

    def _first(self, v: Violation, index: int) -> Violation:
        """The violation step ``index`` ends with: one a checker recorded while the step ran
        (a conformance failure inside a member's event, say) came first, so it wins over what
        the step then ran into (a liveness probe that never finished because of it)."""
        first = self.violation if self.violation is not None else v
        first.step = index
        self.violation = first
        return first

    def _as_violation(self, exc: Exception, index: int) -> Violation:
        """An exception out of the harness itself (the simulation died, a step was malformed)
        still fails the run with a trace, under its own property name; a run whose virtual
        time stopped while tasks kept running is a livelock."""
        v = Violation(
            "Livelock" if isinstance(exc, SimulationStalled) else "Exception",
            f"{type(exc).__name__}: {exc}",
            {"traceback": "".join(traceback.format_exception(exc))},
        )
        return self._first(v, index)

    def advance(self, seconds: float) -> None:
        self.sim.advance(seconds)

    def fault(
        self,
        kind: str,
        text: str,
        member: int | None = None,
        *,
        members: Sequence[int] | None = None,
        hosts: Sequence[str] = (),
    ) -> None:
        """Record a fault a step injected (the world applies it): on ``member``'s line, and
        touching ``members`` (default: that member) and ``hosts``, hosts that are not store
        members (an API server, a kubelet); with none of them, the whole world. A fault on
        exactly one such host is that host's line (its lane in the HTML timeline)."""
        self.faults[kind] += 1
        touched = members if members is not None else [] if member is None else [member]
        info: dict[str, Any] = {"fault": kind}
        if touched or hosts:
            info["hosts"] = [member_host(m) for m in touched] + list(hosts)
        if member is None and len(hosts) == 1:
            info["host"] = hosts[0]
        self.timeline.add(self.sim.now, member, FAULT, text, info)

    def _take_client(self) -> RequestClient:
        """The next simulated client, round robin, so concurrent operations come from
        different clients (one client's operations are sequential in the history)."""
        client = self.clients[self._next_client % len(self.clients)]
        self._next_client += 1
        return client

    def spawn_request(self, request: Request, *, member: int, serializable: bool = False) -> None:
        """Start a client operation at ``member``; it completes in the background."""
        client = self._take_client()
        timeout = self.world_config.request_timeout * 3
        task = self.sim.spawn(
            self._client_op, client, request, member, serializable, timeout, limit=timeout + 5
        )
        self._pending.append(task)

    def spawn_stream(
        self,
        requests: Sequence[Request],
        *,
        member: int,
        gap: float,
        serializable: bool = False,
    ) -> None:
        """Start a client that sends ``requests`` to ``member`` one after the other, ``gap``
        virtual seconds apart: a steady stream, which is what a lease or a stale read is caught
        by, and what keeps entries in flight when a leader falls."""
        client = self._take_client()
        timeout = self.world_config.request_timeout * 3

        async def stream() -> None:
            for request in requests:
                await self._client_op(client, request, member, serializable, timeout)
                await sleep(gap)

        self._pending.append(self.sim.spawn(stream, limit=len(requests) * (timeout + gap) + 5))

    def spawn_load(self, make: Callable[[int], Request], *, gap: float) -> None:
        """Start a client that sends ``make(0)``, ``make(1)``, ... one after the other, ``gap``
        virtual seconds apart, from now until :meth:`finish`. It sticks to one member, as a
        client library keeps its connection: the leader when it starts, re-chosen only after
        an operation that did not succeed. So a deposed leader that still answers keeps getting
        this client's requests, which is where a stale read or a lost write shows."""
        client = self._take_client()
        timeout = self.world_config.request_timeout  # then it gives up on that member

        async def load() -> None:
            member: int | None = None
            sent = 0
            while self._loading:
                if member is None:
                    member = self.world.leader() or 0
                outcome = await self._client_op(client, make(sent), member, False, timeout)
                sent += 1
                if not isinstance(outcome, Ok):
                    member = None
                await sleep(gap)

        self._pending.append(self.sim.spawn(load))

    def spawn_periodic(self, action: Callable[[], None], *, every: float) -> None:
        """Call ``action`` every ``every`` virtual seconds from now until :meth:`finish`: a
        nemesis that keeps a condition true while the world changes under it (Jepsen's
        nemeses are processes too)."""

        async def periodic() -> None:
            while self._loading:
                action()
                await sleep(every)

        self._pending.append(self.sim.spawn(periodic))

    def spawn_admin(self, action: Callable[[], Awaitable[None]], *, limit: float) -> None:
        """Start an operator's action (a membership change, say): not a client operation, so
        it joins no history; it must end within ``limit`` virtual seconds."""
        self._pending.append(self.sim.spawn(action, limit=limit))

    async def _client_op(
        self,
        client: RequestClient,
        request: Request,
        member: int,
        serializable: bool,
        timeout: float,
    ) -> Outcome:
        op = len(self.history)
        kind = "serializable " if serializable else ""
        host = f"c{self.clients.index(client)}"
        flow = f"op-{op}"
        self.timeline.add(
            trio.current_time(),
            member,
            CLIENT,
            Lazy(f"#{op} {kind}call ", describe, request),
            {"host": host, "to": member_host(member), "flow": flow},
        )
        outcome = await client.request(
            request, member=member, serializable=serializable, timeout=timeout
        )
        self.timeline.add(
            trio.current_time(),
            None,
            CLIENT,
            Lazy(f"#{op} returns ", describe, outcome),
            {"host": host, "from": member_host(member), "flow": flow},
        )
        return outcome

    def spawn_watch(self, *, member: int, key: bytes, range_end: bytes, start: int) -> None:
        async def open_watch() -> None:
            handle = await self._watcher.watch(member, key, range_end, start)
            self.watches.append(handle)
            self.timeline.add(
                trio.current_time(),
                member,
                CLIENT,
                f"watch {key!r}..{range_end!r} from revision {handle.start_revision}",
                {"host": self._watcher_host, "to": member_host(member)},
            )

        self._pending.append(self.sim.spawn(open_watch, limit=10.0))

    # --- checks -------------------------------------------------------------------------------

    def check(self) -> None:
        """Everything that must hold after any step."""
        if self.violation is not None:
            raise self.violation
        if self.world.violations:
            raise self.world.violations[0]
        if self.world.failures:
            member, text = self.world.failures[0]
            raise Violation(
                "MemberCrashed",
                f"an exception escaped member {member}",
                {"member": member, "traceback": text},
            )
        for check in self.checks:
            check.after_step(self)

    # --- the end ------------------------------------------------------------------------------

    def liveness_bound(self) -> float:
        """Virtual seconds a healed cluster may take to serve again (see
        :func:`raftkube_fuzz.example_end.liveness_bound`)."""
        return liveness_bound(self.world_config)

    def finish(self) -> None:
        """Heal everything, then check liveness and every check's end (:attr:`checks`)."""
        index = len(self.steps)
        self.timeline.begin_step(self.sim.now, f"step {index}: finish (heal all, final checks)")
        try:
            self.check()
            self._loading = False
            self.world.heal_all()
            self.fault("heal_all", "heal all: network healed, clocks resynced, members restarted")
            bound = self.liveness_bound()
            try:
                self.sim.call(self._probe, limit=bound)
            except SimulationStalled:
                raise
            except Exception as exc:
                raise Violation(
                    "Liveness",
                    f"after every fault healed, the cluster did not serve a write and a "
                    f"linearizable read within {bound:.2f} virtual seconds ({exc})",
                    {"bound": bound, "leader": self.world.leader()},
                ) from None
            self.check()
            for check in self.checks:
                check.at_end(self)
        except Violation as v:
            raise self._first(v, index) from None
        except Exception as exc:
            raise self._as_violation(exc, index) from exc

    async def _probe(self) -> None:
        await probe(
            self.world, self.clients[0], self._pending, wire_clients=self.suite.wire_clients
        )

    # --- results ------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, Any]:
        if self._final_stats is not None:
            return self._final_stats
        network = self.world.network.stats
        return {
            "steps": len(self.steps),
            "virtual_seconds": self.sim.now,
            "events": len(self.timeline),
            "deliveries": network.get("delivered", 0),
            "faults": dict(self.faults),
        }

    def trace(self) -> Trace:
        v = self.violation
        record = (
            None
            if v is None
            else ViolationRecord(
                v.prop, v.message, v.step if v.step is not None else len(self.steps), v.evidence
            )
        )
        return Trace(
            suite=self.suite.name,
            seed=self.seed,
            config=self.config,
            steps=tuple(self.steps),
            violation=record,
            timeline=tuple(self.timeline.lines()),
            mutant=self.mutant,
            code=code_stamp(),
        )

    def digest(self) -> str:
        return self.timeline.digest()

    def close(self) -> None:
        """End the simulation, then cut every reference from the world back to this run.

        An ended world is cyclic garbage: a member and its parts call each other back, so
        only Python's cyclic collector frees it. Everything it still references is kept
        alive until then and traversed by the collector along with it; if that included the
        run, it would include all the run recorded (the timeline's events and messages, the
        history, the spec states). Cut loose, the run and its records are freed by reference
        counting as soon as nobody needs them: on ``raftkube fuzz run kv --config servers=5``
        the collector's share of the CPU fell from about 9% to about 5% (docs/performance.md).
        The trace, the digest and :attr:`stats` stay available."""
        self.sim.close()
        self._final_stats = self.stats
        self.listener.cut()
        self.world.stop_listening()
        self.shadow.release()


def run_steps(
    suite: Suite,
    config: Mapping[str, Any],
    seed: int,
    steps: list[Step],
    *,
    mutant: str | None = None,
    until: int | None = None,
    on_step: Callable[[Run, int], Awaitable[None] | None] | None = None,
) -> Run:
    """Re-run ``steps`` (a trace's) in a new :class:`Run`; stops at the first violation (kept
    in ``run.violation``) or after step ``until``. The run is returned closed.

    ``mutant`` is only recorded (in the run and its trace), not patched in: a caller that
    wants the bug wraps the call in :func:`raftkube_fuzz.suite_runner.patch_for`, as the
    runner and ``replay`` do, so that one patch spans every run of a search."""
    run = Run(suite, config, seed, mutant=mutant)
    try:
        for i, step in enumerate(steps):
            if until is not None and i > until:
                break
            try:
                run.apply(step)
            except Violation:
                return run
            if on_step is not None:
                on_step(run, i)
        if until is None or until >= len(steps):
            try:
                run.finish()
            except Violation:
                return run
        return run
    finally:
        run.close()
