"""A node lost on real processes: its kubelet process is killed, and after the grace period
its pods run on the node that is left.

Every component is its own process, as `raftkube up` starts them (the same command lines, from
the same plan): three store members and the API server, the controller manager, the scheduler
and two kubelets with the process runtime (pods are `sleep` process groups). Only upstream's
own knobs are shortened, as an operator would set them:

- the controller manager's ``--node-monitor-grace-period 5s`` and ``--node-monitor-period 1s``
  (upstream's defaults are 40 s and 5 s);
- the kubelets' ``--node-lease-duration-seconds 4`` (``nodeLeaseDurationSeconds``): a Lease
  renewed every second, well inside that grace period;
- the pods' own NoExecute tolerations of ``unreachable`` and ``not-ready`` for 1 s (the
  DefaultTolerationSeconds admission adds its 300 s ones only to a pod that has none).

The controller manager and the scheduler are the only ones, so they run with
``--leader-elect=false``: on a loaded machine a missed lease renewal would end them, which is
not what this test is about.

The kubelet is killed with SIGKILL, as a crashed machine stops: nothing tells the API server.
Then, as upstream: the node turns Unknown and gets the unreachable NoExecute taint, its pods are
deleted once their toleration runs out (they stay Terminating: no kubelet confirms), and the
ReplicaSet's replacements are scheduled to, and run on, the node that is left. The killed
kubelet's pod processes outlive it, as a real kubelet's containers would; the teardown stops
them through the process runtime's own records.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from raftkube.apiserver.resources import ResourceInfo, lookup
from raftkube.clock import TrioClock
from raftkube.cluster.control_plane import ControlPlanePlan, NodePlan, plan_control_plane
from raftkube.cluster.up import local_cluster, local_plan
from raftkube.kubeclient import KubeClient
from raftkube.kubelet.cli import stop_every_pod
from raftkube.runtime.process import ProcessRuntime
from tests.helpers.polling import eventually
from tests.helpers.processes import Processes, free_ports

Obj = dict[str, Any]


def _resource(group: str, version: str, name: str) -> ResourceInfo:
    info = lookup(group, version, name)
    assert info is not None, name
    return info


PODS = _resource("", "v1", "pods")
REPLICA_SETS = _resource("apps", "v1", "replicasets")

GRACE_SECONDS = 5
CONTROLLER_MANAGER_FLAGS = (
    "--node-monitor-grace-period", f"{GRACE_SECONDS}s",
    "--node-monitor-period", "1s",
    "--leader-elect=false",
)  # fmt: skip
KUBELET_FLAGS = ("--node-lease-duration-seconds", "4")
TOLERATION_SECONDS = 1


def replica_set() -> Obj:
    tolerations = [
        {"key": f"node.kubernetes.io/{key}", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": TOLERATION_SECONDS}
        for key in ("unreachable", "not-ready")
    ]  # fmt: skip
    container = {"name": "app", "image": "sleep", "command": ["sleep", "600"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "sleepers", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "sleepers"}},
            "template": {
                "metadata": {"labels": {"app": "sleepers"}},
                "spec": {"containers": [container], "tolerations": tolerations},
            },
        },
    }


def as_raftkube_command(argv: list[str]) -> list[str]:
    """``python -m raftkube.cluster X ... --stop-on-stdin-eof`` (how `up` starts X) as the
    arguments of ``raftkube X ...``, which :class:`Processes` starts and kills."""
    assert argv[1:3] == ["-m", "raftkube.cluster"], argv
    return [a for a in argv[3:] if a != "--stop-on-stdin-eof"]


def running(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get(
        "deletionTimestamp"
    )


def node_condition(node: Obj, kind: str) -> str:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return str(c["status"])
    return ""


async def stop_pods(node: NodePlan) -> None:
    """Stop what the process runtime of ``node`` still runs (a killed kubelet's pods)."""
    root = node.root_dir / node.name  # the kubelet's --root-dir, then its node's name
    if root.exists():
        await stop_every_pod(ProcessRuntime(TrioClock(), root, node.pod_cidr), 0.0)


@pytest.mark.trio
async def test_a_killed_kubelets_pods_move_to_the_other_node(
    tmp_path: Path,
    procs: Processes,
) -> None:
    data = tmp_path / "cluster"
    data.mkdir()
    plan = local_plan(data, apiserver=True)
    assert plan.control_plane is not None
    cp: ControlPlanePlan = plan_control_plane(
        data, plan.control_plane.host, plan.control_plane.port,
        nodes=2, kubelet_ports=free_ports(2),
    )  # fmt: skip
    plan = attrs.evolve(plan, control_plane=cp)
    kubelets: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with trio.fail_after(150):
            async with local_cluster(plan, wait=60):
                procs.start(
                    as_raftkube_command(cp.controller_manager_argv())
                    + list(CONTROLLER_MANAGER_FLAGS),
                    "controller-manager",
                )
                procs.start(
                    [*as_raftkube_command(cp.scheduler_argv()), "--leader-elect=false"],
                    "scheduler",
                )
                for node in cp.nodes:
                    argv = as_raftkube_command(cp.kubelet_argv(node)) + list(KUBELET_FLAGS)
                    kubelets[node.name] = procs.start(argv, node.name)
                async with KubeClient.from_kubeconfig(cp.admin_kubeconfig) as kube:
                    await _check_node_loss(kube, kubelets)
    finally:
        with trio.CancelScope(shield=True):
            for node in cp.nodes:
                await stop_pods(node)


async def _check_node_loss(kube: KubeClient, kubelets: dict[str, subprocess.Popen[bytes]]) -> None:
    """Both nodes Ready, the ReplicaSet's two pods Running; kill the kubelet of the first
    pod's node; both pods then Running on the other node, the lost node Unknown and tainted."""

    async def nodes_ready() -> bool:
        nodes = (await kube.list("/api/v1/nodes"))["items"]
        ready = {n["metadata"]["name"] for n in nodes if node_condition(n, "Ready") == "True"}
        return ready == set(kubelets)

    await eventually(nodes_ready, "nodes ready", timeout=60, interval=0.25)
    await kube.create(REPLICA_SETS, replica_set(), namespace="default")

    async def pods_running() -> list[Obj] | None:
        pods = (await kube.list(PODS, namespace="default"))["items"]
        live = [p for p in pods if running(p)]
        return live if len(live) == 2 else None

    before = await eventually(pods_running, "pods running", timeout=30, interval=0.25)
    victim = str(before[0]["spec"]["nodeName"])
    (survivor,) = set(kubelets) - {victim}
    moved = {p["metadata"]["name"] for p in before if p["spec"]["nodeName"] == victim}

    kubelets[victim].send_signal(signal.SIGKILL)
    killed_at = trio.current_time()

    async def replaced() -> list[Obj] | None:
        live = await pods_running()
        if live is None or any(p["spec"]["nodeName"] != survivor for p in live):
            return None
        return live

    after = await eventually(replaced, "replaced", timeout=40, interval=0.25)
    # Not before the grace period, less the last renewal's age (up to 1 s) and one monitor
    # period (1 s): the pods moved because the node went silent, not for another reason.
    assert trio.current_time() - killed_at >= GRACE_SECONDS - 2
    assert not moved & {p["metadata"]["name"] for p in after}
    node = await kube.get("/api/v1/nodes", victim)
    assert node_condition(node, "Ready") == "Unknown"
    taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
    assert ("node.kubernetes.io/unreachable", "NoExecute") in taints
    pods = (await kube.list(PODS, namespace="default"))["items"]
    for pod in pods:
        if pod["metadata"]["name"] in moved:
            assert pod["metadata"].get("deletionTimestamp"), pod["metadata"]
