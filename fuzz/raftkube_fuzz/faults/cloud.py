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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkube_fuzz.faults import CUT, FaultKind, register
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.steps import Step

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


def _heal_step(run: Run, step: Step) -> tuple[Step, ...]:
    return (Step.of("cloud_heal"),)


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
    )  # fmt: skip
    for kind in kinds:
        register(kind)
    return tuple(kind.name for kind in kinds)


CLOUD_FAULTS = _register()
"""The cloud API's fault kinds, in registration order."""
