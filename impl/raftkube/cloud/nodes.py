"""The cloud node controllers: nodes initialized from their instance, and nodes whose
instance is gone deleted.

Upstream's ``k8s.io/cloud-provider/controllers/node``:

- :class:`CloudNodeController` (``cloud-node``): a node registered by a kubelet with
  ``--cloud-provider=external`` carries the ``node.cloudprovider.kubernetes.io/uninitialized``
  taint. Its sync looks the instance up by node name and, in one update, sets
  ``spec.providerID`` (if empty), the zone, region and instance-type labels (the GA and the
  beta keys) and removes that taint, then records ``Synced``. Initialized nodes only get their
  addresses reconciled (the cloud's, plus the kubelet's Hostname address if the cloud has
  none), on every node event and every ``--node-status-update-frequency`` (5 min).
- :class:`CloudNodeLifecycleController` (``cloud-node-lifecycle``): every
  ``--node-monitor-period`` (5 s), each node that is not Ready is looked up in the cloud; one
  whose instance is gone is deleted (``DeletingNode`` Event), one whose instance is shut down
  gets the ``node.cloudprovider.kubernetes.io/shutdown`` NoSchedule taint, which Ready nodes
  lose.

The decisions are :func:`initialized_node` and :func:`merged_addresses`.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import trio

from raftkube.clock import Clock
from raftkube.cloud.client import CloudClient, CloudError
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.events import NORMAL, EventRecorder
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.nodehealth import ready_status
from raftkube.controllers.nodelifecycle import node_reference
from raftkube.controllers.resources import resource
from raftkube.controllers.synctrace import sync_started
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.cloud.nodes")

Obj = dict[str, Any]

NODES = resource("", "v1", "nodes")
TAINT_UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"
TAINT_SHUTDOWN = "node.cloudprovider.kubernetes.io/shutdown"
SHUTDOWN_TAINT: Obj = {"key": TAINT_SHUTDOWN, "effect": "NoSchedule"}
LABELS = {
    "zone": ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"),
    "region": ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region"),
    "instanceType": ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type"),
}


def is_uninitialized(node: Obj) -> bool:
    return any(
        t.get("key") == TAINT_UNINITIALIZED for t in (node.get("spec") or {}).get("taints") or []
    )


def initialized_node(node: Obj, instance: Obj) -> Obj:
    """The node as ``syncNode``'s modifiers leave it: provider ID, topology and type labels,
    and no uninitialized taint."""
    new = copy.deepcopy(node)
    spec = new.setdefault("spec", {})
    if not spec.get("providerID"):
        spec["providerID"] = instance["providerID"]
    labels = new["metadata"].setdefault("labels", {})
    for field, keys in LABELS.items():
        if instance.get(field):
            for key in keys:
                labels[key] = instance[field]
    spec["taints"] = [t for t in spec.get("taints") or [] if t.get("key") != TAINT_UNINITIALIZED]
    return new


def merged_addresses(node: Obj, instance: Obj) -> list[Obj] | None:
    """``updateNodeAddress``: the cloud's addresses, keeping the node's Hostname address when
    the cloud gives none; None when nothing changes (or the cloud gives no address)."""
    addresses = [dict(a) for a in instance.get("addresses") or []]
    if not addresses:
        return None
    current = list((node.get("status") or {}).get("addresses") or [])
    if not any(a["type"] == "Hostname" for a in addresses):
        addresses += [a for a in current if a.get("type") == "Hostname"]
    key = lambda a: (a.get("type"), a.get("address"))  # noqa: E731
    if sorted(map(key, addresses)) == sorted(map(key, current)):
        return None
    return addresses


class CloudNodeController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        cloud: CloudClient,
        recorder: EventRecorder,
        *,
        node_status_update_frequency: float = 300.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.cloud = cloud
        self.recorder = recorder
        self.frequency = node_status_update_frequency
        informer = factory.informer_for(NODES)
        self.nodes = factory.lister(NODES)
        self.queue = new_queue(clock, "cloud-node")
        informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._enqueue, update_func=lambda old, new: self._enqueue(new)
            )
        )
        self.worker = Worker("cloud-node", self.queue, self.sync_node, (informer,))

    def _enqueue(self, node: Obj) -> None:
        self.queue.add(node["metadata"]["name"])

    async def run(self, workers: int = 1) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.worker.run, workers)
            while True:
                await self.clock.sleep_until(self.clock.now() + self.frequency)
                for node in self.nodes.list():
                    self._enqueue(node)

    async def sync_node(self, name: str) -> None:
        node = self.nodes.get(name)
        if node is None:
            return
        instance = await self.cloud.instance(name)
        if instance is None:
            if is_uninitialized(node):
                raise CloudError(404, f"failed to get instance metadata for node {name}")
            return
        if not is_uninitialized(node):
            await self._update_addresses(node, instance)
            return
        for attempt in range(5):  # RetryOnConflict(UpdateNodeSpecBackoff)
            current = node if attempt == 0 else await self.client.get(NODES, name)
            try:
                updated = await self.client.update(NODES, initialized_node(current, instance))
                break
            except KubeAPIError as exc:
                if exc.code != 409:
                    raise
        else:
            raise RuntimeError(f"node {name}: too many conflicts initializing it")
        await self._update_addresses(updated, instance)
        await self.recorder.event(
            node_reference(updated), NORMAL, "Synced", "Node synced successfully"
        )

    async def _update_addresses(self, node: Obj, instance: Obj) -> None:
        addresses = merged_addresses(node, instance)
        if addresses is None:
            return
        patch = {"status": {"addresses": addresses}}
        await self.client.patch(
            NODES, node["metadata"]["name"], patch, patch_type="merge", subresource="status"
        )


class CloudNodeLifecycleController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        cloud: CloudClient,
        recorder: EventRecorder,
        *,
        node_monitor_period: float = 5.0,
    ) -> None:
        self.client = client
        self.clock = clock
        self.cloud = cloud
        self.recorder = recorder
        self.period = node_monitor_period
        self.informer = factory.informer_for(NODES)
        self.nodes = factory.lister(NODES)

    async def run(self, workers: int = 1) -> None:
        await self.informer.wait_for_sync()
        while True:
            started = self.clock.now()
            await self.monitor_nodes()
            await self.clock.sleep_until(started + self.period)

    async def monitor_nodes(self) -> None:
        """``MonitorNodes``: one pass over the cached nodes (a pass is this loop's sync: it
        acts on the node cache as the pass begins)."""
        sync_started("cloud-node-lifecycle", "nodes", (self.informer,))
        for node in self.nodes.list():
            name = node["metadata"]["name"]
            try:
                if ready_status(node) == "True":
                    await self._set_shutdown_taint(node, False)
                    continue
                instance = await self.cloud.instance(name)
                if instance is None:
                    await self.recorder.event(
                        node_reference(node),
                        NORMAL,
                        "DeletingNode",
                        f"Deleting node {name} because it does not exist in the cloud provider",
                    )
                    await self.client.delete(NODES, name)
                    continue
                await self._set_shutdown_taint(node, instance.get("state") == "shutdown")
            except (CloudError, KubeAPIError, KubeConnectionError) as exc:
                logger.warning("checking node %s in the cloud failed: %s", name, exc)

    async def _set_shutdown_taint(self, node: Obj, wanted: bool) -> None:
        taints = list((node.get("spec") or {}).get("taints") or [])
        has = any(t.get("key") == TAINT_SHUTDOWN for t in taints)
        if has == wanted:
            return
        new = (
            [*taints, SHUTDOWN_TAINT]
            if wanted
            else [t for t in taints if t.get("key") != TAINT_SHUTDOWN]
        )
        patch = {
            "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
            "spec": {"taints": new},
        }
        await self.client.patch(NODES, node["metadata"]["name"], patch, patch_type="merge")
