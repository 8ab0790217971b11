"""The ReplicaSet controller, which also serves ReplicationControllers (upstream's
``pkg/controller/replicaset``; ``replication`` wraps the same code for core/v1 RCs).

For each owner (a :class:`ReplicaKind` says which resource and how its selector reads), the
sync of ``namespace/name``:

1. takes the owner from the cache (gone: drop its expectations and stop) and the active pods of
   its namespace (not finished, not being deleted);
2. claims them (the ControllerRef manager): pods it controls that still match are its own;
   matching orphans are adopted with a patch adding a controller reference (after an uncached
   read confirms the owner is not being deleted); its pods that no longer match are released;
3. only if its expectations are satisfied (every creation and deletion it asked for before has
   reached the pod informer; see :mod:`.expectations`) and it is not being deleted, creates or
   deletes pods to reach ``spec.replicas``: at most ``burst_replicas`` at a time, creations in
   slow-start batches (1, 2, 4...), deletions in upstream's order (:func:`pods_to_delete`);
4. writes the status (:func:`calculate_status`) through ``/status`` when it changed, and looks
   again after ``minReadySeconds`` while ready pods wait to become available.

The decisions are the plain functions here and in :mod:`.controller_utils`; the class only
moves data between the caches, those functions and the API.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from raftkube.apiserver.resources import ResourceInfo
from raftkube.clock import Clock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.controller_utils import (
    NAMESPACE_TERMINATING_CAUSE,
    SLOW_START_INITIAL_BATCH_SIZE,
    PodControl,
    controller_ref_of,
    error_text,
    has_status_cause,
    is_being_deleted,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    labels_of,
    new_controller_ref,
    pod_key,
    pods_to_delete,
    rfc3339,
    selects,
    slow_start_batch,
)
from raftkube.controllers.events import EventRecorder
from raftkube.controllers.expectations import ControllerExpectations
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.ref_manager import claim_objects
from raftkube.controllers.resources import resource
from raftkube.controllers.store import (
    DeletedFinalStateUnknown,
    meta_namespace_key,
    object_of,
    split_meta_namespace_key,
)
from raftkube.kubeclient import KubeAPIError, KubeClient

logger = logging.getLogger("raftkube.controllers.replicaset")

Obj = dict[str, Any]

PODS = resource("", "v1", "pods")
REPLICA_SETS = resource("apps", "v1", "replicasets")
REPLICATION_CONTROLLERS = resource("", "v1", "replicationcontrollers")

BURST_REPLICAS = 500
"""upstream's ``BurstReplicas``: the most pods one sync creates or deletes."""
STATUS_UPDATE_RETRIES = 1
REPLICA_FAILURE = "ReplicaFailure"


def _rs_selector(owner: Obj) -> Obj | None:
    selector = (owner.get("spec") or {}).get("selector")
    return selector if isinstance(selector, dict) else None


def _rc_selector(owner: Obj) -> Obj | None:
    selector = (owner.get("spec") or {}).get("selector")
    return {"matchLabels": selector} if isinstance(selector, dict) else None


@attrs.frozen
class ReplicaKind:
    """What differs between ReplicaSets and ReplicationControllers."""

    resource: ResourceInfo
    component: str
    """The Events' source, upstream's recorder component."""
    queue_name: str
    selector: Callable[[Obj], Obj | None]
    """The owner's selector as a ``metav1.LabelSelector``."""


REPLICA_SET_KIND = ReplicaKind(REPLICA_SETS, "replicaset-controller", "replicaset", _rs_selector)
REPLICATION_CONTROLLER_KIND = ReplicaKind(
    REPLICATION_CONTROLLERS, "replication-controller", "replicationmanager", _rc_selector
)


# --- decisions -----------------------------------------------------------------------------------


def replicas_of(owner: Obj) -> int:
    value = (owner.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def replicas_diff(owner: Obj, pods: list[Obj], burst: int = BURST_REPLICAS) -> int:
    """How many pods to create (negative) or delete (positive) now: ``len(pods) - replicas``,
    bounded by ``burst`` either way."""
    diff = len(pods) - replicas_of(owner)
    return max(-burst, min(burst, diff))


def calculate_status(owner: Obj, pods: list[Obj], manage_error: str | None, now: float) -> Obj:
    """upstream's ``calculateStatus``: counts of ``pods`` (the owner's active, claimed pods)
    and the ReplicaFailure condition, set while creating or deleting fails and removed once it
    works again. ``now`` is wall time, for availability."""
    spec = owner.get("spec") or {}
    status = copy.deepcopy(owner.get("status") or {})
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully_labeled = ready = available = 0
    for pod in pods:
        labels = labels_of(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully_labeled += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    failure = next((c for c in conditions if c.get("type") == REPLICA_FAILURE), None)
    if manage_error is not None and failure is None:
        diff = len(pods) - replicas_of(owner)
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        conditions.append(
            {
                "type": REPLICA_FAILURE,
                "status": "True",
                "lastTransitionTime": rfc3339(now),
                "reason": reason,
                "message": manage_error,
            }
        )
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != REPLICA_FAILURE]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    status["replicas"] = len(pods)
    status["fullyLabeledReplicas"] = fully_labeled
    status["readyReplicas"] = ready
    status["availableReplicas"] = available
    return status


def status_needs_update(owner: Obj, status: Obj) -> bool:
    """``updateReplicaSetStatus``'s test: a count, the conditions or the observed generation
    differ from what is stored."""
    old = owner.get("status") or {}
    counts = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")
    generation = (owner.get("metadata") or {}).get("generation") or 0
    return (
        any(int(old.get(f) or 0) != int(status.get(f) or 0) for f in counts)
        or int(old.get("observedGeneration") or 0) != int(generation)
        or (old.get("conditions") or []) != (status.get("conditions") or [])
    )


# --- the controller --------------------------------------------------------------------------


class ReplicaSetController:
    """See the module docstring; :meth:`run` until cancelled. ``clock`` paces the queue and
    dates expectations; ``wall`` is compared with the pods' condition timestamps."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        *,
        kind: ReplicaKind = REPLICA_SET_KIND,
        wall: Callable[[], float] = time.time,
        burst_replicas: int = BURST_REPLICAS,
    ) -> None:
        self.client = client
        self.kind = kind
        self.wall = wall
        self.burst_replicas = burst_replicas
        self.expectations = ControllerExpectations(clock)
        self.recorder = EventRecorder(client, kind.component, wall=wall)
        self.pod_control = PodControl(client, self.recorder)
        self.queue = new_queue(clock, kind.queue_name)
        owner_informer = factory.informer_for(kind.resource)
        pod_informer = factory.informer_for(PODS)
        self.owners = factory.lister(kind.resource)
        self.pods = factory.lister(PODS)
        owner_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._enqueue,
                update_func=lambda old, new: self._enqueue(new),
                delete_func=self._owner_deleted,
            )
        )
        pod_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._pod_added,
                update_func=self._pod_updated,
                delete_func=self._pod_deleted,
            )
        )
        self.worker = Worker(kind.queue_name, self.queue, self.sync, (owner_informer, pod_informer))

    # --- event handlers (upstream's addPod/updatePod/deletePod) --------------------------------

    def _enqueue(self, owner: Obj) -> None:
        self.queue.add(meta_namespace_key(owner))

    def _owner_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = meta_namespace_key(object_of(obj))
        self.expectations.delete_expectations(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: Obj) -> Obj | None:
        """The owner ``ref`` names, if it is one of ours and the cache has that very one."""
        if ref.get("kind") != self.kind.resource.kind:
            return None
        owner = self.owners.get(str(ref.get("name") or ""), namespace)
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return owner

    def owners_of_pod(self, pod: Obj) -> list[Obj]:
        """``GetPodReplicaSets``: the owners in the pod's namespace whose selector matches it."""
        namespace = pod["metadata"].get("namespace") or ""
        labels = labels_of(pod)
        if not labels:
            return []
        return [
            owner
            for owner in self.owners.list(namespace)
            if selects(self.kind.selector(owner), labels)
        ]

    def _pod_added(self, pod: Obj) -> None:
        if is_being_deleted(pod):
            self._pod_deleted(pod)
            return
        ref = controller_ref_of(pod)
        if ref is not None:
            owner = self._resolve(pod["metadata"].get("namespace") or "", ref)
            if owner is not None:
                key = meta_namespace_key(owner)
                self.expectations.creation_observed(key)
                self.queue.add(key)
            return
        for owner in self.owners_of_pod(pod):
            self._enqueue(owner)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return  # a relist's echo: nothing changed
        labels_changed = labels_of(old) != labels_of(new)
        if is_being_deleted(new):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        namespace = new["metadata"].get("namespace") or ""
        new_ref, old_ref = controller_ref_of(new), controller_ref_of(old)
        ref_changed = new_ref != old_ref
        if ref_changed and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self._enqueue(previous)
        if new_ref is not None:
            owner = self._resolve(namespace, new_ref)
            if owner is None:
                return
            self._enqueue(owner)
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                self.queue.add_after(meta_namespace_key(owner), min_ready + 1)
            return
        if labels_changed or ref_changed:
            for owner in self.owners_of_pod(new):
                self._enqueue(owner)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = object_of(obj)
        ref = controller_ref_of(pod)
        if ref is None:
            return
        owner = self._resolve(pod["metadata"].get("namespace") or "", ref)
        if owner is None:
            return
        key = meta_namespace_key(owner)
        self.expectations.deletion_observed(key, pod_key(pod))
        self.queue.add(key)

    # --- sync ----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = split_meta_namespace_key(key)
        owner = self.owners.get(name, namespace)
        if owner is None:
            self.expectations.delete_expectations(key)
            return
        needs_sync = self.expectations.satisfied(key)
        active = [p for p in self.pods.list(namespace) if is_pod_active(p)]
        pods = await self.claim_pods(owner, active)
        manage_error: Exception | None = None
        if needs_sync and not is_being_deleted(owner):
            try:
                await self.manage_replicas(owner, pods)
            except Exception as exc:
                manage_error = exc
        status = calculate_status(
            owner, pods, error_text(manage_error) if manage_error else None, self.wall()
        )
        updated = await self.update_status(owner, status)
        spec, new_status = updated.get("spec") or {}, updated.get("status") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        replicas = replicas_of(updated)
        if (
            manage_error is None
            and min_ready > 0
            and int(new_status.get("readyReplicas") or 0) == replicas
            and int(new_status.get("availableReplicas") or 0) != replicas
        ):
            self.queue.add_after(key, min_ready)
        if manage_error is not None:
            raise manage_error

    async def claim_pods(self, owner: Obj, pods: list[Obj]) -> list[Obj]:
        """The owner's pods after adopting and releasing (see :mod:`.ref_manager`)."""
        selector = self.kind.selector(owner)
        return await claim_objects(
            self.client,
            self.kind.resource,
            PODS,
            owner,
            pods,
            lambda pod: selects(selector, labels_of(pod)),
        )

    async def manage_replicas(self, owner: Obj, pods: list[Obj]) -> None:
        """Create or delete pods toward ``spec.replicas``; see the module docstring."""
        key = meta_namespace_key(owner)
        namespace = owner["metadata"].get("namespace") or ""
        diff = replicas_diff(owner, pods, self.burst_replicas)
        if diff < 0:
            count = -diff
            self.expectations.expect_creations(key, count)
            template = (owner.get("spec") or {}).get("template") or {}
            ref = new_controller_ref(owner)

            async def create() -> None:
                try:
                    await self.pod_control.create_pods(namespace, template, owner, ref)
                except KubeAPIError as exc:
                    if not has_status_cause(exc, NAMESPACE_TERMINATING_CAUSE):
                        raise

            successes, failure = await slow_start_batch(
                count, SLOW_START_INITIAL_BATCH_SIZE, create
            )
            # The informer will never show the pods that were not created.
            for _ in range(count - successes):
                self.expectations.creation_observed(key)
            if failure is not None:
                raise failure
        elif diff > 0:
            related = self.related_pods(owner)
            doomed = pods_to_delete(pods, related, diff, self.wall())
            self.expectations.expect_deletions(key, [pod_key(p) for p in doomed])
            failures: list[Exception] = []

            async def delete(pod: Obj) -> None:
                # Every failure is caught here, as upstream's goroutines report theirs on a
                # channel: one that escaped would cancel the sibling deletions and skip the
                # lowering below, leaving the owner's expectations waiting for deletions that
                # no watch will ever report (five minutes with nothing managed).
                try:
                    await self.pod_control.delete_pod(namespace, pod_name(pod), owner)
                except Exception as exc:
                    # Any failure (an API error, or a connection that broke with the outcome
                    # unknown): upstream lowers the expectation for it. Should the pod have
                    # gone after all, its watch event finds nothing left to lower.
                    self.expectations.deletion_observed(key, pod_key(pod))
                    if not (isinstance(exc, KubeAPIError) and exc.code == 404):
                        failures.append(exc)

            async with trio.open_nursery() as nursery:
                for pod in doomed:
                    nursery.start_soon(delete, pod)
            if failures:
                raise failures[0]

    def related_pods(self, owner: Obj) -> list[Obj]:
        """``getIndirectlyRelatedPods``: the pods of every owner sharing this owner's own
        controller (a Deployment's ReplicaSets), or of this owner alone."""
        namespace = owner["metadata"].get("namespace") or ""
        parent = controller_ref_of(owner)
        family = {owner["metadata"].get("uid")}
        if parent is not None:
            for other in self.owners.list(namespace):
                other_ref = controller_ref_of(other)
                if other_ref is not None and other_ref.get("uid") == parent.get("uid"):
                    family.add(other["metadata"].get("uid"))
        return [
            pod
            for pod in self.pods.list(namespace)
            if (controller_ref_of(pod) or {}).get("uid") in family
        ]

    async def update_status(self, owner: Obj, status: Obj) -> Obj:
        """``updateReplicaSetStatus``: write ``status`` with ``observedGeneration`` if it
        changed; on a failure read the owner again and retry once."""
        if not status_needs_update(owner, status):
            return owner
        current = owner
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            body = copy.deepcopy(current)
            body["status"] = {
                **status,
                "observedGeneration": int(current["metadata"].get("generation") or 0),
            }
            try:
                updated: Obj = await self.client.update(
                    self.kind.resource, body, subresource="status"
                )
                return updated
            except KubeAPIError:
                if attempt >= STATUS_UPDATE_RETRIES:
                    raise
                meta = current["metadata"]
                current = await self.client.get(
                    self.kind.resource, meta["name"], namespace=meta.get("namespace") or ""
                )
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def run(self, workers: int = 5) -> None:
        await self.worker.run(workers)


def pod_name(pod: Obj) -> str:
    return str(pod["metadata"]["name"])
