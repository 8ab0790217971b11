"""The cloud's part of a cluster-suite run: its start-up, its end, and its share of the
reconcile bound.

:func:`start_cloud` runs in the suite's ``prepare`` once every node is up: the user's admin
provisions the cloud-controller-manager's token (:func:`~raftkube_fuzz.cluster.cloud.
provision_token`, retried until issued), then the run waits until the cloud is reconciled
(:func:`~raftkube_fuzz.checks.cloud_state.cloud_problems` empty: every node's route created
and reported, no balancer owed yet), so the first step finds the cloud controllers at work.
:func:`heal_cloud` clears the cloud API's faults at the end, with the other lags, and starts
every instance a step shut down (its machine boots its kubelet again); :func:`cloud_share` is
what the cloud adds to the time reconciliation may take. Each node's machine boots its
programs only while its instance runs (:meth:`~raftkube_fuzz.cluster.cloud.CloudSide.power`,
set up by :func:`start_cloud`), so a machine whose instance a step shut down or deleted stays
off through restarts and the world's final heal.
"""

from __future__ import annotations

from raftkube.controllers.podgc import GC_CHECK_PERIOD, QUARANTINE_TIME
from raftkube_fuzz.checks.cloud_state import cloud_problems
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.cluster.cloud import ACCOUNT, CLIENT_TIMEOUT, OPTIONS, provision_token
from raftkube_fuzz.cluster.components import NODE_LIFECYCLE
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
    for host, node in zip(plane.kubelets, plane.pki.plan.sim_nodes, strict=False):
        side.power(host, node.name)

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


CLOUD_SETTINGS = ("ok", "failing")
FAILING_SHARE = 0.5


def cloud_scenario(run: Run, cloud: str) -> None:
    """The suite's ``cloud`` setting, once the cloud is up: with ``failing``, the cloud API
    fails half its requests (503) from the first step on, as a ``cloud_fail`` step of that
    share makes it, until a ``cloud_heal`` step or the final heal."""
    if cloud != "failing":
        return
    plane = plane_of(run)
    plane.cloud_side.set_faults(run.sim.now, fail_rate=FAILING_SHARE)
    text = f"the cloud API fails {FAILING_SHARE:.0%} of its requests (503) from the start"
    run.fault("cloud_fail", text, hosts=[plane.cloud.name])


def heal_cloud(run: Run) -> None:
    """The final heal of the cloud API (its faults outlive the world's own heal), and of every
    instance shut down: it is started, and its machine (off since) boots its programs."""
    plane = plane_of(run)
    plane.cloud_side.set_faults(run.sim.now)
    for host, node in zip(plane.kubelets, plane.pki.plan.sim_nodes, strict=False):
        instance = plane.cloud_side.cloud.instances.get(node.name)
        if instance is None or instance.get("state") != "shutdown":
            continue
        plane.cloud_side.set_state(node.name, "running")
        if host.up:
            host.crash()
        host.restart()
        run.fault("instance_start", f"{node.name}'s instance started", hosts=[host.name])


def cloud_share(run: Run) -> float:
    """What the cloud adds to the reconcile bound: a controller's per-key back-off doubles
    while the cloud fails, so its next retry after a heal may come as long after as the
    longest failure lasted (:attr:`CloudSide.longest_failure`); that retry may wait out one
    timed-out request (the client's 10 s) and the route controller's next pass (every
    ``--route-reconciliation-period``). If an instance was deleted, its node must also be
    judged lost (the node monitor's grace and its next pass), deleted by the cloud node
    lifecycle controller (its next pass), and its pods force-deleted by the pod garbage
    collector (up to two of its passes around its quarantine) before their replacements are
    made: :data:`DELETED_NODE_SHARE`."""
    side = plane_of(run).cloud_side
    deleted = DELETED_NODE_SHARE if side.deleted else 0.0
    return side.longest_failure + CLIENT_TIMEOUT + OPTIONS.route_reconciliation_period + deleted


DELETED_NODE_SHARE = (
    NODE_LIFECYCLE.node_monitor_grace_period
    + NODE_LIFECYCLE.node_monitor_period
    + OPTIONS.node_monitor_period
    + 2 * GC_CHECK_PERIOD
    + QUARANTINE_TIME
)
"""What a deleted instance adds to the reconcile bound (106 s): see :func:`cloud_share`."""
