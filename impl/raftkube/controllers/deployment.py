"""The Deployment controller (upstream's ``pkg/controller/deployment``).

A Deployment is queued when it changes, when one of its ReplicaSets (or an orphan ReplicaSet
its selector matches) changes, and, for Recreate, when one of its pods goes. The sync of
``namespace/name`` takes the Deployment from the cache and:

1. claims ReplicaSets as the ReplicaSet controller claims pods (adopt matching orphans, release
   its own that stopped matching) and groups the pods by ReplicaSet;
2. being deleted: only the status; else it records ``DeploymentPaused``/``DeploymentResumed``
   in the Progressing condition when ``paused`` changed;
3. paused, or resized (a ReplicaSet's ``desired-replicas`` annotation differs from
   ``spec.replicas``): scales the ReplicaSets (proportionally mid-rollout,
   :func:`~.deployment_util.proportional_sizes`), cleans up old ones if paused, writes the
   status;
4. otherwise rolls out. The new ReplicaSet is the one whose template equals the Deployment's
   but for ``pod-template-hash``; it is created as ``{deployment}-{hash}`` with that label in its
   template, labels and selector, a controller reference, the Deployment's annotations and the
   next revision (a name taken by another template bumps ``status.collisionCount``).
   *RollingUpdate*: scale the new ReplicaSet up within ``replicas + maxSurge`` pods; else scale
   old ones down, unavailable pods first, never below ``replicas - maxUnavailable`` available.
   *Recreate*: scale every old ReplicaSet to 0, wait until none of their pods runs, then create
   or scale the new one. A complete rollout deletes old, empty ReplicaSets beyond
   ``revisionHistoryLimit``;
5. writes the status: counts, Available, and Progressing (``NewReplicaSetCreated``,
   ``FoundNewReplicaSet``, ``ReplicaSetUpdated``, ``NewReplicaSetAvailable``, or
   ``ProgressDeadlineExceeded`` once ``progressDeadlineSeconds`` pass without progress, looked
   at again when that deadline comes).

Writes are made on the cached objects' copies with their resourceVersions: a stale cache gets a
409 and the sync runs again. Rollback through the deprecated ``rollbackTo`` is not served
(apps/v1 has no such field). The arithmetic is :mod:`.deployment_util`.

Why one module: it is one controller's ``sync``, the five steps above in upstream's
order, with its arithmetic already in :mod:`.deployment_util`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable
from typing import Any

from raftkube.clock import Clock
from raftkube.controllers import deployment_progress as dp
from raftkube.controllers import deployment_util as du
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.controller_utils import (
    NAMESPACE_TERMINATING_CAUSE,
    controller_ref_of,
    error_text,
    has_status_cause,
    is_being_deleted,
    labels_of,
    selects,
)
from raftkube.controllers.events import NORMAL, WARNING, EventRecorder
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

logger = logging.getLogger("raftkube.controllers.deployment")

Obj = dict[str, Any]

DEPLOYMENTS = resource("apps", "v1", "deployments")
REPLICA_SETS = resource("apps", "v1", "replicasets")
PODS = resource("", "v1", "pods")


def selector_of(obj: Obj) -> Obj | None:
    selector = (obj.get("spec") or {}).get("selector")
    return selector if isinstance(selector, dict) else None


class DeploymentController:
    """See the module docstring; :meth:`run` until cancelled. ``wall`` dates conditions and
    judges progress deadlines."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.wall = wall
        self.recorder = EventRecorder(client, "deployment-controller", wall=wall)
        self.queue = new_queue(clock, "deployment")
        informers = [factory.informer_for(r) for r in (DEPLOYMENTS, REPLICA_SETS, PODS)]
        self.deployments = factory.lister(DEPLOYMENTS)
        self.replica_sets = factory.lister(REPLICA_SETS)
        self.pods = factory.lister(PODS)
        informers[0].add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._enqueue,
                update_func=lambda old, new: self._enqueue(new),
                delete_func=lambda obj: self._enqueue(object_of(obj)),
            )
        )
        informers[1].add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._rs_added,
                update_func=self._rs_updated,
                delete_func=self._rs_deleted,
            )
        )
        informers[2].add_event_handler(ResourceEventHandlerFuncs(delete_func=self._pod_deleted))
        self.worker = Worker("deployment", self.queue, self.sync, informers)

    # --- event handlers ------------------------------------------------------------------

    def _enqueue(self, deployment: Obj) -> None:
        self.queue.add(meta_namespace_key(deployment))

    def _resolve(self, namespace: str, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        found = self.deployments.get(str(ref.get("name") or ""), namespace)
        if found is None or found["metadata"].get("uid") != ref.get("uid"):
            return None
        return found

    def _deployments_for(self, rs: Obj) -> list[Obj]:
        namespace = rs["metadata"].get("namespace") or ""
        labels = labels_of(rs)
        return [d for d in self.deployments.list(namespace) if selects(selector_of(d), labels)]

    def _rs_added(self, rs: Obj) -> None:
        if is_being_deleted(rs):
            self._rs_deleted(rs)
            return
        ref = controller_ref_of(rs)
        if ref is not None:
            owner = self._resolve(rs["metadata"].get("namespace") or "", ref)
            if owner is not None:
                self._enqueue(owner)
            return
        for deployment in self._deployments_for(rs):
            self._enqueue(deployment)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        namespace = new["metadata"].get("namespace") or ""
        old_ref, new_ref = controller_ref_of(old), controller_ref_of(new)
        if old_ref != new_ref and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self._enqueue(previous)
        if new_ref is not None:
            owner = self._resolve(namespace, new_ref)
            if owner is not None:
                self._enqueue(owner)
            return
        if labels_of(old) != labels_of(new) or old_ref != new_ref:
            for deployment in self._deployments_for(new):
                self._enqueue(deployment)

    def _rs_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        rs = object_of(obj)
        owner = self._resolve(rs["metadata"].get("namespace") or "", controller_ref_of(rs))
        if owner is not None:
            self._enqueue(owner)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = object_of(obj)
        namespace = pod["metadata"].get("namespace") or ""
        ref = controller_ref_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replica_sets.get(str(ref.get("name") or ""), namespace)
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return
        owner = self._resolve(namespace, controller_ref_of(rs))
        if owner is not None and not du.is_rolling_update(owner):
            self._enqueue(owner)

    # --- sync ----------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        namespace, name = split_meta_namespace_key(key)
        cached = self.deployments.get(name, namespace)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        selector = selector_of(d)
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            message = "This deployment is selecting all pods. A non-empty selector is required."
            await self.recorder.event(d, WARNING, "SelectingAll", message)
            if du.status_int(d, "observedGeneration") < int(d["metadata"].get("generation") or 0):
                d.setdefault("status", {})["observedGeneration"] = d["metadata"]["generation"]
                await self._update_status(d)
            return
        rss = await self.claim_replica_sets(d)
        if is_being_deleted(d):
            new_rs, old_rss = await self.new_and_old(d, rss, create=False)
            await self._sync_status(d, [*old_rss, new_rs], new_rs)
            return
        await self.check_paused_conditions(d)
        spec = d.get("spec") or {}
        if spec.get("paused") or await self.is_scaling_event(d, rss):
            await self.sync_scale(d, rss)
        elif du.is_rolling_update(d):
            await self.rollout_rolling(d, rss)
        else:
            await self.rollout_recreate(d, rss)

    async def claim_replica_sets(self, d: Obj) -> list[Obj]:
        """``getReplicaSetsForDeployment``: the ReplicaSets the Deployment controls after
        adopting and releasing (see :mod:`.ref_manager`)."""
        selector = selector_of(d)
        return await claim_objects(
            self.client,
            DEPLOYMENTS,
            REPLICA_SETS,
            d,
            self.replica_sets.list(d["metadata"].get("namespace") or ""),
            lambda rs: selects(selector, labels_of(rs)),
        )

    async def new_and_old(
        self, d: Obj, rss: list[Obj], *, create: bool
    ) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision``: the new ReplicaSet (synced with the
        Deployment, or created if ``create``) and every other one."""
        existing = du.find_new_replica_set(d, rss)
        old = [
            rs
            for rs in rss
            if existing is None or rs["metadata"]["uid"] != existing["metadata"]["uid"]
        ]
        return await self.get_new_replica_set(d, rss, old, existing, create), old

    async def get_new_replica_set(
        self, d: Obj, rss: list[Obj], old: list[Obj], existing: Obj | None, create: bool
    ) -> Obj | None:
        new_revision = du.max_revision(old) + 1
        now = self.wall()
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = du.set_new_replica_set_annotations(d, rs, new_revision, True)
            min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
            if changed or int(rs["spec"].get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                updated: Obj = await self.client.update(REPLICA_SETS, rs)
                return updated
            needs_update = self._set_revision(
                d, (rs["metadata"].get("annotations") or {}).get(du.REVISION)
            )
            status = d.setdefault("status", {})
            if dp.has_progress_deadline(d) and dp.get_condition(status, dp.PROGRESSING) is None:
                message = f'Found new replica set "{rs["metadata"]["name"]}"'
                dp.set_condition(
                    status, dp.new_condition(dp.PROGRESSING, "True", dp.FOUND_NEW_RS, message, now)
                )
                needs_update = True
            if needs_update:
                await self._update_status(d)
            return rs
        if not create:
            return None
        rs = du.new_replica_set(d, old)
        namespace = d["metadata"].get("namespace") or ""
        try:
            created: Obj = await self.client.create(REPLICA_SETS, rs, namespace=namespace)
            already = False
        except KubeAPIError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                found = self.replica_sets.get(rs["metadata"]["name"], namespace)
                if found is None:
                    raise
                ref = controller_ref_of(found)
                if (
                    ref is not None
                    and ref.get("uid") == d["metadata"]["uid"]
                    and du.equal_ignore_hash(du.template_of(d), du.template_of(found))
                ):
                    created, already = found, True
                else:
                    # A hash collision: another template has this name; try the next hash.
                    status = d.setdefault("status", {})
                    status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
                    await self._update_status(d)
                    raise
            elif has_status_cause(exc, NAMESPACE_TERMINATING_CAUSE):
                raise
            else:
                rs_name = rs["metadata"]["name"]
                message = f'Failed to create new replica set "{rs_name}": {error_text(exc)}'
                if dp.has_progress_deadline(d):
                    dp.set_condition(
                        d.setdefault("status", {}),
                        dp.new_condition(
                            dp.PROGRESSING, "False", dp.FAILED_RS_CREATE, message, now
                        ),
                    )
                    with contextlib.suppress(KubeAPIError):  # the failure to create matters more
                        await self._update_status(d)
                await self.recorder.event(d, WARNING, dp.FAILED_RS_CREATE, message)
                raise
        size = du.replicas(rs)
        if not already and size > 0:
            await self.recorder.event(
                d,
                NORMAL,
                "ScalingReplicaSet",
                f"Scaled up replica set {created['metadata']['name']} from 0 to {size}",
            )
        needs_update = self._set_revision(d, str(new_revision))
        if not already and dp.has_progress_deadline(d):
            message = f'Created new replica set "{created["metadata"]["name"]}"'
            dp.set_condition(
                d.setdefault("status", {}),
                dp.new_condition(dp.PROGRESSING, "True", dp.NEW_REPLICA_SET, message, now),
            )
            needs_update = True
        if needs_update:
            await self._update_status(d)
        return created

    def _set_revision(self, d: Obj, value: str | None) -> bool:
        """``SetDeploymentRevision``: the Deployment's revision annotation (written with its
        status, which does not bump its generation)."""
        if value is None:
            return False
        annotations = d["metadata"].setdefault("annotations", {})
        if annotations.get(du.REVISION) == value:
            return False
        annotations[du.REVISION] = value
        return True

    async def _update_status(self, d: Obj) -> None:
        """Write ``d``'s status (and annotations) through ``/status``; later writes in this
        sync carry the new resourceVersion."""
        updated = await self.client.update(DEPLOYMENTS, d, subresource="status")
        d["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]

    async def check_paused_conditions(self, d: Obj) -> None:
        if not dp.has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        condition = dp.get_condition(status, dp.PROGRESSING)
        if condition is not None and condition.get("reason") == dp.TIMED_OUT:
            return
        paused_recorded = condition is not None and condition.get("reason") == dp.PAUSED
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_recorded:
            new = dp.new_condition(
                dp.PROGRESSING, "Unknown", dp.PAUSED, "Deployment is paused", self.wall()
            )
        elif not paused and paused_recorded:
            new = dp.new_condition(
                dp.PROGRESSING, "Unknown", dp.RESUMED, "Deployment is resumed", self.wall()
            )
        else:
            return
        dp.set_condition(status, new)
        await self._update_status(d)

    async def is_scaling_event(self, d: Obj, rss: list[Obj]) -> bool:
        new_rs, old = await self.new_and_old(d, rss, create=False)
        for rs in du.active([*old, new_rs]):
            desired = du.annotation_int(rs, du.DESIRED_REPLICAS)
            if desired is not None and desired != du.replicas(d):
                return True
        return False

    # --- scaling ------------------------------------------------------------------------------

    async def scale_replica_set(
        self, rs: Obj, size: int, d: Obj, operation: str = ""
    ) -> tuple[bool, Obj]:
        """``scaleReplicaSet``: set the size and the replicas annotations; an Event if the size
        changed."""
        desired, most = du.replicas(d), du.replicas(d) + du.max_surge(d)
        old_size = du.replicas(rs)
        if old_size == size and not du.replicas_annotations_need_update(rs, desired, most):
            return False, rs
        body = copy.deepcopy(rs)
        body["spec"]["replicas"] = size
        du.set_replicas_annotations(body, desired, most)
        updated: Obj = await self.client.update(REPLICA_SETS, body)
        if old_size != size:
            operation = operation or ("up" if old_size < size else "down")
            message = (
                f"Scaled {operation} replica set {rs['metadata']['name']} from {old_size} to {size}"
            )
            await self.recorder.event(d, NORMAL, "ScalingReplicaSet", message)
            return True, updated
        return False, updated

    async def sync_scale(self, d: Obj, rss: list[Obj]) -> None:
        """``sync``: scale for a resize or while paused, clean up if paused, write status."""
        new_rs, old = await self.new_and_old(d, rss, create=False)
        await self.scale(d, new_rs, old)
        if (d.get("spec") or {}).get("paused"):
            await self.cleanup(d, old)
        await self._sync_status(d, [*old, new_rs], new_rs)

    async def scale(self, d: Obj, new_rs: Obj | None, old: list[Obj]) -> None:
        everything = du.active([*old, new_rs])
        if len(everything) <= 1:
            if everything:
                target = everything[0]
            elif new_rs is not None:
                target = new_rs
            elif old:
                target = max(old, key=du.created_key)
            else:
                return
            # Upstream returns here when the sizes already agree, leaving the ReplicaSet's
            # desired-replicas annotation stale if it was: every later sync then counts as a
            # scaling event and the rollout never starts (kubernetes #138036, #138840, open;
            # found here by the cluster suite). scale_replica_set also writes stale
            # annotations, which is the fix those pull requests propose.
            await self.scale_replica_set(target, du.replicas(d), d)
            return
        if new_rs is not None and du.is_saturated(d, new_rs):
            for rs in du.active(old):
                await self.scale_replica_set(rs, 0, d)
            return
        if du.is_rolling_update(d):
            sizes = du.proportional_sizes(d, new_rs, old)
            growing = sum(size for _, size in sizes) > du.replica_count(everything)
            for rs, size in sizes:
                await self.scale_replica_set(rs, size, d, "up" if growing else "down")

    async def cleanup(self, d: Obj, old: list[Obj]) -> None:
        for rs in du.cleanup_candidates(d, old):
            try:
                await self.client.delete(
                    REPLICA_SETS,
                    rs["metadata"]["name"],
                    namespace=rs["metadata"].get("namespace") or "",
                )
            except KubeAPIError as exc:
                if exc.code != 404:
                    raise

    # --- rollouts ------------------------------------------------------------------------

    async def rollout_rolling(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, old = await self.new_and_old(d, rss, create=True)
        assert new_rs is not None
        all_rss: list[Obj] = [*old, new_rs]
        if du.replicas(new_rs) != du.replicas(d):
            if du.replicas(new_rs) > du.replicas(d):
                target = du.replicas(d)
            else:
                target = du.new_rs_new_replicas(d, all_rss, new_rs)
            scaled, new_rs = await self.scale_replica_set(new_rs, target, d)
            if scaled:
                await self._sync_rollout_status(d, [*old, new_rs], new_rs)
                return
        if await self.reconcile_old(d, [*old, new_rs], du.active(old), new_rs):
            await self._sync_rollout_status(d, [*old, new_rs], new_rs)
            return
        if dp.deployment_complete(d, d.get("status") or {}):
            await self.cleanup(d, old)
        await self._sync_rollout_status(d, [*old, new_rs], new_rs)

    async def reconcile_old(self, d: Obj, all_rss: list[Obj], old: list[Obj], new_rs: Obj) -> bool:
        """``reconcileOldReplicaSets``: whether any old pod was asked to go."""
        if du.replica_count(old) == 0:
            return False
        limit = du.max_scaled_down(d, all_rss, new_rs)
        if limit <= 0:
            return False
        scaled = 0
        resized = {rs["metadata"]["uid"]: rs for rs in old}
        for rs, size in du.cleanup_unhealthy_plan(old, limit):
            _, updated = await self.scale_replica_set(rs, size, d)
            scaled += du.replicas(rs) - size
            resized[rs["metadata"]["uid"]] = updated
        old = list(resized.values())
        for rs, size in du.scale_down_old_plan(d, [*old, new_rs], old):
            await self.scale_replica_set(rs, size, d)
            scaled += du.replicas(rs) - size
        return scaled > 0

    async def rollout_recreate(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, old = await self.new_and_old(d, rss, create=False)
        scaled_down = False
        for rs in du.active(old):
            done, _ = await self.scale_replica_set(rs, 0, d)
            scaled_down = scaled_down or done
        if scaled_down or du.old_pods_running(
            old, self.pods.list(d["metadata"].get("namespace") or "")
        ):
            await self._sync_rollout_status(d, [*old, new_rs], new_rs)
            return
        if new_rs is None:
            new_rs, old = await self.new_and_old(d, rss, create=True)
            assert new_rs is not None
        _, new_rs = await self.scale_replica_set(new_rs, du.replicas(d), d)
        if dp.deployment_complete(d, d.get("status") or {}):
            await self.cleanup(d, old)
        await self._sync_rollout_status(d, [*old, new_rs], new_rs)

    # --- status --------------------------------------------------------------------------

    async def _sync_status(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None) -> None:
        """``syncDeploymentStatus``."""
        status = dp.calculate_status(all_rss, new_rs, d, self.wall())
        if not dp.status_equal(status, d.get("status") or {}):
            d["status"] = status
            await self._update_status(d)

    async def _sync_rollout_status(
        self, d: Obj, all_rss: list[Obj | None], new_rs: Obj | None
    ) -> None:
        """``syncRolloutStatus``; with nothing to write, look again at the progress deadline."""
        now = self.wall()
        status = dp.rollout_status(d, all_rss, new_rs, now)
        if dp.status_equal(status, d.get("status") or {}):
            after = dp.requeue_after_for_deadline(d, status, now)
            if after is not None:
                key = meta_namespace_key(d)
                if after == 0:
                    self.queue.add_rate_limited(key)
                else:
                    self.queue.add_after(key, after)
            return
        d["status"] = status
        await self._update_status(d)

    async def run(self, workers: int = 5) -> None:
        await self.worker.run(workers)
