"""The cluster suite's checks: after every step, and at the end once every fault healed.

After a step: the safety properties on every revision the store committed and on what the
machines run (:class:`~raftkube_fuzz.checks.cluster_state.ClusterObserver`), each kube-proxy's
table on its node's lane, the leader-overlap windows on the timeline, and the kept tokens
(:mod:`raftkube_fuzz.checks.account_tokens`). At the end: the tokens judged, then eventual
stable reconciliation within :func:`bound` (every kube-proxy's routes included), then, as a
:class:`~raftkube_fuzz.checks.api.Check`, the user's object requests' linearizability.
"""

from __future__ import annotations

from typing import Any

import trio

from raftkube_fuzz.checks import account_tokens
from raftkube_fuzz.checks.api import Check
from raftkube_fuzz.checks.cloud_state import cloud_problems
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.checks.list_linearizability import ListLinearizabilityCheck
from raftkube_fuzz.checks.object_linearizability import ObjectLinearizabilityCheck
from raftkube_fuzz.checks.proxy_routes import misrouted, note_routes, routes_by_node
from raftkube_fuzz.checks.reconciliation import STABLE_FOR, reconcile_bound, unreconciled
from raftkube_fuzz.checks.standard import standard_checks
from raftkube_fuzz.cluster.cloud_run import cloud_share, heal_cloud
from raftkube_fuzz.cluster.components import LEADER_LEASE, LEADER_RETRY, NODE_LIFECYCLE
from raftkube_fuzz.cluster.disturbances import note_healed, note_step
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.faults.containers import crash_loop_allowance
from raftkube_fuzz.timeline import CHECK
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.driver import sleep

KUBELET_RENEW = 10.0
"""The kubelet's Lease renewal interval (``raftkube.kubelet.node.RENEW_INTERVAL``)."""

POLL = 0.5
"""How often (virtual seconds) the start-up and the end check look at the objects."""


def observer_of(run: Run) -> ClusterObserver:
    observer = run.extras["observer"]
    assert isinstance(observer, ClusterObserver)
    return observer


def running_pods(run: Run) -> dict[str, list[tuple[str, str]]]:
    """What each up machine runs: node name -> (namespace, name) of every pod with a sandbox."""
    return {
        node: [(c.namespace, c.name) for c in process.runtime.running_pods()]
        for node, process in plane_of(run).runtimes().items()
    }


def check_step(run: Run) -> None:
    if "observer" not in run.extras:
        return
    observer = observer_of(run)
    if run.steps:
        note_step(run, run.steps[-1], observer.disruption)
    try:
        observer.follow(run.written)
    finally:
        # The requests that led to a broken property are judged first: a conformance
        # violation names the loop, its view and why, where the property only shows the state.
        plane_of(run).conformance.check(lambda uid: uid in observer.excused)
    observer.check_machines(running_pods(run))
    note_routes(run, plane_of(run))
    overlap = plane_of(run).leadership.overlapping()
    if overlap != run.extras.get("overlap", ()):
        run.extras["overlap"] = overlap
        text = (
            f"controller managers {' and '.join(overlap)} may both act as leader: "
            "NoOverCreation does not count the pods created meanwhile"
            if overlap
            else "one controller manager at most acts as leader again"
        )
        run.timeline.add(run.sim.now, None, CHECK, text)
    run.timeline.add(
        run.sim.now,
        None,
        CHECK,
        f"objects at revision {observer.revision}: {observer.fingerprint()}",
    )
    account_tokens.of(run).after_step(run)


def bound(run: Run) -> float:
    return reconcile_bound(
        store_recovery=run.liveness_bound(),
        leader_lease=LEADER_LEASE,
        leader_retry=LEADER_RETRY,
        node_grace=NODE_LIFECYCLE.node_monitor_grace_period,
        node_monitor_period=NODE_LIFECYCLE.node_monitor_period,
        kubelet_renew=KUBELET_RENEW,
        settle=10.0,
    ) + crash_loop_allowance(run)


def check_end(run: Run) -> None:
    """Every kept token judged, then eventual stable reconciliation (the world was healed by
    :meth:`Run.finish`; the components' watch lags and the cloud API's faults are healed
    here). The cloud's own state is judged with the objects
    (:mod:`~raftkube_fuzz.checks.cloud_state`), in a bound that adds the cloud's share
    (:func:`~raftkube_fuzz.cluster.cloud_run.cloud_share`)."""
    plane_of(run).lags.clear()
    heal_cloud(run)
    account_tokens.of(run).at_end(run)
    observer = observer_of(run)
    note_healed(run, observer.disruption)
    limit = bound(run) + cloud_share(run)
    start = run.sim.now
    state: dict[str, Any] = {"since": None, "problems": []}
    conformance = plane_of(run).conformance

    async def reconcile() -> None:
        while True:
            try:
                observer.follow(run.written)
            finally:  # as after a step: the loops' requests are judged first
                conformance.check(lambda uid: uid in observer.excused)
            observer.check_machines(running_pods(run))
            problems = unreconciled(observer)
            problems += misrouted(observer.of("Endpoints"), routes_by_node(plane_of(run)))
            problems += cloud_problems(observer, plane_of(run).cloud_side.cloud)
            now = trio.current_time()
            if problems:
                state["since"] = None
                state["problems"] = problems
                if now - start > limit:
                    return
            else:
                if state["since"] is None:
                    state["since"] = now
                    run.timeline.add(now, None, CHECK, "reconciled; must now stay so")
                if now - state["since"] >= STABLE_FOR:
                    return
            await sleep(POLL)

    run.sim.call(reconcile, limit=limit + STABLE_FOR + 2 * POLL)
    conformance.check(lambda uid: uid in observer.excused)
    run.timeline.add(run.sim.now, None, CHECK, conformance.summary())
    if state["since"] is None:
        raise Violation(
            "EventualStableReconciliation",
            f"{limit:.1f} virtual seconds after every fault healed the cluster is still not "
            f"as the user asked: {'; '.join(state['problems'][:5])}",
            {"bound": limit, "problems": state["problems"][:20]},
        )


def cluster_checks(run: Run) -> list[Check]:
    """The store suites' checks (the suite's own among them), then the user's object
    requests' linearizability (:mod:`raftkube_fuzz.checks.object_linearizability`)."""
    return [*standard_checks(run), ObjectLinearizabilityCheck(), ListLinearizabilityCheck()]
