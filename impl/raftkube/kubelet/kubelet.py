"""The kubelet: registers its Node, keeps it alive, and runs the pods bound to it.

``Kubelet.run`` is one ``async def`` under the caller's nursery: node registration
(:mod:`.node`), then the Lease and node-status loops, an informer over only this node's pods
(``fieldSelector=spec.nodeName={node}``, all the Node authorizer lets a kubelet list), and one
:class:`~.podworker.PodWorker` task per pod. A new pod is admitted (:mod:`.admission`)
before its worker starts; a rejected pod is marked Failed with
upstream's reason and message and never reaches the runtime. Everything the kubelet writes
goes through ``client``, which carries the node's own credentials. With ``serving`` it also
serves container logs over HTTPS on the node's address and port (:mod:`.logserver`); port 0
takes a free one, which is what the Node then advertises.

Pod news is handled in batches (everything queued at once: the initial list, a relist), and
the new pods of a batch are admitted oldest first (:func:`admission_order`).
"""

from __future__ import annotations

import logging
import math
import random
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.apiserver.http import HTTPServer
from raftkube.apiserver.resources import lookup
from raftkube.clock import Clock
from raftkube.controllers import ListWatch, ResourceEventHandlerFuncs, SharedIndexInformer
from raftkube.controllers.store import DeletedFinalStateUnknown
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError
from raftkube.kubelet.admission import admit, allocatable_of
from raftkube.kubelet.backoff import CrashLoopBackOff
from raftkube.kubelet.events import PodEvents
from raftkube.kubelet.logserver import LogServer
from raftkube.kubelet.node import NodeConfig, NodeStatusReporter
from raftkube.kubelet.pleg import relist
from raftkube.kubelet.podworker import (
    POD_UID,
    NodeContext,
    PodWorker,
    pod_key,
    resource_path_of,
)
from raftkube.kubelet.probes import NetworkProber, Prober
from raftkube.runtime.interface import ContainerRuntimeError, RuntimeService

Obj = dict[str, Any]
log = logging.getLogger(__name__)

Event = tuple[Obj, bool]
"""A pod as the informer last saw it, and whether it is gone from the API."""

PODS = lookup("", "v1", "pods")
assert PODS is not None


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


@attrs.define(eq=False)
class Kubelet:
    client: KubeClient
    runtime: RuntimeService
    config: NodeConfig
    clock: Clock
    prober: Prober | None = None
    wall: Callable[[], float] = time.time
    resync_period: float = 60.0
    rng: random.Random = attrs.field(factory=random.Random)
    """Jitters the pod informer's relist backoff; seeded by the simulation, OS entropy otherwise."""
    volume_root: Path | None = None
    """Where pod volumes are written; None writes none (a simulated node)."""
    serving: ssl.SSLContext | None = None
    """TLS for the container-log endpoint (:mod:`.logserver`); None serves no logs."""
    record_events: bool = False
    """Record Events about the pods' containers (:mod:`.events`). Off for simulated nodes, as
    kwok's do not: a fleet of them would double the writes a bench or a fuzz run times."""
    workers: dict[str, PodWorker] = attrs.field(factory=dict)
    reporter: NodeStatusReporter = attrs.field(init=False)
    _events: tuple[trio.MemorySendChannel[Event], trio.MemoryReceiveChannel[Event]] = attrs.field(
        init=False
    )

    def __attrs_post_init__(self) -> None:
        self.reporter = NodeStatusReporter(
            self.client, self.config, self.clock, self.wall, runtime_ready=self._runtime_ready
        )
        self._events = trio.open_memory_channel(math.inf)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            if self.serving is not None:
                server = HTTPServer(
                    LogServer(self.runtime, self.clock).handle, self.serving, self.clock
                )
                port = await nursery.start(server.serve_tcp, self.config.address, self.config.port)
                self.config = attrs.evolve(self.config, port=port)
                self.reporter.config = self.config
            await self._run()
            nursery.cancel_scope.cancel()

    async def _run(self) -> None:
        await self.reporter.register()
        events = PodEvents(self.client if self.record_events else None, self.config.name, self.wall)
        node = NodeContext(
            client=self.client,
            runtime=self.runtime,
            prober=self.prober or NetworkProber(self.runtime, self.clock),
            clock=self.clock,
            node_name=self.config.name,
            host_ip=self.config.address,
            runtime_name=self.config.runtime_name,
            backoff=CrashLoopBackOff(),
            wall=self.wall,
            resync_period=self.resync_period,
            volume_root=self.volume_root,
            events=events,
        )
        assert PODS is not None
        informer = SharedIndexInformer(
            ListWatch(self.client, PODS, field_selector=f"spec.nodeName={self.config.name}"),
            clock=self.clock,
            name="pods",
            rng=random.Random(self.rng.random()),
        )
        send = self._events[0]
        informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=lambda obj: send.send_nowait((obj, False)),
                update_func=lambda old, new: send.send_nowait((new, False)),
                delete_func=lambda obj: send.send_nowait((_last_state(obj), True)),
            )
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.reporter.run_lease)
            nursery.start_soon(self.reporter.run_status)
            nursery.start_soon(informer.run)
            if self.record_events:
                nursery.start_soon(events.run)
            nursery.start_soon(relist, self.runtime, self.clock, self._wake_pod)
            await informer.wait_for_sync()
            receive = self._events[1]
            async for first in receive:
                # Everything already queued is one batch, as upstream's config source hands
                # HandlePodAdditions all pods new in one merge: the initial list and every
                # relist arrive whole (the informer reports a list synchronously).
                batch = [first]
                while True:
                    try:
                        batch.append(receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                for pod, deleted in admission_order(batch, self.workers):
                    await self._handle(nursery, node, pod, deleted)

    async def _handle(
        self, nursery: trio.Nursery, node: NodeContext, pod: Obj, deleted: bool
    ) -> None:
        """Hand a pod's news to its worker, or admit it and start one. A pod already being
        deleted gets a worker without admission: it only stops what may run and lets go."""
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(None if deleted else pod)
            return
        if deleted or (_terminal(pod) and not pod["metadata"].get("deletionTimestamp")):
            return
        if pod["metadata"].get("deletionTimestamp"):
            self._start(nursery, node, pod)
            return
        active = [w.pod for w in self.workers.values() if not w.finished and not _terminal(w.pod)]
        allocatable = allocatable_of(self.config.capacity())
        rejection = None if await self._has(uid) else admit(pod, active, allocatable)
        if rejection is not None:
            log.info("pod %s rejected: %s", pod_key(pod), rejection.message)
            await self._reject(pod, rejection.reason, rejection.message)
            return
        self._start(nursery, node, pod)

    async def _runtime_ready(self) -> bool:
        try:
            await self.runtime.list_pod_sandboxes()
        except (ContainerRuntimeError, OSError) as exc:
            log.warning("container runtime is down: %s", exc)
            return False
        return True

    def _wake_pod(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            worker.wake()

    def _start(self, nursery: trio.Nursery, node: NodeContext, pod: Obj) -> None:
        worker = PodWorker(node, pod)
        self.workers[pod["metadata"]["uid"]] = worker
        nursery.start_soon(self._run_worker, worker)

    async def _run_worker(self, worker: PodWorker) -> None:
        await worker.run()
        self.workers.pop(worker.uid, None)

    async def _has(self, uid: str) -> bool:
        """Whether the runtime already runs something of pod ``uid`` (adopted, not admitted
        again)."""
        return any(
            s.config.labels.get(POD_UID) == uid for s in await self.runtime.list_pod_sandboxes()
        )

    async def _reject(self, pod: Obj, reason: str, message: str) -> None:
        """Upstream's ``rejectPod``: phase Failed, the reason, "Pod was rejected: " + why."""
        meta = pod["metadata"]
        status = {
            "phase": "Failed",
            "reason": reason,
            "message": f"Pod was rejected: {message}",
        }
        if (pod.get("status") or {}).get("qosClass"):
            status["qosClass"] = pod["status"]["qosClass"]
        try:
            await self.client.patch(
                resource_path_of("pods", meta["namespace"], meta["name"]) + "/status",
                "",
                {"status": status},
                patch_type="merge",
            )
        except (KubeAPIError, KubeConnectionError) as exc:
            log.warning("could not mark pod %s rejected: %s", pod_key(pod), exc)


def admission_order(batch: list[Event], workers: Mapping[str, PodWorker]) -> list[Event]:
    """The order to handle one batch of pod news in: each pod once, in its latest state; first
    the news of pods this kubelet already runs or that are going away (so what they free is
    free before anything new is admitted), then the new pods oldest first, as upstream's
    ``HandlePodAdditions`` sorts by creation time so that of two that do not both fit the older
    wins. Ties (creation times have whole seconds) go by name, to be deterministic."""
    latest: dict[str, Event] = {}
    for event in batch:
        latest[event[0]["metadata"]["uid"]] = event
    known: list[Event] = []
    additions: list[Event] = []
    for uid, (pod, deleted) in latest.items():
        new = uid not in workers and not deleted and not pod["metadata"].get("deletionTimestamp")
        (additions if new else known).append((pod, deleted))
    additions.sort(
        key=lambda e: (e[0]["metadata"].get("creationTimestamp") or "", e[0]["metadata"]["name"])
    )
    return known + additions


def _last_state(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
