"""The suites' search machinery: fault families, and background load that stays on a leader."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube_fuzz.checks.history import Ok
from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suite_runner import patch_for
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.suites.base import FAULT_FAMILIES, FAULT_KINDS, fault_steps
from raftkube_fuzz.suites.kv import KvMachine
from raftkube_spec.kv.requests import PutRequest, RangeRequest


def test_every_fault_kind_belongs_to_exactly_one_family() -> None:
    kinds = [k for family in FAULT_FAMILIES.values() for k in family]
    assert len(kinds) == len(set(kinds))
    expected = [
        "crash",
        "restart",
        "pause",
        "resume",
        "heal",
        "isolate",
        "partition",
        "one_way",
        "bridge",
        "loss",
        "duplicate",
        "latency",
        "clock_jump",
        "clock_rate",
        "skew",
        "resync",
        "reset",
        "disk_full",
        "disk_read_only",
        "disk_freed",
    ]
    assert sorted(kinds) == sorted(FAULT_KINDS) == sorted(expected)


@settings(max_examples=200, database=None)
@given(st.data(), st.sampled_from(sorted(FAULT_FAMILIES)), st.sampled_from((3, 5)))
def test_a_family_rule_draws_only_its_own_kinds(data: st.DataObject, family: str, n: int) -> None:
    step = data.draw(fault_steps(n, family, down=(1,), paused=(2,)))
    assert step.kind in FAULT_FAMILIES[family]
    if step.kind in ("restart", "resume"):
        assert step["member"] == (1 if step.kind == "restart" else 2)


def test_background_load_works_through_faults_and_ends_at_finish() -> None:
    suite = get_suite("raft")
    steps = [
        Step.of("isolate", member="leader"),
        Step.of("wait", seconds=0.5),
        Step.of("heal"),
        Step.of("wait", seconds=1.0),  # the read stuck on the cut-off leader gives up at 1 s
    ]
    run = run_steps(suite, {**suite.default_config, "load": "both"}, 7, steps)
    assert run.violation is None, run.violation
    ops = run.history.operations()
    puts = [op for op in ops if isinstance(op.request, PutRequest)]
    reads = [op for op in ops if isinstance(op.request, RangeRequest)]
    load_puts = [op for op in puts if op.request.value.startswith(b"load")]
    assert len(load_puts) >= 20 and len(reads) >= 10
    assert all(op.outcome is not None for op in ops), "finish waits for the load to stop"
    assert sum(isinstance(op.outcome, Ok) for op in load_puts) >= 10


LEASE_STEPS = [
    Step.of("skew", member="leader"),
    Step.of("wait", seconds=0.05),
    Step.of("isolate", member="leader"),
    Step.of("wait", seconds=0.5),
]


def test_a_read_load_catches_a_lease_that_ignores_drift_and_passes_the_real_one() -> None:
    """The load client keeps reading from the leader it started with after that leader is
    cut off, so a lease that outlives the followers' protection serves a read after a newer
    election; with the real lease (margin for drift) the same steps are safe."""
    suite = get_suite("raft")
    config = {**suite.default_config, "read_mode": "lease", "load": "reads"}
    seeds = range(5)
    for seed in seeds:
        assert run_steps(suite, config, seed, LEASE_STEPS).violation is None
    mutant = "lease-read-ignores-drift"
    with patch_for(mutant):
        caught = [
            run_steps(suite, config, seed, LEASE_STEPS, mutant=mutant).violation for seed in seeds
        ]
    props = [v.prop for v in caught if v is not None]
    assert len(props) >= 3 and set(props) == {"LeaseSafety"}, props


def test_a_watch_that_silently_starts_at_the_compaction_point_is_caught_at_the_end() -> None:
    """No event comes after the compaction, so the mutant's stream stays empty: a prefix of
    anything. Only the end-of-example completeness check can tell it left events out."""
    suite = get_suite("kv")
    put = {"lease": 0}
    steps = [
        Step.of("put", member=0, key="k0", value="v1", **put),
        Step.of("put", member=0, key="k0", value="v2", **put),
        Step.of("put", member=0, key="k0", value="v3", **put),
        Step.of("wait", seconds=0.05),
        Step.of("compact", member=0, revision=3),
        Step.of("wait", seconds=0.05),
        Step.of("watch", member=0, key="k0", prefix=False, revision=2),
        Step.of("wait", seconds=0.05),
    ]
    config = dict(suite.default_config)
    assert run_steps(suite, config, 3, steps).violation is None
    mutant = "watch-skips-compacted-event"
    with patch_for(mutant):
        run = run_steps(suite, config, 3, steps, mutant=mutant)
    assert run.violation is not None and run.violation.prop == "WatchDelivery", run.violation
    assert "never delivered" in run.violation.message


def test_a_watch_drawn_from_the_compaction_starts_below_it() -> None:
    """The kv suite's watch rule can aim just below the compaction its member applied (the
    start the watch-skips-compacted-event mutant mishandles), whatever came after it; with
    nothing compacted it falls back to the newest revisions."""
    suite = get_suite("kv")
    run = Run(suite, dict(suite.default_config), 3)
    try:
        machine = KvMachine()
        machine.run, machine.servers = run, run.world_config.servers
        for i in range(4):
            run.apply(Step.of("put", member=0, key="k0", value=f"v{i}", lease=0))
        run.apply(Step.of("wait", seconds=0.05))
        newest = max(m.mvcc.revision for m in run.world.members if m is not None)
        assert machine._below_compaction(0, 0) == newest  # nothing compacted yet
        run.apply(Step.of("compact", member=0, revision=4))
        for i in range(3):
            run.apply(Step.of("put", member=0, key="k1", value=f"w{i}", lease=0))
        run.apply(Step.of("wait", seconds=0.05))
        assert [machine._below_compaction(0, back) for back in (0, 1, 2, 9)] == [3, 2, 1, 1]
    finally:
        run.close()


def test_the_slow_leader_nemesis_follows_leadership() -> None:
    suite = get_suite("raft")
    config = {**suite.default_config, "servers": 5, "clocks": "slow_leader"}
    run = run_steps(suite, config, 11, [Step.of("crash", member="leader", torn=0)], until=0)
    first = run.faults["skew"]
    run = run_steps(
        suite,
        config,
        11,
        [Step.of("crash", member="leader", torn=0), Step.of("wait", seconds=1.0)],
        until=1,
    )
    assert run.faults["skew"] > first, "a new leader was skewed too"
    leader = run.world.leader()
    assert leader is not None
    rates = [host.clock.rate for host in run.world.hosts]
    assert rates[leader] == 0.5
    assert all(rate == 1.5 for i, rate in enumerate(rates) if i != leader)
