"""The container runtime interface the kubelet drives, shaped as CRI's ``RuntimeService``.

CRI (``k8s.io/cri-api``) splits a pod into a *sandbox* (the pod's shared network identity: here
its IP) and *containers* created in it. The kubelet only ever asks for the calls below, so a
runtime of local processes (:mod:`.process`) and a scripted one (:mod:`.simulated`) are
interchangeable under it. Simplified from CRI: no image service (an image is a name the runtime
interprets), no streaming attach/port-forward, and times are the runtime's clock readings
(seconds) rather than wall-clock nanoseconds; the kubelet stamps wall times itself.
"""

from __future__ import annotations

import enum
from typing import Protocol

import attrs


class SandboxState(enum.Enum):
    READY = "SANDBOX_READY"
    NOTREADY = "SANDBOX_NOTREADY"


class ContainerState(enum.Enum):
    CREATED = "CONTAINER_CREATED"
    RUNNING = "CONTAINER_RUNNING"
    EXITED = "CONTAINER_EXITED"
    UNKNOWN = "CONTAINER_UNKNOWN"


class ContainerRuntimeError(Exception):
    """A runtime call failed; ``reason`` is what the kubelet shows in a waiting state."""

    reason = "RunContainerError"


class CreateContainerError(ContainerRuntimeError):
    """The container cannot be made (upstream's ``CreateContainerError`` waiting reason)."""

    reason = "CreateContainerError"


class NotFound(ContainerRuntimeError):
    """No sandbox or container of that id."""


@attrs.frozen
class PodSandboxConfig:
    """CRI's ``PodSandboxConfig`` as far as the runtimes use it: the pod's identity, and the
    labels by which the kubelet finds its sandboxes again after a restart."""

    name: str
    namespace: str
    uid: str
    attempt: int = 0
    hostname: str = ""
    labels: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class PodSandboxStatus:
    id: str
    config: PodSandboxConfig
    state: SandboxState
    ip: str
    created_at: float


@attrs.frozen
class ContainerConfig:
    """CRI's ``ContainerConfig``: what to run (``command`` then ``args``, as upstream joins
    entrypoint and arguments), its environment, and labels (container name, restart attempt)
    that identify it when the kubelet lists the runtime."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    attempt: int = 0
    labels: dict[str, str] = attrs.field(factory=dict)
    mounts: tuple[tuple[str, str], ...] = ()
    """CRI's ``Mount`` as (container path, host path) pairs."""


@attrs.frozen
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    image: str
    state: ContainerState
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    labels: dict[str, str] = attrs.field(factory=dict)
    log_path: str = ""


@attrs.frozen
class ExecResult:
    exit_code: int
    output: bytes = b""


class RuntimeService(Protocol):
    """CRI's ``RuntimeService`` subset. Every call returns promptly; waits (a stop's grace
    period) are bounded by the arguments and run on the runtime's clock."""

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        """Make the pod's sandbox (and its IP); its id."""
        ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container of the sandbox at once and mark it NOTREADY."""
        ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Forget the sandbox and its containers, releasing its IP; removing one already gone
        is not an error."""
        ...

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        """A CREATED container; :class:`CreateContainerError` if it cannot be run."""
        ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout: float) -> None:
        """Ask the container to stop (SIGTERM), and kill it after ``timeout`` seconds."""
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        """Every container (of one sandbox, when given), exited ones included."""
        ...

    async def exec_sync(
        self, container_id: str, command: tuple[str, ...], timeout: float
    ) -> ExecResult:
        """Run ``command`` in the container's context (an exec probe); exit code 1 with a
        message if it does not finish in ``timeout`` seconds."""
        ...
