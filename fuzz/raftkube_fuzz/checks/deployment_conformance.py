"""Request conformance of the Deployment controller's ReplicaSet writes: a rollout's bounds kept.

The rules here are pure functions of what the controller's sync held when it sent a write: its
Deployment and ReplicaSet caches as the sync began (its *view*) and the ReplicaSet writes the
same sync made before (the monitor, :mod:`raftkube_fuzz.cluster.deployment_monitor`, collects
both). The spec is :mod:`raftkube_spec.control.deployment`.

**What the spec's loop does.** For a Deployment not being deleted it runs upstream's
``rolloutRolling``: create the new ReplicaSet (the Deployment's template) if missing, sized as
``NewRSNewReplicas`` allows; scale the new one up so that the Deployment's ReplicaSets ask for
at most ``replicas + maxSurge`` pods (DeploymentSurgeBound), and stop there if it scaled;
otherwise scale old ones down by at most the available pods above ``replicas -
maxUnavailable``, and not at all while ``maxScaledDown`` is not positive.

**Where the real loop differs, and what "allowed" then means.** The spec names the new
ReplicaSet ``<deployment>-v<version>`` and counts available pods from its view's pods; upstream
(and the real controller, :mod:`raftkube.controllers.deployment`) names it by the
pod-template hash, finds it by comparing templates, and counts available pods from the
ReplicaSets' ``status.availableReplicas``. So the rules judge the invariants the spec promises,
with upstream's counting, not the spec's exact requests. Upstream's writes carry absolute sizes
computed from its view (and the objects its own earlier writes returned) under the view's
resourceVersion, so a stale view can only repeat a write or be refused with a 409, never add to
one: every write is judged from the sync's view with the sync's earlier writes applied (a
:class:`SetState` per ReplicaSet), whatever its answer. The new ReplicaSet is the oldest of
the Deployment's whose template equals the Deployment's but for ``pod-template-hash``
(upstream's ``FindNewReplicaSet``), else the one the sync created. The Deployment's
ReplicaSets are the ones in the view whose controller reference names it and which its
selector matches (upstream's claim; a sync that adopts an orphan is not judged, see the
monitor).

What a sync may do depends on its *path*, read from the view as upstream reads it
(:func:`path_of`): being deleted, only the status; paused, or a *scaling event* (an active
ReplicaSet's ``deployment.kubernetes.io/desired-replicas`` is not ``spec.replicas``),
upstream's proportional ``scale``; else the rollout of its strategy. In every path a write
that leaves ``spec.replicas`` as it was is allowed (upstream syncs the revision annotations
and ``minReadySeconds``, and a scale writes stale ``desired-replicas``/``max-replicas``
annotations). Then:

* **A ReplicaSet create** (:func:`replica_set_create`; upstream's ``getNewReplicaSet``) is
  allowed only on a rollout path, iff the Deployment has no ReplicaSet with its template yet
  (:func:`created_from_template` checks its template is the Deployment's plus the
  ``pod-template-hash`` label its selector and labels carry too, and its controller reference
  names the Deployment), and its size keeps the surge bound below.
* **A scale up** (:func:`replica_set_scale`) on a rollout path is of the new ReplicaSet, to at
  most ``replicas``, and leaves the Deployment's ReplicaSets asking for at most ``replicas +
  maxSurge`` pods (``maxSurge`` 0 for Recreate): upstream's ``NewRSNewReplicas``.
* **A scale down of the new ReplicaSet** on a rollout path leaves it at least ``replicas``
  (upstream scales it to ``replicas`` when it asks for more).
* **A scale down of old ReplicaSets** on the RollingUpdate path is upstream's
  ``reconcileOldReplicaSets`` (:func:`old_scale_down`): from the ReplicaSets as the sync held
  them before its first such write, nothing while ``maxScaledDown = allPods - minAvailable -
  newRSUnavailable`` is not positive; else the old ReplicaSets' total decrease in the sync is
  at most ``min(maxScaledDown, Σ old max(0, replicas - available))`` (``cleanupUnhealthyReplicas``,
  which takes only pods its statuses count unavailable) plus ``max(0, Σ available -
  minAvailable)`` (``scaleDownOldReplicaSetsForRollingUpdate``), available counted from the
  ReplicaSets' statuses as upstream counts it (a status lagging a scale down counts the pods it
  still shows). With Recreate, old ReplicaSets go to 0, as upstream's
  ``scaleDownOldReplicaSetsForRecreate`` sends them.
* **A ReplicaSet delete** (:func:`replica_set_delete`; upstream's ``cleanupDeployment``, on a
  complete rollout or while paused) is of an old ReplicaSet that asks for and reports no pod,
  whose status has caught up with its generation, while the Deployment keeps more old
  ReplicaSets not being deleted than its ``revisionHistoryLimit`` (counting the sync's earlier
  deletes).

Not judged, and why: the values of a scaling event's writes (upstream's proportional
arithmetic reads each ReplicaSet's ``max-replicas`` annotation, and after a scaling sync that
failed halfway those disagree, so its intermediate totals may pass ``replicas + maxSurge``; the
spec models no resize of a rollout), with Recreate that the new ReplicaSet waits until no old
pod runs (upstream lists the pods live, after the view; the suite's Deployments roll), the
Deployment's status writes (their counts are the
ReplicaSets' statuses as the sync held them, but the conditions depend on the wall clock and on
several writes per sync; not stated here), Events, and a selector with ``matchExpressions``
(the suite's have none). What conformance never sees: a write the controller should have made
and did not (eventual stable reconciliation catches a rollout that stalls).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from raftkube_fuzz.checks.cluster_state import spec_meta
from raftkube_spec.control.records import Deployment

Obj = Mapping[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"

Path = Literal["deleting", "scaling", "rolling", "recreate"]


# --- the records the rules read ----------------------------------------------------------------


def _percent(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    exact = int(text[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def rolling(obj: Obj) -> bool:
    strategy = (obj.get("spec") or {}).get("strategy") or {}
    return (strategy.get("type") or "RollingUpdate") == "RollingUpdate"


def spec_deployment(obj: Obj) -> Deployment:
    """A cached Deployment as the spec's record, ``maxSurge`` and ``maxUnavailable`` resolved
    to pod counts as upstream resolves them: ``NewRSNewReplicas`` scales ``maxSurge`` rounding
    up, ``MaxUnavailable`` is ``ResolveFenceposts``' (rounding down; 1 if both come to 0),
    at most ``replicas``, and 0 with no replicas; Recreate has neither."""
    spec = obj.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    selector = tuple(sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
    surge = unavailable = 0
    if rolling(obj):
        update = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = _percent(update.get("maxSurge"), replicas, True)
        unavailable = _percent(update.get("maxUnavailable"), replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        unavailable = min(unavailable, replicas) if replicas > 0 else 0
    return Deployment(spec_meta(obj, "Deployment"), replicas, selector, 1, surge, unavailable)


@attrs.frozen
class SetState:
    """One of the Deployment's ReplicaSets as the sync held it (its cached state, or the body
    of the sync's own last write of it)."""

    name: str
    replicas: int
    """``spec.replicas``."""
    available: int
    """``status.availableReplicas``."""
    new: bool
    """Its template is the Deployment's (the new ReplicaSet)."""
    reported: int = 0
    """``status.replicas``."""
    settled: bool = True
    """``status.observedGeneration`` has caught up with ``metadata.generation``."""
    deleting: bool = False


def without_hash(template: Obj) -> Obj:
    """A pod template without the ``pod-template-hash`` label (upstream's
    ``EqualIgnoreHash`` compares templates so)."""
    out = copy.deepcopy(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
        if not labels:
            out["metadata"].pop("labels")
    return out


def template_of(obj: Obj) -> Obj:
    return (obj.get("spec") or {}).get("template") or {}


def same_template(rs: Obj, deployment: Obj) -> bool:
    return without_hash(template_of(rs)) == without_hash(template_of(deployment))


def set_state(rs: Obj, new: bool) -> SetState:
    meta, spec, status = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
    return SetState(
        name=str(meta.get("name") or ""),
        replicas=int(spec.get("replicas", 1)),
        available=int(status.get("availableReplicas") or 0),
        new=new,
        reported=int(status.get("replicas") or 0),
        settled=int(meta.get("generation") or 0) <= int(status.get("observedGeneration") or 0),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def path_of(deployment: Obj, sets: Sequence[Obj]) -> Path:
    """Which of upstream's ``syncDeployment`` paths a sync takes from this view: being
    deleted, paused or a scaling event (``isScalingEvent``: an active ReplicaSet was sized for
    another ``replicas``), or its strategy's rollout."""
    if (deployment.get("metadata") or {}).get("deletionTimestamp"):
        return "deleting"
    spec = deployment.get("spec") or {}
    if spec.get("paused"):
        return "scaling"
    replicas = int(spec.get("replicas", 1))
    for rs in sets:
        if int((rs.get("spec") or {}).get("replicas", 1)) <= 0:
            continue
        desired = ((rs.get("metadata") or {}).get("annotations") or {}).get(DESIRED_REPLICAS)
        try:
            sized_for = int(desired) if desired is not None else None
        except ValueError:
            sized_for = None
        if sized_for is not None and sized_for != replicas:
            return "scaling"
    return "rolling" if rolling(deployment) else "recreate"


# --- the rules: None when allowed, else why not -------------------------------------------------


def _surge(d: Deployment, path: Path) -> int:
    return d.max_surge if path == "rolling" else 0


def _total(sets: Sequence[SetState]) -> int:
    return sum(s.replicas for s in sets)


def _listing(sets: Sequence[SetState]) -> str:
    return ", ".join(f"{s.name}{' (new)' if s.new else ''}: {s.replicas}" for s in sets)


def replica_set_create(
    d: Deployment, path: Path, held: Sequence[SetState], created: SetState
) -> str | None:
    """A create of ``created`` (the new ReplicaSet) by a sync holding ``held``."""
    if path not in ("rolling", "recreate"):
        return f"its view puts the Deployment on the {path} path, which creates no ReplicaSet"
    existing = next((s for s in held if s.new), None)
    if existing is not None:
        return f"its view already has ReplicaSet {existing.name} with the Deployment's template"
    return _grows(d, path, held, created, 0)


def replica_set_scale(
    d: Deployment,
    path: Path,
    held: Sequence[SetState],
    name: str,
    to: int,
    before_scale_down: Sequence[SetState] | None = None,
) -> str | None:
    """A write setting ReplicaSet ``name``'s ``spec.replicas`` to ``to`` by a sync holding
    ``held`` (this write not applied); ``before_scale_down``: what it held before its first
    scale down of an old ReplicaSet (this one, if it is the first), for that rule."""
    target = next((s for s in held if s.name == name), None)
    if target is None:
        return f"ReplicaSet {name} is not one of the Deployment's in its view"
    if to == target.replicas:
        return None
    if path == "deleting":
        return "its view shows the Deployment being deleted: upstream then writes only its status"
    if path == "scaling":
        return None  # a resize's proportional sizes: not judged (module docstring)
    if to > target.replicas:
        if not target.new:
            return (
                f"it scales up ReplicaSet {name}, which is not the new one (the Deployment's "
                "template): a rollout only scales the new one up"
            )
        return _grows(d, path, held, attrs.evolve(target, replicas=to), target.replicas)
    if target.new:
        if to < d.replicas:
            return (
                f"it scales the new ReplicaSet {name} down from {target.replicas} to {to}, "
                f"below the Deployment's replicas {d.replicas}"
            )
        return None
    if path == "recreate":
        return None if to == 0 else f"Recreate scales old ReplicaSets to 0, not to {to}"
    after = [attrs.evolve(s, replicas=to) if s.name == name else s for s in held]
    return old_scale_down(d, before_scale_down or held, after)


def _grows(
    d: Deployment, path: Path, held: Sequence[SetState], grown: SetState, was: int
) -> str | None:
    """The new ReplicaSet ``grown`` (``was`` pods before): upstream's ``NewRSNewReplicas``."""
    if grown.replicas <= was:
        return None
    if grown.replicas > d.replicas:
        return (
            f"it asks for {grown.replicas} pods of the new ReplicaSet {grown.name}, more than "
            f"the Deployment's replicas {d.replicas}"
        )
    after = [s for s in held if s.name != grown.name] + [grown]
    most = d.replicas + _surge(d, path)
    if _total(after) > most:
        return (
            f"the Deployment's ReplicaSets would ask for {_total(after)} pods ({_listing(after)}), "
            f"more than replicas + maxSurge = {d.replicas} + {_surge(d, path)}"
        )
    return None


def old_scale_down(
    d: Deployment, before: Sequence[SetState], after: Sequence[SetState]
) -> str | None:
    """The sync's old ReplicaSets going from ``before`` (as held before its first scale down
    of one) to ``after`` (this write applied): upstream's ``reconcileOldReplicaSets``."""
    new = next((s for s in before if s.new), None)
    if new is None:
        return (
            "its view and writes have no new ReplicaSet, and upstream scales old ones down "
            "only beside one"
        )
    min_available = d.replicas - d.max_unavailable
    max_scaled_down = _total(before) - min_available - (new.replicas - new.available)
    sizes = {s.name: s.replicas for s in after}
    old = [s for s in before if not s.new]
    decrease = sum(s.replicas - sizes.get(s.name, s.replicas) for s in old)
    if max_scaled_down <= 0:
        return (
            f"maxScaledDown is {max_scaled_down} ({_total(before)} pods asked for, minAvailable "
            f"{min_available}, {new.replicas - new.available} of the new ReplicaSet unavailable): "
            "upstream scales no old ReplicaSet down"
        )
    unhealthy = sum(max(0, s.replicas - s.available) for s in old)
    available = sum(s.available for s in before)
    allowed = min(max_scaled_down, unhealthy) + max(0, available - min_available)
    if decrease > allowed:
        return (
            f"it scales old ReplicaSets down by {decrease} in this sync, and from what it held "
            f"({_listing(before)}; {available} available by their statuses, {unhealthy} of the "
            f"old ones unavailable) upstream removes at most {allowed}: the unavailable ones "
            f"within maxScaledDown {max_scaled_down}, then what keeps minAvailable "
            f"{min_available} = replicas {d.replicas} - maxUnavailable {d.max_unavailable}"
        )
    return None


def replica_set_delete(
    d: Deployment, path: Path, held: Sequence[SetState], name: str, history_limit: int | None,
    deleted_before: int,
) -> str | None:  # fmt: skip
    """A delete of ReplicaSet ``name``; ``deleted_before``: the sync's earlier deletes."""
    target = next((s for s in held if s.name == name), None)
    if target is None:
        return f"ReplicaSet {name} is not one of the Deployment's in its view"
    if path == "deleting":
        return "its view shows the Deployment being deleted: upstream then writes only its status"
    if target.new:
        return f"ReplicaSet {name} is the new one (the Deployment's template)"
    if target.replicas or target.reported or not target.settled or target.deleting:
        return (
            f"ReplicaSet {name} is not an empty, settled old one (replicas {target.replicas}, "
            f"status.replicas {target.reported}, observed its generation: {target.settled}, "
            f"being deleted: {target.deleting})"
        )
    alive = sum(1 for s in held if not s.new and not s.deleting) - deleted_before
    if history_limit is None or alive <= history_limit:
        return (
            f"the Deployment keeps {alive} old ReplicaSets, within its revisionHistoryLimit "
            f"{history_limit}"
        )
    return None


def created_from_template(deployment: Obj, rs: Obj) -> str | None:
    """Whether a created ReplicaSet ``rs`` is the Deployment's new one as upstream's
    ``getNewReplicaSet`` makes it: the Deployment's template plus a ``pod-template-hash``
    label that its selector and labels carry too, and a controller reference to the
    Deployment."""
    meta = deployment.get("metadata") or {}
    refs = [
        r for r in (rs.get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")
    ]
    if len(refs) != 1 or (refs[0].get("kind"), refs[0].get("name"), refs[0].get("uid")) != (
        "Deployment", meta.get("name"), meta.get("uid")
    ):  # fmt: skip
        return f"its controller reference is {refs}, not the Deployment {meta.get('name')}"
    template = template_of(rs)
    pod_hash = ((template.get("metadata") or {}).get("labels") or {}).get(POD_TEMPLATE_HASH)
    if not pod_hash:
        return "its template has no pod-template-hash label"
    if not same_template(rs, deployment):
        return "its template is not the Deployment's (pod-template-hash aside)"
    spec = rs.get("spec") or {}
    selector = dict((spec.get("selector") or {}).get("matchLabels") or {})
    wanted = dict(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    wanted[POD_TEMPLATE_HASH] = pod_hash
    if selector != wanted:
        return f"its selector is {selector}, not the Deployment's plus the hash: {wanted}"
    labels = (rs.get("metadata") or {}).get("labels") or {}
    if labels.get(POD_TEMPLATE_HASH) != pod_hash:
        return "its labels do not carry its pod-template-hash"
    return None
