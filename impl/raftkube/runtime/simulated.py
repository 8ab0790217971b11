"""A runtime that runs nothing: containers follow a script on the injected clock.

For fuzzing and for many simulated nodes in one process (as kwok does). A container's life is
a pure function of its script and of the clock readings at which it was started and stopped,
so two runs given the same calls at the same clock readings report the same states: nothing
here starts a task or reads any other time.

A :class:`ContainerScript` (chosen by image name, default: run forever, ready at once) says
when the started container is running, whether and when it exits and with what code, when an
exec probe starts succeeding, and how long it takes to honour SIGTERM (longer than the stop's
grace period means it is killed at the deadline, exit code 137 as a SIGKILL'd process).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import attrs

from raftkube.clock import Clock
from raftkube.runtime.interface import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    ExecResult,
    NotFound,
    PodSandboxConfig,
    PodSandboxStatus,
    SandboxState,
)
from raftkube.runtime.ipam import IPAllocator

EXIT_KILLED = 137
"""128 + SIGKILL, what a shell reports for a killed process."""


@attrs.frozen
class ContainerScript:
    """``exit_after`` None runs until stopped; ``ready_after`` is when exec probes start to
    pass (None: never); ``live_for`` is when they stop passing again (a hung server);
    ``stop_takes`` is the time from SIGTERM to exit. ``fail_create`` is a message for a
    container that cannot be created."""

    exit_after: float | None = None
    exit_code: int = 0
    ready_after: float | None = 0.0
    live_for: float | None = None
    stop_takes: float = 0.0
    fail_create: str = ""


@attrs.define
class _Container:
    status: ContainerStatus
    script: ContainerScript


@attrs.define
class SimulatedRuntime:
    """The :class:`~raftkube.runtime.interface.RuntimeService` of a simulated node."""

    clock: Clock
    pod_cidr: str = "127.1.0.0/24"
    scripts: Mapping[str, ContainerScript] = attrs.field(factory=dict)
    _ips: IPAllocator = attrs.field(init=False)
    _sandboxes: dict[str, PodSandboxStatus] = attrs.field(factory=dict, init=False)
    _containers: dict[str, _Container] = attrs.field(factory=dict, init=False)
    _ids: itertools.count[int] = attrs.field(factory=itertools.count, init=False)

    def __attrs_post_init__(self) -> None:
        self._ips = IPAllocator(self.pod_cidr)

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):06d}"

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sandbox_id = self._next_id("sandbox")
        self._sandboxes[sandbox_id] = PodSandboxStatus(
            sandbox_id, config, SandboxState.READY, self._ips.allocate(), self.clock.now()
        )
        return sandbox_id

    def _sandbox(self, sandbox_id: str) -> PodSandboxStatus:
        try:
            return self._sandboxes[sandbox_id]
        except KeyError:
            raise NotFound(f"no pod sandbox {sandbox_id}") from None

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandbox(sandbox_id)
        for cid in self._ids_in(sandbox_id):
            self._finish(cid, self.clock.now(), EXIT_KILLED, "Error")
        if sandbox.state is SandboxState.READY:
            self._ips.release(sandbox.ip)  # the IP is the sandbox's network: gone with it
        self._sandboxes[sandbox_id] = attrs.evolve(sandbox, state=SandboxState.NOTREADY)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return
        for cid in self._ids_in(sandbox_id):
            del self._containers[cid]
        if sandbox.state is SandboxState.READY:
            self._ips.release(sandbox.ip)

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return list(self._sandboxes.values())

    def running_pods(self) -> list[PodSandboxConfig]:
        """The pods whose sandbox is up (what this machine runs), read without a checkpoint:
        for an observer outside the kubelet, such as the fuzzer's checks between two steps."""
        return [s.config for s in self._sandboxes.values() if s.state is SandboxState.READY]

    def _ids_in(self, sandbox_id: str) -> list[str]:
        return [cid for cid, c in self._containers.items() if c.status.sandbox_id == sandbox_id]

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        self._sandbox(sandbox_id)
        script = self.scripts.get(config.image, ContainerScript())
        if script.fail_create:
            raise CreateContainerError(script.fail_create)
        cid = self._next_id("container")
        status = ContainerStatus(
            id=cid,
            sandbox_id=sandbox_id,
            name=config.name,
            attempt=config.attempt,
            image=config.image,
            state=ContainerState.CREATED,
            created_at=self.clock.now(),
            labels=dict(config.labels),
        )
        self._containers[cid] = _Container(status, script)
        return cid

    def _container(self, container_id: str) -> _Container:
        try:
            container = self._containers[container_id]
        except KeyError:
            raise NotFound(f"no container {container_id}") from None
        self._advance(container)
        return container

    def _advance(self, container: _Container) -> None:
        """Apply the script's exit if its time has come."""
        status, script = container.status, container.script
        if status.state is not ContainerState.RUNNING or script.exit_after is None:
            return
        assert status.started_at is not None
        exit_at = status.started_at + script.exit_after
        if self.clock.now() >= exit_at:
            reason = "Completed" if script.exit_code == 0 else "Error"
            container.status = attrs.evolve(
                status,
                state=ContainerState.EXITED,
                finished_at=exit_at,
                exit_code=script.exit_code,
                reason=reason,
            )

    def _finish(self, container_id: str, at: float, code: int, reason: str) -> None:
        container = self._container(container_id)
        if container.status.state is ContainerState.EXITED:
            return
        container.status = attrs.evolve(
            container.status,
            state=ContainerState.EXITED,
            started_at=container.status.started_at,
            finished_at=at,
            exit_code=code,
            reason=reason,
        )

    def running_containers(self) -> list[tuple[PodSandboxConfig, ContainerStatus]]:
        """The running containers by id, each with its pod's sandbox config, read without a
        checkpoint (for an observer or a fault injector outside the kubelet, between two
        steps of a simulation)."""
        found = []
        for cid in sorted(self._containers):
            container = self._container(cid)
            if container.status.state is ContainerState.RUNNING:
                sandbox = self._sandboxes[container.status.sandbox_id]
                found.append((sandbox.config, container.status))
        return found

    def kill_container(self, container_id: str, code: int = 1) -> None:
        """The container's process dies now of something outside the kubelet (a crash, the
        kernel's OOM killer): it is exited with ``code``, as the runtime reports such a
        process, and the kubelet finds out on its next look as it would from a real runtime.
        A container that is not running is left as it is."""
        container = self._container(container_id)
        if container.status.state is ContainerState.RUNNING:
            self._finish(container_id, self.clock.now(), code, "Error")

    async def start_container(self, container_id: str) -> None:
        container = self._container(container_id)
        if container.status.state is not ContainerState.CREATED:
            raise CreateContainerError(f"container {container_id} is not in created state")
        container.status = attrs.evolve(
            container.status, state=ContainerState.RUNNING, started_at=self.clock.now()
        )

    async def stop_container(self, container_id: str, timeout: float) -> None:
        container = self._container(container_id)
        if container.status.state is not ContainerState.RUNNING:
            if container.status.state is ContainerState.CREATED:
                self._finish(container_id, self.clock.now(), 0, "")
            return
        term = self.clock.now()
        takes = container.script.stop_takes
        if takes <= timeout:
            await self.clock.sleep_until(term + takes)
            self._finish(container_id, self.clock.now(), 0, "Completed")
        else:
            await self.clock.sleep_until(term + timeout)
            self._finish(container_id, self.clock.now(), EXIT_KILLED, "Error")

    async def remove_container(self, container_id: str) -> None:
        self._containers.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).status

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        out = []
        for cid in list(self._containers):
            container = self._container(cid)
            if not sandbox_id or container.status.sandbox_id == sandbox_id:
                out.append(container.status)
        return out

    async def exec_sync(
        self, container_id: str, command: tuple[str, ...], timeout: float
    ) -> ExecResult:
        """Succeeds while the script says the container is ready and alive."""
        container = self._container(container_id)
        status, script = container.status, container.script
        if status.state is not ContainerState.RUNNING or status.started_at is None:
            return ExecResult(1, b"container is not running")
        since = self.clock.now() - status.started_at
        ready = script.ready_after is not None and since >= script.ready_after
        alive = script.live_for is None or since < script.live_for
        return ExecResult(0 if ready and alive else 1)
