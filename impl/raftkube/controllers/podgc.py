"""The pod garbage collector: pods bound to a node that no longer exists are force-deleted.

Upstream's ``pkg/controller/podgc`` (``pod-garbage-collector``). Every ``gcCheckPeriod``
(20 s) it reads the pods and nodes from its informers and:

* ``gcOrphaned``: a node a pod is bound to that the node cache does not hold goes into
  quarantine; once it has been missing for ``quarantineTime`` (40 s: an informer that is only
  behind gets time to catch up), a live GET of the node confirms it (404), and every pod bound
  to it is marked ``Failed`` with the ``DisruptionTarget`` condition (reason
  ``DeletionByPodGC``) through ``pods/status``, then deleted with a grace period of 0. Nobody
  else would: a deleted node's kubelet (its machine gone with its cloud instance) never
  confirms the pods' deletion, and a ReplicaSet counts them active until they are gone;
* ``gcUnscheduledTerminating``: a pod being deleted that was never bound is force-deleted
  (no kubelet will ever confirm it).

Not here: ``gcTerminated`` (finished pods over ``--terminated-pod-gc-threshold``, 12,500 by
default, far above what this project runs) and ``gcTerminating`` (pods on nodes tainted
``node.kubernetes.io/out-of-service``, which nothing here sets).
"""

from __future__ import annotations

import logging
from typing import Any

from raftkube.clock import Clock
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.resources import resource
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.controllers.podgc")

Obj = dict[str, Any]

PODS = resource("", "v1", "pods")
NODES = resource("", "v1", "nodes")
GC_CHECK_PERIOD = 20.0
QUARANTINE_TIME = 40.0
CONDITION = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "DeletionByPodGC",
    "message": "PodGC: node no longer exists",
}
FINISHED = ("Succeeded", "Failed")


def _node_name(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


class PodGarbageCollector:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        *,
        period: float = GC_CHECK_PERIOD,
        quarantine: float = QUARANTINE_TIME,
    ) -> None:
        self.client = client
        self.clock = clock
        self.period = period
        self.quarantine = quarantine
        self.pod_informer = factory.informer_for(PODS)
        self.node_informer = factory.informer_for(NODES)
        self.pods = factory.lister(PODS)
        self.nodes = factory.lister(NODES)
        self.missing_since: dict[str, float] = {}
        """Nodes pods are bound to that the cache lacked, with when that was first seen (the
        quarantine; upstream's delaying ``nodeQueue``)."""

    async def run(self, workers: int = 1) -> None:
        await self.pod_informer.wait_for_sync()
        await self.node_informer.wait_for_sync()
        while True:
            started = self.clock.now()
            await self.gc()
            await self.clock.sleep_until(started + self.period)

    async def gc(self) -> None:
        """One pass: ``gcOrphaned`` then ``gcUnscheduledTerminating``."""
        pods = self.pods.list()
        existing = {str(n["metadata"]["name"]) for n in self.nodes.list()}
        await self.gc_orphaned(pods, existing)
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp") and not _node_name(pod):
                await self._force_delete(pod, "unscheduled and terminating")

    async def gc_orphaned(self, pods: list[Obj], existing: set[str]) -> None:
        now = self.clock.now()
        for pod in pods:
            node = _node_name(pod)
            if node and node not in existing:
                self.missing_since.setdefault(node, now)
        deleted = set()
        for node, since in sorted(self.missing_since.items()):
            if now - since < self.quarantine:
                continue
            del self.missing_since[node]
            if node not in existing and await self._node_gone(node):
                deleted.add(node)
        for pod in pods:
            if _node_name(pod) in deleted:
                await self._mark_failed_and_delete(pod)

    async def _node_gone(self, name: str) -> bool:
        """``checkIfNodeExists``: only a 404 says gone (an error says nothing)."""
        try:
            await self.client.get(NODES, name)
        except KubeAPIError as exc:
            if exc.code == 404:
                return True
            logger.warning("error while getting node %s: %s", name, exc)
        except KubeConnectionError as exc:
            logger.warning("error while getting node %s: %s", name, exc)
        return False

    async def _mark_failed_and_delete(self, pod: Obj) -> None:
        """``markFailedAndDeletePodWithCondition``: Failed (unless finished) with the
        condition, then deleted at once."""
        meta = pod["metadata"]
        status = pod.get("status") or {}
        try:
            if status.get("phase") not in FINISHED:
                conditions = [c for c in status.get("conditions") or []
                              if c.get("type") != CONDITION["type"]]  # fmt: skip
                patch = {
                    "metadata": {"uid": meta.get("uid")},
                    "status": {"phase": "Failed", "conditions": [*conditions, CONDITION]},
                }
                await self.client.patch(
                    PODS,
                    meta["name"],
                    patch,
                    patch_type="strategic",
                    namespace=meta.get("namespace", ""),
                    subresource="status",
                )
        except (KubeAPIError, KubeConnectionError) as exc:
            logger.warning("failed to mark pod %s failed: %s", meta["name"], exc)
            return
        await self._force_delete(pod, "orphaned")

    async def _force_delete(self, pod: Obj, why: str) -> None:
        meta = pod["metadata"]
        logger.info(
            "PodGC is force deleting Pod %s/%s (%s)", meta.get("namespace"), meta["name"], why
        )
        try:
            await self.client.delete(
                PODS,
                meta["name"],
                namespace=meta.get("namespace", ""),
                options={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
            )
        except KubeAPIError as exc:
            if exc.code != 404:
                logger.warning("failed to delete pod %s: %s", meta["name"], exc)
        except KubeConnectionError as exc:
            logger.warning("failed to delete pod %s: %s", meta["name"], exc)
