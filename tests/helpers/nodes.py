"""A stand-in kubelet for the node controllers' tests: it registers a Node with a Ready
condition and renews the node's Lease in ``kube-node-lease`` until told to stop."""

from __future__ import annotations

import datetime
from typing import Any

import attrs
import trio

from raftkube.controllers.resources import LEASES, resource
from raftkube.kubeclient import KubeAPIError, KubeClient

Obj = dict[str, Any]

NODES = resource("", "v1", "nodes")
PODS = resource("", "v1", "pods")
SERVICE_ACCOUNTS = resource("", "v1", "serviceaccounts")


def micro_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def register_node(
    client: KubeClient, name: str, *, zone: str = "", taints: list[Obj] | None = None
) -> Obj:
    """A Node reporting Ready, with its Lease."""
    labels = {"topology.kubernetes.io/zone": zone} if zone else {}
    node = await client.create(
        NODES,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints or []},
        },
    )
    stamp = micro_time()[:19] + "Z"
    node["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ],
        "addresses": [{"type": "Hostname", "address": name}],
    }
    node = await client.update(NODES, node, subresource="status")
    await client.create(
        LEASES,
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_time()},
        },
    )
    return node


async def post_ready(client: KubeClient, name: str) -> None:
    """The kubelet's status update after it comes back: Ready again, a new heartbeat."""
    node = await client.get(NODES, name)
    stamp = micro_time()[:19] + "Z"
    for condition in node["status"]["conditions"]:
        condition["lastHeartbeatTime"] = stamp
        if condition["type"] == "Ready" and condition["status"] != "True":
            condition.update(
                status="True", reason="KubeletReady", message="kubelet is posting ready status"
            )
            condition["lastTransitionTime"] = stamp
        elif condition["type"] != "Ready":
            condition["status"] = "False"
    await client.update(NODES, node, subresource="status")


@attrs.define(eq=False)
class Heartbeats:
    """Renews the Leases of ``nodes`` every ``period`` seconds (real time: a real server)."""

    client: KubeClient
    period: float = 0.2
    alive: set[str] = attrs.field(factory=set)

    async def run(self) -> None:
        while True:
            for name in sorted(self.alive):
                lease = await self.client.get(LEASES, name, namespace="kube-node-lease")
                lease["spec"]["renewTime"] = micro_time()
                await self.client.update(LEASES, lease)
            await trio.sleep(self.period)


async def bound_pod(client: KubeClient, name: str, node: str, tolerations: list[Obj]) -> Obj:
    """A pod already bound to ``node``, Ready (the namespace's default account is made first
    if no controller has made it: admission wants it)."""
    try:
        account = {"metadata": {"name": "default"}}
        await client.create(SERVICE_ACCOUNTS, account, namespace="default")
    except KubeAPIError as exc:
        if exc.code != 409:
            raise
    pod = await client.create(
        PODS,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "image": "busybox"}],
                "tolerations": tolerations,
            },
        },
    )
    pod["status"] = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    result: Obj = await client.update(PODS, pod, subresource="status")
    return result


def unreachable_toleration(seconds: int | None) -> Obj:
    toleration: Obj = {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
    }
    if seconds is not None:
        toleration["tolerationSeconds"] = seconds
    return toleration
