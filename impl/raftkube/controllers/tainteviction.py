"""The taint eviction controller: pods on a node with NoExecute taints they do not tolerate
are deleted, those that tolerate them for a while are deleted when that while is over.

Upstream's ``pkg/controller/tainteviction`` (the ``taint-eviction-controller``, once the node
lifecycle controller's ``NoExecuteTaintManager``). For a pod bound to a node with NoExecute
taints (:func:`eviction_delay`): a taint it does not tolerate means deletion now; otherwise the
smallest ``tolerationSeconds`` among the tolerations used is the delay, and tolerations without
one mean never. A scheduled deletion keeps its start time when the node's taints change and is
cancelled when they are gone, the pod tolerates them forever, or the pod goes ("Cancelling
deletion of Pod ..."). When it fires, the pod gets the ``DisruptionTarget`` condition
(``DeletionByTaintManager``) and a plain DELETE: graceful, never forced (kubernetes PR #35235:
a pod of an unreachable node may still run there, and a force delete would let its
replacement run beside it). A fired deletion is remembered until the pod or the schedule goes,
so a pod in its grace period is not deleted again and again.

Times are the controller's clock.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from raftkube.clock import Clock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.events import NORMAL, EventRecorder
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.nodehealth import NO_EXECUTE, node_taints
from raftkube.controllers.nodelifecycle import NODES, POD_NODE_NAME_INDEX, PODS, pods_by_node
from raftkube.controllers.store import DeletedFinalStateUnknown, object_of
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.controllers.tainteviction")

Obj = dict[str, Any]

EVENT_REASON = "TaintManagerEviction"
DISRUPTION_CONDITION: Obj = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByTaintManager",
    "message": "Taint manager: deleting due to NoExecute taint",
}


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """``Toleration.ToleratesTaint``."""
    effect, key = toleration.get("effect") or "", toleration.get("key") or ""
    if effect and effect != taint.get("effect"):
        return False
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return operator == "Exists"


def matching_tolerations(taints: Sequence[Obj], tolerations: Sequence[Obj]) -> list[Obj] | None:
    """``GetMatchingTolerations``: for each taint the first toleration that tolerates it; None
    if some taint is not tolerated."""
    used: list[Obj] = []
    for taint in taints:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return None
        used.append(match)
    return used


def min_toleration_time(tolerations: Sequence[Obj]) -> float | None:
    """``getMinTolerationTime``: 0 for no tolerations or any non-positive one, the smallest
    ``tolerationSeconds`` otherwise, None (forever) when none has a limit."""
    if not tolerations:
        return 0.0
    limits = [t["tolerationSeconds"] for t in tolerations if t.get("tolerationSeconds") is not None]
    if any(s <= 0 for s in limits):
        return 0.0
    return float(min(limits)) if limits else None


def no_execute_taints(node: Obj) -> list[Obj]:
    return [t for t in node_taints(node) if t.get("effect") == NO_EXECUTE]


def eviction_delay(pod: Obj, taints: Sequence[Obj]) -> float | None:
    """How long ``pod`` may stay on a node with NoExecute ``taints``: 0 = delete now, None =
    never (no taints, or tolerated forever)."""
    if not taints:
        return None
    used = matching_tolerations(taints, (pod.get("spec") or {}).get("tolerations") or [])
    if used is None:
        return 0.0
    return min_toleration_time(used)


@attrs.define
class ScheduledEviction:
    created_at: float
    fire_at: float
    fired: bool = False


class TaintEvictionController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        recorder: EventRecorder,
    ) -> None:
        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.nodes = factory.lister(NODES)
        self.pods = pods_by_node(factory)
        self.scheduled: dict[str, ScheduledEviction] = {}
        self.updates = new_queue(clock, "taint-eviction")
        self.evictions = new_queue(clock, "taint-eviction-timer")
        node_informer = factory.informer_for(NODES)
        pod_informer = factory.informer_for(PODS)
        node_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._node_event,
                update_func=lambda old, new: self._node_event(new),
                delete_func=self._node_event,
            )
        )
        pod_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._pod_event,
                update_func=lambda old, new: self._pod_event(new),
                delete_func=self._pod_event,
            )
        )
        self.worker = Worker(
            "taint-eviction", self.updates, self.sync, (node_informer, pod_informer)
        )
        self.eviction_worker = Worker(
            "taint-eviction-fire", self.evictions, self.fire, (node_informer, pod_informer)
        )

    def _node_event(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.updates.add("node:" + object_of(obj)["metadata"]["name"])

    def _pod_event(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        meta = object_of(obj)["metadata"]
        self.updates.add(f"pod:{meta.get('namespace', '')}/{meta['name']}")

    async def run(self, workers: int = 1) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.worker.run, workers)
            nursery.start_soon(self.eviction_worker.run, 1)

    async def sync(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "node":
            await self.handle_node(name)
        else:
            namespace, _, pod_name = name.partition("/")
            await self.handle_pod(namespace, pod_name)

    async def handle_node(self, name: str) -> None:
        """``handleNodeUpdate``: every pod of the node judged against its NoExecute taints. A
        node deleted leaves its pods' scheduled deletions alone, as upstream does."""
        node = self.nodes.get(name)
        if node is None:
            return
        taints = no_execute_taints(node)
        now = self.clock.now()
        for pod in self.pods.indexer.by_index(POD_NODE_NAME_INDEX, name):
            await self._process_pod(pod, taints, now)

    async def handle_pod(self, namespace: str, name: str) -> None:
        """``handlePodUpdate``: a pod gone cancels its deletion; one on a tainted node is
        judged."""
        pod = self.pods.get(name, namespace)
        key = f"{namespace}/{name}"
        if pod is None:
            await self._cancel(key, namespace, name)
            return
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return
        node = self.nodes.get(node_name)
        taints = no_execute_taints(node) if node is not None else []
        if taints:
            await self._process_pod(pod, taints, self.clock.now())

    async def _process_pod(self, pod: Obj, taints: list[Obj], now: float) -> None:
        """``processPodOnNode``."""
        meta = pod["metadata"]
        key = f"{meta.get('namespace', '')}/{meta['name']}"
        delay = eviction_delay(pod, taints)
        if delay is None:
            await self._cancel(key, meta.get("namespace", ""), meta["name"], pod)
            return
        if delay == 0:
            if key in self.scheduled and self.scheduled[key].fire_at <= now:
                return
            await self._cancel(key, meta.get("namespace", ""), meta["name"], pod)
            self._schedule(key, ScheduledEviction(now, now))
            return
        existing = self.scheduled.get(key)
        if existing is not None:
            if existing.created_at + delay < now + delay:
                return
            await self._cancel(key, meta.get("namespace", ""), meta["name"], pod)
            self._schedule(key, ScheduledEviction(existing.created_at, existing.created_at + delay))
            return
        self._schedule(key, ScheduledEviction(now, now + delay))

    def _schedule(self, key: str, eviction: ScheduledEviction) -> None:
        if key in self.scheduled:
            return  # upstream's AddWork leaves existing (or fired) work alone
        self.scheduled[key] = eviction
        self.evictions.add_after(key, eviction.fire_at - self.clock.now())

    async def _cancel(self, key: str, namespace: str, name: str, pod: Obj | None = None) -> None:
        """``cancelWorkWithEvent``: an event only for a deletion still pending."""
        eviction = self.scheduled.pop(key, None)
        if eviction is not None and not eviction.fired:
            ref = pod or {"kind": "Pod", "metadata": {"name": name, "namespace": namespace}}
            await self.recorder.event(
                _pod_reference(ref), NORMAL, EVENT_REASON, f"Cancelling deletion of Pod {key}"
            )

    async def fire(self, key: str) -> None:
        """The timer of ``key`` ran out: mark the pod and delete it (gracefully)."""
        eviction = self.scheduled.get(key)
        if eviction is None or eviction.fired:
            return
        remaining = eviction.fire_at - self.clock.now()
        if remaining > 0:
            self.evictions.add_after(key, remaining)
            return
        eviction.fired = True
        namespace, _, name = key.partition("/")
        pod = self.pods.get(name, namespace) or {"metadata": {"name": name, "namespace": namespace}}
        await self.recorder.event(
            _pod_reference(pod), NORMAL, EVENT_REASON, f"Marking for deletion Pod {key}"
        )
        try:
            await self._add_condition_and_delete(namespace, name)
        except (KubeAPIError, KubeConnectionError) as exc:
            logger.warning("deleting pod %s failed: %s", key, exc)
            self.scheduled.pop(key, None)  # upstream drops failed work; the next event retries

    async def _add_condition_and_delete(self, namespace: str, name: str) -> None:
        """``addConditionAndDeletePod``: the DisruptionTarget condition, then DELETE with no
        options (the pod's own grace period)."""
        try:
            pod = await self.client.get(PODS, name, namespace=namespace)
        except KubeAPIError as exc:
            if exc.code == 404:
                return
            raise
        status = copy.deepcopy(pod.get("status") or {})
        conditions = status.setdefault("conditions", [])
        existing = next((c for c in conditions if c.get("type") == "DisruptionTarget"), None)
        wanted = {k: v for k, v in DISRUPTION_CONDITION.items()}
        if existing is None or any(existing.get(k) != v for k, v in wanted.items()):
            conditions[:] = [c for c in conditions if c.get("type") != "DisruptionTarget"]
            conditions.append(wanted)
            pod["status"] = status
            await self.client.update(PODS, pod, subresource="status")
        try:
            await self.client.delete(PODS, name, namespace=namespace)
        except KubeAPIError as exc:
            if exc.code != 404:
                raise


def _pod_reference(pod: Obj) -> Obj:
    ref = {k: v for k, v in pod.items() if k in ("kind", "apiVersion", "metadata")}
    ref.setdefault("kind", "Pod")
    ref.setdefault("apiVersion", "v1")
    return ref
