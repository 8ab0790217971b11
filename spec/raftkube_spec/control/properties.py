"""Safety properties of the composed model: plain functions of a state or of a step.

Each returns None or ``(name, evidence)``, the explorer's violation shape. A slice lists the
ones that mean something for the objects it has (they all hold vacuously elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable

from raftkube_spec.control.accounts import authenticates
from raftkube_spec.control.election import acting_leaders
from raftkube_spec.control.model import ClusterState
from raftkube_spec.control.records import NO_EXECUTE, Endpoints, Node, Pod, Token
from raftkube_spec.control.replicaset import active_pods
from raftkube_spec.control.world import FOREGROUND, World

Violation = tuple[str, str]
StateProperty = Callable[[ClusterState], Violation | None]
StepProperty = Callable[[ClusterState, ClusterState], Violation | None]


def node_within_allocatable(s: ClusterState) -> Violation | None:
    """No node has pods bound to it whose cpu requests exceed its allocatable."""
    for node in s.api.nodes:
        used = sum(p.cpu for p in s.api.pods if p.node == node.meta.name)
        if used > node.cpu:
            return "NodeWithinAllocatable", f"{node.meta.name}: {used} cpu bound, {node.cpu} there"
    return None


def pod_runs_on_one_node(s: ClusterState) -> Violation | None:
    """A pod object's containers run on one machine at most, and only where it is bound: a pod
    whose object is gone must not run anywhere (or a new pod of the same name could run too)."""
    seen: dict[str, str] = {}
    for m in s.machines:
        for name in m.running:
            if name in seen:
                return "PodRunsOnOneNode", f"{name} runs on {seen[name]} and {m.name}"
            seen[name] = m.name
            pod = s.api.get(("Pod", "default", name))
            if not isinstance(pod, Pod) or pod.node != m.name:
                return "PodRunsOnOneNode", f"{name} runs on {m.name} with no pod object bound there"
    return None


def no_over_creation(limit: int) -> StateProperty:
    def check(s: ClusterState) -> Violation | None:
        for rs in s.api.replica_sets:
            active = active_pods(rs, s.api)
            if len(active) > limit:
                names = ", ".join(p.meta.name for p in active)
                return "NoOverCreation", f"{rs.meta.name} has {len(active)} active pods: {names}"
        return None

    # A property of one ReplicaSet loop (each slice has one): two controller managers acting
    # at once (a suspended leader resuming after a takeover; leader election is no fence)
    # may over-create in upstream too, so a checker of a real cluster applies this to the pods
    # created while one acted alone (docs/spec.md, "NoOverCreation and leader overlap").
    check.__doc__ = f"A ReplicaSet never has more than {limit} active pods (the most asked for)."
    return check


def at_most_one_leader(s: ClusterState) -> Violation | None:
    """Two candidates never both act as leader of the same lease at the same time."""
    leaders = acting_leaders(s)
    if len(leaders) > 1:
        return "AtMostOneLeader", f"{' and '.join(leaders)} both act as leader"
    return None


def deleted_accounts_authenticate_nobody(s: ClusterState) -> Violation | None:
    """A token authenticates only while its ServiceAccount (same uid) exists."""
    for token in s.api.of(Token):
        if authenticates(s.api, token):
            account = s.api.get(("ServiceAccount", token.meta.namespace, token.account))
            if account is None or account.meta.uid != token.account_uid:
                return "DeletedAccountTokens", f"{token.meta.name} authenticates {token.account}"
    return None


def bound_once(before: ClusterState, after: ClusterState) -> Violation | None:
    """A pod is bound at most once and never rebound."""
    for pod in before.api.pods:
        if not pod.node:
            continue
        now = after.api.get(pod.meta.key)
        if isinstance(now, Pod) and now.meta.uid == pod.meta.uid and now.node != pod.node:
            return "BoundOnce", f"{pod.meta.name} moved from {pod.node} to {now.node or 'nowhere'}"
    return None


def endpoints_list_only_ready(before: ClusterState, after: ClusterState) -> Violation | None:
    """An Endpoints write lists only pods that were ready in the API state its writer read
    (its informer's snapshot; a pod may turn unready after the read, which no writer sees)."""
    for ep in after.api.of(Endpoints):
        if before.api.get(ep.meta.key) == ep:
            continue
        views = [c.view for c in before.components if c.view is not None]
        for addr in ep.addresses:
            if not any(_ready_in(v, addr.pod) for v in views):
                return "EndpointsListOnlyReady", f"{ep.meta.name} lists {addr.pod}, not ready"
    return None


def _ready_in(view: World, pod_name: str) -> bool:
    pod = view.get(("Pod", "default", pod_name))
    return isinstance(pod, Pod) and pod.ready


def no_tainting_in_full_disruption(before: ClusterState, after: ClusterState) -> Violation | None:
    """No NoExecute taint is added by a step after which no node is Ready: when every node
    looks down, the fault is more likely the controller's than the nodes' (upstream's
    "master disruption mode")."""
    if any(n.ready == "True" for n in after.api.nodes):
        return None
    for node in after.api.nodes:
        old = before.api.get(node.meta.key)
        old_taints = {(t.key, t.effect) for t in old.taints} if isinstance(old, Node) else set()
        added = [
            t for t in node.taints if t.effect == NO_EXECUTE and (t.key, t.effect) not in old_taints
        ]
        if added:
            return "NoTaintingInFullDisruption", f"{node.meta.name} tainted {added[0].key}"
    return None


def gc_deletes_only_dependents(before: ClusterState, after: ClusterState) -> Violation | None:
    """An object with owners is deleted only when each owner is gone or being deleted in the
    foreground; an object without owners is never deleted except by whoever was asked to."""
    for obj in before.api.objects:
        if obj.meta.deleting or obj.meta.kind == "ReplicaSet":
            continue
        now = after.api.get(obj.meta.key)
        if now is not None and not now.meta.deleting:
            continue
        if not obj.meta.owners:
            return "GCDeletesOnlyDependents", f"{obj.meta.name} has no owner but was deleted"
        for ref in obj.meta.owners:
            owner = before.api.by_uid(ref.uid)
            if owner is not None and FOREGROUND not in owner.meta.finalizers:
                return "GCDeletesOnlyDependents", f"{obj.meta.name} deleted, owner {ref.name} live"
    return None
