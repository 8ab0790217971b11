"""Container crashes on simulated nodes: a pod's process dies under the kubelet.

``container_crash`` picks, on the node its step names (``host``, a kubelet's machine), the
running container at index ``which`` (modulo how many run there, in container-id order, so a
shrunk trace picks the same one) and kills it as a crash or the kernel's OOM killer would
(:meth:`raftkube.runtime.SimulatedRuntime.kill_container`). Nothing else is told: the
kubelet finds the exit on its next look, reports the pod not Ready, and restarts the
container after its crash-loop back-off (``restartPolicy: Always``), which takes the pod's
address out of its Services' ready endpoints and back. It heals itself; the reconciliation
bound allows for the back-off the example's crashes can have built up
(:func:`crash_loop_allowance`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkube_fuzz.faults import FaultKind, register
from raftkube_fuzz.faults.cluster import component
from raftkube_fuzz.steps import Step
from raftkube_fuzz.timeline import FAULT

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run

CONTAINER_CRASH = "container_crash"
CRASH_EXIT_CODE = 1


def _crash_container(run: Run, step: Step, member: int) -> None:
    host = component(run, str(step["host"]))
    runtime = getattr(host.process, "runtime", None) if host.up else None
    running = runtime.running_containers() if runtime is not None else []
    if not running:
        run.timeline.add(
            run.sim.now, None, FAULT, f"{step.describe()}: no container runs there (no-op)"
        )
        return
    pod, victim = running[int(step["which"]) % len(running)]
    assert runtime is not None
    runtime.kill_container(victim.id, CRASH_EXIT_CODE)
    run.fault(
        step.kind,
        f"container {victim.name} of pod {pod.namespace}/{pod.name} on {host.name} crashed "
        f"(exit code {CRASH_EXIT_CODE})",
        hosts=[host.name],
    )


def crash_loop_allowance(run: Run) -> float:
    """The longest crash-loop back-off the example's container crashes can have left a
    container waiting out: the kubelet's delay doubles from 10 s at each restart of the
    same container, to at most 300 s, so ``n`` crashes wait at most ``10 x 2^(n-1)``."""
    # Imported here: the registry imports this module in every fuzz process, and importing
    # the kubelet package imports the control plane, which a kv or raft run never touches
    # (Hypothesis scans every imported project module for constants to draw).
    from raftkube.kubelet.backoff import INITIAL, MAXIMUM

    crashes = run.faults.get(CONTAINER_CRASH, 0)
    if crashes == 0:
        return 0.0
    return float(min(MAXIMUM, INITIAL * 2 ** min(crashes - 1, 16)))


register(
    FaultKind(
        CONTAINER_CRASH,
        "component",
        None,
        _crash_container,
        "the kubelet restarts the container after its crash-loop back-off",
    )
)
