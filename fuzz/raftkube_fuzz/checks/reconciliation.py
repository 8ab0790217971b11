"""Eventual stable reconciliation: what "the cluster did what the user asked" means, as data.

:func:`unreconciled` lists every way the committed objects (a
:class:`~raftkube_fuzz.checks.cluster_state.ClusterObserver`'s, i.e. what the API serves) fall
short of the user's intent; an empty list is the reconciled state. The suite's end check
waits, after every fault healed and the user stopped, for that list to be empty within
:func:`reconcile_bound` virtual seconds and to stay empty for :data:`STABLE_FOR` more.

Reconciled means, as the spec's ESR says for the composed loops:

* every node is Ready and carries none of the node lifecycle controller's taints but
  ``node.kubernetes.io/unschedulable``, which exactly the cordoned nodes carry (the final
  heal leaves a cordon: it is the user's intent);
* every ReplicaSet not being deleted has exactly ``spec.replicas`` active pods, each
  Running and Ready on a Ready node (a cordoned one included: cordon evicts nothing), or
  still unbound because its cpu request fits the room left on no Ready, schedulable node
  (a full or cordoned cluster leaves pods Pending upstream too: the scheduler filters
  ``spec.unschedulable`` nodes, and these pods tolerate no taint); no
  pod is left terminating (every kubelet is back to confirm its deletions) and no pod
  outlives its owner (the garbage collector);
* every Deployment's rollout is complete: its status has observed its generation and counts
  ``spec.replicas`` updated, ready and total replicas, and no older ReplicaSet of it keeps
  pods; unless one of its pods waits for room as above (every Ready node cordoned);
* every Service's Endpoints list exactly the IPs of the pods its selector matches that have
  one and are neither finished nor being deleted: the Ready ones as ``addresses``, the others
  as ``notReadyAddresses`` (upstream's endpoints controller's output);
* no namespace is left terminating, and nothing (of any kind) is left in a namespace that is
  gone: the namespace controller emptied it before it went
  (:mod:`raftkube_fuzz.checks.namespace_lifecycle` follows every namespaced key).

All of that in every namespace (the user's workloads live in ``default`` and ``team-a``): a
live namespace's workloads are judged as ``default``'s, a pod's room counts every pod on its
node, and a Service selects pods of its own namespace only.

What it cannot see: which loop was slow, only that the end state was late or wrong; the
timeline shows the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raftkube_fuzz.checks.cluster_state import (
    NAMESPACE,
    TERMINAL_PHASES,
    ClusterObserver,
    is_ready,
    pod_cpu,
    spec_node,
)

Obj = dict[str, Any]

STABLE_FOR = 12.0
"""Virtual seconds the reconciled state must then hold: longer than one kubelet Lease
renewal (10 s), so a node that would flap is seen to."""

LIFECYCLE_TAINTS = frozenset({"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"})
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
"""The NoSchedule taint upstream's node lifecycle controller keeps on exactly the cordoned
nodes (``spec.unschedulable``): a cordon is the user's intent, so the reconciled state has it
on those and on no other."""


def reconcile_bound(
    *,
    store_recovery: float,
    leader_lease: float,
    leader_retry: float,
    node_grace: float,
    node_monitor_period: float,
    kubelet_renew: float,
    settle: float,
) -> float:
    """How long reconciling may take once everything healed, from the timeouts on its path.

    The store first serves again (``store_recovery``: its own liveness bound). A restarted
    controller manager or scheduler waits out the previous holder's Lease (``leader_lease``)
    and then its next retry (``leader_retry``) before it leads. A node that looked lost must
    renew its Lease (``kubelet_renew``) and the node lifecycle controller must notice on its
    next pass (``node_monitor_period``), while one the controller has not yet judged may
    still cross its grace period first (``node_grace``) and be tainted, then untainted at the
    next pass. Then the loops converge in a few rounds of watch, sync and write (``settle``,
    a fixed allowance for latency and the informers' relists)."""
    return (
        store_recovery
        + leader_lease
        + leader_retry
        + node_grace
        + 2 * node_monitor_period
        + kubelet_renew
        + settle
    )


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    """The object's name, after its namespace unless that is ``default``."""
    namespace, name = _meta(obj).get("namespace"), _meta(obj).get("name")
    return f"{namespace}/{name}" if namespace and namespace != NAMESPACE else str(name)


def _owner_uids(obj: Mapping[str, Any]) -> list[str]:
    return [str(r.get("uid")) for r in _meta(obj).get("ownerReferences") or []]


def _node_ready(node: Mapping[str, Any]) -> bool:
    return is_ready(node)


def unreconciled(observer: ClusterObserver) -> list[str]:
    """Every way the current objects differ from the user's intent (empty: reconciled)."""
    problems: list[str] = []
    nodes = {str(_meta(n).get("name")): n for n in observer.of("Node")}
    for name, node in sorted(nodes.items()):
        if not _node_ready(node):
            problems.append(f"node {name} is not Ready")
        taints = {t.get("key") for t in (node.get("spec") or {}).get("taints") or []}
        if taints & LIFECYCLE_TAINTS:
            problems.append(f"node {name} is tainted {sorted(taints & LIFECYCLE_TAINTS)}")
        cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        if cordoned != (UNSCHEDULABLE_TAINT in taints):
            state = "cordoned" if cordoned else "not cordoned"
            problems.append(f"node {name} is {state} but {sorted(taints)} are its taints")
    ready_nodes = {n for n, node in nodes.items() if _node_ready(node)}
    for name in sorted(observer.namespaces.terminating()):
        problems.append(f"namespace {name} is still terminating")
    problems.extend(f"{key} outlives its namespace" for key in observer.namespaces.orphans())
    pods = observer.of("Pod")
    replica_sets = observer.of("ReplicaSet")
    owners = {str(_meta(o).get("uid")) for o in replica_sets}
    for pod in pods:
        pod_name = _name(pod)
        if _meta(pod).get("deletionTimestamp"):
            problems.append(f"pod {pod_name} is still terminating")
        if any(uid not in owners for uid in _owner_uids(pod)):
            problems.append(f"pod {pod_name} outlives its owner")
    for rs in replica_sets:
        if _meta(rs).get("deletionTimestamp"):
            continue
        uid = str(_meta(rs).get("uid"))
        want = int((rs.get("spec") or {}).get("replicas", 1))
        active = [
            p
            for p in pods
            if uid in _owner_uids(p)
            and not _meta(p).get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in TERMINAL_PHASES
        ]
        if len(active) != want:
            problems.append(f"replicaset {_name(rs)} has {len(active)} of {want}")
        for pod in active:
            bound_to = str((pod.get("spec") or {}).get("nodeName"))
            phase = (pod.get("status") or {}).get("phase")
            if not (pod.get("spec") or {}).get("nodeName") and not fits_anywhere(
                pod, nodes, ready_nodes, pods
            ):
                continue  # Pending because the cluster is full: what upstream leaves too
            if phase != "Running" or not is_ready(pod) or bound_to not in ready_nodes:
                ready = is_ready(pod)
                problems.append(f"pod {_name(pod)} is {phase}, ready={ready}, on {bound_to}")
    waiting = {
        str(_meta(p).get("uid"))
        for p in pods
        if not (p.get("spec") or {}).get("nodeName")
        and not _meta(p).get("deletionTimestamp")
        and not fits_anywhere(p, nodes, ready_nodes, pods)
    }
    for d in observer.of("Deployment"):
        problems.extend(_deployment_problems(d, replica_sets, pods, waiting))
    for svc in observer.of("Service"):
        problems.extend(_service_problems(svc, observer, pods))
    return problems


def fits_anywhere(pod: Obj, nodes: Mapping[str, Obj], ready: set[str], pods: list[Obj]) -> bool:
    """Whether the unbound ``pod``'s cpu request fits the room left on some Ready,
    schedulable node (allocatable minus what the pods bound there and not finished request):
    if not, the scheduler rightly leaves it Pending, and a full cluster is reconciled with
    it so."""
    want = pod_cpu(pod)
    for name in sorted(ready):
        node = nodes[name]
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        used = sum(
            pod_cpu(p)
            for p in pods
            if (p.get("spec") or {}).get("nodeName") == name
            and (p.get("status") or {}).get("phase") not in TERMINAL_PHASES
        )
        if spec_node(node).cpu - used >= want:
            return True
    return False


def _deployment_problems(
    d: Obj, replica_sets: list[Obj], pods: list[Obj], waiting: set[str]
) -> list[str]:
    """A Deployment's rollout must be complete, unless one of its pods waits for room
    (``waiting``: unbound, and fits no Ready schedulable node). Its pods request no cpu, so
    that is every Ready node cordoned: upstream's rollout then stays in progress too (new
    pods Pending, the old ReplicaSet kept up by maxUnavailable), and the ReplicaSets' own
    counts are still judged."""
    name = _name(d)
    if _meta(d).get("deletionTimestamp"):
        return []
    uid = str(_meta(d).get("uid"))
    mine = [rs for rs in replica_sets if uid in _owner_uids(rs)]
    rs_uids = {str(_meta(rs).get("uid")) for rs in mine}
    if any(str(_meta(p).get("uid")) in waiting and rs_uids & set(_owner_uids(p)) for p in pods):
        return []
    want = int((d.get("spec") or {}).get("replicas", 1))
    status = d.get("status") or {}
    problems = []
    if int(status.get("observedGeneration", 0)) < int(_meta(d).get("generation", 0)):
        problems.append(f"deployment {name}: generation not observed yet")
    for field in ("replicas", "updatedReplicas", "readyReplicas"):
        if int(status.get(field, 0)) != want:
            problems.append(f"deployment {name}: status.{field} {status.get(field, 0)} != {want}")
    holding = [rs for rs in mine if int((rs.get("spec") or {}).get("replicas", 0)) > 0]
    if len(holding) > 1:
        problems.append(f"deployment {name}: {len(holding)} ReplicaSets still hold replicas")
    return problems


def _service_problems(svc: Obj, observer: ClusterObserver, pods: list[Obj]) -> list[str]:
    """Upstream's Endpoints for ``svc``: every selected pod with an IP, not finished and not
    being deleted, listed once, in ``addresses`` if it is Ready and in ``notReadyAddresses``
    if not (the suite's Services do not publish not-ready addresses). Both lists are compared
    exactly: a pod gone or turned Ready that the Endpoints still list as it was is as wrong
    as a missing one. Only pods of the Service's namespace are selected."""
    name = str(_meta(svc).get("name"))
    namespace = str(_meta(svc).get("namespace") or "")
    selector = dict((svc.get("spec") or {}).get("selector") or {})
    if not selector:
        return []
    listed = [
        p
        for p in pods
        if _meta(p).get("namespace") == namespace
        and selector.items() <= dict(_meta(p).get("labels") or {}).items()
        and not _meta(p).get("deletionTimestamp")
        and (p.get("status") or {}).get("phase") not in TERMINAL_PHASES
        and (p.get("status") or {}).get("podIP")
    ]
    want = {
        ready: sorted(
            str((p.get("status") or {}).get("podIP")) for p in listed if is_ready(p) == ready
        )
        for ready in (True, False)
    }
    endpoints = observer.objects.get(("Endpoints", namespace, name))
    if endpoints is None:
        return [f"service {_name(svc)} has no Endpoints"] if listed else []
    problems = []
    for ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
        have = sorted(
            str(a.get("ip"))
            for subset in endpoints.get("subsets") or []
            for a in subset.get(field) or []
        )
        if have != want[ready]:
            pods_are = "ready pods" if ready else "not-ready pods"
            problems.append(f"service {_name(svc)}: {field} {have}, {pods_are} {want[ready]}")
    return problems
