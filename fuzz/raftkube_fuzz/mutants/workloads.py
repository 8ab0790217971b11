"""The ``cluster`` suite's workload mutants: bugs in the ReplicaSet and endpoints
controllers, the scheduler and the kubelet, which place and serve pods."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from raftkube.controllers import endpoints
from raftkube.controllers.controller_utils import error_text, is_being_deleted, is_pod_active
from raftkube.controllers.endpoints import (
    Obj,
    endpoint_port,
    find_port,
    pod_address,
    repack_subsets,
    service_selects,
    should_pod_be_in_endpoints,
)
from raftkube.controllers.replicaset import ReplicaSetController, calculate_status, replicas_of
from raftkube.controllers.store import split_meta_namespace_key
from raftkube.kubelet import volumes
from raftkube.kubelet.admission import admit, allocatable_of
from raftkube.kubelet.kubelet import Kubelet, _terminal, log
from raftkube.kubelet.podworker import (
    POD_UID,
    NodeContext,
    PodWorker,
    _meta,
    _tolerating,
    pod_key,
    resource_path_of,
)
from raftkube.runtime.interface import ContainerState, SandboxState
from raftkube.scheduler.cache import CacheError, SchedulerCache, _PodState, _with_node_name
from raftkube.scheduler.nodeinfo import PodInfo
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- rs-no-expectations --------------------------------------------------------------------------


async def _sync_without_expectations(self: ReplicaSetController, key: str) -> None:
    namespace, name = split_meta_namespace_key(key)
    owner = self.owners.get(name, namespace)
    if owner is None:
        self.expectations.delete_expectations(key)
        return
    # MUTANT: the creations and deletions this controller asked for are not awaited, so a
    # sync from a cache that has not yet seen them creates (or deletes) again.
    needs_sync = True
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


# --- endpoints-include-unready -------------------------------------------------------------------


def _subsets_including_unready(service: Obj, pods: list[Obj]) -> list[Obj]:
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    subsets: list[Obj] = []
    for pod in pods:
        if not service_selects(service, pod):
            continue
        if not should_pod_be_in_endpoints(pod, publish_not_ready):
            continue
        address = pod_address(service, pod)
        if address is None:
            continue
        # MUTANT: readiness is not looked at: every pod with an IP is a ready address.
        field = "addresses"
        service_ports = spec.get("ports") or []
        if not service_ports:
            if spec.get("clusterIP") == "None":
                subsets.append({field: [address]})
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is None:
                continue
            subsets.append({field: [address], "ports": [endpoint_port(service_port, number)]})
    return repack_subsets(subsets)


# --- scheduler-ignores-assumed -------------------------------------------------------------------


def _assume_without_counting(self: SchedulerCache, info: PodInfo, node_name: str) -> None:
    if info.key in self._pods:
        raise CacheError(f"pod {info.key} is in the cache, so can't be assumed")
    assumed = attrs.evolve(info, pod=_with_node_name(info.pod, node_name))
    # MUTANT: the assumption is remembered but not counted on its node, so until the binding
    # comes back through the informer the next decisions see the node's room as it was.
    self._pods[info.key] = _PodState(assumed, node_name, assumed=True)


# --- kubelet-skips-admission ---------------------------------------------------------------------


async def _handle_without_admission(
    self: Kubelet, nursery: trio.Nursery, node: NodeContext, pod: dict[str, Any], deleted: bool
) -> None:
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
    active = [w.pod for w in self.workers.values() if not w.finished and not _terminal(w.pod)]  # noqa: F841
    allocatable = allocatable_of(self.config.capacity())
    # MUTANT: the pod is judged against the node's allocatable alone, not beside the pods
    # already admitted, so a pod that fits an empty node is started on a full one.
    rejection = None if await self._has(uid) else admit(pod, [], allocatable)
    if rejection is not None:
        log.info("pod %s rejected: %s", pod_key(pod), rejection.message)
        await self._reject(pod, rejection.reason, rejection.message)
        return
    self._start(nursery, node, pod)


# --- kubelet-deletes-before-stopping -------------------------------------------------------------


async def _terminate_deleting_first(self: PodWorker) -> None:
    # MUTANT: the pod object is deleted for good first, while its containers still run: the
    # name is free for a replacement before this machine has let go of it.
    if not self.gone:
        meta = _meta(self.pod)
        with _tolerating(404, 409):
            await self.node.client.delete(
                resource_path_of("pods", meta["namespace"], meta["name"]),
                options={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": meta["uid"]},
                },
            )
    sandbox = await self._sandbox()
    grace = self._grace()
    if sandbox is not None:
        containers = await self.node.runtime.list_containers(sandbox.id)
        async with trio.open_nursery() as nursery:
            for status in containers:
                if status.state is ContainerState.RUNNING:
                    self.node.events.stopping(self.pod, status.name)
                    nursery.start_soon(self.node.runtime.stop_container, status.id, grace)
        await self.node.runtime.stop_pod_sandbox(sandbox.id)
        if not self.gone:
            history = await self._containers(sandbox)
            with _tolerating(404, 409):
                await self._write_status(
                    attrs.evolve(sandbox, state=SandboxState.NOTREADY), history
                )
    for old in await self.node.runtime.list_pod_sandboxes():
        if old.config.labels.get(POD_UID) == self.uid:
            await self.node.runtime.remove_pod_sandbox(old.id)
    if self.node.volume_root is not None:
        volumes.remove(self.uid, self.node.volume_root)
    # MUTANT: (the final delete was here, after every container had stopped)
    self.node.backoff.forget(f"{self.uid}/")
    self.finished = True


MUTANTS = (
    Mutant(
        "rs-no-expectations",
        "the ReplicaSet controller syncs without waiting for its own creations to be observed",
        "cluster",
        "NoOverCreation",
        False,
        patch(ReplicaSetController, "sync", _sync_without_expectations),
        {**CONTROL_PLANE, "slow": "manager-watches"},
    ),
    Mutant(
        "endpoints-include-unready",
        "the endpoints controller lists pods that are not Ready among a Service's addresses",
        "cluster",
        "EndpointsListOnlyReady",
        False,
        patch(endpoints, "desired_subsets", _subsets_including_unready),
        # Every workload's Service from the start, as for the other Endpoints bugs: a
        # Service whose pods turn Ready late is the scenario the bug is about.
        {**CONTROL_PLANE, "services": "all"},
    ),
    Mutant(
        "scheduler-ignores-assumed",
        "the scheduler places a pod on room its own assumed, not yet bound pods already hold",
        "cluster",
        "NodeWithinAllocatable",
        False,
        patch(SchedulerCache, "assume_pod", _assume_without_counting),
        {**CONTROL_PLANE, "slow": "schedulers"},
    ),
    Mutant(
        "kubelet-skips-admission",
        "the kubelet admits a pod by the node's allocatable alone, forgetting the pods it runs",
        "cluster",
        "NodeWithinAllocatable",
        False,
        patch(Kubelet, "_handle", _handle_without_admission),
        {**CONTROL_PLANE, "full": "on"},
    ),
    Mutant(
        "kubelet-deletes-before-stopping",
        "the kubelet deletes a terminating pod's object before its containers have stopped",
        "cluster",
        "RequestConformance",
        False,
        patch(PodWorker, "_terminate", _terminate_deleting_first),
        dict(CONTROL_PLANE),
    ),
)
