"""``GCDeletesOnlyDependents`` on the real objects: a pod with owners is deleted only when
each of its owners (by uid) is gone or being deleted in the foreground, unless another loop
that upstream lets delete it could have.

The spec's property (:func:`raftkube_spec.control.properties.gc_deletes_only_dependents`)
is about the garbage collector's deletions. The store's revisions do not say who wrote them,
so on the real cluster every deletion of a pod is judged (its tombstone, or its
``deletionTimestamp`` first set), and the deletions other loops may make of a pod whose
owner lives are told apart by what the objects alone show:

* **the ReplicaSet controller scaling down** deletes pods of a live ReplicaSet it controls.
  It deletes only when its view shows fewer ``spec.replicas`` than active pods it owns; its
  ReplicaSet and pod informers are each a prefix of the store's history, but not of the
  same length (and a new leader's may lag the old one's), so a scale-down by ReplicaSet ``X``
  was possible only if ``X`` was at some revision asked for fewer replicas than it had active
  pods at some revision (:attr:`Ownership.fewest`, :attr:`Ownership.most_active`). Once so,
  any of its pods may go: which one the controller picks is its ranking's business.
* **taint-based eviction** (and the eviction API, where there is one) marks the pod with the
  ``DisruptionTarget`` condition before it deletes it, as upstream does; a kubelet's status
  write may drop the condition again, so a pod that ever carried it is exempt
  (:attr:`Ownership.disrupted`).
* **the kubelet** deletes only pods already marked (it finishes a graceful deletion), and a
  pod already being deleted is not judged again.
* **the user** deletes only ownerless pods in the suite (``pinned-*``); an ownerless pod is
  not judged, as who deleted it is exactly what the revisions cannot tell.
* **the namespace controller** empties a namespace being deleted: a pod whose namespace was
  being deleted or gone at the revision (``emptying``) is not judged. ``default``, which the
  API does not let anyone delete, never is.

What it cannot see: a pod with an owner other than a ReplicaSet (none in the suite) is not
judged; ReplicaSets are not judged (the Deployment controller deletes old ones
of a live Deployment, as the spec's property leaves them out too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from raftkube_fuzz.violation import Violation
from raftkube_spec.control.model import ClusterState
from raftkube_spec.control.properties import gc_deletes_only_dependents
from raftkube_spec.control.records import Pod, Record
from raftkube_spec.control.world import World

Obj = dict[str, Any]

NAMESPACE = "default"
"""The namespace the API refuses to delete, so its namespace controller never empties it."""
DISRUPTION_TARGET = "DisruptionTarget"
TERMINAL_PHASES = ("Succeeded", "Failed")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def controller_uid(pod: Mapping[str, Any]) -> str | None:
    """The uid of the pod's controlling owner (``controller: true``), if any."""
    for ref in _meta(pod).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def is_active(pod: Mapping[str, Any]) -> bool:
    """What the ReplicaSet controller counts (upstream's ``IsPodActive``)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in TERMINAL_PHASES and not _meta(pod).get("deletionTimestamp")


def is_disrupted(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == DISRUPTION_TARGET and c.get("status") == "True" for c in conditions)


@attrs.define
class Ownership:
    """What the check remembers across revisions (see the module docstring)."""

    fewest: dict[str, int] = attrs.field(factory=dict)
    """The fewest replicas each ReplicaSet (by uid) was ever asked for."""
    most_active: dict[str, int] = attrs.field(factory=dict)
    """The most active pods each ReplicaSet (by uid) ever controlled at one revision."""
    disrupted: set[str] = attrs.field(factory=set)
    """Pods (by uid) that ever carried the ``DisruptionTarget`` condition."""

    def replica_set_written(self, rs: Mapping[str, Any]) -> None:
        uid = str(_meta(rs).get("uid"))
        replicas = int((rs.get("spec") or {}).get("replicas", 1))
        self.fewest[uid] = min(self.fewest.get(uid, replicas), replicas)

    def pods_counted(self, owner_uid: str, pods: list[Obj]) -> None:
        """Record the active pods ``owner_uid`` controls now (``pods``: every current pod)."""
        active = sum(1 for p in pods if controller_uid(p) == owner_uid and is_active(p))
        self.most_active[owner_uid] = max(self.most_active.get(owner_uid, 0), active)

    def may_scale_down(self, owner_uid: str) -> bool:
        fewest = self.fewest.get(owner_uid)
        return fewest is not None and fewest < self.most_active.get(owner_uid, 0)

    def pod_changed(
        self,
        revision: int,
        old: Obj | None,
        new: Obj | None,
        spec_pod: Callable[[Obj], Pod],
        owner: Callable[[str], Record | None],
        emptying: Callable[[str], bool] = lambda namespace: namespace != NAMESPACE,
    ) -> None:
        """Judge one pod's change at ``revision``: ``owner(uid)`` is the owner with that uid
        as the spec's record after the revision (None: absent); ``emptying(namespace)`` says
        whether that namespace was being deleted, or gone, at the revision (its namespace
        controller may then delete any pod in it). Without it, only ``default`` is judged."""
        for obj in (old, new):
            if obj is not None and is_disrupted(obj):
                self.disrupted.add(str(_meta(obj).get("uid")))
        if old is None or _meta(old).get("deletionTimestamp"):
            return
        if new is not None and not _meta(new).get("deletionTimestamp"):
            return
        refs = _meta(old).get("ownerReferences") or []
        uid = str(_meta(old).get("uid"))
        namespace = str(_meta(old).get("namespace") or NAMESPACE)
        if not refs or uid in self.disrupted or (namespace != NAMESPACE and emptying(namespace)):
            return
        controller = controller_uid(old)
        if controller is not None and self.may_scale_down(controller):
            return
        if any(r.get("kind") != "ReplicaSet" for r in refs):
            return  # an owner of a kind the observer does not follow may be live
        owners = [owner(str(r.get("uid"))) for r in refs]
        live = [o for o in owners if o is not None]
        before = ClusterState(World(tuple(sorted((spec_pod(old), *live),
                                                 key=lambda r: r.meta.key))), ())  # fmt: skip
        after = ClusterState(World((spec_pod(new),) if new is not None else ()), ())
        found = gc_deletes_only_dependents(before, after)
        if found is not None:
            name, message = found
            raise Violation(
                name,
                f"at revision {revision}: pod {_meta(old).get('name')}: {message} (its owner "
                "neither gone nor deleting in the foreground, and no scale-down or eviction "
                "could have chosen it)",
                {"revision": revision, "pod": _meta(old).get("name"),
                 "owners": [f"{r.get('kind')} {r.get('name')} {r.get('uid')}" for r in refs],
                 "deleted": new is None},
            )  # fmt: skip
