"""Request conformance of the cloud controllers: each write is one the spec's loop allows.

The spec's cloud loops are :mod:`raftkube_spec.control.cloud`'s ``cloud_nodes``, ``routes``
and ``service_balancers``: each reads its view (the API's objects) and the cloud's state, and
returns its API requests with the cloud changed by its calls. The real controllers
(:mod:`raftkube.cloud`) read the cloud *live*, call by call, as upstream's do, so the cloud
part of a real loop's view is what its own calls answered during the sync (a pass, for the
two loops that have no work queue), which the suite's monitor collects with each call's
method, path and answer (:mod:`raftkube_fuzz.cluster.cloud_monitor`); the API part is its
informer caches as the sync began, as for every judged loop. The rules below are pure
functions of those; each says what the spec does and what "allowed" then means:

* **Node delete** (cloud node lifecycle controller, :func:`node_delete`). The spec deletes a
  node its view shows not Ready whose instance does not exist; upstream checks existence live
  (``InstanceExistsByProviderID``) for nodes that are not Ready only. Allowed iff the view
  shows the node not Ready and the loop's last lookup of that node's instance before the
  DELETE answered that it does not exist (404); the spec is run on a world of that node and a
  cloud built from the lookup. A lookup that failed or was not made proves nothing.
* **Shutdown taint** (the same loop, :func:`shutdown_taint`): upstream's
  ``node.cloudprovider.kubernetes.io/shutdown`` NoSchedule taint, which the spec does not model
  (its instances exist or not). Upstream adds it to a node that is not Ready whose instance
  answered shut down, and takes it off a Ready node (without a lookup) or one whose instance
  answered running; a PATCH adding it is allowed iff the view shows the node not Ready and the
  last lookup answered ``shutdown``; one removing it iff the view shows the node Ready or the
  last lookup answered an instance that is not shut down.
* **Provider ID and addresses** (cloud node controller, :func:`node_initialized`,
  :func:`node_addresses`). The spec patches a node's provider ID and addresses to its
  instance's. The real controller (upstream's ``syncNode``) sets ``spec.providerID`` only if
  the node has none, so an update is allowed iff the provider ID it writes is the one the
  view's node already has or, if it had none, the one the loop's instance lookup answered.
  An address PATCH is allowed iff the addresses it writes are the ones the loop's last lookup
  answered, plus (only when the cloud reports none) the node's own Hostname addresses, which
  upstream's ``updateNodeAddress`` keeps. What is written is judged, not when: upstream
  compares with the node as its update answered, which may be newer than the view.
* **Routes** (route controller, :func:`route_create`, :func:`route_delete`): the spec creates
  a route for each node of its view with a pod CIDR that has none, and deletes a route whose
  node is gone from its view or whose CIDR differs. A cloud PUT of a route is allowed iff the
  view has its target node with that pod CIDR; a DELETE iff the route, as the loop's listing
  answered, targets a node absent from the view or a CIDR the node does not have, or is a
  blackhole (its instance is gone: upstream deletes those too, the spec's routes have no
  instances to lose). A route the listing did not show is not one the loop knew of.
* **``NetworkUnavailable``** (the same loop, :func:`network_condition`): not in the spec
  (upstream's ``updateNetworkingCondition``). Allowed ``False`` (``RouteCreated``) iff every
  pod CIDR of the node in the view had a route in the pass's listing or a PUT of it answered
  2xx in the pass; ``True`` iff a PUT of one of them failed in the pass.
* **Load balancers** (service controller, :func:`balancer_ensure`, :func:`balancer_delete`):
  the spec ensures a balancer for every ``LoadBalancer`` Service of its view, targeting
  :func:`~raftkube_spec.control.cloud.balancer_targets` of its view's nodes
  (``stableNodeSetPredicates``), and deletes one whose Service is gone or no longer
  ``LoadBalancer``. A cloud PUT is allowed iff the view shows the sync's Service wanting a
  balancer (``type: LoadBalancer``, no ``loadBalancerClass``, not being deleted), the name is
  the Service's (``GetLoadBalancerName``) and the targets are exactly those of the view (minus
  nodes labelled ``node.kubernetes.io/exclude-from-external-load-balancers``, which the spec
  does not model). A DELETE is allowed iff the view shows the Service being deleted or not
  wanting a balancer (the real loop never acts on a Service gone from its cache: the
  finalizer keeps it there until this loop removes it).
* **Service status** (the same loop, :func:`service_status`): the spec writes the balancer's
  address as the Service's ingress, and clears it when the Service is not ``LoadBalancer``.
  A PATCH of ``services/status`` writing an ingress is allowed iff the view shows the Service
  wanting a balancer and the address is the one the loop's last answer about that balancer
  (its GET or its PUT) gave; one clearing it (the cleanup, which also drops the
  ``service.kubernetes.io/load-balancer-cleanup`` finalizer) iff the view shows the Service
  being deleted or not wanting a balancer and the loop's last call about that balancer said
  it is gone (a GET answered 404, or a DELETE answered 2xx or 404): the finalizer must not go
  before the balancer. A PATCH adding the finalizer is allowed iff the view shows the Service
  wanting a balancer.

What this cannot see: calls the loops should have made and did not (eventual stable
reconciliation judges the cloud's end state: :mod:`.cloud_state`), and the cloud node
controller's other fields (topology labels, the uninitialized taint's removal), which the
spec does not model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from raftkube_fuzz.checks.cluster_state import spec_node
from raftkube_spec.control import cloud as spec_cloud
from raftkube_spec.control.model import Cloud, Instance
from raftkube_spec.control.world import Delete, World

Obj = Mapping[str, Any]

SHUTDOWN_TAINT = "node.cloudprovider.kubernetes.io/shutdown"
LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"


@attrs.frozen
class CloudCall:
    """One call a loop made to the cloud in a sync, as the monitor saw it answered."""

    method: str
    path: str
    status: int | None
    """The HTTP status; None when no answer came (a timeout, a refused connection)."""
    obj: Obj | None
    """The answer's object (2xx only)."""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        return f"{self.method} {self.path} answered {self.status or 'nothing'}"


def last_call(calls: Sequence[CloudCall], path: str, methods: tuple[str, ...]) -> CloudCall | None:
    return next((c for c in reversed(calls) if c.path == path and c.method in methods), None)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _ready(node: Obj) -> str:
    return spec_node(node).ready


def _told(call: CloudCall | None) -> str:
    return call.describe() if call is not None else "no lookup of it was made"


# --- cloud node lifecycle controller ------------------------------------------------------------


def node_delete(node: Obj | None, lookup: CloudCall | None) -> str | None:
    """A DELETE of a node; ``node``: the view's; ``lookup``: the loop's last GET of its
    instance before the DELETE."""
    if node is None:
        return "its view has no such node"
    record = spec_node(node)
    if lookup is not None and lookup.status == 404:
        instances: tuple[Instance, ...] = ()
    elif lookup is not None and lookup.ok:
        instances = (Instance(record.meta.name, "", ""),)
    else:
        return (
            f"the spec deletes a node only once its instance is known not to exist, and the "
            f"loop's lookup of it proves nothing: {_told(lookup)}"
        )
    _, requests, _ = spec_cloud.cloud_nodes(None, World((record,)), Cloud(instances), 0)
    if Delete(record.meta.ref) in requests:
        return None
    return (
        f"its view shows the node Ready={record.ready or 'unknown'} and the cloud "
        f"{'answered its instance exists' if instances else 'has no instance of it'}: the spec "
        "deletes only a node that is not Ready whose instance does not exist"
    )


def shutdown_taint(node: Obj | None, adds: bool, lookup: CloudCall | None) -> str | None:
    """A PATCH adding (``adds``) or removing the shutdown taint from ``node`` (the view's)."""
    if node is None:
        return "its view has no such node"
    ready = _ready(node) == "True"
    state = str((lookup.obj or {}).get("state") or "") if lookup is not None and lookup.ok else ""
    if adds:
        if not ready and state == "shutdown":
            return None
        return (
            f"it taints a node its view shows Ready={_ready(node) or 'unknown'} whose instance "
            f"lookup gave {_told(lookup)} (state {state or 'none'}): upstream taints only a "
            "node that is not Ready whose instance answered shut down"
        )
    if ready or (state and state != "shutdown"):
        return None
    return (
        f"it untaints a node its view shows not Ready whose instance lookup gave "
        f"{_told(lookup)} (state {state or 'none'}): upstream untaints a Ready node, or one "
        "whose instance answered running"
    )


# --- cloud node controller ----------------------------------------------------------------------


def node_initialized(node: Obj | None, written: str, lookup: CloudCall | None) -> str | None:
    """An update writing provider ID ``written`` to ``node`` (the view's)."""
    if node is None:
        return "its view has no such node"
    current = str((node.get("spec") or {}).get("providerID") or "")
    if current:
        if written == current:
            return None
        return f"it changes the node's provider ID {current} to {written!r}"
    answered = str((lookup.obj or {}).get("providerID") or "") if lookup and lookup.ok else ""
    if answered and written == answered:
        return None
    return f"it writes provider ID {written!r}, and the loop's lookup gave {_told(lookup)}"


def _address_key(address: Obj) -> tuple[str, str]:
    return (str(address.get("type") or ""), str(address.get("address") or ""))


def node_addresses(
    node: Obj | None, written: Sequence[Obj], lookup: CloudCall | None
) -> str | None:
    """A status PATCH writing ``written`` as ``node``'s addresses (the view's node)."""
    if node is None:
        return "its view has no such node"
    if lookup is None or not lookup.ok:
        return f"it writes addresses without an instance answered: {_told(lookup)}"
    cloud = sorted(_address_key(a) for a in (lookup.obj or {}).get("addresses") or [])
    mine = sorted(_address_key(a) for a in written)
    if not any(kind == "Hostname" for kind, _ in cloud):
        # upstream keeps the node's own Hostname address when the cloud reports none
        mine = [a for a in mine if a[0] != "Hostname"]
    if mine == cloud:
        return None
    return f"it writes addresses {mine}, and the instance the loop looked up has {cloud}"


# --- route controller ---------------------------------------------------------------------------


def pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


def _wanted(nodes: Sequence[Obj]) -> set[tuple[str, str]]:
    return {(str(_meta(n).get("name")), cidr) for n in nodes for cidr in pod_cidrs(n)}


def route_create(nodes: Sequence[Obj], target: str, cidr: str) -> str | None:
    """A cloud PUT of a route to ``target`` for ``cidr``; ``nodes``: the view's."""
    if (target, cidr) in _wanted(nodes):
        return None
    have = next((pod_cidrs(n) for n in nodes if _meta(n).get("name") == target), None)
    shown = "no such node" if have is None else f"node {target} with pod CIDRs {have}"
    return f"it routes {cidr} to {target}, and its view has {shown}"


def route_delete(nodes: Sequence[Obj], route: Obj | None) -> str | None:
    """A cloud DELETE of ``route`` as the loop's listing showed it (None: not listed)."""
    if route is None:
        return "the loop's listing of the routes did not show it"
    if route.get("blackhole"):
        return None
    target = (str(route.get("targetNode") or ""), str(route.get("destinationCIDR") or ""))
    if target not in _wanted(nodes):
        return None
    return f"its view still has node {target[0]} with pod CIDR {target[1]}, and the route works"


def network_condition(
    node: Obj | None, status: str, listed: Sequence[Obj], puts: Sequence[CloudCall]
) -> str | None:
    """A status PATCH setting ``node``'s ``NetworkUnavailable`` to ``status``; ``listed``:
    the routes the pass's listing answered; ``puts``: the pass's route PUTs, answered, each
    with its body's target and CIDR in ``obj`` (None: not judged here)."""
    if node is None:
        return "its view has no such node"
    name = str(_meta(node).get("name"))
    failed = [c for c in puts if (c.obj or {}).get("targetNode") == name and not c.ok]
    if status == "True":
        return None if failed else "it reports no route created, and no route PUT of it failed"
    have = {(str(r.get("targetNode")), str(r.get("destinationCIDR"))) for r in listed}
    have |= {
        (str((c.obj or {}).get("targetNode")), str((c.obj or {}).get("destinationCIDR")))
        for c in puts
        if c.ok
    }
    missing = [cidr for cidr in pod_cidrs(node) if (name, cidr) not in have]
    if failed or missing:
        what = f"routes for {missing}" if missing else "route PUT"
        return f"it reports routes created, and {name}'s {what} failed or was never made"
    return None


# --- service controller -------------------------------------------------------------------------


def balancer_name(service: Obj) -> str:
    """Upstream's ``GetLoadBalancerName``."""
    return ("a" + str(_meta(service).get("uid", ""))).replace("-", "")[:32]


def wants_balancer(service: Obj) -> bool:
    """The view's Service wants a balancer: ``type: LoadBalancer``, no class, not going."""
    spec = service.get("spec") or {}
    return (
        spec.get("type") == "LoadBalancer"
        and not spec.get("loadBalancerClass")
        and not _meta(service).get("deletionTimestamp")
    )


def targets(nodes: Sequence[Obj]) -> list[str]:
    """The spec's :func:`~raftkube_spec.control.cloud.balancer_targets` of the view's nodes,
    minus the excluded ones (a label the spec does not model)."""
    excluded = {
        str(_meta(n).get("name")) for n in nodes if EXCLUDE_LABEL in (_meta(n).get("labels") or {})
    }
    view = World(tuple(sorted((spec_node(n) for n in nodes), key=lambda r: r.meta.key)))
    return [name for name in spec_cloud.balancer_targets(view) if name not in excluded]


def _service_named(service: Obj | None, name: str) -> str | None:
    if service is None:
        return "its view has no such Service"
    if balancer_name(service) != name:
        return f"the Service's load balancer is {balancer_name(service)}, not {name}"
    return None


def balancer_ensure(
    service: Obj | None, nodes: Sequence[Obj], name: str, written: Sequence[str]
) -> str | None:
    """A cloud PUT of balancer ``name`` targeting ``written`` for the sync's Service."""
    why = _service_named(service, name)
    if why is not None or service is None:
        return why
    if not wants_balancer(service):
        return "its view shows the Service not wanting a load balancer (or being deleted)"
    wanted = targets(nodes)
    if sorted(written) == wanted:
        return None
    return f"it targets {sorted(written)}, and the spec's targets from its view are {wanted}"


def balancer_delete(service: Obj | None, name: str) -> str | None:
    """A cloud DELETE of balancer ``name`` for the sync's Service."""
    why = _service_named(service, name)
    if why is not None or service is None:
        return why
    if wants_balancer(service):
        return "its view shows the Service still wanting its load balancer"
    return None


def ingress_written(service: Obj | None, ip: str, last: CloudCall | None) -> str | None:
    """A status PATCH writing ingress ``ip``; ``last``: the loop's last answered GET or PUT of
    the Service's balancer."""
    if service is None:
        return "its view has no such Service"
    if not wants_balancer(service):
        return "its view shows the Service not wanting a load balancer (or being deleted)"
    answered = str((last.obj or {}).get("ip") or "") if last is not None and last.ok else ""
    if answered and ip == answered:
        return None
    return (
        f"it writes ingress {ip!r}, and the loop's last answer about the balancer was "
        f"{_told(last)} ({answered or 'no address'})"
    )


def ingress_cleared(service: Obj | None, last: CloudCall | None) -> str | None:
    """A status PATCH clearing the ingress (and the cleanup finalizer); ``last``: the loop's
    last call about the Service's balancer."""
    if service is None:
        return "its view has no such Service"
    if wants_balancer(service):
        return "its view shows the Service still wanting its load balancer"
    if last is not None and (
        (last.method == "GET" and last.status == 404)
        or (last.method == "DELETE" and (last.ok or last.status == 404))
    ):
        return None
    return f"it clears the Service before the loop knew its load balancer gone: {_told(last)}"


def finalizer_added(service: Obj | None) -> str | None:
    if service is None:
        return "its view has no such Service"
    if wants_balancer(service):
        return None
    return "it adds the cleanup finalizer to a Service its view shows not wanting a load balancer"
