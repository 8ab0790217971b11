"""The scheduler: one scheduling cycle per step, filter then score, assume, bind.

Theory of operation
-------------------
``schedule(assumed, view, now)`` takes the first pending pod of the view (unbound, not being
deleted, not already assumed; upstream orders its queue by priority, here by name), keeps the
nodes every filter passes, scores them and binds the pod to the best. Filters, as upstream's
default plugins: NodeUnschedulable (``spec.unschedulable``, unless the pod tolerates the
``node.kubernetes.io/unschedulable`` taint), NodeResourcesFit (the pod's cpu request fits in
allocatable minus the requests of pods on the node; a pod requesting no cpu fits any node, as
upstream judges only what a pod requests), NodeAffinity's nodeSelector part,
TaintToleration (every NoSchedule and NoExecute taint is tolerated) and InterPodAffinity's
required anti-affinity, in both directions (the pod's term against pods in the topology
domain, and every placed pod's term against the pod). Score: least allocated cpu, ties broken
by node name (upstream: a weighted sum of several scores, ties broken at random).

The cache "assumes" the pod on the node before the bind is written, so the next cycle, whose
view may not yet show the bind, counts the capacity as taken. ``assumed`` is the scheduler's
memory: pod uid to node. An assumption is dropped once the view shows the pod bound or gone
(upstream also expires it if the bind fails; here a bind can fail only because the pod was
bound or deleted, both of which the view will show).

Promise: with a view that lags the API by any amount, the scheduler never places on a node
more than its allocatable among the pods it has bound itself (NodeWithinAllocatable), provided
its memory survives; a crash loses the memory and the view together, and a fresh view shows
every bind made before the crash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from raftkube_spec.control.records import (
    NO_EXECUTE,
    NO_SCHEDULE,
    UNSCHEDULABLE,
    Node,
    Pod,
    Taint,
    matches,
)
from raftkube_spec.control.world import Bind, Request, World

Assumed = tuple[tuple[str, str], ...]
"""(pod uid, node name) pairs the scheduler has bound but its view may not show yet."""


def placed(view: World, assumed: Assumed) -> tuple[tuple[Pod, str], ...]:
    """Every pod the scheduler must count, with its node: bound in the view, or assumed."""
    out = [(p, p.node) for p in view.pods if p.node]
    pending = {p.meta.uid: p for p in view.pods if not p.node}
    out += [(pending[uid], node) for uid, node in assumed if uid in pending]
    return tuple(out)


def forget_confirmed(view: World, assumed: Assumed) -> Assumed:
    """Keep the assumptions the view does not confirm yet (pod still there and unbound)."""
    pending = {p.meta.uid for p in view.pods if not p.node}
    return tuple(a for a in assumed if a[0] in pending)


def tolerated(pod: Pod, taint: Taint) -> bool:
    return any(t.tolerates(taint) for t in pod.tolerations)


def _domain(node: Node, topology: str) -> str:
    return node.zone if topology == "zone" else node.meta.name


def fits(pod: Pod, node: Node, view: World, others: Iterable[tuple[Pod, str]]) -> bool:
    """Every filter plugin passes for ``pod`` on ``node``."""
    if node.unschedulable and not tolerated(pod, Taint(UNSCHEDULABLE, NO_SCHEDULE)):
        return False
    if not set(pod.node_selector) <= set(node.meta.labels):
        return False
    if any(t.effect in (NO_SCHEDULE, NO_EXECUTE) and not tolerated(pod, t) for t in node.taints):
        return False
    nodes = {n.meta.name: n for n in view.nodes}
    used = 0
    for other, where in others:
        if other.meta.uid == pod.meta.uid:
            continue
        if where == node.meta.name:
            used += other.cpu
        there = nodes.get(where)
        if there is None:
            continue
        for term_owner, target in ((pod, other), (other, pod)):
            term = term_owner.anti_affinity
            if term is None or not matches(term.selector, target.meta.labels):
                continue
            if _domain(there, term.topology) == _domain(node, term.topology):
                return False
    # Only what the pod requests is judged (upstream's fitsRequest): a pod requesting no cpu
    # fits even a node whose pods already take more than it has (a pod bound there by hand,
    # which only the kubelet's admission turns away).
    return pod.cpu == 0 or used + pod.cpu <= node.cpu


def choose(pod: Pod, view: World, others: tuple[tuple[Pod, str], ...]) -> Node | None:
    """The feasible node with the most cpu left (ties: by name), or None."""
    best: tuple[int, str] | None = None
    chosen: Node | None = None
    for node in view.nodes:
        if not fits(pod, node, view, others):
            continue
        used = sum(o.cpu for o, where in others if where == node.meta.name)
        score = (-(node.cpu - used), node.meta.name)
        if best is None or score < best:
            best, chosen = score, node
    return chosen


Placement = Callable[[World, Assumed], tuple[tuple[Pod, str], ...]]


def schedule(
    assumed: Assumed, view: World, now: int, placement: Placement = placed
) -> tuple[Assumed, tuple[Request, ...]]:
    """One scheduling cycle: bind the first pending pod that fits somewhere, and assume it.

    An assumed pod has left the scheduling queue, so it is not tried again."""
    assumed = forget_confirmed(view, assumed)
    taken = {uid for uid, _ in assumed}
    others = placement(view, assumed)
    for pod in view.pods:
        if pod.node or pod.meta.deleting or pod.meta.uid in taken:
            continue
        node = choose(pod, view, others)
        if node is not None:
            return (*assumed, (pod.meta.uid, node.meta.name)), (Bind(pod.meta.ref, node.meta.name),)
    return assumed, ()


def schedule_ignoring_assumed(
    assumed: Assumed, view: World, now: int
) -> tuple[Assumed, tuple[Request, ...]]:
    """The ``scheduler-ignores-assumed`` mutant: capacity is counted from the view alone, as if
    binds were visible at once (the queue still remembers which pods it has popped)."""
    return schedule(assumed, view, now, placement=lambda v, _: placed(v, ()))
