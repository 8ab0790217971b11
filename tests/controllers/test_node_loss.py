"""Issue 13 end to end: a stopped node's pods move elsewhere after its grace period.

One Trio run holds a real API server, the controller manager (ReplicaSet, node lifecycle,
taint eviction and service account controllers; a 2.5 s node monitor grace period), the
scheduler, and two kubelets over the simulated runtime, each with its node's own credentials.
A ReplicaSet of two pods that tolerate ``unreachable`` and ``not-ready`` for 2 s runs; one
kubelet is stopped (its Lease is no longer renewed) and the test follows what upstream does:
the node turns Unknown and gets the unreachable NoExecute taint, its pods are deleted
gracefully once their toleration runs out (they stay Terminating: no kubelet confirms), and the
ReplicaSet's replacements are scheduled to, and run on, the node that is left. Real sockets:
the waits are real time. The kubelets' clock runs 20 times faster than Trio's, so their 10 s
Lease renewals come every 0.5 s, well inside the controller's grace period."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.manager import run_controller_manager
from raftkube.controllers.nodehealth import DisruptionConfig
from raftkube.controllers.nodelifecycle import NodeLifecycleConfig
from raftkube.kubelet import Kubelet, NodeConfig, RuntimeProber
from raftkube.runtime import SimulatedRuntime
from raftkube.scheduler.scheduler import Scheduler
from tests.helpers.api_server import APIHarness
from tests.helpers.clocks import FastClock
from tests.helpers.kubelet import ensure_default_service_account
from tests.helpers.nodes import NODES
from tests.helpers.polling import eventually
from tests.helpers.workloads import PODS, REPLICA_SETS, ready_value

Obj = dict[str, Any]

GRACE = 2.5
"""The node monitor grace period: silence longer than this makes a node Unknown."""
TOLERATION_SECONDS = 2
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"

LIFECYCLE = NodeLifecycleConfig(
    node_monitor_period=0.2,
    node_monitor_grace_period=GRACE,
    node_startup_grace_period=GRACE,
    eviction_period=0.05,
    disruption=DisruptionConfig(eviction_rate=10.0),
)

NODE_CIDRS = {"node-a": "127.1.1.0/24", "node-b": "127.1.2.0/24"}


def replica_set() -> Obj:
    tolerations = [
        {"key": key, "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": TOLERATION_SECONDS}
        for key in (UNREACHABLE, NOT_READY)
    ]  # fmt: skip
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "app", "image": "sim"}],
                    "tolerations": tolerations,
                },
            },
        },
    }


async def run_kubelet(api: APIHarness, name: str, scope: trio.CancelScope) -> None:
    """A simulated node's kubelet until ``scope`` is cancelled: the node stops, silently."""
    runtime = SimulatedRuntime(FastClock(), NODE_CIDRS[name])
    config = NodeConfig(name, NODE_CIDRS[name], cpu="2", memory="4Gi", max_pods=10,
                        runtime_name="sim")  # fmt: skip
    async with api.client_for(f"system:node:{name}", ("system:nodes",)) as client:
        kubelet = Kubelet(client, runtime, config, runtime.clock, prober=RuntimeProber(runtime))
        with scope:
            await kubelet.run()


async def run_scheduler(api: APIHarness) -> None:
    async with api.client_for("system:kube-scheduler") as client:
        scheduler = Scheduler(client, TrioClock(), rng=random.Random(5))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scheduler.run_informers)
            nursery.start_soon(scheduler.run)


def taint_keys(node: Obj, effect: str) -> set[str]:
    return {t["key"] for t in node["spec"].get("taints") or [] if t["effect"] == effect}


def running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and ready_value(pod) == "True"


@pytest.mark.trio
async def test_a_stopped_nodes_pods_move_to_the_other_node(api: APIHarness) -> None:
    client = api.admin
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await ensure_default_service_account(client)
            kubelets = {name: trio.CancelScope() for name in NODE_CIDRS}
            for name, scope in kubelets.items():
                nursery.start_soon(run_kubelet, api, name, scope)
            nursery.start_soon(run_scheduler, api)
            nursery.start_soon(
                lambda: run_controller_manager(
                    client,
                    controllers=["replicaset", "nodelifecycle", "taint-eviction-controller"],
                    clock=TrioClock(),
                    leader_elect=False,
                    identity="node-loss",
                    rng=random.Random(7),
                    node_lifecycle=LIFECYCLE,
                )
            )
            rs = await client.create(REPLICA_SETS, replica_set())
            uid = rs["metadata"]["uid"]

            async def owned() -> list[Obj]:
                listed = await client.list(PODS, namespace="default")
                return [
                    p
                    for p in listed["items"]
                    if any(r["uid"] == uid for r in p["metadata"].get("ownerReferences") or [])
                ]

            async def both_running() -> list[Obj]:
                pods = await owned()
                return pods if len(pods) == 2 and all(map(running_and_ready, pods)) else []

            first = await eventually(both_running, "both replicas running", timeout=10)
            # Stop the node of the first replica (perhaps of both: then both must move).
            lost = sorted(first, key=lambda p: p["metadata"]["name"])[0]["spec"]["nodeName"]
            (kept,) = set(NODE_CIDRS) - {lost}
            victims = {p["metadata"]["name"] for p in first if p["spec"]["nodeName"] == lost}
            kubelets[lost].cancel()
            stopped = trio.current_time()

            async def tainted() -> Obj | None:
                node = await client.get(NODES, lost)
                return node if UNREACHABLE in taint_keys(node, "NoExecute") else None

            node = await eventually(tainted, "the unreachable NoExecute taint", timeout=8)
            tainted_after = trio.current_time() - stopped
            # Not before the grace period from the last renewal the controller saw (the kubelet
            # renews every 0.5 s, the controller looks every 0.2 s).
            assert tainted_after >= GRACE - 0.5 - 0.2
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
            assert UNREACHABLE in taint_keys(node, "NoSchedule") or UNREACHABLE in taint_keys(
                await client.get(NODES, lost), "NoSchedule"
            )
            # The pods tolerate the taint for 2 s: none is deleted the moment it appears.
            on_lost = {p["metadata"]["name"]: p for p in await owned() if p["metadata"]["name"]
                       in victims}  # fmt: skip
            assert not any(p["metadata"].get("deletionTimestamp") for p in on_lost.values())

            async def evicted() -> list[Obj]:
                pods = [p for p in await owned() if p["metadata"]["name"] in victims]
                return pods if all(p["metadata"].get("deletionTimestamp") for p in pods) else []

            gone = await eventually(evicted, "the lost node's pods evicted", timeout=6)
            for pod in gone:
                # Graceful, never forced: the pod waits for a kubelet that will not come.
                assert pod["metadata"]["deletionGracePeriodSeconds"] > 0
                conditions = {c["type"]: c for c in pod["status"]["conditions"]}
                assert conditions["DisruptionTarget"]["reason"] == "DeletionByTaintManager"
                assert conditions["Ready"]["status"] == "False"

            async def moved() -> list[Obj]:
                pods = [p for p in await owned() if not p["metadata"].get("deletionTimestamp")]
                return (
                    pods
                    if len(pods) == 2
                    and all(p["spec"].get("nodeName") == kept for p in pods)
                    and all(map(running_and_ready, pods))
                    else []
                )

            replacements = await eventually(moved, "two replicas running on the other node",
                                             timeout=8)  # fmt: skip
            assert victims.isdisjoint(p["metadata"]["name"] for p in replacements)
            # The evicted pods are still there, Terminating on the lost node.
            still = {p["metadata"]["name"] for p in await owned() if p["spec"]["nodeName"] == lost}
            assert still == victims
            nursery.cancel_scope.cancel()
