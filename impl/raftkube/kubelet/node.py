"""The kubelet's Node and its heartbeats: upstream's ``registerWithAPIServer``,
``nodeStatusUpdate`` and the node lease controller.

The Node is created with its capacity (``allocatable`` equals capacity: no resources are
reserved for the system here), addresses, ``podCIDR`` and the kubelet's endpoint; if it
already exists (a restarted kubelet) its status is brought up to date instead. The Lease
``kube-node-lease/{node}`` is renewed every quarter of its duration (upstream's
``NodeLeaseRenewIntervalFraction``: every 10 s of the default 40 s,
``nodeLeaseDurationSeconds``) and the status (conditions, addresses, capacity) is computed
every 10 s (``nodeStatusUpdateFrequency``) and written when it changed or every 5 minutes
(``nodeStatusReportFrequency``).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from raftkube.clock import Clock, sleep_for
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError
from raftkube.kubelet.status import rfc3339

Obj = dict[str, Any]
log = logging.getLogger(__name__)

LEASE_DURATION = 40
RENEW_INTERVAL_FRACTION = 0.25
RENEW_INTERVAL = LEASE_DURATION * RENEW_INTERVAL_FRACTION
STATUS_UPDATE_FREQUENCY = 10.0
STATUS_REPORT_FREQUENCY = 300.0
KUBELET_VERSION = "v1.32.0"
NODES = "/api/v1/nodes"


def micro_time(wall: float) -> str:
    """A ``metav1.MicroTime`` (microseconds, UTC), as Lease times are written."""
    moment = datetime.datetime.fromtimestamp(wall, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@attrs.frozen
class NodeConfig:
    name: str
    pod_cidr: str
    cpu: str = "4"
    memory: str = "8Gi"
    max_pods: int = 110
    address: str = "127.0.0.1"
    port: int = 10250
    runtime_name: str = "process"
    labels: dict[str, str] = attrs.field(factory=dict)
    lease_duration: int = LEASE_DURATION
    """Seconds written as the Lease's ``leaseDurationSeconds``; it is renewed every quarter
    of that. A controller manager whose ``--node-monitor-grace-period`` is shorter than the
    default 40 s needs its nodes to renew more often than every 10 s (the kubelet's
    ``--node-lease-duration-seconds``)."""

    @property
    def renew_interval(self) -> float:
        return self.lease_duration * RENEW_INTERVAL_FRACTION

    def capacity(self) -> Obj:
        return {"cpu": self.cpu, "memory": self.memory, "pods": str(self.max_pods)}


def conditions(old: Obj | None, ready: bool, now: str) -> list[Obj]:
    """The node conditions the kubelet owns, with transition times kept while unchanged."""
    previous = {c.get("type"): c for c in ((old or {}).get("status") or {}).get("conditions") or []}
    wanted = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status")
        if ready
        else ("Ready", "False", "KubeletNotReady", "container runtime is down"),
    ]
    out = []
    for kind, status, reason, message in wanted:
        before = previous.get(kind) or {}
        since = before.get("lastTransitionTime") if before.get("status") == status else None
        out.append(
            {
                "type": kind,
                "status": status,
                "lastHeartbeatTime": now,
                "lastTransitionTime": since or now,
                "reason": reason,
                "message": message,
            }
        )
    return out


def node_status(config: NodeConfig, old: Obj | None, now: str, ready: bool = True) -> Obj:
    return {
        "capacity": config.capacity(),
        "allocatable": config.capacity(),
        "conditions": conditions(old, ready, now),
        "addresses": [
            {"type": "InternalIP", "address": config.address},
            {"type": "Hostname", "address": config.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.port}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": "",
            "osImage": "raftkube",
            "containerRuntimeVersion": f"{config.runtime_name}://0.1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_object(config: NodeConfig, now: str) -> Obj:
    labels = {
        "kubernetes.io/hostname": config.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        **config.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": config.name, "labels": labels},
        "spec": {"podCIDR": config.pod_cidr, "podCIDRs": [config.pod_cidr]},
        "status": node_status(config, None, now),
    }


@attrs.define
class NodeStatusReporter:
    """Registers the Node, then keeps its Lease and status fresh (run :meth:`run_lease` and
    :meth:`run_status` in the caller's nursery after :meth:`register`)."""

    client: KubeClient
    config: NodeConfig
    clock: Clock
    wall: Callable[[], float]
    runtime_ready: Callable[[], Awaitable[bool]] | None = None
    """Whether the container runtime answers; Ready is False while it does not."""
    node: Obj | None = None
    _reported_at: float | None = None
    _lease: Obj | None = None
    """The Lease as the last write returned it (its resourceVersion guards the next PUT)."""

    async def register(self) -> Obj:
        """Create the Node, or take the existing one and update its status; retried every
        7 s (upstream's registration back-off starts there) until it succeeds."""
        while True:
            try:
                try:
                    self.node = await self.client.create(
                        NODES, node_object(self.config, rfc3339(self.wall()))
                    )
                    self._reported_at = self.clock.now()
                except KubeAPIError as exc:
                    if exc.code != 409:
                        raise
                    self.node = await self.client.get(f"{NODES}/{self.config.name}")
                    await self.update_status(force=True)
                assert self.node is not None
                return self.node
            except (KubeAPIError, KubeConnectionError, OSError) as exc:
                log.warning("unable to register node %s: %s", self.config.name, exc)
                await sleep_for(self.clock, 7.0)

    async def update_status(self, force: bool = False) -> None:
        now = rfc3339(self.wall())
        ready = True if self.runtime_ready is None else await self.runtime_ready()
        # Judged against the Node as the server holds it now, as upstream's
        # tryUpdateNodeStatus does (a GET with resourceVersion 0, from the watch cache): a
        # status someone else wrote (the node lifecycle controller's Ready=Unknown) is put
        # right at the next update, not after the report frequency's five minutes.
        self.node = await self.client.get(
            f"{NODES}/{self.config.name}", query={"resourceVersion": "0"}
        )
        status = node_status(self.config, self.node, now, ready)
        old = dict((self.node or {}).get("status") or {})
        due = self._reported_at is None or (
            self.clock.now() - self._reported_at >= STATUS_REPORT_FREQUENCY
        )
        if not force and not due and _without_heartbeats(status) == _without_heartbeats(old):
            return
        # A strategic merge patch, as upstream's PatchNodeStatus sends: conditions and
        # addresses merge by type, so a condition another component owns (the route
        # controller's NetworkUnavailable) stays; a merge patch would replace the whole list.
        self.node = await self.client.patch(
            f"{NODES}/{self.config.name}/status", "", {"status": status}, patch_type="strategic"
        )
        self._reported_at = self.clock.now()

    async def run_status(self) -> None:
        while True:
            await sleep_for(self.clock, STATUS_UPDATE_FREQUENCY)
            try:
                await self.update_status()
            except (KubeAPIError, KubeConnectionError, OSError) as exc:
                log.warning("error updating node status: %s", exc)

    async def renew_lease(self) -> None:
        """Renew the Lease from the copy the last write returned, as upstream's lease
        controller does with its ``latestLease`` (one PUT per renewal, no GET: with 1,000
        simulated nodes that is 100 requests a second fewer); only without a copy, or when
        the server refuses it (someone else wrote the Lease, or it is gone), is the Lease read
        again, or created."""
        name, namespace = self.config.name, "kube-node-lease"
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        now = micro_time(self.wall())
        if self._lease is not None:
            try:
                self._lease = await self._put_lease(path, self._lease, now)
                return
            except KubeAPIError as exc:
                if exc.code not in (404, 409):
                    raise
                self._lease = None
        try:
            lease = await self.client.get(f"{path}/{name}")
        except KubeAPIError as exc:
            if exc.code != 404:
                raise
            owner = []
            if self.node and self.node["metadata"].get("uid"):
                owner = [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": name,
                        "uid": self.node["metadata"]["uid"],
                    }
                ]
            self._lease = await self.client.create(
                path,
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name, "namespace": namespace, "ownerReferences": owner},
                    "spec": {
                        "holderIdentity": name,
                        "leaseDurationSeconds": self.config.lease_duration,
                        "renewTime": now,
                    },
                },
            )
            return
        self._lease = await self._put_lease(path, lease, now)

    async def _put_lease(self, path: str, lease: Obj, now: str) -> Obj:
        name = self.config.name
        spec = {**lease.get("spec", {}), "holderIdentity": name, "renewTime": now}
        spec["leaseDurationSeconds"] = self.config.lease_duration
        return await self.client.call("PUT", f"{path}/{name}", body={**lease, "spec": spec})

    async def run_lease(self) -> None:
        while True:
            try:
                await self.renew_lease()
            except (KubeAPIError, KubeConnectionError, OSError) as exc:
                log.warning("failed to renew lease kube-node-lease/%s: %s", self.config.name, exc)
            await sleep_for(self.clock, self.config.renew_interval)


def _without_heartbeats(status: Obj) -> Obj:
    out = dict(status)
    out["conditions"] = [
        {k: v for k, v in c.items() if k != "lastHeartbeatTime"}
        for c in status.get("conditions") or []
    ]
    return out
