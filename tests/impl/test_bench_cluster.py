"""``raftkube bench cluster``'s machinery at a tiny size, in one Trio run: a real API server on a
one-member store, the controller manager's ReplicaSet and garbage collector controllers, the
scheduler and five simulated nodes, measured by the bench's own :func:`measure` (its watches,
its ReplicaSet, its deletion and clean-up) and rendered by its report.

The full-size figures (1,000 nodes, 10,000 pods, every component its own process) are in
docs/performance.md; this only keeps the command from rotting."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest
import trio

from raftkube.apiserver.auth.pki import node_user, write_kubeconfig
from raftkube.bench.cluster import NAMESPACES, Phase, Result, measure, replicaset
from raftkube.bench.cputime import CPUTable, component_name, sample
from raftkube.clock import TrioClock
from raftkube.controllers.manager import run_controller_manager
from raftkube.kubelet.simnodes import SIM_NODE_LABEL, plan_sim_nodes, run_sim_nodes
from raftkube.scheduler.scheduler import Scheduler
from tests.helpers.api_server import APIHarness

NODES, PODS = 5, 20
PY = "/usr/bin/python3"


async def _scheduler(api: APIHarness) -> None:
    async with api.client_for("system:kube-scheduler") as client:
        scheduler = Scheduler(client, TrioClock(), rng=random.Random(3))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scheduler.run_informers)
            nursery.start_soon(scheduler.run)


@pytest.mark.trio
async def test_a_tiny_run_times_every_phase_and_cleans_up(
    api: APIHarness,
    tmp_path: Path,
) -> None:
    nodes = plan_sim_nodes(tmp_path / "sim", NODES)
    (tmp_path / "sim").mkdir()
    for node in nodes:
        pair = api.pki.node(node.name)
        write_kubeconfig(
            node.kubeconfig, api.url, api.pki.ca.cert, pair.cert, pair.key, node_user(node.name)
        )
    args = argparse.Namespace(sim_nodes=NODES, pods=PODS, timeout=20.0, kubeconfig=None)
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_scheduler, api)
            nursery.start_soon(
                lambda: run_controller_manager(
                    api.admin,
                    controllers=["replicaset", "garbagecollector"],
                    clock=TrioClock(),
                    leader_elect=False,
                    identity="bench-cluster-test",
                    rng=random.Random(4),
                )
            )

            def start_nodes() -> None:
                nursery.start_soon(run_sim_nodes, nodes, TrioClock())

            result = await measure(api.kubeconfig, args, start_nodes)
            nursery.cancel_scope.cancel()
    assert result.errors == []
    assert result.complete
    assert result.nodes_ready.done == NODES
    assert result.cpu is not None and "bench" in result.cpu.seconds
    for phase in (result.created, result.scheduled, result.running):
        assert (phase.wanted, phase.done) == (PODS, PODS)
        assert phase.seconds is not None
    assert (result.deleted.wanted, result.deleted.done) == (PODS, PODS)
    # Each pod is created before it is scheduled, and scheduled before it runs.
    assert result.created.seconds <= result.scheduled.seconds <= result.running.seconds  # type: ignore[operator]
    # The run's namespace is deleted (gone, or terminating: no namespace controller here).
    listed = await api.admin.list(NAMESPACES)
    ours = [n for n in listed["items"] if n["metadata"]["name"].startswith("bench-cluster-")]
    assert all(n["metadata"].get("deletionTimestamp") for n in ours), ours
    assert len(ours) <= 1


def test_the_replicaset_runs_only_on_simulated_nodes() -> None:
    rs = replicaset(7)
    assert rs["spec"]["replicas"] == 7
    template = rs["spec"]["template"]
    assert template["spec"]["nodeSelector"] == {SIM_NODE_LABEL: "true"}
    assert rs["spec"]["selector"]["matchLabels"] == template["metadata"]["labels"]


def test_the_report_says_which_targets_were_met_and_what_did_not_finish() -> None:
    result = Result(
        attached=False,
        nodes_ready=Phase(1000, 1000, 41.5),
        created=Phase(10_000, 10_000, 80.0),
        scheduled=Phase(10_000, 10_000, 90.0),
        running=Phase(10_000, 9_000, None),
        deleted=Phase(9_500, 9_500, 70.2),
    )
    text = result.render()
    assert "nodes Ready:    1000 of 1000 in 41.5 s   (target 60 s: met)" in text
    assert "pods Running:   9000 of 10000, not all within the timeout   (target 120 s: missed)" in (
        text
    )
    assert "pods deleted:   9500 of 9500 in 70.2 s" in text
    assert not result.complete
    pods = Phase(20, 20, 1.0)
    small = Result(False, Phase(5, 5, 1.0), pods, pods, pods, pods)
    assert "target" not in small.render()
    assert small.complete


def test_cpu_seconds_are_per_phase_differences_named_by_component() -> None:
    assert component_name([PY, "-m", "raftkube.cluster", "member", "--id", "2"]) == "member 2"
    assert component_name([PY, "-m", "raftkube.cluster", "sim-nodes", "--count", "5"]) == (
        "sim-nodes"
    )
    assert component_name(["/usr/bin/sleep", "5"]) == "sleep"
    samples = [{"bench": 1.0}, {"bench": 2.5, "apiserver": 4.0}, {"bench": 3.0, "apiserver": 9.0}]
    table = CPUTable.between(("a", "b"), samples)
    assert table.seconds == {"apiserver": (4.0, 5.0), "bench": (1.5, 0.5)}
    assert table.render()[-1].split() == ["total", "5.5", "5.5"]
    assert "bench" in sample()  # this process, at least
