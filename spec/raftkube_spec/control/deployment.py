"""The Deployment controller's rolling update.

Theory of operation
-------------------
``sync(memory, view, now)`` is upstream's ``rolloutRolling`` for each Deployment of the view:

1. The new ReplicaSet is the one whose template is the Deployment's current one (here: named
   ``<deployment>-v<version>``, with label ``pod-template-hash=v<version>`` added to the
   selector and template); it is created if missing, with the replicas step 2 allows.
2. ``reconcileNewReplicaSet``: the new ReplicaSet is scaled up towards ``replicas`` but so that
   the ReplicaSets together ask for at most ``replicas + maxSurge`` pods (upstream's
   ``NewRSNewReplicas``). If it scaled, the sync ends there, as upstream's does.
3. ``reconcileOldReplicaSets``: old ReplicaSets are scaled down by at most the number of
   available pods above ``replicas - maxUnavailable`` (``minAvailable``), oldest first, and
   not at all while ``allPods - minAvailable - newRSUnavailable`` (``maxScaledDown``) is not
   positive.

Available means ready and not being deleted (``minReadySeconds`` 0), counted from the pods in
the view (upstream reads the ReplicaSets' ``status.availableReplicas``). Upstream also cleans up
unhealthy old replicas first, rolls back, pauses and keeps a revision history; none of that is
modelled. The Deployment writes ReplicaSet ``spec.replicas`` as absolute values computed from
its view, so a stale view can only repeat a write, not add to one.

Promise: the ReplicaSets of a Deployment never ask for more than ``replicas + maxSurge`` pods
(DeploymentSurgeBound), and once the template stops changing, the new ReplicaSet holds
``replicas`` ready pods and the old ones none.
"""

from __future__ import annotations

from raftkube_spec.control.records import Deployment, OwnerRef, ReplicaSet, meta
from raftkube_spec.control.world import Create, Patch, Request, World


def owned_sets(d: Deployment, view: World) -> tuple[ReplicaSet, ...]:
    return tuple(rs for rs in view.replica_sets if any(o.uid == d.meta.uid for o in rs.meta.owners))


def new_set_name(d: Deployment) -> str:
    return f"{d.meta.name}-v{d.version}"


def available(rs: ReplicaSet, view: World) -> int:
    return sum(
        1
        for p in view.pods
        if p.ready and not p.meta.deleting and any(o.uid == rs.meta.uid for o in p.meta.owners)
    )


def surge_target(d: Deployment, current: int, total: int) -> int:
    """``NewRSNewReplicas``: the new set's replicas, within ``replicas + maxSurge`` in all."""
    if current >= d.replicas:
        return d.replicas
    room = max(d.replicas + d.max_surge - total, 0)
    return min(current + room, d.replicas)


def sync(memory: None, view: World, now: int) -> tuple[None, tuple[Request, ...]]:
    requests: list[Request] = []
    for d in view.of(Deployment):
        if not d.meta.deleting:
            requests += _rollout(d, view)
    return None, tuple(requests)


def _rollout(d: Deployment, view: World) -> list[Request]:
    sets = owned_sets(d, view)
    new = next((rs for rs in sets if rs.meta.name == new_set_name(d)), None)
    old = [rs for rs in sets if rs is not new]
    total = sum(rs.replicas for rs in sets)
    if new is None:
        template = (*d.selector, ("pod-template-hash", f"v{d.version}"))
        owner = OwnerRef("Deployment", d.meta.name, d.meta.uid, block=True)
        rs = ReplicaSet(
            meta("ReplicaSet", new_set_name(d), d.meta.namespace, owners=(owner,)),
            surge_target(d, 0, total),
            tuple(sorted(template)),
            tuple(sorted(template)),
        )
        return [Create(rs)]
    wanted = surge_target(d, new.replicas, total)
    if wanted != new.replicas:
        return [Patch(new.meta.ref, (("replicas", wanted),))]
    min_available = d.replicas - d.max_unavailable
    new_unavailable = new.replicas - available(new, view)
    if total - min_available - new_unavailable <= 0:  # upstream's maxScaledDown
        return []
    budget = sum(available(rs, view) for rs in sets) - min_available
    out: list[Request] = []
    for rs in sorted(old, key=lambda r: r.meta.name):
        if budget <= 0:
            break
        step = min(rs.replicas, budget)
        if step > 0:
            out.append(Patch(rs.meta.ref, (("replicas", rs.replicas - step),)))
            budget -= step
    return out
