"""The cloud API's faults in the cluster suite: failing, slow, healed.

The simulated cloud's front end can answer 503 without acting and wait before answering
(:class:`raftkube.cloud.server.Faults`), as a provider's API does under an outage or throttling;
these kinds set that on the run's cloud (:class:`raftkube_fuzz.cluster.cloud.CloudSide`,
which outlives the cloud host's crashes) until a ``cloud_heal`` step or the final heal:

* ``cloud_fail`` with ``share`` s: each request fails with that probability (1: every one),
  drawn from the cloud host's seeded generator, so a run stays a function of its seed;
* ``cloud_slow`` with ``seconds`` s: each request waits that long on the cloud's clock before
  it is served (more than the CCM's 10 s timeout: every request times out, and may still act);
* ``cloud_heal``: neither;
* ``cloud_cut``: the cloud host cut off from the cloud-controller-managers, both ways, until
  ``host_heal`` (the component faults' heal of every link) or the final heal.

The cluster suite's ``cloud_fault`` rule draws them; like the component faults they have no
strategy here. The cloud host itself is a component: crashes, pauses and clock faults hit it
as any other.

A node's cloud instance, the machine its kubelet runs on (``host``: the kubelet's host), drawn
by the ``cloud_instance`` rule:

* ``instance_shutdown``: the instance is shut down (``state: shutdown``) and its machine
  stops, as a powered-off VM does: the node goes NotReady, and the cloud node lifecycle
  controller taints it ``node.cloudprovider.kubernetes.io/shutdown``;
* ``instance_start``: it runs again and its machine boots (the undo of a shutdown, and what
  the final heal does to every instance left shut down);
* ``instance_delete``: the instance is deleted for good and its machine with it (never the
  last instance left): the cloud node lifecycle controller deletes the node once it is not
  Ready, and the pod garbage collector its pods, which their owners replace elsewhere.

A machine whose instance does not run boots nothing
(:meth:`~raftkube_fuzz.cluster.cloud.CloudSide.power`), whatever restarts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkube_fuzz.faults import CUT, DOWN, FaultKind, register
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.steps import Step
from raftkube_fuzz.timeline import FAULT

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run

CLOUD_API = "cloud_api"
"""The span class of a cloud API that fails or is slow."""

FAIL_SHARES = (0.5, 1.0)
SLOW_SECONDS = (0.5, 3.0, 15.0)


def _apply(run: Run, step: Step, member: int) -> None:
    side = plane_of(run).cloud_side
    faults = side.faults
    if step.kind == "cloud_fail":
        side.set_faults(run.sim.now, delay=faults.delay, fail_rate=float(step["share"]))
        text = f"the cloud API fails {float(step['share']):.0%} of its requests (503)"
    elif step.kind == "cloud_slow":
        side.set_faults(run.sim.now, delay=float(step["seconds"]), fail_rate=faults.fail_rate)
        text = f"the cloud API answers {step['seconds']} s late"
    else:
        side.set_faults(run.sim.now)
        text = "the cloud API healed"
    run.fault(step.kind, text, hosts=[plane_of(run).cloud.name])


def _cut(run: Run, step: Step, member: int) -> None:
    """The cloud cut off from every cloud-controller-manager, both ways (a cut from the API
    server, the component faults' kind, separates it from no one it talks to)."""
    plane = plane_of(run)
    for ccm in plane.ccms:
        run.world.one_way(plane.cloud.node, ccm.node)
        run.world.one_way(ccm.node, plane.cloud.node)
    names = [plane.cloud.name, *(ccm.name for ccm in plane.ccms)]
    run.fault(step.kind, "the cloud cut off from the cloud-controller-managers", hosts=names)


def _node_of(run: Run, host: str) -> str | None:
    """The node whose machine is the kubelet host ``host``."""
    plane = plane_of(run)
    for kubelet, node in zip(plane.kubelets, plane.pki.plan.sim_nodes, strict=False):
        if kubelet.name == host:
            return node.name
    return None


def _instance(run: Run, step: Step, member: int) -> None:
    """Shut down, start or delete the instance of the step's node; a step that no longer
    applies (its instance gone, or already in that state, or the last one) is a no-op."""
    plane = plane_of(run)
    side = plane.cloud_side
    host = str(step["host"])
    node = _node_of(run, host)
    instance = side.cloud.instances.get(node or "")
    machine = next((h for h in plane.kubelets if h.name == host), None)
    state = instance.get("state") if instance is not None else None
    applies = {
        "instance_shutdown": state == "running",
        "instance_start": state == "shutdown",
        "instance_delete": state is not None and len(side.cloud.instances) > 1,
    }[step.kind]
    if node is None or machine is None or not applies:
        run.timeline.add(run.sim.now, None, FAULT, f"{step.describe()}: does not apply (no-op)")
        return
    if step.kind == "instance_start":
        side.set_state(node, "running")
        if machine.up:  # powered off: boot its programs
            machine.crash()
        machine.restart()
        run.fault(step.kind, f"{node}'s instance started: its machine boots", hosts=[host])
        return
    if step.kind == "instance_shutdown":
        side.set_state(node, "shutdown")
        text = f"{node}'s instance shut down: its machine stops"
    else:
        side.delete_instance(node)
        text = f"{node}'s instance deleted: its machine is gone"
    if machine.up:
        machine.crash()
    run.fault(step.kind, text, hosts=[host, plane.cloud.name])


def _heal_step(run: Run, step: Step) -> tuple[Step, ...]:
    return (Step.of("cloud_heal"),)


def _start_step(run: Run, step: Step) -> tuple[Step, ...]:
    return (Step.of("instance_start", host=step["host"]),)


def _register() -> tuple[str, ...]:
    kinds = (
        FaultKind("cloud_fail", "cloud", None, _apply, "cloud_heal, or the final heal",
                  _heal_step, opens=CLOUD_API),
        FaultKind("cloud_slow", "cloud", None, _apply, "cloud_heal, or the final heal",
                  _heal_step, opens=CLOUD_API),
        FaultKind("cloud_cut", "cloud", None, _cut, "host_heal unblocks every link",
                  lambda run, step: (Step.of("host_heal"),), opens=CUT),
        FaultKind("cloud_heal", "cloud", None, _apply,
                  "it is itself the healing of the cloud API", closes=frozenset({CLOUD_API})),
        FaultKind("instance_shutdown", "cloud", None, _instance,
                  "instance_start, or the final heal", _start_step, opens=DOWN),
        FaultKind("instance_start", "cloud", None, _instance,
                  "it is itself the healing of a shutdown", closes=frozenset({DOWN}), bound=True),
        FaultKind("instance_delete", "cloud", None, _instance,
                  "never undone: the node and its pods go, the pods are replaced elsewhere",
                  opens=DOWN),
    )  # fmt: skip
    for kind in kinds:
        register(kind)
    return tuple(kind.name for kind in kinds)


ALL_KINDS = _register()
CLOUD_FAULTS = ALL_KINDS[:4]
"""The cloud API's fault kinds, in registration order."""
INSTANCE_STEPS = ALL_KINDS[4:]
"""The instance steps' kinds: shutdown, start, delete (in that order)."""
