"""One pod's worker: upstream's ``podWorkers`` loop and ``SyncPod``/``SyncTerminatingPod``.

Each sync reads what the runtime has for the pod (found by the pod-uid label, so a restarted
kubelet picks up where the last one stopped instead of starting anything twice), then takes the
next steps: a sandbox, the init containers one at a time, then every container, each restarted
per ``restartPolicy`` behind the crash-loop back-off; probes that are due run; a failed
liveness probe stops the container so that it restarts. The status it derives
(:mod:`.status`) is written to ``pods/{name}/status`` when it changed. A pod with a
``deletionTimestamp`` has its containers stopped within the grace period and is then deleted
with grace 0 (preconditioned on its uid) so the API server lets it go.

The worker syncs when told the pod changed, when the kubelet's relist (:mod:`.pleg`) sees one
of its containers change state, when a probe or a crash-loop back-off is due, 10 s after a
container could not be made (upstream's ``backOffPeriod``), and otherwise every
``resync_period`` (upstream's ``--sync-frequency``, 1 minute), all on the kubelet's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.clock import Clock
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError
from raftkube.kubelet import volumes
from raftkube.kubelet.backoff import CrashLoopBackOff, go_duration
from raftkube.kubelet.env import ConfigError, container_env
from raftkube.kubelet.events import PodEvents
from raftkube.kubelet.probes import Prober, ProbeSettings, ProbeState
from raftkube.kubelet.status import ContainerView, PodView, pod_status, rfc3339
from raftkube.kubelet.volumes import VolumeError
from raftkube.runtime.interface import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
    PodSandboxConfig,
    PodSandboxStatus,
    RuntimeService,
    SandboxState,
)

Obj = dict[str, Any]
log = logging.getLogger(__name__)

POD_UID = "io.kubernetes.pod.uid"
POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
CONTAINER_NAME = "io.kubernetes.container.name"
DEFAULT_GRACE = 30
RETRY_AFTER = 10.0
"""Upstream's ``backOffPeriod``: a pod whose sync failed, or that waits on something it
could not make, is tried again this long after."""


@attrs.frozen
class NodeContext:
    """What every pod worker of one kubelet shares."""

    client: KubeClient
    runtime: RuntimeService
    prober: Prober
    clock: Clock
    node_name: str
    host_ip: str
    runtime_name: str
    backoff: CrashLoopBackOff
    wall: Callable[[], float]
    resync_period: float = 60.0
    volume_root: Path | None = None
    """Where pod volumes are written (:mod:`.volumes`); None writes none (simulated nodes)."""
    events: PodEvents = attrs.field(factory=PodEvents.silent)
    """Where the containers' Events go (:mod:`.events`)."""


def pod_key(pod: Obj) -> str:
    meta = pod["metadata"]
    return f"{meta['name']}_{meta['namespace']}({meta['uid']})"


def _meta(pod: Obj) -> Obj:
    meta: Obj = pod["metadata"]
    return meta


@attrs.define(eq=False)
class PodWorker:
    node: NodeContext
    pod: Obj
    gone: bool = False
    finished: bool = False
    _wake: trio.Event = attrs.field(factory=trio.Event)
    _waiting: dict[str, tuple[str, str]] = attrs.field(factory=dict)
    _probes: dict[tuple[str, str], ProbeState] = attrs.field(factory=dict)
    _written: Obj | None = None
    _volumes: dict[str, str] | None = None
    _due: list[float] = attrs.field(factory=list)
    """Clock readings at which this sync wants the next one (probes, back-off expiries)."""

    @property
    def uid(self) -> str:
        return str(_meta(self.pod)["uid"])

    def update(self, pod: Obj | None) -> None:
        """The pod changed (None: it is gone from the API)."""
        if pod is None:
            self.gone = True
        else:
            self.pod = pod
        self._wake.set()

    def wake(self) -> None:
        """Something of this pod changed in the runtime: sync soon."""
        self._wake.set()

    async def run(self) -> None:
        while not self.finished:
            now = self.node.clock.now()
            self._due = [now + self.node.resync_period]
            try:
                await self.sync()
            except (KubeAPIError, KubeConnectionError, ContainerRuntimeError, OSError) as exc:
                # An API server that cannot be reached for a while (overloaded, restarting) is
                # retried like a refused write: it must not end the kubelet and its other pods.
                log.warning("sync of pod %s failed: %s", pod_key(self.pod), exc)
                self._due.append(now + RETRY_AFTER)
            if self.finished:
                return
            if self._waiting:
                self._due.append(now + RETRY_AFTER)
            with self.node.clock.cancel_scope_at(min(self._due)):
                await self._wake.wait()
            self._wake = trio.Event()

    # --- the runtime's view ------------------------------------------------------------------

    async def _sandbox(self) -> PodSandboxStatus | None:
        mine = [
            s
            for s in await self.node.runtime.list_pod_sandboxes()
            if s.config.labels.get(POD_UID) == self.uid
        ]
        ready = [s for s in mine if s.state is SandboxState.READY]
        return max(ready or mine, key=lambda s: s.created_at, default=None)

    async def _containers(self, sandbox: PodSandboxStatus) -> dict[str, list[ContainerStatus]]:
        by_name: dict[str, list[ContainerStatus]] = {}
        for status in await self.node.runtime.list_containers(sandbox.id):
            by_name.setdefault(status.labels.get(CONTAINER_NAME, status.name), []).append(status)
        for history in by_name.values():
            history.sort(key=lambda s: s.attempt)
        return by_name

    # --- one sync ---------------------------------------------------------------------------

    async def sync(self) -> None:
        if self.gone or _meta(self.pod).get("deletionTimestamp"):
            await self._terminate()
            return
        if (self.pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        sandbox = await self._sandbox()
        if sandbox is None or sandbox.state is not SandboxState.READY:
            sandbox_id = await self.node.runtime.run_pod_sandbox(self._sandbox_config())
            sandbox = next(
                s for s in await self.node.runtime.list_pod_sandboxes() if s.id == sandbox_id
            )
        history = await self._containers(sandbox)
        current = {instances[-1].id for instances in history.values()}
        for key in [k for k in self._probes if k[0] not in current]:
            del self._probes[key]
        spec = self.pod.get("spec") or {}
        if await self._sync_init(spec, sandbox, history):
            for container in spec.get("containers") or []:
                await self._sync_container(container, sandbox, history, spec)
        history = await self._containers(sandbox)
        phase = await self._write_status(sandbox, history)
        if phase in ("Succeeded", "Failed"):
            # Nothing will run in it again: give its IP back, as upstream kills the sandbox.
            await self.node.runtime.stop_pod_sandbox(sandbox.id)

    def _sandbox_config(self) -> PodSandboxConfig:
        meta = _meta(self.pod)
        labels = {POD_UID: meta["uid"], POD_NAME: meta["name"], POD_NAMESPACE: meta["namespace"]}
        return PodSandboxConfig(
            meta["name"], meta["namespace"], meta["uid"], hostname=meta["name"], labels=labels
        )

    async def _sync_init(
        self, spec: Obj, sandbox: PodSandboxStatus, history: dict[str, list[ContainerStatus]]
    ) -> bool:
        """Run the init containers one by one; True once all have succeeded."""
        for container in spec.get("initContainers") or []:
            latest = _latest(history, container["name"])
            if latest is None:
                await self._start(container, sandbox, 0)
                return False
            if latest.state is not ContainerState.EXITED:
                return False
            if latest.exit_code == 0:
                continue
            if spec.get("restartPolicy") != "Never":
                await self._restart(container, sandbox, latest)
            return False
        return True

    async def _sync_container(
        self,
        container: Obj,
        sandbox: PodSandboxStatus,
        history: dict[str, list[ContainerStatus]],
        spec: Obj,
    ) -> None:
        latest = _latest(history, container["name"])
        if latest is None:
            await self._start(container, sandbox, 0)
            return
        if latest.state is ContainerState.RUNNING:
            if not await self._probe(container, sandbox, latest):
                self._waiting.pop(container["name"], None)
                grace = float(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE))
                log.info("container %s failed liveness probe, will be restarted", latest.name)
                self.node.events.liveness_failed(self.pod, container["name"])
                await self.node.runtime.stop_container(latest.id, grace)
                latest = await self.node.runtime.container_status(latest.id)
            else:
                return
        if latest.state is not ContainerState.EXITED:
            return
        policy = spec.get("restartPolicy") or "Always"
        if policy == "Always" or (policy == "OnFailure" and latest.exit_code != 0):
            await self._restart(container, sandbox, latest)

    async def _restart(
        self, container: Obj, sandbox: PodSandboxStatus, latest: ContainerStatus
    ) -> None:
        """Start the next attempt unless the crash-loop back-off holds it back."""
        key = f"{self.uid}/{container['name']}"
        now = self.node.clock.now()
        finished = latest.finished_at if latest.finished_at is not None else now
        until = self.node.backoff.until(key, finished, now)
        if until is not None:
            self._due.append(until)
            delay = go_duration(self.node.backoff.delay(key))
            self._waiting[container["name"]] = (
                "CrashLoopBackOff",
                f"back-off {delay} restarting failed container={container['name']} "
                f"pod={pod_key(self.pod)}",
            )
            self.node.events.backing_off(self.pod, container["name"], pod_key(self.pod))
            return
        self.node.backoff.next(key, now)
        await self._start(container, sandbox, latest.attempt + 1)
        await self._prune(sandbox, container["name"])

    async def _prune(self, sandbox: PodSandboxStatus, name: str) -> None:
        """Keep the latest two instances of a container (the one shown as ``lastState``)."""
        history = (await self._containers(sandbox)).get(name) or []
        for old in history[:-2]:
            await self.node.runtime.remove_container(old.id)

    async def _start(self, container: Obj, sandbox: PodSandboxStatus, attempt: int) -> None:
        name = container["name"]
        events = self.node.events
        events.starting(self.pod, container)
        try:
            mounts = await self._mounts(container, sandbox)
            env = await container_env(
                self.pod, container, sandbox.ip, self.node.host_ip, self._fetch
            )
            config = ContainerConfig(
                name=name,
                image=str(container.get("image", "")),
                command=tuple(container.get("command") or ()),
                args=tuple(container.get("args") or ()),
                env=env,
                working_dir=str(container.get("workingDir") or ""),
                attempt=attempt,
                labels={POD_UID: self.uid, CONTAINER_NAME: name},
                mounts=mounts,
            )
            container_id = await self.node.runtime.create_container(sandbox.id, config)
            events.created(self.pod, name)
            await self.node.runtime.start_container(container_id)
        except (ConfigError, VolumeError, ContainerRuntimeError) as exc:
            self._waiting[name] = (exc.reason, str(exc))
            events.failed(self.pod, name, str(exc))
            return
        events.started(self.pod, name)
        self._waiting.pop(name, None)

    async def _mounts(
        self, container: Obj, sandbox: PodSandboxStatus
    ) -> tuple[tuple[str, str], ...]:
        """The container's ``volumeMounts`` as CRI mounts, writing the pod's volumes first."""
        root = self.node.volume_root
        if root is None:
            return ()
        if self._volumes is None:
            self._volumes = await volumes.materialize(
                self.pod, root, self._fetch, self._token, sandbox.ip, self.node.host_ip
            )
        out = []
        for mount in container.get("volumeMounts") or []:
            host = self._volumes.get(mount.get("name", ""))
            if host is not None:
                sub = str(mount.get("subPath") or "")
                out.append((str(mount["mountPath"]), str(Path(host) / sub) if sub else host))
        return tuple(out)

    async def _token(self, account: str, spec: Obj) -> str:
        meta = _meta(self.pod)
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                **spec,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
        answer = await self.node.client.call("POST", path, body=request)
        return str((answer.get("status") or {}).get("token", ""))

    async def _fetch(self, resource: str, name: str) -> Obj | None:
        try:
            return await self.node.client.get(
                resource_path_of(resource, _meta(self.pod)["namespace"], name)
            )
        except KubeAPIError as exc:
            if exc.code == 404:
                return None
            raise

    async def _probe(
        self, container: Obj, sandbox: PodSandboxStatus, latest: ContainerStatus
    ) -> bool:
        """Run the probes that are due; False when liveness has failed."""
        alive = True
        now = self.node.clock.now()
        started = latest.started_at if latest.started_at is not None else now
        for kind in ("readinessProbe", "livenessProbe"):
            spec = container.get(kind)
            if not spec:
                continue
            settings = ProbeSettings.of(spec)
            key = (latest.id, kind)
            state = self._probes.get(key)
            if state is None:
                initial = kind == "livenessProbe"
                state = self._probes[key] = ProbeState(initial, started + settings.initial_delay)
            if now >= state.next_at:
                result = await self.node.prober.probe(spec, container, sandbox.ip, latest.id)
                if not result.ok:
                    self.node.events.unhealthy(self.pod, container["name"], kind, result.output)
                state.observe(result.ok, settings, self.node.clock.now())
            self._due.append(state.next_at)
            if kind == "livenessProbe" and not state.result:
                alive = False
        return alive

    def _ready(self, container: Obj, latest: ContainerStatus | None) -> bool:
        if latest is None or latest.state is not ContainerState.RUNNING:
            return False
        if not container.get("readinessProbe"):
            return True
        state = self._probes.get((latest.id, "readinessProbe"))
        return bool(state and state.result)

    # --- status ------------------------------------------------------------------------------

    def _to_wall(self, reading: float) -> str:
        return rfc3339(self.node.wall() - (self.node.clock.now() - reading))

    def _views(
        self, containers: list[Obj], history: dict[str, list[ContainerStatus]], blocked: bool
    ) -> dict[str, ContainerView]:
        views = {}
        for container in containers:
            instances = history.get(container["name"]) or []
            latest = instances[-1] if instances else None
            waiting = self._waiting.get(container["name"])
            if latest is None and waiting is None and blocked:
                waiting = ("PodInitializing", "")
            views[container["name"]] = ContainerView(
                latest,
                instances[-2] if len(instances) > 1 else None,
                waiting,
                self._ready(container, latest),
            )
        return views

    async def _write_status(
        self, sandbox: PodSandboxStatus, history: dict[str, list[ContainerStatus]]
    ) -> str:
        spec = self.pod.get("spec") or {}
        init = spec.get("initContainers") or []
        init_views = self._views(init, history, False)
        blocked = any(
            v.latest is None or v.latest.state is not ContainerState.EXITED or v.latest.exit_code
            for v in init_views.values()
        )
        view = PodView(
            pod_ip=sandbox.ip,
            host_ip=self.node.host_ip,
            sandbox_ready=sandbox.state is SandboxState.READY,
            init=init_views,
            containers=self._views(spec.get("containers") or [], history, blocked),
            start_time=self._to_wall(sandbox.created_at),
            runtime_name=self.node.runtime_name,
        )
        status = pod_status(self.pod, view, self._to_wall, rfc3339(self.node.wall()))
        await self._put_status(status)
        return str(status["phase"])

    async def _put_status(self, status: Obj) -> None:
        if status == self._written or status == self.pod.get("status"):
            return
        meta = _meta(self.pod)
        updated = await self.node.client.patch(
            resource_path_of("pods", meta["namespace"], meta["name"]) + "/status",
            "",
            {"metadata": {"uid": meta["uid"]}, "status": status},
            patch_type="merge",
        )
        self._written = status
        if not self.gone:
            self.pod = updated

    # --- termination -------------------------------------------------------------------------

    def _grace(self) -> float:
        meta, spec = _meta(self.pod), self.pod.get("spec") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE)
        return float(grace)

    async def _terminate(self) -> None:
        """Stop every container within the grace period (all at once, as upstream's
        ``killContainersWithSyncResult``) and the sandbox, write the final status, remove what
        the pod left in the runtime and its volumes, and only then let the API server delete
        the pod (a crash in between leaves a pod with a deletionTimestamp, which the next
        kubelet finishes)."""
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
        self.node.backoff.forget(f"{self.uid}/")
        self.finished = True


@contextmanager
def _tolerating(*codes: int) -> Iterator[None]:
    """Ignore API errors with these codes (the pod is already gone, or is another pod)."""
    try:
        yield
    except KubeAPIError as exc:
        if exc.code not in codes:
            raise


def _latest(history: dict[str, list[ContainerStatus]], name: str) -> ContainerStatus | None:
    instances = history.get(name)
    return instances[-1] if instances else None


def resource_path_of(resource: str, namespace: str, name: str) -> str:
    """The path of a core/v1 object (pods, configmaps, secrets) of ``namespace``."""
    return f"/api/v1/namespaces/{namespace}/{resource}/{name}"
