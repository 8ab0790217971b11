"""What the cluster suite tells ``NoTaintingInFullDisruption`` about its run: when each
revision committed, which steps disturbed the control plane, and how long the node lifecycle
controller may take to act on what it sees (:mod:`raftkube_fuzz.checks.disruption` says why
each is needed).

* **Settling time**: one monitoring pass, on the slowest controller manager's clock
  (``--node-monitor-period`` divided by its rate), plus :data:`PASS_MARGIN` for the pass's
  own requests (a status write and the pod updates and Events of every node that fell). None
  (nothing judged) while any manager's connections lag: every request of a pass lags then,
  so a pass has no bound known here.
* **Recovery**: a fault on anything but the kubelets (the store, the API server, a manager or
  a scheduler, or a heal) may leave a request of the controller in flight or a pass stalled
  until the client's timeout (:data:`REQUEST_TIMEOUT`, on the slowest clock a fault can give
  a manager); with the store's faults on, plus the store's recovery bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from raftkube_fuzz.checks.disruption import DisruptionWatch
from raftkube_fuzz.cluster.components import NODE_LIFECYCLE
from raftkube_fuzz.faults import REGISTRY
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.steps import Step

if TYPE_CHECKING:
    from raftkube_fuzz.cluster.plane import ControlPlane
    from raftkube_fuzz.example import Run

PASS_MARGIN = 3.0
"""Virtual seconds allowed for one monitoring pass's requests on a healthy network (each
takes milliseconds in the simulation). A chosen margin, not a measured bound: unmutated runs
instrumented to print every taint added while every node was down printed none at all, in
the window or after it (docs/performance.md, ``eviction-ignores-disruption``)."""

REQUEST_TIMEOUT = 10.0
"""The components' client timeout (local seconds: :func:`~.components.client_for`)."""

SLOWEST_RATE = 0.5
"""The slowest clock rate the suite's faults give a host (``CLOCK_RATES``)."""

NODE_FAULTS = ("nodes_cut",)
"""Fault kinds that touch only the nodes."""


def disruption_watch(
    run: Run, plane: ControlPlane, store_faults: bool
) -> tuple[DisruptionWatch, dict[int, float]]:
    """The check's state for ``run``, and the virtual time each revision commits at (recorded
    from now on)."""

    def settle() -> float | None:
        if any(plane.lags.of(host.name) > 0 for host in plane.managers):
            return None
        slowest = min(host.clock.rate for host in plane.managers)
        return NODE_LIFECYCLE.node_monitor_period / slowest + PASS_MARGIN

    recovery = REQUEST_TIMEOUT / SLOWEST_RATE + (run.liveness_bound() if store_faults else 0.0)
    times: dict[int, float] = {}

    def committed(revision: int, records: object) -> None:
        times[revision] = trio.current_time()

    run.listener.on_written.append(committed)
    return DisruptionWatch(settle, recovery, calm_from=run.sim.now + recovery), times


def note_step(run: Run, step: Step, watch: DisruptionWatch | None) -> None:
    """Tell ``watch`` whether ``step`` (just applied) disturbed anything but the kubelets.
    It is dated now, at the step's end, which is at or after the fault itself: later is the
    cautious side (the revisions of the step itself are then excused too)."""
    if watch is None or step.kind not in REGISTRY or step.kind in NODE_FAULTS:
        return
    host = step.get("host")
    if host is not None and host in {h.name for h in plane_of(run).kubelets}:
        return
    watch.disturbed(run.sim.now)


def note_healed(run: Run, watch: DisruptionWatch | None) -> None:
    """The final heal (network, clocks, members, lags) is a disturbance like any other."""
    if watch is not None:
        watch.disturbed(run.sim.now)
