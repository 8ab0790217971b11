"""The scheduler process: informers feeding the cache and the queue, the scheduling loop, and
bindings that run concurrently with the next decisions (upstream's ``Scheduler.Run``).

**Informers.** One on nodes and one on pods that are not finished (``status.phase`` neither
Succeeded nor Failed), as kube-scheduler lists them. Handlers only move data:

- an *assigned* pod (``spec.nodeName`` set) goes to the cache (confirming an assumption when it
  is ours); its deletion frees capacity, so unschedulable pods are moved to be tried again;
- an *unassigned* pod with ``schedulerName: default-scheduler`` that is not being deleted goes
  to the queue; when it becomes assigned (bound, by us or anyone) it leaves the queue;
- a node added, or changed in what filters read (allocatable, labels, taints,
  unschedulable), is a reason to try unschedulable pods again.

Informers run from the start, leader or not, so a new leader has a warm cache.

**The loop** (:meth:`Scheduler.schedule_one`): pop a pod, decide
(:func:`~raftkube.scheduler.algorithm.schedule_pod`, synchronously: no informer change can
land during a decision), *assume* the pod on its node and start its binding in the
background, then take the next pod. A binding posts ``pods/{name}/binding``; on success an
Event ``Scheduled`` is recorded, on failure the assumption is forgotten, unschedulable pods
are moved (the capacity is back), and the pod is requeued with a ``SchedulerError``. A pod
that fits nowhere gets the ``FailedScheduling`` Event and its ``PodScheduled=False``
condition, and waits in the queue's unschedulable set.

Every wait is on the :class:`~raftkube.clock.Clock` passed in; ``rng`` breaks score ties.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from raftkube.apiserver.resources import ResourceInfo, lookup
from raftkube.clock import Clock
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedIndexInformer
from raftkube.controllers.listwatch import ListWatch
from raftkube.controllers.store import DeletedFinalStateUnknown, object_of
from raftkube.controllers.synctrace import sync_started
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError
from raftkube.scheduler.algorithm import schedule_pod
from raftkube.scheduler.cache import SchedulerCache
from raftkube.scheduler.nodeinfo import PodInfo, pod_key
from raftkube.scheduler.queue import QueuedPodInfo, SchedulingQueue
from raftkube.scheduler.recorder import (
    DEFAULT_SCHEDULER_NAME,
    REASON_SCHEDULER_ERROR,
    REASON_UNSCHEDULABLE,
    EventRecorder,
    pod_scheduled_false,
    scheduled_message,
    truncate_message,
)

logger = logging.getLogger("raftkube.scheduler")

Obj = dict[str, Any]

NOT_FINISHED = "status.phase!=Succeeded,status.phase!=Failed"


def _core(name: str) -> ResourceInfo:
    info = lookup("", "v1", name)
    assert info is not None, name
    return info


PODS = _core("pods")
NODES = _core("nodes")


def assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _node_view(node: Obj) -> tuple[Any, ...]:
    """What of a node the filters read; a change to anything else (heartbeats, images) does
    not make a pod fit."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    labels = (node.get("metadata") or {}).get("labels")
    return (status.get("allocatable"), labels, spec.get("taints"), spec.get("unschedulable"))


@attrs.define(eq=False)
class Scheduler:
    """One scheduler profile; see the module docstring. Run :meth:`run_informers` always and
    :meth:`run` while leading."""

    client: KubeClient
    clock: Clock
    rng: random.Random = attrs.field(factory=random.Random)
    wall: Callable[[], float] = time.time
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    percentage_of_nodes_to_score: int = 0
    identity: str = ""
    cache: SchedulerCache = attrs.field(factory=SchedulerCache)
    queue: SchedulingQueue = attrs.field(init=False)
    recorder: EventRecorder = attrs.field(init=False)
    pod_informer: SharedIndexInformer = attrs.field(init=False)
    node_informer: SharedIndexInformer = attrs.field(init=False)
    next_start_node_index: int = attrs.field(init=False, default=0)
    bound: int = attrs.field(init=False, default=0)
    """Bindings that succeeded."""
    unschedulable_attempts: int = attrs.field(init=False, default=0)
    binding_errors: int = attrs.field(init=False, default=0)
    first_bind_at: float | None = attrs.field(init=False, default=None)
    last_bind_at: float | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.queue = SchedulingQueue(self.clock)
        self.recorder = EventRecorder(self.client, self.wall, host=self.identity)
        rng = random.Random(self.rng.random())
        self.pod_informer = SharedIndexInformer(
            ListWatch(self.client, PODS, field_selector=NOT_FINISHED),
            clock=self.clock,
            name="pods",
            rng=rng,
        )
        self.node_informer = SharedIndexInformer(
            ListWatch(self.client, NODES), clock=self.clock, name="nodes", rng=rng
        )
        self.pod_informer.add_event_handler(
            ResourceEventHandlerFuncs(self._pod_added, self._pod_updated, self._pod_deleted)
        )
        self.node_informer.add_event_handler(
            ResourceEventHandlerFuncs(self._node_added, self._node_updated, self._node_deleted)
        )

    # --- informer handlers -----------------------------------------------------------------

    def _responsible(self, pod: Obj) -> bool:
        spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
        return spec.get(
            "schedulerName", DEFAULT_SCHEDULER_NAME
        ) == self.scheduler_name and not meta.get("deletionTimestamp")

    def _pod_added(self, pod: Obj) -> None:
        if assigned(pod):
            self.cache.add_pod(pod)
        elif self._responsible(pod) and not self.cache.is_assumed(pod_key(pod)):
            self.queue.add(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if assigned(new):
            if not assigned(old):
                self.queue.delete(old)
            self.cache.update_pod(new)
        elif not self._responsible(new):
            self.queue.delete(new)
        elif _resource_version(old) != _resource_version(new) and not self.cache.is_assumed(
            pod_key(new)
        ):
            # An assumed pod is bound or being bound: an older, unassigned version of it (a
            # relist, a status write) must not queue it again (upstream skips identical
            # updates too, kubernetes #96071).
            self.queue.update(new)

    def _pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = object_of(obj)
        if assigned(pod):
            self.cache.remove_pod(pod)
            self.queue.move_all_to_active_or_backoff()
        else:
            self.queue.delete(pod)

    def _node_added(self, node: Obj) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.cache.update_node(new)
        if _node_view(old) != _node_view(new):
            self.queue.move_all_to_active_or_backoff()

    def _node_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.cache.remove_node(object_of(obj))

    # --- running ---------------------------------------------------------------------------

    async def run_informers(self) -> None:
        """Fill and follow the node and pod caches until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.node_informer.run, name="node informer")
            nursery.start_soon(self.pod_informer.run, name="pod informer")

    async def wait_for_cache_sync(self) -> None:
        await self.node_informer.wait_for_sync()
        await self.pod_informer.wait_for_sync()

    async def run(self) -> None:
        """Schedule pods until cancelled (the informers must be running)."""
        await self.wait_for_cache_sync()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.queue.run, name="scheduling queue timer")
            nursery.start_soon(self.recorder.run, name="event recorder")
            while True:
                info = await self.queue.pop()
                self.schedule_one(info, nursery)
                # Let bindings and informers run between decisions.
                await trio.lowlevel.checkpoint()

    def schedule_one(self, queued: QueuedPodInfo, nursery: trio.Nursery) -> None:
        """Decide for one popped pod; its binding (or failure write) runs in ``nursery``."""
        cycle = self.queue.scheduling_cycle
        current = self.pod_informer.indexer.get_by_key(queued.key)
        skip = current is None or assigned(current) or not self._responsible(current)
        if skip or self.cache.is_assumed(queued.key):
            # Gone, bound, not ours, or assumed by an earlier cycle (upstream's
            # skipPodSchedule): nothing to decide.
            self.queue.done(queued.key)
            return
        assert current is not None
        sync_started("scheduler", queued.key, (self.pod_informer, self.node_informer))
        queued.pod = current
        info = PodInfo.of(current)
        decision = schedule_pod(
            info,
            self.cache.node_infos(),
            self.next_start_node_index,
            self.rng,
            self.percentage_of_nodes_to_score,
        )
        self.next_start_node_index = decision.next_start_index
        if decision.node is None:
            assert decision.error is not None
            self.unschedulable_attempts += 1
            self._failed(queued, cycle, REASON_UNSCHEDULABLE, decision.error.message(), nursery)
            return
        self.cache.assume_pod(info, decision.node)
        nursery.start_soon(self._bind, queued, cycle, decision.node, nursery)

    async def _bind(
        self, queued: QueuedPodInfo, cycle: int, node_name: str, nursery: trio.Nursery
    ) -> None:
        pod = queued.pod
        meta = pod.get("metadata") or {}
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "target": {"kind": "Node", "name": node_name},
        }
        try:
            await self.client.create(
                PODS,
                binding,
                namespace=str(meta.get("namespace") or ""),
                name=str(meta.get("name") or ""),
                subresource="binding",
            )
        except (KubeAPIError, KubeConnectionError) as exc:
            self.binding_errors += 1
            # The informer may already have replaced the assumption with the pod as bound
            # (by someone else): then there is nothing to forget.
            if self.cache.is_assumed(queued.key):
                self.cache.forget_pod(queued.key)
            self.queue.move_all_to_active_or_backoff()
            self._failed(queued, cycle, REASON_SCHEDULER_ERROR, str(exc), nursery)
            return
        self.cache.finish_binding(queued.key)
        self.queue.done(queued.key)
        self.bound += 1
        now = self.clock.now()
        if self.first_bind_at is None:
            self.first_bind_at = now
        self.last_bind_at = now
        self.recorder.event(pod, "Normal", "Scheduled", scheduled_message(pod, node_name))

    def _failed(
        self,
        queued: QueuedPodInfo,
        cycle: int,
        reason: str,
        message: str,
        nursery: trio.Nursery,
    ) -> None:
        """Upstream's ``handleSchedulingFailure``: the Event, the requeue (only if the pod
        still exists unassigned), the condition."""
        pod = queued.pod
        self.recorder.event(pod, "Warning", "FailedScheduling", truncate_message(message))
        current = self.pod_informer.indexer.get_by_key(queued.key)
        if current is None or assigned(current):
            self.queue.done(queued.key)
            return
        queued.pod = current
        self.queue.add_unschedulable(queued, cycle)
        condition = pod_scheduled_false(current, reason, message, self.wall())
        if condition is not None:
            nursery.start_soon(self._write_condition, current, condition)

    async def _write_condition(self, pod: Obj, condition: Obj) -> None:
        meta = pod.get("metadata") or {}
        patch = {"status": {"conditions": [condition]}}
        try:
            await self.client.patch(
                PODS,
                str(meta.get("name") or ""),
                patch,
                namespace=str(meta.get("namespace") or ""),
                subresource="status",
            )
        except (KubeAPIError, KubeConnectionError) as exc:
            logger.warning("unable to write the condition of %s: %s", pod_key(pod), exc)
