"""The namespace controller: a namespace being deleted is emptied, then finalized.

Upstream's ``pkg/controller/namespace`` (``NamespaceController`` and its
``NamespacedResourcesDeleter``). Deleting a namespace only marks it: the API server sets
``deletionTimestamp`` and phase ``Terminating`` and keeps it while ``spec.finalizers`` holds
``kubernetes``. For such a namespace (put on the queue ``deletion_grace_period`` after the
informer sees it, 5 s upstream, so that every API server has seen the deletion and refuses new
content), ``sync_namespace``:

1. reads the namespace from the API server (not the cache: finalizing a stale copy would be
   refused anyway, and a namespace already gone needs nothing);
2. sets phase Terminating if it is not yet;
3. if ``kubernetes`` is no longer among its finalizers, stops: it is done;
4. deletes every namespaced, stored resource's collection in it (background propagation),
   then lists what remains; records the outcome in the namespace's five deletion conditions
   (``NamespaceDeletionContentFailure``, ``NamespaceContentRemaining``,
   ``NamespaceFinalizersRemaining``...) with upstream's reasons and messages;
5. if anything failed, retries with back-off; if content remains (pods in their grace
   period, objects held by finalizers), looks again after ``estimate / 2 + 1`` seconds;
6. otherwise removes ``kubernetes`` from ``spec.finalizers`` with a PUT to
   ``namespaces/{name}/finalize``, after which the API server deletes the namespace.

The resources walked are the served table's (:func:`namespaced_stored_resources`) instead of
discovery, so the discovery and group-version-parsing conditions are always the "ok" ones.
The decisions (status, conditions, finalizers) are the plain functions below.
"""

from __future__ import annotations

import copy
import datetime
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from raftkube.apiserver.resources import ResourceInfo
from raftkube.clock import Clock
from raftkube.controllers.controller import RequeueAfter, Worker, new_queue
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.resources import NAMESPACES, namespaced_stored_resources
from raftkube.kubeclient import KubeAPIError, KubeClient

logger = logging.getLogger("raftkube.controllers.namespace")

Obj = dict[str, Any]

FINALIZER_KUBERNETES = "kubernetes"
NAMESPACE_DELETION_GRACE_PERIOD = 5.0

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"

CONDITION_TYPES = (
    DISCOVERY_FAILURE,
    GV_PARSING_FAILURE,
    CONTENT_FAILURE,
    CONTENT_REMAINING,
    FINALIZERS_REMAINING,
)
OK_MESSAGES = {
    DISCOVERY_FAILURE: "All resources successfully discovered",
    GV_PARSING_FAILURE: "All legacy kube types successfully parsed",
    CONTENT_FAILURE: "All content successfully deleted, may be waiting on finalization",
    CONTENT_REMAINING: "All content successfully removed",
    FINALIZERS_REMAINING: "All content-preserving finalizers finished",
}
OK_REASONS = {
    DISCOVERY_FAILURE: "ResourcesDiscovered",
    GV_PARSING_FAILURE: "ParsedGroupVersions",
    CONTENT_FAILURE: "ContentDeleted",
    CONTENT_REMAINING: "ContentRemoved",
    FINALIZERS_REMAINING: "ContentHasNoFinalizers",
}


def rfc3339(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(int(seconds), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_being_deleted(namespace: Obj) -> bool:
    return bool((namespace.get("metadata") or {}).get("deletionTimestamp"))


def with_terminating_phase(namespace: Obj) -> Obj | None:
    """The namespace with phase Terminating, if it is being deleted and not yet so marked."""
    status = namespace.get("status") or {}
    if not is_being_deleted(namespace) or status.get("phase") == "Terminating":
        return None
    updated = copy.deepcopy(namespace)
    updated.setdefault("status", {})["phase"] = "Terminating"
    return updated


def is_finalized(namespace: Obj) -> bool:
    """Whether the ``kubernetes`` finalizer is gone (this controller's work is done)."""
    return FINALIZER_KUBERNETES not in ((namespace.get("spec") or {}).get("finalizers") or [])


def without_kubernetes_finalizer(namespace: Obj) -> Obj:
    """The body of the ``finalize`` PUT: the namespace minus our finalizer."""
    updated = copy.deepcopy(namespace)
    spec = updated.setdefault("spec", {})
    spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER_KUBERNETES]
    return updated


@attrs.frozen
class ContentReport:
    """What emptying a namespace left: per resource, the objects still there; the errors."""

    remaining: Mapping[ResourceInfo, Sequence[Obj]]
    errors: Sequence[str] = ()

    def estimate(self) -> int:
        """Seconds until the remaining content should be gone: the longest grace period of a
        remaining pod that has not finished (upstream's ``estimateGracefulTermination``)."""
        longest = 0
        for resource, objs in self.remaining.items():
            if resource.resource != "pods":
                continue
            for pod in objs:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                grace = (pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 0
                longest = max(longest, int(grace))
        return longest

    def has_remaining(self) -> bool:
        return any(self.remaining.values())


def failure_conditions(report: ContentReport) -> list[Obj]:
    """The failing deletion conditions ``report`` calls for, worded as upstream."""
    conditions: list[Obj] = []
    if report.errors:
        errors = sorted(report.errors)
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        message = f"Failed to delete all resource types, {len(errors)} remaining: {joined}"
        conditions.append(_condition(CONTENT_FAILURE, "True", "ContentDeletionFailed", message))
    counts: list[str] = []
    finalizers: dict[str, int] = {}
    for resource, objs in report.remaining.items():
        if not objs:
            continue
        counts.append(f"{resource.resource}.{resource.group} has {len(objs)} resource instances")
        for obj in objs:
            for finalizer in (obj.get("metadata") or {}).get("finalizers") or []:
                finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
    if counts:
        message = "Some resources are remaining: " + ", ".join(sorted(counts))
        conditions.append(_condition(CONTENT_REMAINING, "True", "SomeResourcesRemain", message))
    if finalizers:
        held = sorted(f"{f} in {n} resource instances" for f, n in finalizers.items())
        message = "Some content in the namespace has finalizers remaining: " + ", ".join(held)
        conditions.append(_condition(FINALIZERS_REMAINING, "True", "SomeFinalizersRemain", message))
    return conditions


def _condition(kind: str, status: str, reason: str, message: str) -> Obj:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def updated_conditions(
    conditions: Sequence[Obj], failures: Sequence[Obj], now: float
) -> list[Obj] | None:
    """The namespace's conditions after an attempt that found ``failures`` (the others of the
    five types get their "ok" variant), or None if nothing changed. As upstream's
    ``updateConditions``: a new type is added with ``lastTransitionTime`` now; a changed one
    keeps its time unless its status changed; other condition types are kept as they are."""
    result = [dict(c) for c in conditions]
    changed = False
    for kind in CONDITION_TYPES:
        new = next((c for c in failures if c["type"] == kind), None)
        if new is None:
            new = _condition(kind, "False", OK_REASONS[kind], OK_MESSAGES[kind])
        old = next((c for c in result if c.get("type") == kind), None)
        if old is None:
            result.append({**new, "lastTransitionTime": rfc3339(now)})
            changed = True
        elif any(old.get(f) != new[f] for f in ("status", "reason", "message")):
            if old.get("status") != new["status"]:
                old["lastTransitionTime"] = rfc3339(now)
            old.update(status=new["status"], reason=new["reason"], message=new["message"])
            changed = True
    return result if changed else None


BACKGROUND_DELETE = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}


class NamespaceController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        *,
        wall: Callable[[], float] = time.time,
        deletion_grace_period: float = NAMESPACE_DELETION_GRACE_PERIOD,
        resources: Sequence[ResourceInfo] | None = None,
    ) -> None:
        self.client = client
        self.wall = wall
        self.deletion_grace_period = deletion_grace_period
        self.resources = tuple(resources or namespaced_stored_resources())
        self.queue = new_queue(clock, "namespace")
        informer = factory.informer_for(NAMESPACES)
        informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._enqueue, update_func=lambda old, new: self._enqueue(new)
            )
        )
        self.worker = Worker("namespace", self.queue, self.sync_namespace, (informer,))

    def _enqueue(self, namespace: Obj) -> None:
        if is_being_deleted(namespace):
            self.queue.add_after(namespace["metadata"]["name"], self.deletion_grace_period)

    async def sync_namespace(self, name: str) -> None:
        try:
            namespace = await self.client.get(NAMESPACES, name)
        except KubeAPIError as exc:
            if exc.code == 404:
                return
            raise
        if not is_being_deleted(namespace):
            return
        terminating = with_terminating_phase(namespace)
        if terminating is not None:
            namespace = await self.client.update(NAMESPACES, terminating, subresource="status")
        if is_finalized(namespace):
            return
        report = await self.delete_all_content(name)
        conditions = updated_conditions(
            (namespace.get("status") or {}).get("conditions") or [],
            failure_conditions(report),
            self.wall(),
        )
        if conditions is not None:
            body = copy.deepcopy(namespace)
            body.setdefault("status", {})["conditions"] = conditions
            try:
                namespace = await self.client.update(NAMESPACES, body, subresource="status")
            except KubeAPIError as exc:
                logger.warning("couldn't update status condition for namespace %r: %s", name, exc)
        if report.errors:
            raise RuntimeError(f"deletion of namespace {name} failed: {report.errors}")
        if report.has_remaining():
            estimate = report.estimate()
            raise RequeueAfter(estimate // 2 + 1, f"namespace {name}: content remains")
        await self.finalize(name)

    async def delete_all_content(self, namespace: str) -> ContentReport:
        """Delete every collection in ``namespace``, then list what is left."""
        remaining: dict[ResourceInfo, list[Obj]] = {}
        errors: list[str] = []
        for resource in self.resources:
            try:
                if "deletecollection" in resource.verbs:
                    await self.client.delete(
                        resource, namespace=namespace, options=BACKGROUND_DELETE
                    )
                else:
                    listed = await self.client.list(resource, namespace=namespace)
                    for obj in listed.get("items") or []:
                        await self._delete_one(resource, namespace, obj["metadata"]["name"])
                listed = await self.client.list(resource, namespace=namespace)
                remaining[resource] = list(listed.get("items") or [])
            except KubeAPIError as exc:
                if exc.code in (404, 405):
                    continue
                errors.append(f"{resource.qualified}: {exc.message}")
        return ContentReport(remaining, errors)

    async def _delete_one(self, resource: ResourceInfo, namespace: str, name: str) -> None:
        try:
            await self.client.delete(resource, name, namespace=namespace, options=BACKGROUND_DELETE)
        except KubeAPIError as exc:
            if exc.code != 404:
                raise

    async def finalize(self, name: str) -> None:
        """Take our finalizer off (the latest namespace, retried on a conflict)."""
        for _ in range(5):
            try:
                namespace = await self.client.get(NAMESPACES, name)
                if is_finalized(namespace):
                    return
                await self.client.update(
                    NAMESPACES, without_kubernetes_finalizer(namespace), subresource="finalize"
                )
                return
            except KubeAPIError as exc:
                if exc.code == 404:
                    return
                if exc.code != 409:
                    raise
        raise RuntimeError(f"namespace {name}: finalize kept conflicting")

    async def run(self, workers: int = 10) -> None:
        await self.worker.run(workers)
