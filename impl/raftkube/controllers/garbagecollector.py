"""The garbage collector: objects whose owners are gone are deleted, and the ``orphan`` and
``foregroundDeletion`` finalizers are carried out (upstream's ``pkg/controller/garbagecollector``).

Its view is a graph over every served, stored, watchable resource (:func:`monitored_resources`;
Events are ignored, as upstream's default ``ignoredResources``): each object by uid, and for each
uid the uids of the objects naming it in their ``ownerReferences`` (owners are found by uid and
nothing else: labels play no part). The informers' handlers keep the graph and queue work:

- an object whose owners the graph does not hold (absent, or not yet seen) goes on the
  attempt-to-delete queue, and so do the dependents of an object that is deleted;
- an object marked for deletion with the ``orphan`` finalizer goes on the attempt-to-orphan
  queue; with ``foregroundDeletion`` it goes on the attempt-to-delete queue with its
  dependents, and it is queued again whenever one of its dependents changes or goes.

``attempt_to_delete(uid)`` (upstream's ``attemptToDeleteItem``) reads the object afresh from the
API and judges each owner reference with an uncached read of the owner
(:func:`classify_references`): *solid* (the owner exists), *dangling* (absent, or another object
by that name), or *waiting* (the owner is being deleted in the foreground and the reference
blocks it). Then :func:`delete_decision`: with a solid owner, dangling and waiting references
are removed from the object; with no solid owner, the object is deleted with a uid
precondition: in the foreground if it has dependents and some owner waits for it, else with the
policy its own finalizers ask for (``orphan``, ``foregroundDeletion``) or in the background. An
object that is itself being deleted in the foreground has its ``foregroundDeletion`` finalizer
removed once no dependent blocks it any more (before that, its blocking dependents are queued).
That is judged on the graph alone, as upstream's ``processDeletingDependentsItem`` does, so a
foreground deletion is best effort: a dependent the graph has not seen yet (still on a lagging
watch, or created after the owner was marked by a controller whose cache showed it live) does
not hold the owner, and goes in the background once the owner is gone (upstream's synchronous
garbage collection design lists this among its unhandled cases).

``attempt_to_orphan(uid)`` removes the owner's reference from each of its dependents, then the
owner's ``orphan`` finalizer.

Simplified: owners known absent are remembered by uid (upstream's ``absentOwnerCache``) in an
unbounded set (uids are never reused); a cycle of foreground deletions is not broken (upstream
unblocks the references between two objects waiting for each other).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import attrs
import trio

from raftkube.apiserver.resources import RESOURCES, ResourceInfo, by_kind
from raftkube.clock import Clock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.controller_utils import is_being_deleted
from raftkube.controllers.informer import (
    ResourceEventHandlerFuncs,
    SharedIndexInformer,
    SharedInformerFactory,
)
from raftkube.controllers.store import DeletedFinalStateUnknown, object_of
from raftkube.kubeclient import KubeAPIError, KubeClient

logger = logging.getLogger("raftkube.controllers.garbagecollector")

Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED = frozenset({"events", "events.events.k8s.io"})


def monitored_resources() -> tuple[ResourceInfo, ...]:
    """Every served resource the collector can watch and delete (upstream's
    ``GetDeletableResources`` minus the ignored ones)."""
    return tuple(
        r
        for r in RESOURCES
        if r.storage and {"list", "watch", "delete"} <= set(r.verbs) and r.qualified not in IGNORED
    )


# --- decisions -----------------------------------------------------------------------------------


def finalizers_of(obj: Obj) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def is_deleting_dependents(obj: Obj) -> bool:
    """Being deleted in the foreground: marked, and holding ``foregroundDeletion``."""
    return is_being_deleted(obj) and FOREGROUND in finalizers_of(obj)


def owner_refs(obj: Obj) -> list[Obj]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, dict) and r.get("uid")]


Verdict = Literal["solid", "dangling", "waiting"]


def judge_reference(ref: Obj, owner: Obj | None) -> Verdict:
    """One owner reference, given the owner as the API holds it by that name (None: absent)."""
    if owner is None or (owner.get("metadata") or {}).get("uid") != ref.get("uid"):
        return "dangling"
    if ref.get("blockOwnerDeletion") and is_deleting_dependents(owner):
        return "waiting"
    return "solid"


@attrs.frozen
class Decision:
    """What ``attempt_to_delete`` does with a dependent: nothing, remove some references, or
    delete it with a propagation policy."""

    action: Literal["none", "remove-references", "delete"]
    remove: tuple[str, ...] = ()
    """Owner uids whose references are to be removed."""
    policy: str = ""


def delete_decision(obj: Obj, verdicts: dict[str, Verdict], has_dependents: bool) -> Decision:
    """``attemptToDeleteItem``'s choice for ``obj`` (not itself being deleted in the
    foreground), given the verdict on each of its owner references by uid."""
    solid = [u for u, v in verdicts.items() if v == "solid"]
    dangling = [u for u, v in verdicts.items() if v == "dangling"]
    waiting = [u for u, v in verdicts.items() if v == "waiting"]
    if not verdicts:
        return Decision("none")
    if solid:
        if not dangling and not waiting:
            return Decision("none")
        return Decision("remove-references", tuple(dangling + waiting))
    if waiting and has_dependents:
        return Decision("delete", policy="Foreground")
    finalizers = finalizers_of(obj)
    if ORPHAN in finalizers:
        return Decision("delete", policy="Orphan")
    if FOREGROUND in finalizers:
        return Decision("delete", policy="Foreground")
    return Decision("delete", policy="Background")


def remove_references_patch(obj: Obj, owner_uids: Sequence[str]) -> Obj:
    """A strategic merge patch dropping the references to ``owner_uids``, applying only to the
    object with ``obj``'s uid."""
    return {
        "metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": u} for u in owner_uids],
            "uid": obj["metadata"]["uid"],
        }
    }


def blocking(ref: Obj, owner_uid: str) -> bool:
    return ref.get("uid") == owner_uid and bool(ref.get("blockOwnerDeletion"))


# --- the graph -----------------------------------------------------------------------------------


@attrs.define
class Node:
    """What the graph knows of one object."""

    resource: ResourceInfo
    obj: Obj

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"]["uid"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace") or "")

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


class GarbageCollector:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        *,
        resources: Sequence[ResourceInfo] | None = None,
    ) -> None:
        self.client = client
        self.nodes: dict[str, Node] = {}
        # Sets of uids are iterated sorted: a set of strings iterates in an order that
        # changes with each process's hash seed, and the order work is queued in is
        # observable (the order of requests), so a simulated run would not replay.
        self.dependents: dict[str, set[str]] = {}
        self.absent_owners: set[str] = set()
        self.attempt_to_delete = new_queue(clock, "garbage_collector_attempt_to_delete")
        self.attempt_to_orphan = new_queue(clock, "garbage_collector_attempt_to_orphan")
        informers: list[SharedIndexInformer] = []
        for r in resources if resources is not None else monitored_resources():
            informer = factory.informer_for(r)
            informer.add_event_handler(self._handler(r))
            informers.append(informer)
        self.delete_worker = Worker(
            "garbagecollector", self.attempt_to_delete, self.attempt_to_delete_item, informers
        )
        self.orphan_worker = Worker(
            "garbagecollector orphan",
            self.attempt_to_orphan,
            self.attempt_to_orphan_item,
            informers,
        )

    # --- the graph builder (upstream's processGraphChanges) ----------------------------------

    def _handler(self, r: ResourceInfo) -> ResourceEventHandlerFuncs:
        return ResourceEventHandlerFuncs(
            add_func=lambda obj: self._observed(r, obj),
            update_func=lambda old, new: self._observed(r, new, old),
            delete_func=lambda obj: self._gone(obj),
        )

    def _observed(self, r: ResourceInfo, obj: Obj, old: Obj | None = None) -> None:
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if not uid:
            return
        previous = self.nodes.get(uid)
        self.nodes[uid] = Node(r, obj)
        old_owners = {ref["uid"] for ref in owner_refs(previous.obj)} if previous else set()
        new_owners = {ref["uid"] for ref in owner_refs(obj)}
        for owner in sorted(old_owners - new_owners):
            self._unlink(owner, uid)
        for owner in sorted(new_owners):
            self.dependents.setdefault(owner, set()).add(uid)
        if any(owner not in self.nodes for owner in new_owners):
            self.attempt_to_delete.add(uid)  # an owner may be gone (or not seen yet)
        for owner in sorted(old_owners | new_owners):
            owner_node = self.nodes.get(owner)
            if owner_node is not None and is_deleting_dependents(owner_node.obj):
                self.attempt_to_delete.add(owner)  # what blocks it may have changed
        if is_being_deleted(obj):
            if ORPHAN in finalizers_of(obj):
                self.attempt_to_orphan.add(uid)
            if FOREGROUND in finalizers_of(obj):
                for dependent in sorted(self.dependents.get(uid, ())):
                    self.attempt_to_delete.add(dependent)
                self.attempt_to_delete.add(uid)

    def _unlink(self, owner: str, dependent: str) -> None:
        deps = self.dependents.get(owner)
        if deps is not None:
            deps.discard(dependent)
            if not deps:
                del self.dependents[owner]

    def _gone(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        gone = object_of(obj)
        uid = str((gone.get("metadata") or {}).get("uid") or "")
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        self.absent_owners.add(uid)
        for owner in sorted({ref["uid"] for ref in owner_refs(node.obj)}):
            self._unlink(owner, uid)
            owner_node = self.nodes.get(owner)
            if owner_node is not None and is_deleting_dependents(owner_node.obj):
                self.attempt_to_delete.add(owner)
        for dependent in sorted(self.dependents.get(uid, ())):
            self.attempt_to_delete.add(dependent)

    # --- reading the API ---------------------------------------------------------------------

    async def _get(self, r: ResourceInfo, name: str, namespace: str) -> Obj | None:
        try:
            obj: Obj = await self.client.get(r, name, namespace=namespace)
        except KubeAPIError as exc:
            if exc.code == 404:
                return None
            raise
        obj.setdefault("kind", r.kind)
        obj.setdefault("apiVersion", r.group_version)
        return obj

    async def classify_references(self, obj: Obj) -> dict[str, Verdict]:
        """The verdict on each owner reference of ``obj``, from uncached reads of the owners."""
        verdicts: dict[str, Verdict] = {}
        namespace = str(obj["metadata"].get("namespace") or "")
        for ref in owner_refs(obj):
            uid = str(ref["uid"])
            if uid in self.absent_owners:
                verdicts[uid] = "dangling"
                continue
            r = by_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
            if r is None:
                raise LookupError(
                    f"owner {ref.get('apiVersion')}/{ref.get('kind')} {ref.get('name')} of "
                    f"{namespace}/{obj['metadata'].get('name')} is not a served kind"
                )
            owner = await self._get(
                r, str(ref.get("name") or ""), namespace if r.namespaced else ""
            )
            verdict = judge_reference(ref, owner)
            if verdict == "dangling" and owner is None:
                self.absent_owners.add(uid)
            verdicts[uid] = verdict
        return verdicts

    # --- attempt to delete -------------------------------------------------------------------

    async def attempt_to_delete_item(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        if is_being_deleted(node.obj) and not is_deleting_dependents(node.obj):
            return
        latest = await self._get(node.resource, node.name, node.namespace)
        if latest is None or latest["metadata"].get("uid") != uid:
            # Gone meanwhile: its dependents are what remains to look at.
            for dependent in sorted(self.dependents.get(uid, ())):
                self.attempt_to_delete.add(dependent)
            return
        if is_deleting_dependents(latest):
            await self.process_deleting_dependents(node, latest)
            return
        verdicts = await self.classify_references(latest)
        decision = delete_decision(latest, verdicts, bool(self.dependents.get(uid)))
        if decision.action == "remove-references":
            patch = remove_references_patch(latest, decision.remove)
            await self._patch(node, patch)
        elif decision.action == "delete":
            await self._delete(node, decision.policy)

    async def process_deleting_dependents(self, node: Node, latest: Obj) -> None:
        """Foreground deletion of ``node``: once no dependent's reference blocks it, remove its
        ``foregroundDeletion`` finalizer; until then, look at the blocking dependents."""
        waiting_on = []
        for dependent in sorted(self.dependents.get(node.uid, ())):
            dep = self.nodes.get(dependent)
            if dep is not None and any(blocking(r, node.uid) for r in owner_refs(dep.obj)):
                waiting_on.append(dependent)
        if not waiting_on:
            await self.remove_finalizer(node, FOREGROUND)
            return
        for dependent in waiting_on:
            dep = self.nodes[dependent]
            if not is_being_deleted(dep.obj) or is_deleting_dependents(dep.obj):
                self.attempt_to_delete.add(dependent)

    async def _patch(self, node: Node, patch: Obj) -> None:
        try:
            await self.client.patch(node.resource, node.name, patch, namespace=node.namespace)
        except KubeAPIError as exc:
            if exc.code not in (404, 409, 422):
                raise

    async def _delete(self, node: Node, policy: str) -> None:
        options = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": {"uid": node.uid},
            "propagationPolicy": policy,
        }
        logger.info("deleting %s %s/%s (%s)", node.resource.kind, node.namespace, node.name, policy)
        try:
            await self.client.delete(
                node.resource, node.name, namespace=node.namespace, options=options
            )
        except KubeAPIError as exc:
            if exc.code not in (404, 409):
                raise

    async def remove_finalizer(self, node: Node, finalizer: str) -> None:
        """Take ``finalizer`` off the object, by a merge patch carrying the resourceVersion it
        was computed from (retried on a conflict, as upstream's ``RetryOnConflict``)."""
        for _ in range(5):
            latest = await self._get(node.resource, node.name, node.namespace)
            if latest is None or latest["metadata"].get("uid") != node.uid:
                return
            finalizers = finalizers_of(latest)
            if finalizer not in finalizers:
                return
            patch = {
                "metadata": {
                    "finalizers": [f for f in finalizers if f != finalizer],
                    "resourceVersion": latest["metadata"]["resourceVersion"],
                }
            }
            try:
                await self.client.patch(
                    node.resource, node.name, patch, patch_type="merge", namespace=node.namespace
                )
                return
            except KubeAPIError as exc:
                if exc.code == 404:
                    return
                if exc.code != 409:
                    raise
        raise RuntimeError(
            f"removing {finalizer} from {node.namespace}/{node.name} kept conflicting"
        )

    # --- attempt to orphan -------------------------------------------------------------------

    async def attempt_to_orphan_item(self, uid: str) -> None:
        """``attemptToOrphanWorker``: drop the owner from every dependent, then ``orphan``."""
        node = self.nodes.get(uid)
        if node is None or ORPHAN not in finalizers_of(node.obj):
            return
        failures: list[Exception] = []
        for dependent in sorted(self.dependents.get(uid, ())):
            dep = self.nodes.get(dependent)
            if dep is None:
                continue
            try:
                await self._patch(dep, remove_references_patch(dep.obj, [uid]))
            except KubeAPIError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        await self.remove_finalizer(node, ORPHAN)

    async def run(self, workers: int = 20) -> None:
        """Both queues' workers (``--concurrent-gc-syncs`` each), until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.delete_worker.run, workers)
            nursery.start_soon(self.orphan_worker.run, workers)
