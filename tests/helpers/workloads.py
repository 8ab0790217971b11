"""Helpers for the workload controllers' tests: a kubelet stand-in that reports pods running
and ready through ``pods/{name}/status`` (as the admin: there is no kubelet yet), an informer
factory whose pod watch lags, and object builders."""

from __future__ import annotations

import copy
import datetime
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from raftkube.apiserver.resources import ResourceInfo
from raftkube.clock import Clock
from raftkube.controllers.informer import SharedIndexInformer, SharedInformerFactory
from raftkube.controllers.listwatch import ListWatch, WatchStream
from raftkube.controllers.resources import resource
from raftkube.kubeclient import KubeAPIError, KubeClient

Obj = dict[str, Any]

PODS = resource("", "v1", "pods")
REPLICA_SETS = resource("apps", "v1", "replicasets")
DEPLOYMENTS = resource("apps", "v1", "deployments")


def pod_template(labels: dict[str, str], image: str = "busybox") -> Obj:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "containers": [
                {"name": "c", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}
            ]
        },
    }


def replica_set(
    name: str, replicas: int, labels: dict[str, str], namespace: str = "default"
) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": pod_template(labels),
        },
    }


def bare_pod(name: str, labels: dict[str, str], namespace: str = "default") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": pod_template(labels)["spec"],
    }


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_ips = itertools.count(2)


async def set_pod_ready(client: KubeClient, pod: Obj, ready: bool) -> Obj | None:
    """Report ``pod`` Running (with an IP) and Ready or not, as a kubelet would; None if the
    pod is gone or changed meanwhile (the caller will see it again)."""
    body = copy.deepcopy(pod)
    status = body.setdefault("status", {})
    status["phase"] = "Running"
    if not status.get("podIP"):
        n = next(_ips)
        status["podIP"] = f"10.1.{n // 250}.{n % 250 + 1}"
        status["podIPs"] = [{"ip": status["podIP"]}]
    value = "True" if ready else "False"
    stamp = now_rfc3339()
    status["conditions"] = [
        {"type": kind, "status": value, "lastTransitionTime": stamp}
        for kind in ("Ready", "ContainersReady")
    ] + [{"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}]
    try:
        result: Obj = await client.update(PODS, body, subresource="status")
    except KubeAPIError as exc:
        if exc.code in (404, 409):
            return None
        raise
    return result


def ready_value(pod: Obj) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status"))
    return None


async def kubelet_standin(
    client: KubeClient,
    namespace: str = "default",
    *,
    ready: Callable[[Obj], bool] = lambda pod: True,
    period: float = 0.05,
) -> None:
    """Until cancelled: every pod of ``namespace`` not being deleted is reported Running, and
    Ready as ``ready(pod)`` says (its verdict may change over time)."""
    while True:
        listed = await client.list(PODS, namespace=namespace)
        for pod in listed.get("items") or []:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            want = "True" if ready(pod) else "False"
            if ready_value(pod) != want or (pod.get("status") or {}).get("phase") != "Running":
                pod.setdefault("kind", "Pod")
                pod.setdefault("apiVersion", "v1")
                await set_pod_ready(client, pod, want == "True")
        await trio.sleep(period)


class LaggingListWatch:
    """A ListWatch whose watch events reach the informer ``delay`` seconds after the server
    sent them (in order): an informer that lags behind the API."""

    def __init__(self, inner: ListWatch, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def list(self, resource_version: str) -> Obj:
        return await self.inner.list(resource_version)

    def watch(self, resource_version: str, timeout_seconds: int) -> WatchStream:
        return self._watch(resource_version, timeout_seconds)

    @asynccontextmanager
    async def _watch(
        self, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[AsyncIterator[tuple[str, Obj]]]:
        send, receive = trio.open_memory_channel[tuple[float, tuple[str, Obj] | None]](1000)
        async with self.inner.watch(resource_version, timeout_seconds) as events:

            async def pump() -> None:
                async with send:
                    async for event in events:
                        await send.send((trio.current_time() + self.delay, event))
                    await send.send((trio.current_time() + self.delay, None))

            async def delayed() -> AsyncIterator[tuple[str, Obj]]:
                async for due, event in receive:
                    await trio.sleep_until(due)
                    if event is None:
                        return
                    yield event

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump)
                yield delayed()
                nursery.cancel_scope.cancel()


class LaggingFactory(SharedInformerFactory):
    """An informer factory whose informers of ``lagging`` resources see events ``delay``
    seconds late (the other informers are the usual, prompt ones)."""

    def __init__(
        self,
        client: KubeClient,
        *,
        clock: Clock,
        lagging: tuple[ResourceInfo, ...],
        delay: float,
    ) -> None:
        super().__init__(client, clock=clock)
        self.delay = delay
        self._lagging = {
            r.qualified: SharedIndexInformer(
                LaggingListWatch(ListWatch(client, r), delay), clock=clock, name=r.qualified
            )
            for r in lagging
        }

    def informer_for(self, resource: ResourceInfo) -> SharedIndexInformer:
        return self._lagging.get(resource.qualified) or super().informer_for(resource)

    def start(self, nursery: trio.Nursery) -> None:
        super().start(nursery)
        for informer in self._lagging.values():
            if not informer.started:
                informer.started = True
                nursery.start_soon(informer.run, name=f"lagging informer {informer.name}")


async def owned_pods(client: KubeClient, uid: str, namespace: str = "default") -> list[Obj]:
    """The pods (not being deleted) whose controller is ``uid``."""
    listed = await client.list(PODS, namespace=namespace)
    return [
        pod
        for pod in listed.get("items") or []
        if not pod["metadata"].get("deletionTimestamp")
        and any(
            ref.get("uid") == uid and ref.get("controller")
            for ref in pod["metadata"].get("ownerReferences") or []
        )
    ]


SERVICE_ACCOUNTS = resource("", "v1", "serviceaccounts")


async def ensure_default_account(client: KubeClient, namespace: str = "default") -> None:
    """The ``default`` ServiceAccount the ServiceAccount admission wants for every pod (the
    service account controller is not running in these tests)."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "default", "namespace": namespace}}  # fmt: skip
    try:
        await client.create(SERVICE_ACCOUNTS, account)
    except KubeAPIError as exc:
        if exc.code != 409:
            raise
