"""Container runtimes behind one CRI-shaped interface (:mod:`.interface`): local processes
(:mod:`.process`) and a scripted simulation on the injected clock (:mod:`.simulated`); pod IPs
come from the node's pod CIDR (:mod:`.ipam`)."""

from raftkube.runtime.interface import (
    ContainerConfig,
    ContainerRuntimeError,
    ContainerState,
    ContainerStatus,
    CreateContainerError,
    ExecResult,
    NotFound,
    PodSandboxConfig,
    PodSandboxStatus,
    RuntimeService,
    SandboxState,
)
from raftkube.runtime.ipam import IPAllocator, PodCIDRExhausted
from raftkube.runtime.process import ProcessRuntime
from raftkube.runtime.simulated import ContainerScript, SimulatedRuntime

__all__ = [
    "ContainerConfig",
    "ContainerRuntimeError",
    "ContainerScript",
    "ContainerState",
    "ContainerStatus",
    "CreateContainerError",
    "ExecResult",
    "IPAllocator",
    "NotFound",
    "PodCIDRExhausted",
    "PodSandboxConfig",
    "PodSandboxStatus",
    "ProcessRuntime",
    "RuntimeService",
    "SandboxState",
    "SimulatedRuntime",
]
