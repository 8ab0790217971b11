"""Eventual stable reconciliation of the cloud: what the cloud controllers owe the user.

:func:`cloud_problems` lists every way the cloud's own state (the simulated provider's
instances, routes and load balancers, read directly: the cloud is the world's, not a
component's view) and the committed objects (a
:class:`~raftkube_fuzz.checks.cluster_state.ClusterObserver`'s) fall short of what the spec's
cloud part promises (:func:`raftkube_spec.control.cloud.matches_cloud`), in the
implementation's vocabulary:

* every Service of ``type: LoadBalancer`` (without a ``loadBalancerClass``, which belongs to
  another controller) that is not being deleted has exactly one load balancer, named as
  upstream's ``GetLoadBalancerName`` names it (``"a"`` + its uid without dashes, 32
  characters at most) and recording the Service as its owner; its ports are the Service's
  (name, protocol, port, nodePort); its targets are the nodes upstream 1.32's service
  controller picks (``stableNodeSetPredicates``: not being deleted, not labelled
  ``node.kubernetes.io/exclude-from-external-load-balancers``, not tainted
  ``ToBeDeletedByClusterAutoscaler``; readiness is not among them since
  StableLoadBalancerNodeSet went GA in 1.30); its address is the one and only ingress in the
  Service's ``status.loadBalancer``, and the Service holds the
  ``service.kubernetes.io/load-balancer-cleanup`` finalizer;
* no load balancer of the cluster is left whose Service is gone or no longer wants one, and
  such a Service shows no ingress and holds no cleanup finalizer;
* every node's pod CIDR has a route to that node; no route targets a node that is gone, a
  CIDR the node no longer has, or an instance that is gone (a blackhole); and the route
  controller has said so on the node (``NetworkUnavailable`` is ``False``);
* no node carries ``node.cloudprovider.kubernetes.io/uninitialized`` or
  ``node.cloudprovider.kubernetes.io/shutdown`` (every instance runs), and a node's provider
  ID, if set, is its instance's.

What it cannot see: the controllers' requests on the way (a load balancer created twice and
deleted once looks reconciled), only the end state; the timeline has the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raftkube.cloud.provider import SimulatedCloud
from raftkube_fuzz.checks.cluster_state import ClusterObserver

Obj = dict[str, Any]

CLUSTER = "kubernetes"
"""The CCM's ``--cluster-name`` (upstream's default), which its routes and balancers carry."""
LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
CLOUD_TAINTS = frozenset(
    {"node.cloudprovider.kubernetes.io/uninitialized", "node.cloudprovider.kubernetes.io/shutdown"}
)
PORT_FIELDS = ("name", "protocol", "port", "nodePort")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def balancer_name(service: Mapping[str, Any]) -> str:
    """Upstream's ``GetLoadBalancerName``."""
    return ("a" + str(_meta(service).get("uid", ""))).replace("-", "")[:32]


def wants_balancer(service: Mapping[str, Any]) -> bool:
    spec = _spec(service)
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def balancer_targets(nodes: list[Obj]) -> list[str]:
    """Upstream 1.32's ``stableNodeSetPredicates``: see the module docstring."""
    return sorted(
        str(_meta(n).get("name"))
        for n in nodes
        if not _meta(n).get("deletionTimestamp")
        and EXCLUDE_LABEL not in (_meta(n).get("labels") or {})
        and not any(t.get("key") == TO_BE_DELETED_TAINT for t in _spec(n).get("taints") or [])
    )


def _pod_cidrs(node: Mapping[str, Any]) -> list[str]:
    spec = _spec(node)
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


def cloud_problems(observer: ClusterObserver, cloud: SimulatedCloud) -> list[str]:
    """Every way the cloud and the observer's objects differ from what the cloud controllers
    owe (empty: reconciled)."""
    return problems_of(observer.of("Node"), observer.of("Service"), cloud)


def problems_of(nodes: list[Obj], services: list[Obj], cloud: SimulatedCloud) -> list[str]:
    """:func:`cloud_problems` of these Nodes and Services."""
    return [
        *_node_problems(nodes, cloud),
        *_route_problems(nodes, cloud),
        *_balancer_problems(services, nodes, cloud),
    ]


def _node_problems(nodes: list[Obj], cloud: SimulatedCloud) -> list[str]:
    problems = []
    for node in nodes:
        name = str(_meta(node).get("name"))
        taints = {str(t.get("key")) for t in _spec(node).get("taints") or []} & CLOUD_TAINTS
        if taints:
            problems.append(f"node {name} is tainted {sorted(taints)}")
        instance = cloud.instances.get(name)
        provider_id = _spec(node).get("providerID")
        if provider_id and (instance is None or instance["providerID"] != provider_id):
            problems.append(f"node {name}'s providerID {provider_id} is not its instance's")
        conditions = (node.get("status") or {}).get("conditions") or []
        network = next((c for c in conditions if c.get("type") == "NetworkUnavailable"), None)
        if _pod_cidrs(node) and (network is None or network.get("status") != "False"):
            state = "missing" if network is None else network.get("status")
            problems.append(f"node {name}: NetworkUnavailable is {state}, not False")
    return problems


def _route_problems(nodes: list[Obj], cloud: SimulatedCloud) -> list[str]:
    wanted = {(str(_meta(n).get("name")), cidr) for n in nodes for cidr in _pod_cidrs(n)}
    routes = [r for r in cloud.list_routes() if r.get("cluster") == CLUSTER]
    have = [(str(r["targetNode"]), str(r["destinationCIDR"])) for r in routes]
    problems = [f"no route to {node} for {cidr}" for node, cidr in sorted(wanted - set(have))]
    for route in routes:
        target = (str(route["targetNode"]), str(route["destinationCIDR"]))
        if route.get("blackhole"):
            problems.append(f"route {route['name']} is a blackhole (no instance {target[0]})")
        elif target not in wanted:
            problems.append(f"route {route['name']} to {target[0]} for {target[1]} is stale")
    for pair in sorted({p for p in have if have.count(p) > 1}):
        problems.append(f"{have.count(pair)} routes to {pair[0]} for {pair[1]}")
    return problems


def _balancer_problems(services: list[Obj], nodes: list[Obj], cloud: SimulatedCloud) -> list[str]:
    problems = []
    targets = balancer_targets(nodes)
    balancers = [lb for lb in cloud.load_balancers.values() if lb.get("cluster") == CLUSTER]
    owned: set[str] = set()
    for svc in sorted(services, key=lambda s: (_meta(s).get("namespace"), _meta(s).get("name"))):
        key = f"{_meta(svc).get('namespace')}/{_meta(svc).get('name')}"
        status = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        finalized = LB_FINALIZER in (_meta(svc).get("finalizers") or [])
        if not wants_balancer(svc) or _meta(svc).get("deletionTimestamp"):
            if status or finalized:
                problems.append(f"service {key} wants no load balancer but shows {status} "
                                f"(finalizer {'held' if finalized else 'gone'})")  # fmt: skip
            continue
        name = balancer_name(svc)
        owned.add(name)
        mine = [lb for lb in balancers if lb.get("service") == key]
        lb = cloud.load_balancers.get(name)
        if lb is None or len(mine) != 1 or mine[0] is not lb:
            problems.append(f"service {key}: {len(mine)} load balancers, {name} "
                            f"{'missing' if lb is None else 'present'}")  # fmt: skip
            continue
        if lb["nodes"] != targets:
            problems.append(f"service {key}: load balancer targets {lb['nodes']}, not {targets}")
        ports = [{k: p[k] for k in PORT_FIELDS if k in p} for p in _spec(svc).get("ports") or []]
        if lb["ports"] != ports:
            problems.append(f"service {key}: load balancer ports {lb['ports']}, not {ports}")
        if status != [{"ip": lb["ip"]}]:
            problems.append(f"service {key}: ingress {status}, load balancer at {lb['ip']}")
        if not finalized:
            problems.append(f"service {key} has a load balancer but no cleanup finalizer")
    for lb in balancers:
        if lb["name"] not in owned:
            problems.append(f"load balancer {lb['name']} of {lb.get('service')} is left over")
    return problems
