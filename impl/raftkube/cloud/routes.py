"""The route controller: one cloud route per node pod CIDR.

Upstream's ``k8s.io/cloud-provider/controllers/route``. Every
``--route-reconciliation-period`` (10 s) it lists the cluster's routes in the cloud and the
cached nodes, and :func:`reconcile_routes` decides: a route for each of a node's
``spec.podCIDRs`` that has none (named after the node's uid), and the deletion of each route
this controller is responsible for (inside ``--cluster-cidr``; every route of the cluster when
no CIDR is set) that is a blackhole or no longer matches a node's pod CIDR. Then each node's
``NetworkUnavailable`` condition says whether its routes were created (``RouteCreated`` /
``NoRouteCreated``), written only when it changes. A failed creation is a
``FailedToCreateRoute`` Warning on the node.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from raftkube.clock import Clock
from raftkube.cloud.client import CloudClient, CloudError
from raftkube.controllers.events import WARNING, EventRecorder
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.nodehealth import node_condition
from raftkube.controllers.nodelifecycle import node_reference
from raftkube.controllers.resources import resource
from raftkube.controllers.synctrace import sync_started
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.cloud.routes")

Obj = dict[str, Any]

NODES = resource("", "v1", "nodes")


def pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


@attrs.frozen
class RoutePlan:
    create: list[tuple[Obj, str]]
    """(node, CIDR) pairs that need a route."""
    delete: list[Obj]
    """Routes to delete."""


def _responsible(route: Obj, cluster_cidrs: Sequence[str]) -> bool:
    """``isResponsibleForRoute``: the route's destination lies in a cluster CIDR."""
    if not cluster_cidrs:
        return True
    try:
        destination = ipaddress.ip_network(route["destinationCIDR"])
    except ValueError:
        return False
    for cidr in cluster_cidrs:
        network = ipaddress.ip_network(cidr)
        if destination.version == network.version and destination.subnet_of(network):  # type: ignore[arg-type]
            return True
    return False


def reconcile_routes(
    nodes: Sequence[Obj], routes: Sequence[Obj], cluster_cidrs: Sequence[str]
) -> RoutePlan:
    """``reconcile``: see the module docstring."""
    have = {(r["targetNode"], r["destinationCIDR"]) for r in routes if r.get("targetNode")}
    create = [
        (node, cidr)
        for node in nodes
        for cidr in pod_cidrs(node)
        if (node["metadata"]["name"], cidr) not in have
    ]
    wanted = {(n["metadata"]["name"], c) for n in nodes for c in pod_cidrs(n)}
    delete = [
        r
        for r in routes
        if _responsible(r, cluster_cidrs)
        and (r.get("blackhole") or (r["targetNode"], r["destinationCIDR"]) not in wanted)
    ]
    return RoutePlan(create, delete)


def network_condition(created: bool, wall: float) -> Obj:
    stamp = datetime.datetime.fromtimestamp(int(wall), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if created:
        status, reason, message = "False", "RouteCreated", "RouteController created a route"
    else:
        status, reason, message = (
            "True",
            "NoRouteCreated",
            "RouteController failed to create a route",
        )
    return {
        "type": "NetworkUnavailable",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp,
        "lastHeartbeatTime": stamp,
    }


class RouteController:
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
        cluster_cidrs: Sequence[str] = (),
        period: float = 10.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.clock = clock
        self.cloud = cloud
        self.recorder = recorder
        self.cluster_name = cluster_name
        self.cluster_cidrs = tuple(cluster_cidrs)
        self.period = period
        self.wall = wall
        self.informer = factory.informer_for(NODES)
        self.nodes = factory.lister(NODES)

    async def run(self, workers: int = 1) -> None:
        await self.informer.wait_for_sync()
        while True:
            started = self.clock.now()
            try:
                await self.reconcile_node_routes()
            except (CloudError, KubeAPIError, KubeConnectionError) as exc:
                logger.warning("couldn't reconcile node routes: %s", exc)
            await self.clock.sleep_until(started + self.period)

    async def reconcile_node_routes(self) -> None:
        # A pass is this loop's sync: it acts on the node cache as the pass begins.
        sync_started("route", "nodes", (self.informer,))
        nodes = self.nodes.list()
        routes = await self.cloud.routes(self.cluster_name)
        plan = reconcile_routes(nodes, routes, self.cluster_cidrs)
        failed: set[str] = set()
        for node, cidr in plan.create:
            name = node["metadata"]["name"]
            hint = str(node["metadata"].get("uid") or name)
            started = self.clock.now()
            try:
                await self.cloud.create_route(self.cluster_name, hint, name, cidr)
            except CloudError as exc:
                failed.add(name)
                elapsed = self.clock.now() - started
                message = (
                    f"Could not create route {hint} {cidr} for node {name} after "
                    f"{elapsed:.3f}s: {exc}"
                )
                await self.recorder.event(
                    node_reference(node, uid=name), WARNING, "FailedToCreateRoute", message
                )
        for route in plan.delete:
            try:
                await self.cloud.delete_route(route["name"])
            except CloudError as exc:
                logger.warning("could not delete route %s: %s", route["name"], exc)
        for node in nodes:
            if pod_cidrs(node):
                await self._update_network_condition(node, node["metadata"]["name"] not in failed)

    async def _update_network_condition(self, node: Obj, created: bool) -> None:
        condition = node_condition(node, "NetworkUnavailable")
        if condition is not None and condition.get("status") == ("False" if created else "True"):
            return
        conditions = [
            c
            for c in (node.get("status") or {}).get("conditions") or []
            if c.get("type") != "NetworkUnavailable"
        ]
        conditions.append(network_condition(created, self.wall()))
        # A merge patch replaces the whole list; the resourceVersion guards against a
        # concurrent kubelet update being lost.
        patch = {
            "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
            "status": {"conditions": conditions},
        }
        try:
            await self.client.patch(
                NODES, node["metadata"]["name"], patch, patch_type="merge", subresource="status"
            )
        except KubeAPIError as exc:
            if exc.code not in (404, 409):  # gone, or changed: the next pass sees it fresh
                raise
