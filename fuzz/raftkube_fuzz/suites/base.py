"""What every suite shares: the Suite interface, the fault steps, and the machine base class.

A suite is two halves kept apart on purpose:

* :class:`Suite` says what its steps *do* (``execute``) and how its world is shaped
  (``world_config``). It is plain code: a replay uses it without Hypothesis.
* Its ``machine`` (a :class:`SuiteMachine`) says which steps to *try*: Hypothesis rules that
  draw a :class:`~raftkube_fuzz.steps.Step` and hand it to the run. Nothing a rule draws may
  bypass the step, or a trace would not replay.

Faults are common to all suites (:func:`fault_steps`, :func:`execute_fault`), each kind
registered once in :mod:`raftkube_fuzz.faults`, one rule per family (:data:`FAULT_FAMILIES`):
crash with a possibly torn write and restart; pause and
resume; every partition shape and healing; message loss, duplication and slower links; clock
jumps, drift, skew and resync. Every step but ``wait`` lets a
little virtual time pass (:data:`STEP_TIME`) so that the world reacts before the next one.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from raftkube_fuzz import machine_context
from raftkube_fuzz.checks.api import Check
from raftkube_fuzz.checks.standard import standard_checks
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults import REGISTRY, Draws, families
from raftkube_fuzz.faults.store import MAX_CLOCK_DRIFT as MAX_CLOCK_DRIFT
from raftkube_fuzz.faults.store import skew_clocks as skew_clocks
from raftkube_fuzz.heap import release_free_heap
from raftkube_fuzz.steps import Step
from raftkube_fuzz.world.world import WorldConfig
from raftkube_spec.kv.requests import PutRequest, RangeRequest

T = TypeVar("T")

STEP_TIME = 0.002
"""Virtual seconds that pass after every step other than ``wait``, unless it says how long it
holds (``hold``)."""
HOLDS = (STEP_TIME, 0.05, 0.25)
"""How long a fault step lets the world run before the next step: at once, or for about a
heartbeat round, or for longer than an election takes. Without it a fault is followed at
once by the next one whenever the search strings faults together (which it does: it copies
runs of choices from earlier examples), and the hazards that need a fault to stand for a
while, such as a cut-off leader still serving reads while the others elect, are never
reached."""

WAITS = (0.005, 0.02, 0.05, 0.2, 0.5, 1.0)
MAX_MEMBERS = 5

LEADER_FAULTS = (
    Step.of("crash", member="leader", torn=0),
    Step.of("pause", member="leader"),
    Step.of("isolate", member="leader"),
    Step.of("skew", member="leader"),
)
"""Faults the ``leader_fault`` rule aims at the current leader."""

INITIAL_CLOCK_RATES = (1.0, 1 - MAX_CLOCK_DRIFT, 1 + MAX_CLOCK_DRIFT)
"""Each member's clock rate at the start of an example, drawn from the seed: unmoved or at an
edge of the bound. Drift that is there from the start (rather than added by a fault step) is
what makes lease and lease-expiry hazards reachable in short examples."""

FAULT_FAMILIES: dict[str, tuple[str, ...]] = families()
"""Fault kinds by family (from :data:`raftkube_fuzz.faults.REGISTRY`), one rule per family
(``connection`` only in suites whose clients hold connections: :attr:`Suite.wire_clients`;
``disk`` only in the ``kv`` suite, whose checks see every client-visible consequence of a
member fencing itself). Hypothesis's stateful engine switches whole rules on and off per
example (swarm testing: an example where only clock faults and reads are enabled goes deep
into clock hazards instead of spreading its steps over every kind), so a family is the unit
of that choice; one rule over all twenty kinds would be always on and dilute each kind to a
twentieth of the fault steps."""

FAULT_KINDS = tuple(kind for kinds in FAULT_FAMILIES.values() for kind in kinds)


@attrs.frozen
class Suite:
    """A named suite: its world shape, its client steps and its Hypothesis machine."""

    name: str
    description: str
    world_config: Callable[[Mapping[str, Any]], WorldConfig]
    execute_client: Callable[[Run, Step], bool]
    """Applies a client step; returns False if the step is not one of this suite's."""
    machine: type[RuleBasedStateMachine]
    default_config: Mapping[str, Any] = attrs.field(factory=dict)
    prepare: Callable[[Run], None] = lambda run: None
    """Sets up what the example's config asks to start with, once the world has its first
    leader and before the first step: background load (``run.spawn_load``), a nemesis
    (``run.spawn_periodic``)."""
    check_step: Callable[[Run], None] = lambda run: None
    """The suite's own checks after every step (raise a Violation), after the common ones
    (run by :class:`~raftkube_fuzz.checks.standard.SuiteHooks`, among :attr:`checks`)."""
    check_end: Callable[[Run], None] = lambda run: None
    """The suite's own checks at the end, once every fault healed and the store serves again
    (eventual reconciliation, say), before the history is judged."""
    sole_writers: bool = True
    """The history's clients are the store's only writers, so the history is checked for
    linearizability against the KV model; False where other programs write to the store too
    (the ``cluster`` suite's API server), whose writes the model cannot know."""
    checks: Callable[[Run], list[Check]] = standard_checks
    """The checks of one example, in the order they run (:mod:`raftkube_fuzz.checks.api`);
    the store suites' standard list by default, which includes :attr:`check_step` and
    :attr:`check_end`."""
    collect_each_example: bool = False
    """Run a full collection after each example, not only after each Hypothesis run: for a
    suite whose examples each leave megabytes of cyclic garbage (a whole control plane's Trio
    tasks, TLS and HTTP state), which the fuzz process's rare collections
    (:mod:`raftkube.tuning`) would otherwise let pile up for a hundred examples; the C heap
    it freed is then handed back to the system (:mod:`raftkube_fuzz.heap`)."""
    wire_clients: bool = False
    """Clients are raftkube's real client library on machines of their own, over the
    simulated byte streams to the members' client listeners
    (:mod:`~raftkube_fuzz.world.wire_client`), half of them with sessions; otherwise they
    call the members' API in-process (:class:`~raftkube_fuzz.world.client.SimClient`)."""

    def execute(self, run: Run, step: Step) -> None:
        if step.kind == "wait":
            run.advance(float(step["seconds"]))
            return
        if not (execute_fault(run, step) or self.execute_client(run, step)):
            raise ValueError(f"suite {self.name!r} has no step kind {step.kind!r}")
        run.advance(float(step.get("hold", STEP_TIME)))


@functools.lru_cache(maxsize=256)
def fault_steps(
    servers: int, family: str, down: tuple[int, ...] = (), paused: tuple[int, ...] = ()
) -> st.SearchStrategy[Step]:
    """A fault step of ``family`` (a key of :data:`FAULT_FAMILIES`) for a world of ``servers``
    members, of which ``down`` are crashed and ``paused`` are stopped: crash and pause pick
    running members, restart and resume pick from those lists, so no draw is wasted on a
    fault that cannot apply. The kind is drawn first, close to uniformly. Cached: Hypothesis would
    otherwise rebuild the strategy on every step."""
    draws = Draws.of(servers, down, paused)
    kinds = [
        k
        for k in FAULT_FAMILIES[family]
        if not (REGISTRY[k].needs == "down" and not down)
        and not (REGISTRY[k].needs == "paused" and not paused)
    ]
    builders = {k: REGISTRY[k].steps(draws) for k in kinds}
    return held(evenly(kinds).flatmap(lambda kind: builders[kind]))


def held(faults: st.SearchStrategy[Step]) -> st.SearchStrategy[Step]:
    """Fault steps with a drawn :data:`HOLDS` time (left out of the step when it is the
    default, so traces stay terse)."""
    return st.tuples(faults, evenly(HOLDS)).map(
        lambda pair: pair[0] if pair[1] == STEP_TIME else pair[0].with_args(hold=pair[1])
    )


def execute_fault(run: Run, step: Step) -> bool:
    """Apply a fault step; a fault that does not apply (restarting a running member) is a
    recorded no-op, so shrinking may drop the step that made it apply."""
    world, kind = run.world, step.kind
    if kind not in FAULT_KINDS:
        return False
    raw = step.get("member")
    resolved = world.leader() if raw == "leader" else raw
    if raw is not None and resolved is None:
        run.fault(kind, f"{kind}: no leader to aim at (no-op)")
        return True
    m: int = -1 if resolved is None else int(resolved)
    REGISTRY[kind].apply(run, step, m)
    return True


LOAD_GAP = 10 / 1024
"""Virtual seconds between the operations of a background load client (about 10 ms)."""


SYNC_LATENCIES = {"instant": 0.0, "slow": 2 / 1024}
"""How long a member's fsync takes (a store suite's ``sync`` setting): no time, so a Ready is
handled in one go, or about 2 ms of virtual time (binary-exact), during which the member runs
on as the real runner does: a leader's appends out and answered before its own write is
durable, entries committed, applied and answered during the sync, log-rewriting messages held
back until it ends, and a crash in the middle of it."""


def sync_latency(config: Mapping[str, Any]) -> float:
    """The fsync time a suite configuration's ``sync`` setting names (``instant`` if unset)."""
    sync = config.get("sync", "instant")
    if sync not in SYNC_LATENCIES:
        raise ValueError(f"sync must be one of {', '.join(SYNC_LATENCIES)}, not {sync!r}")
    return SYNC_LATENCIES[sync]


def setting(run: Run, name: str, options: Sequence[str], default: str) -> str:
    """The example's ``name`` setting, which must be one of ``options``."""
    value = run.config.get(name, default)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(options)}, not {value!r}")
    return str(value)


def start_load(run: Run, load: str, keys: Sequence[str]) -> None:
    """Background load in Jepsen's shape (``load``: "reads", "writes", "both" or "none"):
    clients keep working the whole time while the faults come and go, so every fault lands on
    operations in flight (a write half replicated, a read answered by a leader just cut off)
    instead of only on those a rule happened to start just before. The reader reads ``keys``
    in turn, the writer puts distinct values to them in turn."""
    if load in ("reads", "both"):
        run.spawn_load(lambda i: RangeRequest(keys[i % len(keys)].encode()), gap=LOAD_GAP)
    if load in ("writes", "both"):
        run.spawn_load(
            lambda i: PutRequest(keys[i % len(keys)].encode(), f"load{i}".encode()), gap=LOAD_GAP
        )


class SuiteMachine(RuleBasedStateMachine):
    """The rules every suite has: wait and one per fault family. Subclasses add client rules
    and an ``@initialize`` rule that calls :meth:`start`."""

    suite: ClassVar[Suite]

    def __init__(self) -> None:
        super().__init__()
        self.run: Run | None = None
        self.servers = 0
        self.stopped = False

    def start(self, config: Mapping[str, Any], seed: int) -> None:
        current = machine_context.current()
        merged = {**self.suite.default_config, **config, **current.config_overrides}
        self.run = Run(self.suite, merged, seed, mutant=current.mutant)
        self.servers = self.run.world_config.servers
        current.started(self.run)

    def apply(self, step: Step) -> None:
        assert self.run is not None
        current = machine_context.current()
        if current.spent():
            self.stopped = True
            current.budget_hit = True
            raise machine_context.BudgetSpent()
        try:
            self.run.apply(step)
        finally:
            machine_context.current().stepped(self.run)

    @rule(seconds=st.sampled_from(WAITS))
    def wait(self, seconds: float) -> None:
        self.apply(Step.of("wait", seconds=seconds))

    def _fault(self, data: st.DataObject, family: str) -> None:
        assert self.run is not None
        world = self.run.world
        down = tuple(i for i in range(self.servers) if not world.up(i))
        paused = tuple(i for i in range(self.servers) if world.up(i) and world.paused(i))
        self.apply(data.draw(fault_steps(self.servers, family, down, paused), label=family))

    @rule(data=st.data())
    def crash_fault(self, data: st.DataObject) -> None:
        """Crash a member (keeping 0-2 of its unsynced writes), or restart a crashed one."""
        self._fault(data, "crash")

    @rule(data=st.data())
    def pause_fault(self, data: st.DataObject) -> None:
        """Stop a member's process without killing it, or let a stopped one go on."""
        self._fault(data, "pause")

    @rule(data=st.data())
    def partition_fault(self, data: st.DataObject) -> None:
        """Isolate, split, cut one way, bridge, or heal the network."""
        self._fault(data, "partition")

    @rule(data=st.data())
    def network_fault(self, data: st.DataObject) -> None:
        """Change message loss, duplication or latency."""
        self._fault(data, "network")

    @rule(data=st.data())
    def clock_fault(self, data: st.DataObject) -> None:
        """Jump a clock, change its rate, skew the leader against the rest, or resync."""
        self._fault(data, "clock")

    def teardown(self) -> None:
        run = self.run
        if run is None:
            return
        try:
            if run.violation is None and not self.stopped:
                run.finish()
        finally:
            run.close()
            machine_context.current().finished(run)
            # Hypothesis's engine keeps the machine in reference cycles of its own: a run the
            # machine still held would be freed only by the cyclic collector (the session
            # keeps the run as long as it is needed).
            self.run = None
            del run
            if self.suite.collect_each_example:
                gc.collect()
                # The example's heap is free now; without this the C allocator keeps the
                # pages of the largest example so far resident (raftkube_fuzz.heap).
                release_free_heap()


def evenly(options: Sequence[T]) -> st.SearchStrategy[T]:
    """One of ``options``, drawn close to uniformly. Hypothesis leans hard towards the first
    option of a ``sampled_from`` (its simplest choice, which the examples it derives from
    earlier ones keep reusing); for a setting drawn once per example that starves the later
    options. A wide integer taken modulo the number of options is spread evenly, and still
    shrinks towards the first."""
    return st.integers(0, 2**16 - 1).map(lambda x: options[x % len(options)])


def seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)
