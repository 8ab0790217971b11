"""The fault registry: every fault a suite can produce is registered once, and every registered
fault heals the way it says."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube_fuzz import timeline_model
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults import HEAL_ALL, REGISTRY, families
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.suites.base import FAULT_FAMILIES, LEADER_FAULTS, SuiteMachine, fault_steps
from raftkube_fuzz.suites.kv import KvMachine

EXAMPLES: dict[str, Step] = {
    "crash": Step.of("crash", member=1, torn=1),
    "restart": Step.of("restart", member=1),
    "pause": Step.of("pause", member=1),
    "resume": Step.of("resume", member=1),
    "heal": Step.of("heal"),
    "isolate": Step.of("isolate", member=1),
    "partition": Step.of("partition", minority=[2]),
    "one_way": Step.of("one_way", source=0, dest=2),
    "bridge": Step.of("bridge", member=1),
    "loss": Step.of("loss", p=0.3),
    "duplicate": Step.of("duplicate", p=0.3),
    "latency": Step.of("latency", high=0.05),
    "clock_jump": Step.of("clock_jump", member=1, seconds=0.5),
    "clock_rate": Step.of("clock_rate", member=1, rate=1.5),
    "skew": Step.of("skew", member=1),
    "resync": Step.of("resync"),
    "reset": Step.of("reset", member=1),
    "disk_full": Step.of("disk_full", member=1),
    "disk_read_only": Step.of("disk_read_only", member=2),
    "disk_freed": Step.of("disk_freed", member=1),
}
"""One step of each registered kind (a new kind must add one, or the heal test fails)."""


def fault_state(run: Run) -> Any:
    """What a fault can leave behind in the world, except what the registry says stays by
    design (a clock jump's offset; a member a disk fault fenced until its restart)."""
    world = run.world
    members = tuple(
        (world.up(i), world.up(i) and world.paused(i), host.disk.fault, host.clock.rate)
        for i, host in enumerate(world.hosts)
    )
    network = world.network
    return members, sorted(network.blocked), network.defaults, dict(network._links)


def test_the_families_the_suites_draw_from_are_the_registry_s() -> None:
    assert families() == FAULT_FAMILIES
    kinds = [k for family in FAULT_FAMILIES.values() for k in family]
    assert sorted(kinds) == sorted(REGISTRY)
    assert {step.kind for step in LEADER_FAULTS} <= set(REGISTRY)
    rules = {name for name in dir(KvMachine) if name.endswith("_fault")}
    # Every family has its rule in the kv suite (the one that draws them all).
    assert {f"{family}_fault" for family in FAULT_FAMILIES} <= rules
    assert {name for name in dir(SuiteMachine) if name.endswith("_fault")} <= rules


@settings(max_examples=100, database=None, deadline=None)
@given(st.data(), st.sampled_from(sorted(FAULT_FAMILIES)), st.sampled_from((3, 5)))
def test_every_drawn_fault_is_registered_in_its_family(
    data: st.DataObject, family: str, n: int
) -> None:
    step = data.draw(fault_steps(n, family, down=(1,), paused=(2,)))
    assert step.kind in REGISTRY and REGISTRY[step.kind].family == family


def test_the_timeline_draws_spans_for_the_registered_kinds() -> None:
    store_kinds = {k for k in timeline_model.OPENS if not k.startswith("host_")}
    assert store_kinds == {k for k, kind in REGISTRY.items() if kind.opens is not None}
    closers = {k for k in timeline_model.CLOSES if not k.startswith("host_")}
    assert closers == {k for k, kind in REGISTRY.items() if kind.closes} | {HEAL_ALL}
    for name, kind in REGISTRY.items():
        assert kind.heals, f"{name} says nothing of how it heals"
        assert not (kind.opens and kind.closes), f"{name} both opens and closes a span"


def test_every_registered_fault_heals_by_its_undo_steps() -> None:
    assert sorted(EXAMPLES) == sorted(REGISTRY)
    suite = get_suite("kv")
    run = Run(suite, {**suite.default_config, "servers": 3}, 5)
    try:
        run.apply(Step.of("resync"))  # the initial drift drawn from the seed: rate 1 from here
        healthy = fault_state(run)
        changed = []
        for name, step in EXAMPLES.items():
            run.apply(step)
            if fault_state(run) != healthy:
                changed.append(name)
            for undo in REGISTRY[name].undo(run, step):
                run.apply(undo)
            assert fault_state(run) == healthy, f"{name} is not undone by its undo steps"
        # The faults that leave something to heal did change the world (so the comparison
        # above can fail); the healers and the transient ones did not.
        assert sorted(changed) == sorted(
            k for k, kind in REGISTRY.items() if kind.opens is not None and k != "clock_jump"
        )
        run.finish()
        assert run.violation is None, run.violation
    finally:
        run.close()
