"""Simulated nodes, as kwok serves them: many Nodes from one process.

Each simulated node is the real :class:`~raftkube.kubelet.kubelet.Kubelet` (registration,
Lease heartbeats, node status, admission, one pod worker per pod, pod status) over its own
:class:`~raftkube.runtime.simulated.SimulatedRuntime`, acting with its own credentials
(``system:node:NAME`` in ``system:nodes``, from its own kubeconfig), so the Node authorizer
and NodeRestriction see exactly what a real kubelet would send. All nodes share one Trio run:
each kubelet is its own task tree under one nursery, with one client (one connection pool) per
node identity.

Where this differs from kwok: kwok runs one controller with cluster-wide credentials that
fakes every node's and pod's status; here every node runs the whole kubelet, which costs more
per node but exercises the same code paths as a real node. A simulated node serves no logs
(nothing runs, so there are none): it advertises kubelet port 0, which the API server answers
for ``pods/log`` with 503 "no kubelet endpoint is known", instead of a real node's port.

Pod addresses: node ``i`` gets the ``i``-th /24 of :data:`SIM_POD_CIDRS` (127.128.0.0/9), which
is disjoint from the real nodes' ``127.{i+1}.0.0/24`` and from the default service range
127.96.0.0/12, so simulated pod IPs never shadow a real pod's or a ClusterIP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import trio

from raftkube.clock import Clock
from raftkube.kubeclient import KubeClient
from raftkube.kubelet.kubelet import Kubelet
from raftkube.kubelet.node import LEASE_DURATION, NodeConfig
from raftkube.kubelet.probes import RuntimeProber
from raftkube.runtime.simulated import ContainerScript, SimulatedRuntime

log = logging.getLogger(__name__)

SIM_POD_CIDRS = ipaddress.IPv4Network("127.128.0.0/9")
"""The pool the simulated nodes' /24 pod ranges are cut from (32,768 nodes)."""

SIM_NODE_LABEL = "node.raftkube.io/simulated"
"""Every simulated node carries this label with the value ``"true"`` (kwok's nodes carry
``type: kwok``), so a workload meant for them can say so with a ``nodeSelector`` and one meant
for real nodes can avoid them."""

CONNECTIONS_PER_NODE = 4
"""Each simulated node's client keeps at most this many connections (its pod watch holds one;
Lease, node status and pod status writes share the rest). A real kubelet multiplexes all of it
over one HTTP/2 connection. With a client's default of 100, 1,000 nodes held 3,550 connections
in the middle of a 10,000-pod rollout, and opening them (bursts of pod status writes open
more, which idle out after a minute) took a tenth of the process's busy time in TLS
handshakes; the bound keeps that churn and the API server's connection count in check."""

NODE_PREFIX_LENGTH = 24
"""Each node's pod range is a /24, as the real nodes' of ``raftkube up``."""


@attrs.frozen
class SimNode:
    """One simulated node: its name, its pod range and the kubeconfig with its credentials."""

    name: str
    pod_cidr: str
    kubeconfig: Path


@attrs.frozen
class SimNodeResources:
    """What every simulated node reports as capacity and allocatable (kwok's default node
    template is larger; these are the real kubelet's defaults here)."""

    cpu: str = "4"
    memory: str = "8Gi"
    max_pods: int = 110
    lease_duration: int = LEASE_DURATION


def sim_pod_cidr(index: int, pool: ipaddress.IPv4Network = SIM_POD_CIDRS) -> str:
    """The pod range of simulated node ``index``: the ``index``-th /24 of ``pool``."""
    if pool.prefixlen > NODE_PREFIX_LENGTH:
        raise ValueError(f"pod CIDR pool {pool} is smaller than one /{NODE_PREFIX_LENGTH}")
    count = 1 << (NODE_PREFIX_LENGTH - pool.prefixlen)
    if not 0 <= index < count:
        raise ValueError(f"pod CIDR pool {pool} has room for {count} nodes, not node {index}")
    base = int(pool.network_address) + (index << (32 - NODE_PREFIX_LENGTH))
    return str(ipaddress.IPv4Network((base, NODE_PREFIX_LENGTH)))


def sim_node_name(prefix: str, index: int) -> str:
    """Simulated node ``index``'s name (``sim-0``, ``sim-1``, ... with prefix ``sim-``)."""
    return f"{prefix}{index}"


def kubeconfig_path(directory: Path, name: str) -> Path:
    """Where node ``name``'s kubeconfig lives in a directory of simulated nodes' kubeconfigs."""
    return directory / f"{name}.kubeconfig"


def plan_sim_nodes(
    kubeconfig_dir: Path,
    count: int,
    prefix: str = "sim-",
    pool: ipaddress.IPv4Network = SIM_POD_CIDRS,
) -> tuple[SimNode, ...]:
    """``count`` simulated nodes named ``{prefix}{i}``, node ``i`` with the ``i``-th /24 of
    ``pool`` and its kubeconfig at ``kubeconfig_dir/{name}.kubeconfig``."""
    return tuple(
        SimNode(
            sim_node_name(prefix, i),
            sim_pod_cidr(i, pool),
            kubeconfig_path(kubeconfig_dir, sim_node_name(prefix, i)),
        )
        for i in range(count)
    )


def sim_kubelet(
    node: SimNode,
    client: KubeClient,
    clock: Clock,
    resources: SimNodeResources = SimNodeResources(),
    address: str = "127.0.0.1",
    scripts: Mapping[str, ContainerScript] | None = None,
) -> Kubelet:
    """The kubelet of one simulated node over its own simulated runtime, acting through
    ``client`` (which must carry the node's credentials)."""
    runtime = SimulatedRuntime(clock, node.pod_cidr, dict(scripts or {}))
    config = NodeConfig(
        node.name,
        node.pod_cidr,
        cpu=resources.cpu,
        memory=resources.memory,
        max_pods=resources.max_pods,
        address=address,
        port=0,
        runtime_name="sim",
        labels={SIM_NODE_LABEL: "true"},
        lease_duration=resources.lease_duration,
    )
    return Kubelet(client, runtime, config, clock, prober=RuntimeProber(runtime))


async def run_sim_nodes(
    nodes: Sequence[SimNode],
    clock: Clock,
    resources: SimNodeResources = SimNodeResources(),
    address: str = "127.0.0.1",
    scripts: Mapping[str, ContainerScript] | None = None,
) -> None:
    """Run every node of ``nodes``, each its own task tree under one nursery, until cancelled.

    Every node's client is made from its kubeconfig before any node starts, so a missing or
    broken kubeconfig raises :class:`~raftkube.kubeclient.KubeConfigError` at once rather than
    after the others registered. A node whose kubelet raises takes the others down with it,
    as a crashed kwok process would: the launcher sees the process exit."""
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for node in nodes:
            client = KubeClient.from_kubeconfig(
                node.kubeconfig, clock=clock, max_connections=CONNECTIONS_PER_NODE
            )
            clients.append(await stack.enter_async_context(client))
        log.info("running %d simulated nodes", len(nodes))
        async with trio.open_nursery() as nursery:
            for node, client in zip(nodes, clients, strict=True):
                kubelet = sim_kubelet(node, client, clock, resources, address, scripts)
                nursery.start_soon(kubelet.run, name=f"kubelet {node.name}")


__all__ = [
    "SIM_NODE_LABEL",
    "SIM_POD_CIDRS",
    "SimNode",
    "SimNodeResources",
    "kubeconfig_path",
    "plan_sim_nodes",
    "run_sim_nodes",
    "sim_kubelet",
    "sim_node_name",
    "sim_pod_cidr",
]
