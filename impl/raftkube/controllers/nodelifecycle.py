"""The node lifecycle controller: node health from heartbeats, taints from health, and the
zone disruption rules that decide how fast NoExecute taints (and so evictions) may spread.

Upstream's ``pkg/controller/nodelifecycle`` ``Controller``, in three loops:

- **monitor** (every ``--node-monitor-period``, 5 s): for each cached node,
  :func:`~raftkube.controllers.nodehealth.update_node_health` (the node's Ready heartbeat and
  its Lease in ``kube-node-lease``, judged by this controller's own clock; past
  ``--node-monitor-grace-period``, 40 s, the conditions become Unknown via
  ``nodes/{name}/status``). Then, from the Ready condition the node *had*: False or Unknown
  queues the node in its zone's tainting queue (or swaps a not-ready taint for an unreachable
  one at once, and back); True removes both NoExecute taints. A node that just stopped being
  Ready gets a ``NodeNotReady`` Event and its pods' Ready condition set False. Last,
  :func:`~raftkube.controllers.nodehealth.handle_disruption` sets each zone's tainting rate.
- **NoExecute tainting** (every 100 ms): each zone's
  :class:`~raftkube.controllers.evictionqueue.RateLimitedTimedQueue` hands out due nodes as its
  token bucket allows, and each gets ``node.kubernetes.io/unreachable`` or ``not-ready``
  (NoExecute, with ``timeAdded``), the opposite one removed. The pods themselves are evicted
  by :mod:`~raftkube.controllers.tainteviction` once their toleration runs out.
- **NoSchedule tainting** (a work queue of node names fed by node events): the condition
  taints (``not-ready``, ``unreachable``, the pressure ones, ``unschedulable``) follow the
  conditions.

Taints are written as upstream's ``PatchNodeTaints`` writes them: the whole list, with the
node's ``resourceVersion`` as a precondition, retried on conflict against a fresh read. Every
time comes from the injected clock; ``wall`` only stamps ``timeAdded`` and condition times.

A pod newly bound to a node the controller last saw not Ready has its Ready condition set
False at once (``processPod``).

Simplified: the monitor pass handles nodes one after the other instead of upstream's eight in
parallel.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from raftkube.clock import Clock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.events import NORMAL, WARNING, EventRecorder
from raftkube.controllers.evictionqueue import RateLimitedTimedQueue
from raftkube.controllers.informer import (
    Lister,
    ResourceEventHandlerFuncs,
    SharedInformerFactory,
)
from raftkube.controllers.nodehealth import (
    NODE_LEASE_NAMESPACE,
    NOT_READY_TAINT,
    UNREACHABLE_TAINT,
    DisruptionConfig,
    NodeHealth,
    ZoneState,
    excluded_from_disruption,
    handle_disruption,
    no_schedule_taint_changes,
    node_condition,
    node_taints,
    ready_status,
    rfc3339,
    swap_taints,
    taint_exists,
    update_node_health,
    zone_key,
)
from raftkube.controllers.resources import LEASES, resource
from raftkube.controllers.synctrace import sync_started
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.controllers.nodelifecycle")

Obj = dict[str, Any]

NODES = resource("", "v1", "nodes")
PODS = resource("", "v1", "pods")
POD_NODE_NAME_INDEX = "spec.nodeName"
NODE_HEALTH_UPDATE_RETRY = 5
UPDATE_TAINT_RETRIES = 5


def pod_node_name_index(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def pods_by_node(factory: SharedInformerFactory) -> Lister:
    """The pod lister, with the pod informer indexed by ``spec.nodeName`` (once)."""
    informer = factory.informer_for(PODS)
    # Another controller sharing the informer may have added it already.
    with contextlib.suppress(ValueError):
        informer.add_indexers({POD_NODE_NAME_INDEX: pod_node_name_index})
    return Lister(informer.indexer)


def node_reference(node: Obj, uid: str | None = None) -> Obj:
    """What ``RecordNodeEvent`` and ``RecordNodeStatusChange`` refer to: a Node by name, with
    its uid (the route controller passes the node's *name* as uid, and so does this when
    asked)."""
    meta = node.get("metadata") or {}
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": meta.get("name"), "uid": uid if uid is not None else meta.get("uid")},
    }


@attrs.frozen
class NodeLifecycleConfig:
    """kube-controller-manager's flags for this controller, with upstream's defaults."""

    node_monitor_period: float = 5.0  # --node-monitor-period
    node_monitor_grace_period: float = 40.0  # --node-monitor-grace-period
    node_startup_grace_period: float = 60.0  # --node-startup-grace-period
    eviction_period: float = 0.1  # scheduler.NodeEvictionPeriod
    disruption: DisruptionConfig = attrs.field(factory=DisruptionConfig)


class NodeLifecycleController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        recorder: EventRecorder,
        *,
        config: NodeLifecycleConfig = NodeLifecycleConfig(),
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.config = config
        self.wall = wall
        node_informer = factory.informer_for(NODES)
        lease_informer = factory.informer_for(LEASES)
        self.nodes = factory.lister(NODES)
        self.leases = factory.lister(LEASES)
        self.pods = pods_by_node(factory)
        self._informers = (node_informer, lease_informer, factory.informer_for(PODS))
        self.health: dict[str, NodeHealth] = {}
        self.known_nodes: dict[str, Obj] = {}
        self.zone_states: dict[str, ZoneState] = {}
        self.tainters: dict[str, RateLimitedTimedQueue] = {}
        self._nodes_to_retry: set[str] = set()
        self.no_schedule_queue = new_queue(clock, "node-lifecycle-noschedule")
        node_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._node_changed, update_func=lambda old, new: self._node_changed(new)
            )
        )
        self.no_schedule_worker = Worker(
            "node-lifecycle-noschedule",
            self.no_schedule_queue,
            self.sync_no_schedule_taints,
            (node_informer,),
        )
        self.pod_queue = new_queue(clock, "node-lifecycle-pods")
        factory.informer_for(PODS).add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=lambda pod: self._pod_updated(None, pod), update_func=self._pod_updated
            )
        )
        self.pod_worker = Worker("node-lifecycle-pods", self.pod_queue, self.process_pod)

    def _pod_updated(self, old: Obj | None, new: Obj) -> None:
        """``podUpdated``: a pod newly bound to a node (or moved) is looked at."""
        node = (new.get("spec") or {}).get("nodeName")
        if node and (old is None or (old.get("spec") or {}).get("nodeName") != node):
            meta = new["metadata"]
            self.pod_queue.add(f"{meta.get('namespace', '')}/{meta['name']}")

    def _node_changed(self, node: Obj) -> None:
        self.no_schedule_queue.add(node["metadata"]["name"])

    async def run(self, workers: int = 1) -> None:
        for informer in self._informers:
            await informer.wait_for_sync()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.no_schedule_worker.run, workers)
            nursery.start_soon(self.pod_worker.run, workers)
            nursery.start_soon(self._every, self.config.node_monitor_period, self.monitor_pass)
            nursery.start_soon(self._every, self.config.eviction_period, self.tainting_pass)

    async def _every(self, period: float, work: Callable[[], Any]) -> None:
        """``wait.Until``: run ``work``, then again ``period`` after it started."""
        while True:
            started = self.clock.now()
            try:
                await work()
            except (KubeAPIError, KubeConnectionError) as exc:
                logger.warning("node lifecycle pass failed: %s", exc)
            await self.clock.sleep_until(started + period)

    # --- monitor ---------------------------------------------------------------------------

    def _ensure_zone(self, node: Obj) -> None:
        zone = zone_key(node)
        if zone not in self.zone_states:
            self.zone_states[zone] = ZoneState.INITIAL
            self.tainters[zone] = RateLimitedTimedQueue(
                self.config.disruption.eviction_rate, self.clock.now()
            )

    async def monitor_pass(self) -> None:
        """``monitorNodeHealth``: one pass over every cached node (see the module docstring)."""
        sync_started("node-lifecycle-monitor", "nodes", self._informers[:2])
        nodes = self.nodes.list()
        names = {n["metadata"]["name"] for n in nodes}
        for node in nodes:
            name = node["metadata"]["name"]
            if name in self.known_nodes:
                self._ensure_zone(node)
                continue
            await self.recorder.event(
                node_reference(node),
                NORMAL,
                "RegisteredNode",
                f"Node {name} event: Registered Node {name} in Controller",
            )
            self.known_nodes[name] = node
            self._ensure_zone(node)
            await self.mark_node_as_reachable(node)
        for name in [n for n in self.known_nodes if n not in names]:
            gone = self.known_nodes.pop(name)
            self.health.pop(name, None)
            await self.recorder.event(
                node_reference(gone),
                NORMAL,
                "RemovingNode",
                f"Node {name} event: Removing Node {name} from Controller",
            )

        zone_ready: dict[str, list[str | None]] = {}
        for cached in nodes:
            result = await self._update_health(copy.deepcopy(cached))
            if result is None:
                continue
            updated, observed, current = result
            if not excluded_from_disruption(updated):
                status = None if current is None else current.get("status")
                zone_ready.setdefault(zone_key(updated), []).append(status)
            if current is None:
                continue
            await self.process_taint_based_eviction(updated, observed)
            name = updated["metadata"]["name"]
            became_not_ready = current.get("status") != "True" and observed["status"] == "True"
            if became_not_ready:
                await self.recorder.event(
                    node_reference(updated),
                    NORMAL,
                    "NodeNotReady",
                    f"Node {name} status is now: NodeNotReady",
                )
            retry = name in self._nodes_to_retry and observed["status"] != "True"
            pods = self.pods.indexer.by_index(POD_NODE_NAME_INDEX, name)
            if (became_not_ready or retry) and not await self.mark_pods_not_ready(pods):
                self._nodes_to_retry.add(name)
                continue
            self._nodes_to_retry.discard(name)
        await self._handle_disruption(zone_ready, nodes)

    async def _update_health(self, node: Obj) -> tuple[Obj, Obj, Obj | None] | None:
        """``tryUpdateNodeHealth`` with upstream's retries against a fresh read; the node (as
        written, if it was), its observed and its current Ready condition."""
        name = node["metadata"]["name"]
        for _ in range(NODE_HEALTH_UPDATE_RETRY):
            lease = self.leases.get(name, NODE_LEASE_NAMESPACE)
            verdict = update_node_health(
                node,
                lease,
                self.health.get(name),
                self.clock.now(),
                self.wall(),
                grace_period=self.config.node_monitor_grace_period,
                startup_grace_period=self.config.node_startup_grace_period,
            )
            if verdict.status_update is None:
                self.health[name] = verdict.health
                return node, verdict.observed_ready, verdict.current_ready
            try:
                written = await self.client.update(
                    NODES, verdict.status_update, subresource="status"
                )
            except (KubeAPIError, KubeConnectionError) as exc:
                logger.warning("updating the status of node %s failed: %s", name, exc)
                # The health seen so far stands; the write is retried on a fresh copy.
                self.health[name] = attrs.evolve(
                    verdict.health, ready=node_condition(node, "Ready")
                )
                try:
                    node = await self.client.get(NODES, name)
                except (KubeAPIError, KubeConnectionError):
                    logger.warning("node %s could not be read again; no pods will be evicted", name)
                    return None
                continue
            self.health[name] = verdict.health
            return written, verdict.observed_ready, verdict.current_ready
        return None

    async def process_taint_based_eviction(self, node: Obj, observed_ready: Obj) -> None:
        """``processTaintBaseEviction``, from the Ready condition the node had."""
        name = node["metadata"]["name"]
        taints = node_taints(node)
        status = observed_ready.get("status")
        if status == "False":
            if taint_exists(taints, UNREACHABLE_TAINT):
                await self.swap_node_taints(name, [NOT_READY_TAINT], [UNREACHABLE_TAINT])
            else:
                self._mark_for_tainting(node, NOT_READY_TAINT)
        elif status == "Unknown":
            if taint_exists(taints, NOT_READY_TAINT):
                await self.swap_node_taints(name, [UNREACHABLE_TAINT], [NOT_READY_TAINT])
            else:
                self._mark_for_tainting(node, UNREACHABLE_TAINT)
        elif status == "True":
            await self.mark_node_as_reachable(node)

    def _mark_for_tainting(self, node: Obj, taint: Obj) -> bool:
        """``markNodeForTainting``: a node lacking the taint is forgotten by its zone's queue
        first, so that it is queued again even if it was tainted before."""
        self._ensure_zone(node)
        tainter = self.tainters[zone_key(node)]
        name = node["metadata"]["name"]
        if not taint_exists(node_taints(node), taint):
            tainter.remove(name)
        return tainter.add(name, node["metadata"].get("uid", ""), self.clock.now())

    async def mark_node_as_reachable(self, node: Obj) -> bool:
        """``markNodeAsReachable``: both NoExecute taints removed, the node forgotten by its
        zone's queue; True if it was queued."""
        await self.swap_node_taints(
            node["metadata"]["name"], [], [UNREACHABLE_TAINT, NOT_READY_TAINT], cached=node
        )
        self._ensure_zone(node)
        return self.tainters[zone_key(node)].remove(node["metadata"]["name"])

    async def process_pod(self, key: str) -> None:
        """``processPod``: a pod bound to a node whose last seen Ready condition is not True
        is marked not ready; a node not seen yet is left to the monitor pass."""
        namespace, _, name = key.partition("/")
        pod = self.pods.get(name, namespace)
        if pod is None:
            return
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        health = self.health.get(node_name)
        if health is None or health.ready is None:
            return
        if self.nodes.get(node_name) is None:
            raise LookupError(f"node {node_name} is not in the cache")
        if health.ready.get("status") != "True" and not await self.mark_pods_not_ready([pod]):
            raise RuntimeError(f"unable to mark pod {key} not ready on node {node_name}")

    async def mark_pods_not_ready(self, pods: list[Obj]) -> bool:
        """``MarkPodsNotReady``: the Ready condition of ``pods`` set False (a pod gone
        meanwhile is skipped), each with a ``NodeNotReady`` Warning; False if a write failed."""
        ok = True
        for cached in pods:
            pod = copy.deepcopy(cached)
            conditions = (pod.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            ready["status"] = "False"
            ready["lastTransitionTime"] = rfc3339(self.wall())
            try:
                await self.client.update(PODS, pod, subresource="status")
            except KubeAPIError as exc:
                if exc.code != 404:
                    ok = False
                continue
            except KubeConnectionError:
                ok = False
                continue
            await self.recorder.event(pod, WARNING, "NodeNotReady", "Node is not ready")
        return ok

    async def _handle_disruption(
        self, zone_ready: dict[str, list[str | None]], nodes: list[Obj]
    ) -> None:
        decision = handle_disruption(self.zone_states, zone_ready, self.config.disruption)
        now = self.clock.now()
        if decision.enter_full_disruption:
            logger.info("all nodes are not ready: entering master disruption mode")
            for node in nodes:
                await self.mark_node_as_reachable(node)
        if decision.exit_full_disruption:
            logger.info("some nodes are ready: exiting master disruption mode")
            for name, health in self.health.items():
                self.health[name] = attrs.evolve(
                    health, probe_timestamp=now, ready_transition_timestamp=now
                )
        for zone, qps in decision.limiter_qps.items():
            if zone in self.tainters:
                self.tainters[zone].swap_limiter(qps, now)
        for zone, state in decision.zone_states.items():
            if self.zone_states.get(zone) != state:
                logger.info("zone %r is now in state %s", zone, state)
        self.zone_states = {z: s for z, s in decision.zone_states.items()}

    # --- NoExecute tainting ----------------------------------------------------------------

    async def tainting_pass(self) -> None:
        """``doNoExecuteTaintingPass``: taint the due nodes of every zone, as its rate allows."""
        for zone, tainter in list(self.tainters.items()):
            while (entry := tainter.pop_due(self.clock.now())) is not None:
                # One tainting decision, for sync tracing: "zone/node" (a zone key has no "/").
                sync_started(
                    "node-lifecycle-tainting", f"{zone}/{entry.value}", self._informers[:1]
                )
                node = self.nodes.get(entry.value)
                if node is None:
                    tainter.finish(entry, True, 0.0, self.clock.now())
                    continue
                status = ready_status(node)
                if status == "False":
                    done = await self.swap_node_taints(
                        entry.value, [NOT_READY_TAINT], [UNREACHABLE_TAINT]
                    )
                elif status == "Unknown":
                    done = await self.swap_node_taints(
                        entry.value, [UNREACHABLE_TAINT], [NOT_READY_TAINT]
                    )
                elif status is None:
                    tainter.finish(entry, False, 0.05, self.clock.now())
                    continue
                else:
                    done = True  # ready again: nothing to taint
                tainter.finish(entry, done, 0.0, self.clock.now())
                logger.debug("zone %r: tainting %s: %s", zone, entry.value, done)

    # --- NoSchedule tainting ---------------------------------------------------------------

    async def sync_no_schedule_taints(self, name: str) -> None:
        """``doNoScheduleTaintingPass`` for one node."""
        node = self.nodes.get(name)
        if node is None:
            return
        to_add, to_remove = no_schedule_taint_changes(node)
        if (to_add or to_remove) and not await self.swap_node_taints(name, to_add, to_remove):
            raise RuntimeError(f"failed to swap taints of node {name}")

    # --- writes ----------------------------------------------------------------------------

    async def swap_node_taints(
        self, name: str, add: list[Obj], remove: list[Obj], *, cached: Obj | None = None
    ) -> bool:
        """``SwapNodeControllerTaint``: add then remove taints, as one conditional patch of the
        whole list, retried on conflict with a fresh read; True when the node carries the
        result (or is gone). With only removals and a ``cached`` node that has none of them,
        nothing is read or written."""
        if (
            not add
            and cached is not None
            and not any(taint_exists(node_taints(cached), r) for r in remove)
        ):
            return True
        node = self.nodes.get(name)
        for _ in range(UPDATE_TAINT_RETRIES):
            if node is None:
                try:
                    node = await self.client.get(NODES, name)
                except KubeAPIError as exc:
                    return exc.code == 404
                except KubeConnectionError:
                    return False
            old = node_taints(node)
            new = swap_taints(old, add, remove, rfc3339(self.wall()))
            if _same_taints(old, new, add):
                return True
            patch = {
                "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"taints": new},
            }
            try:
                await self.client.patch(NODES, name, patch, patch_type="merge")
                return True
            except KubeAPIError as exc:
                if exc.code == 404:
                    return True
                if exc.code != 409:
                    logger.warning("patching the taints of node %s failed: %s", name, exc)
                    return False
            except KubeConnectionError as exc:
                logger.warning("patching the taints of node %s failed: %s", name, exc)
                return False
            node = None
        return False


def _same_taints(old: list[Obj], new: list[Obj], added: list[Obj]) -> bool:
    """The node needs no write: every taint to add is there already and none was removed
    (``AddOrUpdateTaintOnNode`` and ``RemoveTaintOffNode`` skip the patch then)."""
    if len(old) != len(new):
        return False
    return all(taint_exists(old, a) for a in added)
