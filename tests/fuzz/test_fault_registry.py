"""The fault registry: every fault a suite can produce is registered once, and every registered
fault heals the way it says."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube_fuzz import timeline_model
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults import HEAL_ALL, REGISTRY, families
from raftkube_fuzz.faults.cloud import CLOUD_FAULTS, INSTANCE_STEPS
from raftkube_fuzz.faults.cluster import COMPONENT_FAULTS
from raftkube_fuzz.faults.containers import CONTAINER_CRASH
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
"""One step of each store fault kind (a new kind must add one, or the heal test fails)."""

STORE_KINDS = [k for k, kind in REGISTRY.items() if kind.strategy is not None]
"""The kinds the base rules draw (the cluster suite's component faults are drawn by its own
rules, which read the control plane to pick a host)."""


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
    assert sorted(kinds) == sorted(STORE_KINDS)
    assert {step.kind for step in LEADER_FAULTS} <= set(REGISTRY)
    rules = {name for name in dir(KvMachine) if name.endswith("_fault")}
    # Every family has its rule in the kv suite (the one that draws them all).
    assert {f"{family}_fault" for family in FAULT_FAMILIES} <= rules
    assert {name for name in dir(SuiteMachine) if name.endswith("_fault")} <= rules


@settings(max_examples=100, database=None)
@given(st.data(), st.sampled_from(sorted(FAULT_FAMILIES)), st.sampled_from((3, 5)))
def test_every_drawn_fault_is_registered_in_its_family(
    data: st.DataObject, family: str, n: int
) -> None:
    step = data.draw(fault_steps(n, family, down=(1,), paused=(2,)))
    assert step.kind in REGISTRY and REGISTRY[step.kind].family == family


def test_the_cluster_suite_s_component_faults_are_registered() -> None:
    assert COMPONENT_FAULTS
    for name in COMPONENT_FAULTS:
        assert REGISTRY[name].family == "component" and REGISTRY[name].strategy is None
    assert REGISTRY[CONTAINER_CRASH].family == "component"
    for name in (*CLOUD_FAULTS, *INSTANCE_STEPS):
        assert REGISTRY[name].family == "cloud" and REGISTRY[name].strategy is None
    kinds = set(STORE_KINDS) | set(COMPONENT_FAULTS) | {CONTAINER_CRASH} | set(CLOUD_FAULTS)
    kinds |= set(INSTANCE_STEPS)
    assert set(REGISTRY) == kinds


def test_the_timeline_draws_spans_for_the_registered_kinds() -> None:
    assert set(timeline_model.OPENS) == {k for k, kind in REGISTRY.items() if kind.opens}
    closers = {k for k, kind in REGISTRY.items() if kind.closes} | {HEAL_ALL}
    assert set(timeline_model.CLOSES) == closers
    for name, kind in REGISTRY.items():
        assert kind.heals, f"{name} says nothing of how it heals"
        assert not (kind.opens and kind.closes), f"{name} both opens and closes a span"


def test_every_registered_fault_heals_by_its_undo_steps() -> None:
    assert sorted(EXAMPLES) == sorted(STORE_KINDS)
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
            k for k in STORE_KINDS if REGISTRY[k].opens is not None and k != "clock_jump"
        )
        run.finish()
        assert run.violation is None, run.violation
    finally:
        run.close()


COMPONENT_EXAMPLES: dict[str, Step] = {
    "host_crash": Step.of("host_crash", host="kcm-1"),
    "host_restart": Step.of("host_restart", host="kcm-1"),
    "host_pause": Step.of("host_pause", host="sched-0"),
    "host_resume": Step.of("host_resume", host="sched-0"),
    "host_cut": Step.of("host_cut", host="sched-1"),
    "host_heal": Step.of("host_heal"),
    "host_clock_jump": Step.of("host_clock_jump", host="kcm-0", seconds=1.0),
    "host_clock_rate": Step.of("host_clock_rate", host="kcm-0", rate=1.5),
    "host_slow": Step.of("host_slow", host="kcm-1", seconds=0.05),
    "host_wall_offset": Step.of("host_wall_offset", host="kcm-1", seconds=-30.0),
    "nodes_cut": Step.of("nodes_cut"),
}


def component_state(run: Run) -> Any:
    """What a component fault can leave behind, except what stays by design (a clock jump's
    offset; a lag, which only the final checks clear)."""
    hosts = tuple(
        (h.name, h.up, h.paused, h.clock.rate, h.clock.wall_offset) for h in run.world.all_hosts
    )
    return hosts, sorted(run.world.network.blocked)


def test_every_component_fault_heals_by_its_undo_steps() -> None:
    assert sorted(COMPONENT_EXAMPLES) == sorted(COMPONENT_FAULTS)
    config = {"servers": 1, "nodes": 1, "managers": 2, "schedulers": 2, "store_faults": "off"}
    run = Run(get_suite("cluster"), {**get_suite("cluster").default_config, **config}, 3)
    try:
        healthy = component_state(run)
        changed = []
        for name, step in COMPONENT_EXAMPLES.items():
            run.apply(step)
            if component_state(run) != healthy:
                changed.append(name)
            for undo in REGISTRY[name].undo(run, step):
                run.apply(undo)
            assert component_state(run) == healthy, f"{name} is not undone by its undo steps"
        assert sorted(changed) == [
            "host_clock_rate",
            "host_crash",
            "host_cut",
            "host_pause",
            "host_wall_offset",
            "nodes_cut",
        ]
    finally:
        run.close()
