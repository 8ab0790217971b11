"""What the cloud controllers' judged requests are judged on, gathered as they are sent.

The cloud-controller-manager's four loops are judged loops of the conformance monitor
(:mod:`.conformance_monitor`): ``cloud-node`` and ``service`` (work queues) and
``cloud-node-lifecycle`` and ``route`` (periodic passes, each pass one sync over the node
cache). Their view of the API is their informers' caches as the sync began; their view of the
cloud is what their own calls answered in the sync, which :func:`cloud_tracer` (the tracer the
manager's cloud client is given) keeps in the sync's ``reads``, each with its method, as the
answer comes. When a sync sends a request the rules judge (an API write, or a cloud PUT or
DELETE), its collector here picks what the rule of
:mod:`raftkube_fuzz.checks.cloud_conformance` reads, at that very moment: the calls answered
*before* it (a lookup after the request cannot have led to it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from raftkube.kubeclient import RequestDone, RequestTracer
from raftkube_fuzz.checks import cloud_conformance as rules
from raftkube_fuzz.checks.cloud_conformance import CloudCall
from raftkube_fuzz.checks.views import StoreHistory
from raftkube_fuzz.cluster.judged_loop import LoopRules, Sync, read_of

Obj = dict[str, Any]

CLUSTER = "kubernetes"
"""The manager's ``--cluster-name``: its routes are named ``{cluster}-{node uid}``."""
SHUTDOWN_TAINT = rules.SHUTDOWN_TAINT
NODE_LOOPS = ("cloud-node", "cloud-node-lifecycle")
LOOPS = (*NODE_LOOPS, "route", "service")


def cloud_tracer(base: RequestTracer, current: Callable[[], Sync | None]) -> RequestTracer:
    """The cloud client's tracer: ``base`` (the monitor's, which hands each request to the
    loop's ``sent`` collector) and, for a request of a judged cloud loop's sync (``current``:
    the sync of the calling task), its answer kept in the sync's ``reads`` with its method."""

    def trace(method: str, path: str, query: Any, body: Any) -> RequestDone:
        done = base(method, path, query, body)
        sync = current()
        if sync is None or sync.loop not in LOOPS:
            return done

        def answered(outcome: int | BaseException, data: bytes) -> None:
            done(outcome, data)
            sync.reads.append(read_of(path, outcome, data, method))

        return answered

    return trace


def calls(sync: Sync) -> list[CloudCall]:
    """The cloud calls the sync had made and seen answered so far."""
    return [
        CloudCall(r.method, r.path, r.status, r.obj)
        for r in sync.reads
        if r.path.startswith("/v1/")
    ]


def _parts(path: str) -> list[str]:
    return path.strip("/").split("/")


def _named(items: Sequence[Obj], name: str, namespace: str = "") -> Obj | None:
    for obj in items:
        meta = obj.get("metadata") or {}
        if meta.get("name") == name and str(meta.get("namespace") or "") == namespace:
            return obj
    return None


@attrs.frozen
class Judged:
    """A request's rule with its arguments, gathered as it was sent."""

    rule: Callable[..., str | None]
    args: tuple[Any, ...]

    def judge(self) -> str | None:
        return self.rule(*self.args)


def _node_path(path: str) -> tuple[str, str] | None:
    """``(node, subresource)`` of ``/api/v1/nodes/NAME[/SUB]``."""
    parts = _parts(path)
    if parts[:3] != ["api", "v1", "nodes"] or len(parts) not in (4, 5):
        return None
    return parts[3], parts[4] if len(parts) == 5 else ""


def _instance_lookup(sync: Sync, node: str) -> CloudCall | None:
    return rules.last_call(calls(sync), f"/v1/instances/{node}", ("GET",))


def collect_node(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> Judged | None:
    """The cloud node controllers' node writes: a DELETE, a taint PATCH, a provider ID update,
    an address PATCH."""
    target = _node_path(path)
    if target is None or method == "GET":
        return None
    name, sub = target
    node = _named(sync.items("nodes"), name)
    lookup = _instance_lookup(sync, name)
    body = body if isinstance(body, Mapping) else {}
    if method == "DELETE" and not sub:
        return Judged(rules.node_delete, (node, lookup))
    if method == "PATCH" and not sub and "taints" in (body.get("spec") or {}):
        taints = (body.get("spec") or {}).get("taints") or []
        adds = any(t.get("key") == SHUTDOWN_TAINT for t in taints)
        return Judged(rules.shutdown_taint, (node, adds, lookup))
    if method == "PUT" and not sub:
        provider_id = str((body.get("spec") or {}).get("providerID") or "")
        return Judged(rules.node_initialized, (node, provider_id, lookup))
    if method == "PATCH" and sub == "status" and "addresses" in (body.get("status") or {}):
        written = list((body.get("status") or {}).get("addresses") or [])
        return Judged(rules.node_addresses, (node, written, lookup))
    return None


def collect_route(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> Judged | None:
    """The route controller's cloud route PUTs and DELETEs and its ``NetworkUnavailable``
    writes."""
    nodes = sync.items("nodes")
    body = body if isinstance(body, Mapping) else {}
    parts = _parts(path)
    made = calls(sync)
    listing = rules.last_call(made, "/v1/routes", ("GET",))
    listed = [
        r
        for r in ((listing.obj or {}).get("items") or [] if listing and listing.ok else [])
        if r.get("cluster") == CLUSTER
    ]
    if parts[:2] == ["v1", "routes"] and len(parts) == 3:
        if method == "PUT":
            to = str(body.get("targetNode") or "")
            cidr = str(body.get("destinationCIDR") or "")
            return Judged(rules.route_create, (nodes, to, cidr))
        if method == "DELETE":
            route = next((r for r in listed if r.get("name") == parts[2]), None)
            return Judged(rules.route_delete, (nodes, route))
        return None
    target = _node_path(path)
    conditions = (body.get("status") or {}).get("conditions") if method == "PATCH" else None
    if target is None or target[1] != "status" or not isinstance(conditions, list):
        return None
    network = next((c for c in conditions if c.get("type") == "NetworkUnavailable"), None)
    if network is None:
        return None
    node = _named(nodes, target[0])
    return Judged(
        rules.network_condition,
        (node, str(network.get("status")), listed, _route_puts(made, nodes)),
    )


def _route_puts(made: Sequence[CloudCall], nodes: Sequence[Obj]) -> list[CloudCall]:
    """The pass's route PUTs, each with its target and CIDR in ``obj``: the answer's, or for a
    failed one the target its name says (``{cluster}-{node uid}``)."""
    by_route = {}
    for node in nodes:
        meta = node.get("metadata") or {}
        by_route[f"/v1/routes/{CLUSTER}-{meta.get('uid') or meta.get('name')}"] = meta.get("name")
    puts = []
    for call in made:
        if call.method != "PUT" or not call.path.startswith("/v1/routes/"):
            continue
        if call.ok:
            puts.append(call)
        else:
            target = {"targetNode": by_route.get(call.path, "")}
            puts.append(attrs.evolve(call, obj=target))
    return puts


LB_PREFIX = "/v1/loadbalancers/"


def collect_service(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> Judged | None:
    """The service controller's cloud balancer PUTs and DELETEs and its ``services/status``
    PATCHes (finalizer, ingress, cleanup)."""
    namespace, _, name = sync.key.partition("/")
    service = _named(sync.items("services"), name, namespace)
    body = body if isinstance(body, Mapping) else {}
    made = calls(sync)
    if path.startswith(LB_PREFIX):
        balancer = path[len(LB_PREFIX) :]
        if method == "PUT":
            written = [str(n) for n in body.get("nodes") or []]
            return Judged(rules.balancer_ensure, (service, sync.items("nodes"), balancer, written))
        if method == "DELETE":
            return Judged(rules.balancer_delete, (service, balancer))
        return None
    parts = _parts(path)
    if method != "PATCH" or parts[-2:] != [name, "status"] or "services" not in parts:
        return None
    lb_path = LB_PREFIX + (rules.balancer_name(service) if service is not None else "")
    balancer_status = (body.get("status") or {}).get("loadBalancer")
    if isinstance(balancer_status, Mapping) and "ingress" in balancer_status:
        ingress = balancer_status.get("ingress")
        if not ingress:
            last = rules.last_call(made, lb_path, ("GET", "DELETE"))
            return Judged(rules.ingress_cleared, (service, last))
        ip = str((ingress[0] or {}).get("ip") or "")
        last = rules.last_call(made, lb_path, ("GET", "PUT"))
        return Judged(rules.ingress_written, (service, ip, last))
    finalizers = (body.get("metadata") or {}).get("finalizers")
    if isinstance(finalizers, list) and rules.LB_FINALIZER in finalizers:
        return Judged(rules.finalizer_added, (service,))
    return None


RULES = (
    LoopRules("cloud-node", sent=collect_node),
    LoopRules("cloud-node-lifecycle", sent=collect_node),
    LoopRules("route", sent=collect_route),
    LoopRules("service", sent=collect_service),
)
"""The cloud controllers as judged loops (their cloud answers come in through
:func:`cloud_tracer`, not the monitor's reads of GETs)."""
