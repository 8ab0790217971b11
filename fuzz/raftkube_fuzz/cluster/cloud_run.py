"""The cloud's part of a cluster-suite run: its start-up, its end, and its share of the
reconcile bound.

:func:`start_cloud` runs in the suite's ``prepare`` once every node is up: the user's admin
provisions the cloud-controller-manager's token (:func:`~raftkube_fuzz.cluster.cloud.
provision_token`, retried until issued), then the run waits until the cloud is reconciled
(:func:`~raftkube_fuzz.checks.cloud_state.cloud_problems` empty: every node's route created
and reported, no balancer owed yet), so the first step finds the cloud controllers at work.
:func:`heal_cloud` clears the cloud API's faults at the end, with the other lags;
:func:`cloud_share` is what the cloud adds to the time reconciliation may take.
"""

from __future__ import annotations

from raftkube_fuzz.checks.cloud_state import cloud_problems
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.cluster.cloud import ACCOUNT, CLIENT_TIMEOUT, OPTIONS, provision_token
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.timeline import CHECK, CLIENT
from raftkube_fuzz.world.driver import sleep

STARTUP_LIMIT = 60.0
"""Virtual seconds the token and the cloud's first reconciliation get: the manager's first
Lease, its controllers' accounts and tokens, and a route pass (every 10 s)."""
RETRY = 1.0
POLL = 0.5


def start_cloud(run: Run, observer: ClusterObserver) -> None:
    """See the module docstring."""
    plane = plane_of(run)
    side = plane.cloud_side

    async def provision() -> str:
        while True:
            outcome = await provision_token(plane.admin, side)
            if side.token is not None:
                return outcome
            await sleep(RETRY)

    outcome = run.sim.call(provision, limit=STARTUP_LIMIT)
    text = f"user: create serviceaccount kube-system/{ACCOUNT} and its token: {outcome}"
    run.timeline.add(run.sim.now, None, CLIENT, text, {"host": plane.user.name})

    async def reconciled() -> None:
        while True:
            observer.follow(run.written)
            if not cloud_problems(observer, side.cloud):
                return
            await sleep(POLL)

    run.sim.call(reconciled, limit=STARTUP_LIMIT)
    run.timeline.add(run.sim.now, None, CHECK, "cloud up: every node's route made")


def heal_cloud(run: Run) -> None:
    """The final heal of the cloud API (its faults outlive the world's own heal)."""
    plane_of(run).cloud_side.set_faults(run.sim.now)


def cloud_share(run: Run) -> float:
    """What the cloud adds to the reconcile bound: a controller's per-key back-off doubles
    while the cloud fails, so its next retry after a heal may come as long after as the
    longest failure lasted (:attr:`CloudSide.longest_failure`); that retry may wait out one
    timed-out request (the client's 10 s) and the route controller's next pass (every
    ``--route-reconciliation-period``)."""
    side = plane_of(run).cloud_side
    return side.longest_failure + CLIENT_TIMEOUT + OPTIONS.route_reconciliation_period
