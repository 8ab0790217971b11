"""The cloud controllers against a simulated cloud provider.

Theory of operation
-------------------
The simulated cloud (:class:`raftkube_spec.control.model.Cloud`) has instances (one per node:
provider ID, address, whether it still exists), routes (node name to pod CIDR) and load
balancers (per Service: an address and the target nodes). Its API is the functions below
(``put_route``, ``delete_route``, ``ensure_balancer``, ``delete_balancer``); each call succeeds
at once (the next issue's simulated provider may also fail and be slow; that adds retries, not
decisions). Each controller step takes the cloud's state and returns it with its calls applied,
together with its API requests:

* :func:`cloud_nodes` (cloud node and node lifecycle controllers): a node without a provider ID
  gets its instance's ID and address; a node that is not Ready and whose instance no longer
  exists is deleted (upstream checks existence only for nodes not Ready).
* :func:`routes` (route controller): a route per node with a pod CIDR; routes of nodes that are
  gone, or whose CIDR differs, are deleted.
* :func:`service_balancers` (service controller): every ``LoadBalancer`` Service has a balancer
  whose targets are the nodes upstream 1.32's ``stableNodeSetPredicates`` keep (sorted): not
  being deleted and not tainted ``ToBeDeletedByClusterAutoscaler`` (the exclusion label is not
  modelled); readiness is not among them since StableLoadBalancerNodeSet went GA in 1.30 (the
  balancer's health checks judge it). The balancer's address is in the Service's status; a
  balancer whose Service is gone or no longer ``LoadBalancer`` is deleted and the address
  cleared.

Promise (checked as ESR): once nodes and Services stop changing, the cloud holds exactly the
routes and balancers the API's objects call for, and every Service shows its balancer's address.
"""

from __future__ import annotations

import attrs

from raftkube_spec.control.model import Balancer, Cloud
from raftkube_spec.control.records import Service
from raftkube_spec.control.world import Delete, Patch, Request, World


def put_route(cloud: Cloud, node: str, cidr: str) -> Cloud:
    rest = tuple(r for r in cloud.routes if r[0] != node)
    return attrs.evolve(cloud, routes=tuple(sorted((*rest, (node, cidr)))))


def delete_route(cloud: Cloud, node: str) -> Cloud:
    return attrs.evolve(cloud, routes=tuple(r for r in cloud.routes if r[0] != node))


def ensure_balancer(cloud: Cloud, service: str, targets: tuple[str, ...]) -> tuple[Cloud, str]:
    """Create or update the balancer of ``service``; its address stays once assigned."""
    old = next((b for b in cloud.balancers if b.service == service), None)
    ip = old.ip if old is not None else f"lb-{service}"
    rest = tuple(b for b in cloud.balancers if b.service != service)
    balancers = tuple(sorted((*rest, Balancer(service, ip, targets)), key=lambda b: b.service))
    return attrs.evolve(cloud, balancers=balancers), ip


def delete_balancer(cloud: Cloud, service: str) -> Cloud:
    return attrs.evolve(cloud, balancers=tuple(b for b in cloud.balancers if b.service != service))


Out = tuple[None, tuple[Request, ...], Cloud]


def cloud_nodes(memory: None, view: World, cloud: Cloud, now: int) -> Out:
    instances = {i.node: i for i in cloud.instances if i.exists}
    requests: list[Request] = []
    for node in view.nodes:
        instance = instances.get(node.meta.name)
        if instance is None:
            if node.ready != "True":
                requests.append(Delete(node.meta.ref))
            continue
        fields = (("provider_id", instance.provider_id), ("addresses", (instance.address,)))
        if (node.provider_id, node.addresses) != (instance.provider_id, (instance.address,)):
            requests.append(Patch(node.meta.ref, fields))
    return None, tuple(requests), cloud


def routes(memory: None, view: World, cloud: Cloud, now: int) -> Out:
    wanted = {n.meta.name: n.pod_cidr for n in view.nodes if n.pod_cidr}
    for node, cidr in cloud.routes:
        if wanted.get(node) != cidr:
            cloud = delete_route(cloud, node)
    for node, cidr in sorted(wanted.items()):
        if (node, cidr) not in cloud.routes:
            cloud = put_route(cloud, node, cidr)
    return None, (), cloud


TO_BE_DELETED = "ToBeDeletedByClusterAutoscaler"


def balancer_targets(view: World) -> tuple[str, ...]:
    return tuple(
        sorted(
            n.meta.name
            for n in view.nodes
            if not n.meta.deleting and not any(t.key == TO_BE_DELETED for t in n.taints)
        )
    )


def service_balancers(memory: None, view: World, cloud: Cloud, now: int) -> Out:
    requests: list[Request] = []
    services = {s.meta.name: s for s in view.of(Service)}
    for b in cloud.balancers:
        found = services.get(b.service)
        if found is None or not found.load_balancer:
            cloud = delete_balancer(cloud, b.service)
    targets = balancer_targets(view)
    for service in services.values():
        if not service.load_balancer:
            if service.ingress:
                requests.append(Patch(service.meta.ref, (("ingress", ""),)))
            continue
        current = next((b for b in cloud.balancers if b.service == service.meta.name), None)
        ip = current.ip if current is not None else ""
        if current is None or current.targets != targets:
            cloud, ip = ensure_balancer(cloud, service.meta.name, targets)
        if service.ingress != ip:
            requests.append(Patch(service.meta.ref, (("ingress", ip),)))
    return None, tuple(requests), cloud


def matches_cloud(api: World, cloud: Cloud) -> bool:
    """The cloud and the Services' statuses are what the API's objects call for."""
    instances = {i.node for i in cloud.instances if i.exists}
    if any(n.meta.name not in instances and n.ready != "True" for n in api.nodes):
        return False
    for n in api.nodes:
        instance = next((i for i in cloud.instances if i.node == n.meta.name), None)
        if instance is not None and instance.exists and n.provider_id != instance.provider_id:
            return False
    wanted_routes = tuple(sorted((n.meta.name, n.pod_cidr) for n in api.nodes if n.pod_cidr))
    if cloud.routes != wanted_routes:
        return False
    targets = balancer_targets(api)
    lb_services = {s.meta.name: s for s in api.of(Service) if s.load_balancer}
    if {b.service for b in cloud.balancers} != set(lb_services):
        return False
    for b in cloud.balancers:
        if b.targets != targets or lb_services[b.service].ingress != b.ip:
            return False
    return all(s.ingress == "" for s in api.of(Service) if not s.load_balancer)
