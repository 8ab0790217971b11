"""The service controller: a cloud load balancer per ``type: LoadBalancer`` Service.

Upstream's ``k8s.io/cloud-provider/controllers/service``. A Service that wants a load
balancer first gets the ``service.kubernetes.io/load-balancer-cleanup`` finalizer (so it
cannot vanish before its load balancer does), then the load balancer is ensured with the
Service's ports and the eligible nodes as targets (upstream 1.32's
``stableNodeSetPredicates``: not being deleted, not labelled
``node.kubernetes.io/exclude-from-external-load-balancers``, not tainted
``ToBeDeletedByClusterAutoscaler``; readiness is not one of them since StableLoadBalancerNodeSet
went GA in 1.30, the load balancer's own health checks judge a node's readiness, so a node
that flaps does not reconfigure every load balancer), and its address is written to
``status.loadBalancer.ingress[].ip``. A Service being deleted, or no longer of type
LoadBalancer, while it has the finalizer, has its load balancer deleted, then the finalizer
removed and the status cleared. Finalizer and status are patched through
``services/status``, as upstream's ``PatchService`` does (the role grants nothing else).
Events: ``EnsuringLoadBalancer``, ``EnsuredLoadBalancer``, ``DeletingLoadBalancer``,
``DeletedLoadBalancer``, ``UnAvailableLoadBalancer``, ``SyncLoadBalancerFailed``,
``UpdatedLoadBalancer``.

Simplified: a node change re-syncs every LoadBalancer Service through the same queue instead
of upstream's separate node-sync loop (which updates only the hosts), and a Service with a
``spec.loadBalancerClass`` is left alone entirely (it belongs to another controller, as
upstream leaves it).
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from raftkube.clock import Clock
from raftkube.cloud.client import CloudClient, CloudError
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.events import NORMAL, WARNING, EventRecorder
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.nodehealth import node_taints
from raftkube.controllers.resources import resource
from raftkube.controllers.store import DeletedFinalStateUnknown, meta_namespace_key, object_of
from raftkube.kubeclient import KubeClient

logger = logging.getLogger("raftkube.cloud.services")

Obj = dict[str, Any]

NODES = resource("", "v1", "nodes")
SERVICES = resource("", "v1", "services")
LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
LABEL_EXCLUDE_LB = "node.kubernetes.io/exclude-from-external-load-balancers"
TAINT_TO_BE_DELETED = "ToBeDeletedByClusterAutoscaler"


def load_balancer_name(service: Obj) -> str:
    """``GetLoadBalancerName``: "a" + the uid without dashes, at most 32 characters."""
    return ("a" + str(service["metadata"].get("uid", ""))).replace("-", "")[:32]


def wants_load_balancer(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def has_finalizer(service: Obj) -> bool:
    return LB_FINALIZER in (service["metadata"].get("finalizers") or [])


def needs_cleanup(service: Obj) -> bool:
    """``needsCleanup``: it holds the finalizer and is being deleted or wants no balancer."""
    if not has_finalizer(service):
        return False
    return service["metadata"].get("deletionTimestamp") is not None or not wants_load_balancer(
        service
    )


def eligible_node(node: Obj) -> bool:
    """``stableNodeSetPredicates``: not being deleted, included, not being scaled away."""
    meta = node.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    if LABEL_EXCLUDE_LB in (meta.get("labels") or {}):
        return False
    return not any(t.get("key") == TAINT_TO_BE_DELETED for t in node_taints(node))


def lb_ports(service: Obj) -> list[Obj]:
    return [
        {k: p[k] for k in ("name", "protocol", "port", "nodePort") if k in p}
        for p in (service.get("spec") or {}).get("ports") or []
    ]


def ingress_status(lb: Obj | None) -> Obj:
    return {"ingress": [{"ip": lb["ip"]}]} if lb else {}


@attrs.frozen
class ServiceDecision:
    """What :func:`decide` wants done for one Service."""

    action: str
    """``ensure``, ``cleanup`` or ``none``."""
    nodes: list[str] = attrs.field(factory=list)


def decide(service: Obj | None, nodes: list[Obj]) -> ServiceDecision:
    """``syncLoadBalancerIfNeeded``'s choice from the cached Service and nodes."""
    if service is None:
        return ServiceDecision("none")
    if needs_cleanup(service):
        return ServiceDecision("cleanup")
    if not wants_load_balancer(service) or service["metadata"].get("deletionTimestamp"):
        return ServiceDecision("none")
    return ServiceDecision(
        "ensure", sorted(n["metadata"]["name"] for n in nodes if eligible_node(n))
    )


class ServiceController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        cloud: CloudClient,
        recorder: EventRecorder,
        *,
        cluster_name: str = "kubernetes",
    ) -> None:
        self.client = client
        self.cloud = cloud
        self.recorder = recorder
        self.cluster_name = cluster_name
        self.services = factory.lister(SERVICES)
        self.nodes = factory.lister(NODES)
        self.queue = new_queue(clock, "service")
        service_informer = factory.informer_for(SERVICES)
        node_informer = factory.informer_for(NODES)
        service_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._enqueue,
                update_func=lambda old, new: self._enqueue(new),
                delete_func=self._enqueue,
            )
        )
        node_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._node_changed,
                update_func=self._node_updated,
                delete_func=self._node_changed,
            )
        )
        self.worker = Worker(
            "service", self.queue, self.sync_service, (service_informer, node_informer)
        )

    def _enqueue(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        service = object_of(obj)
        if wants_load_balancer(service) or has_finalizer(service):
            self.queue.add(meta_namespace_key(service))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if eligible_node(old) != eligible_node(new):
            self._node_changed(new)

    def _node_changed(self, _: Obj | DeletedFinalStateUnknown) -> None:
        for service in self.services.list():
            if wants_load_balancer(service):
                self.queue.add(meta_namespace_key(service))

    async def run(self, workers: int = 1) -> None:
        await self.worker.run(workers)

    async def sync_service(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        service = self.services.get(name, namespace)
        decision = decide(service, self.nodes.list())
        if service is None or decision.action == "none":
            return
        try:
            if decision.action == "cleanup":
                await self._cleanup(service)
            else:
                await self._ensure(service, decision.nodes)
        except CloudError as exc:
            await self.recorder.event(
                _service_reference(service),
                WARNING,
                "SyncLoadBalancerFailed",
                f"Error syncing load balancer: {exc}",
            )
            raise

    async def _ensure(self, service: Obj, nodes: list[str]) -> None:
        ref = _service_reference(service)
        name = load_balancer_name(service)
        await self.recorder.event(ref, NORMAL, "EnsuringLoadBalancer", "Ensuring load balancer")
        if not has_finalizer(service):
            finalizers = [*(service["metadata"].get("finalizers") or []), LB_FINALIZER]
            service = await self._patch_status(service, {"metadata": {"finalizers": finalizers}})
        if not nodes:
            await self.recorder.event(
                ref,
                WARNING,
                "UnAvailableLoadBalancer",
                "There are no available nodes for LoadBalancer",
            )
        previous = await self.cloud.load_balancer(name)
        lb = await self.cloud.ensure_load_balancer(
            self.cluster_name, name, meta_namespace_key(service), nodes, lb_ports(service)
        )
        if previous is not None and previous.get("nodes") != lb.get("nodes"):
            await self.recorder.event(
                ref, NORMAL, "UpdatedLoadBalancer", "Updated load balancer with new hosts"
            )
        await self.recorder.event(ref, NORMAL, "EnsuredLoadBalancer", "Ensured load balancer")
        status = ingress_status(lb)
        if ((service.get("status") or {}).get("loadBalancer") or {}) != status:
            await self._patch_status(service, {"status": {"loadBalancer": status}})

    async def _cleanup(self, service: Obj) -> None:
        ref = _service_reference(service)
        name = load_balancer_name(service)
        if await self.cloud.load_balancer(name) is not None:
            await self.recorder.event(ref, NORMAL, "DeletingLoadBalancer", "Deleting load balancer")
            await self.cloud.delete_load_balancer(name)
        finalizers = [f for f in service["metadata"].get("finalizers") or [] if f != LB_FINALIZER]
        await self._patch_status(
            service,
            {
                "metadata": {"finalizers": finalizers or None},
                "status": {"loadBalancer": {"ingress": None}},
            },
        )
        await self.recorder.event(ref, NORMAL, "DeletedLoadBalancer", "Deleted load balancer")

    async def _patch_status(self, service: Obj, patch: Obj) -> Obj:
        """A merge patch of ``services/{name}/status`` guarded by the cached
        resourceVersion: a stale cache gets a conflict and the key is retried."""
        meta = service["metadata"]
        guarded = {
            **patch,
            "metadata": {**patch.get("metadata", {}), "resourceVersion": meta["resourceVersion"]},
        }
        result: Obj = await self.client.patch(
            SERVICES,
            meta["name"],
            guarded,
            patch_type="merge",
            namespace=meta["namespace"],
            subresource="status",
        )
        return result


def _service_reference(service: Obj) -> Obj:
    return {"kind": "Service", "apiVersion": "v1", "metadata": service["metadata"]}
