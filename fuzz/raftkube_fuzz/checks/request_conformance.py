"""Request conformance: each write a loop makes is one the spec's loop allows from its view.

The rules here are pure functions of a loop's *view* (its informer caches as it read them at
the start of the sync that made the request, converted to the spec's records as
:mod:`.cluster_state` converts the store's objects) and of the loop's past requests; the
suite's monitor (:mod:`raftkube_fuzz.cluster.conformance_monitor`) collects both. Each rule
says where the real loop's memory differs from the spec's and what "allows" then means:

* **ReplicaSet controller, pod create** (:func:`replica_set_create`). The spec
  (:mod:`raftkube_spec.control.replicaset`) creates for a ReplicaSet while its view shows
  fewer active pods than ``replicas`` *and* it has no creation pending that the view does not
  show yet (its expectations). Upstream's controller counts expectations instead of naming
  pods, and creates a sync's pods in slow-start batches, several at once. Both are covered by
  one count: a create answered 2xx is allowed iff the view's active pods of that ReplicaSet
  plus the pods of it the store created *after* the view's revision and still holds active
  (every create this loop made that its view cannot show, this one and its batch included)
  are at most the view's ``replicas``. Creates with an unknown outcome loosen the bound by one
  each (upstream lowers its expectations for them: :mod:`raftkube_fuzz.cluster.ambiguous`), and
  pods created while two controller managers may act are not counted (upstream promises
  nothing for them: :mod:`raftkube_fuzz.cluster.leadership`). A create that failed wrote
  nothing and is not judged.
* **Scheduler, binding** (:func:`binding`). The spec (:mod:`raftkube_spec.control.scheduler`)
  binds a pod pending in its view to a node of its view where every filter passes, counting
  the pods bound in the view and the ones it *assumed* (bound by itself, not yet shown bound
  by its view). Upstream's binding runs in the background after the decision, so the memory
  is rebuilt per decision: the bindings this scheduler incarnation sent for earlier decisions,
  minus those that had failed before this decision started (upstream forgets a failed
  binding's assumption). Filters the spec does not model (memory, pod count, affinity other
  than one anti-affinity term) only make the real scheduler stricter, never a false alarm.
* **Endpoints controller, Endpoints write** (:func:`endpoints_write`). The spec
  (:mod:`raftkube_spec.control.endpoints`) writes the list of its view's Ready, bound, live
  pods the Service selects; a create or update is allowed iff the ready addresses it writes
  (``subsets[*].addresses``: pod and node) are exactly that list. Upstream compares with the
  Endpoints it GETs rather than with its cache, so it may write where the spec would not;
  the rule judges what is written, not when. A delete is allowed iff the view has no such
  Service (:func:`endpoints_delete`).

* **ReplicaSet controller, pod delete** (:func:`replica_set_delete`). The spec deletes surplus
  active pods of a ReplicaSet its view shows, and waits (its expectations) until the view shows
  the pods it deleted as deleting or gone. Upstream ranks the victims by more criteria than
  the spec, so the rule is about the count: a delete answered 2xx is allowed iff the pod is
  an active pod of the ReplicaSet in the view, and the view's active pods minus those this
  loop incarnation deleted (2xx) that the view still shows active are at least ``replicas``.

* **Garbage collector, a dependent's delete and the removal of ``foregroundDeletion``**: the
  rules, and the collector's view (its graph and its live reads of owners), are in
  :mod:`.gc_conformance`.

* **Kubelets, a pod's final delete and a pod worker's status write** (no informer sync: judged
  on the store's pod and the machine's containers as the request is sent): the rules are in
  :mod:`.kubelet_conformance`.

* **ServiceAccount, token and namespace controllers**: a ServiceAccount create, a token
  Secret's delete or filling-in, a delete in a namespace and the namespace's ``finalize``:
  the rules, and these loops' views (their caches, the token controller's live GET of an
  account, the namespace controller's own LISTs of its namespace's content), are in
  :mod:`.accounts_conformance`.

* **Cloud controllers** (``cloud-node``, ``cloud-node-lifecycle``, ``route``, ``service``): a
  node's delete, shutdown taint, provider ID and addresses, the cloud routes and load
  balancers, and a Service's ingress, each judged on the loop's caches and on what its own
  cloud calls answered in the sync (upstream reads the cloud live): the rules are in
  :mod:`.cloud_conformance`.
* **Deployment controller, a ReplicaSet create, scale or delete** (``deployment``): each
  from the sync's view with its earlier writes applied, within ``replicas + maxSurge`` and
  upstream's ``reconcileOldReplicaSets`` bounds; the rules, and why a resize's sizes are not
  judged, are in :mod:`.deployment_conformance`.
* **Node lifecycle controller and taint manager** (``node-lifecycle-monitor``,
  ``node-lifecycle-tainting``, ``node-lifecycle-noschedule``, ``taint-eviction-fire``): a
  node's Ready Unknown status write (by the controller's clock, from when its Lease cache took
  the last renewal), its NoSchedule and NoExecute taint writes (master disruption included)
  and a pod's eviction (by the taint manager's sightings and ``tolerationSeconds``): the rules,
  and the memory followed for them, are in :mod:`.nodelifecycle_conformance`.

What conformance cannot see: a write a loop should have made and did not (a skipped write
leaves no request to judge: eventual stable reconciliation is what catches that), and
requests of loops not listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from raftkube_fuzz.checks.cluster_state import (
    TERMINAL_PHASES,
    spec_node,
    spec_pod,
    spec_replica_set,
)
from raftkube_spec.control.endpoints import addresses
from raftkube_spec.control.records import (
    Address,
    Node,
    Pod,
    ReplicaSet,
    Service,
    Toleration,
    meta,
    sorted_records,
)
from raftkube_spec.control.replicaset import active_pods
from raftkube_spec.control.scheduler import Assumed, fits, forget_confirmed, placed
from raftkube_spec.control.world import World

Obj = dict[str, Any]


def _finished(obj: Mapping[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") in TERMINAL_PHASES


def view_pod(obj: Mapping[str, Any]) -> Pod:
    """A cached pod as the spec's record, with what the scheduler's filters read: its
    tolerations (every operator as ``Exists``: taint values are not modelled, so this
    tolerates at least what the real one does) and its nodeSelector."""
    spec = obj.get("spec") or {}
    tolerations = tuple(
        Toleration(str(t.get("key") or ""), str(t.get("effect") or ""))
        for t in spec.get("tolerations") or []
    )
    selector = tuple(sorted((spec.get("nodeSelector") or {}).items()))
    return attrs.evolve(spec_pod(obj), tolerations=tolerations, node_selector=selector)


def view_node(obj: Mapping[str, Any]) -> Node:
    """A cached Node as the spec's record, ``spec.unschedulable`` included."""
    unschedulable = bool((obj.get("spec") or {}).get("unschedulable"))
    return attrs.evolve(spec_node(obj), unschedulable=unschedulable)


def view_service(obj: Mapping[str, Any]) -> Service:
    meta_ = obj.get("metadata") or {}
    selector = (obj.get("spec") or {}).get("selector") or {}
    return Service(
        meta("Service", str(meta_.get("name")), str(meta_.get("namespace") or ""),
             uid=str(meta_.get("uid") or "")),
        tuple(sorted(selector.items())),
    )  # fmt: skip


def world_of(
    pods: Iterable[Obj] = (),
    nodes: Iterable[Obj] = (),
    replica_sets: Iterable[Obj] = (),
    services: Iterable[Obj] = (),
) -> World:
    """The spec's World of a view. Finished pods are left out (upstream's loops do not count
    them and the spec's pods have no phase)."""
    records: list[Any] = [view_pod(p) for p in pods if not _finished(p)]
    records += [view_node(n) for n in nodes]
    records += [spec_replica_set(r) for r in replica_sets]
    records += [view_service(s) for s in services]
    return World(sorted_records(records))


def has_ip(pod: Mapping[str, Any]) -> bool:
    """Whether the pod has an address to list (the endpoints controller skips one without:
    the spec's pods have no IP, so its view is given the pods with one)."""
    return bool((pod.get("status") or {}).get("podIP"))


# --- the rules: None when allowed, else why not --------------------------------------------------


def replica_set_create(
    rs: ReplicaSet | None, view: World, created_since_view: int, unknown: int = 0
) -> str | None:
    """A pod create for ``rs`` answered 2xx; ``created_since_view`` counts the active pods of
    ``rs`` the store created after the view's revision (this one included)."""
    if rs is None:
        return "its view has no such ReplicaSet"
    if rs.meta.deleting:
        return f"its view shows ReplicaSet {rs.meta.name} being deleted"
    active = len(active_pods(rs, view))
    if active + created_since_view > rs.replicas + unknown:
        return (
            f"its view shows {active} active pods of ReplicaSet {rs.meta.name} "
            f"(replicas {rs.replicas}) and {created_since_view} more were created since that "
            f"view (this one included; {unknown} creates had an unknown outcome): the spec "
            f"creates at most {rs.replicas + unknown - active} from that view and memory"
        )
    return None


def replica_set_delete(
    rs: ReplicaSet | None, view: World, pod_uid: str, deleted_unseen: int
) -> str | None:
    """A pod delete for ``rs`` answered 2xx; ``deleted_unseen`` counts the pods this loop
    deleted (this one included) that the view still shows active: the spec's deletion
    expectations, counted."""
    if rs is None:
        return "its view has no such ReplicaSet"
    if rs.meta.deleting:
        return f"its view shows ReplicaSet {rs.meta.name} being deleted"
    active = active_pods(rs, view)
    if not any(p.meta.uid == pod_uid for p in active):
        return f"its view shows no such active pod of ReplicaSet {rs.meta.name}"
    if len(active) - deleted_unseen < rs.replicas:
        return (
            f"its view shows {len(active)} active pods of ReplicaSet {rs.meta.name} "
            f"(replicas {rs.replicas}) and this loop deleted {deleted_unseen} of them (this one "
            f"included): the spec deletes at most {len(active) - rs.replicas} from that view "
            "and memory"
        )
    return None


def binding(pod_key: tuple[str, str], node_name: str, view: World, assumed: Assumed) -> str | None:
    """A binding of the pod ``(namespace, name)`` to ``node_name``, from ``view`` and the pods
    the scheduler had assumed (uid, node) when it decided."""
    pod = view.get(("Pod", *pod_key))
    if not isinstance(pod, Pod):
        return "its view has no such pod"
    if pod.node or pod.meta.deleting:
        return f"its view shows the pod {'bound to ' + pod.node if pod.node else 'being deleted'}"
    node = view.get(("Node", "", node_name))
    if not isinstance(node, Node):
        return f"its view has no node {node_name}"
    others = placed(view, forget_confirmed(view, assumed))
    if fits(pod, node, view, others):
        return None
    on_node = sorted(
        f"{p.meta.name}:{p.cpu}m{'' if p.node else ' (assumed)'}"
        for p, where in others
        if where == node_name and p.meta.uid != pod.meta.uid
    )
    return (
        f"the pod ({pod.cpu}m) does not fit on {node_name} in its view and memory: "
        f"allocatable {node.cpu}m, taken by {', '.join(on_node) or 'nothing'}; "
        f"unschedulable={node.unschedulable}, taints={[t.key for t in node.taints]}"
    )


def written_addresses(endpoints: Mapping[str, Any]) -> frozenset[Address]:
    """The ready addresses an Endpoints object lists: (pod name, node name)."""
    return frozenset(
        Address(str((a.get("targetRef") or {}).get("name") or ""), str(a.get("nodeName") or ""))
        for subset in endpoints.get("subsets") or []
        for a in subset.get("addresses") or []
    )


def endpoints_write(
    service: Service | None, view: World, written: frozenset[Address]
) -> str | None:
    """A create or update of ``service``'s Endpoints listing ``written``."""
    if service is None:
        return "its view has no such Service"
    wanted = frozenset(addresses(service, view))
    if written == wanted:
        return None
    extra = sorted(a.pod for a in written - wanted)
    missing = sorted(a.pod for a in wanted - written)
    return (
        f"it lists {sorted(a.pod for a in written)}, the spec's list from that view is "
        f"{sorted(a.pod for a in wanted)} (not Ready, unbound or unselected there: {extra}; "
        f"Ready there and left out: {missing})"
    )


def endpoints_delete(service: Service | None) -> str | None:
    """A delete of Endpoints whose Service is ``service`` in the view."""
    if service is not None:
        return "its view still has the Service"
    return None
