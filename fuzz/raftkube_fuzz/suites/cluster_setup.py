"""The ``cluster`` suite's settings and the start of each example.

:data:`DEFAULT_CONFIG` lists the settings (``raftkube fuzz run cluster --config KEY=VALUE``) and
says what each one changes; :func:`prepare` builds the control plane of an example
(:mod:`raftkube_fuzz.cluster.plane`), waits for every node to be Ready and applies the
settings' scenario (lagging components, the cloud's, the user's objects from the start) before
the first step. The rules are the suite's (:mod:`raftkube_fuzz.suites.cluster`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from raftkube.server.compactor import parse_go_duration
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.checks.reconciliation import unreconciled
from raftkube_fuzz.cluster import actions, checking, namespaces, user_steps
from raftkube_fuzz.cluster.cloud_run import CLOUD_SETTINGS, cloud_scenario, start_cloud
from raftkube_fuzz.cluster.disturbances import disruption_watch
from raftkube_fuzz.cluster.plane import ControlPlane, PlaneShape
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults.cluster import slow_host
from raftkube_fuzz.suites.base import setting
from raftkube_fuzz.timeline import CHECK
from raftkube_fuzz.world.driver import sleep
from raftkube_fuzz.world.world import WorldConfig

STARTUP_LIMIT = 60.0
"""Virtual seconds the cluster gets to come up (every node registered and Ready) before the
first step."""

COMPACTION = "10s"
"""The ``compaction`` setting's default: every API server's ``--etcd-compaction-interval`` on
its own clock (a Go duration; ``0`` disables it). 10 s, not upstream's 5 min, so that an
example of a minute or two compacts several times and what follows is judged: lists at a
compacted revision are 410, watch caches that resume below a compaction and the informers
they leave behind list again."""

DEFAULT_CONFIG = {
    "servers": 1,
    "apiservers": 1,
    "nodes": 3,
    "managers": 2,
    "schedulers": 2,
    "store_faults": "on",
    "slow": "off",
    "accounts": "created",
    "services": "off",
    "canary": "off",
    "full": "off",
    "rollout": "off",
    "instances": "shutdown",
    "cloud": "ok",
    "compaction": COMPACTION,
}
"""``store_faults=off`` leaves the store's members alone (the base machine's fault rules draw
nothing), for a search about the control plane's own loops. ``slow=managers`` (or
``schedulers``) starts every example with those components' connections lagging as
``host_slow`` makes them (ceiling :data:`SLOW_SCENARIO` s): a scenario where one informer's
watch runs behind another's and a write's own echo comes back late all the time, for a search
about loops acting on such views. ``slow=manager-watches`` lags the controller managers'
watches alone (ceiling :data:`WATCH_LAG_SCENARIO` s,
:class:`~raftkube_fuzz.cluster.lag.LaggingWatchClient`) while their requests are answered at
once: a manager reads fresh objects by GET but sees its own writes come back through its
informers seconds late, longer than a Deployment's pod takes to turn Ready, for a search about
loops that trust their cache over their own last write. ``slow=endpoints-watches`` lags the
managers' Endpoints watches alone (ceiling :data:`ENDPOINTS_LAG_SCENARIO` s), as when the API
server's watch cache of one resource falls behind: the endpoints controller sees pods change
at once but its own Endpoints writes come back late, long enough for a Service's pod set to
go and come back (a crashed container's first back-off is 10 s). ``services=all`` has the
user create every workload's Service (``svc-<workload>``) as the example starts, so every
pod the steps start, replace or remove changes some Service's Endpoints: a search about what follows
Endpoints (kube-proxy). ``apiservers=2`` runs a second API server over the same store
(:mod:`raftkube_fuzz.cluster.plane` says which component talks to which): each has its own
watch caches, so one component's view may run behind another's by a whole server, and the
user's requests (each step's ``via``) go through both, for the object linearizability
check. ``canary=on`` has the user apply ``rs-a`` and its canary (:data:`CANARY_SETUP`) and
wait for their pods to run before the first step, so that any step that deletes, scales or
replaces ``rs-a`` finds pods its selector matches but another ReplicaSet owns, however soon
the search draws it: a search about ownership against labels (the garbage collector's
dependents, the ReplicaSet controller's adoption). ``full=on`` has the user fill every node
before the first step: ``rs-b`` with two pods a node (:data:`~raftkube_fuzz.cluster.actions.RS_CPU`
each: a third does not fit) and a wait for them to run, so that a pod bound by hand
(``create_pinned``) finds its node without room however soon the search draws it, and a
scale-up finds no node with room: a search about admission and scheduling at capacity (the
kubelet's admission, the scheduler's fit, pods waiting for room). ``rollout=on`` has the user
apply ``dep-a`` x3 (:data:`ROLLOUT_SETUP`) and wait for its pods to run before the first step,
so a step giving ``dep-a`` a new template starts a rolling update from a settled Deployment
however soon the search draws it: a search about the Deployment controller's surge and
availability bounds. ``instances=shutdown`` (the
default) lets steps shut down and start nodes' cloud instances (their machines stop and boot;
the final heal starts every one left shut down), ``instances=delete`` delete them too, for
good: the user's nodes then are fewer at the end, their pods replaced on the others (a changed
desired state, so a setting), and ``instances=off`` neither
(:mod:`raftkube_fuzz.faults.cloud`). ``cloud=failing`` has the cloud API fail half its
requests from the first step on (until a ``cloud_heal`` step or the final heal), so every
cloud loop's calls fail now and then, whatever else the search draws: a search about the cloud
loops' handling of errors (:func:`~raftkube_fuzz.cluster.cloud_run.cloud_scenario`)."""

INSTANCE_SETTINGS = ("shutdown", "delete", "off")

CANARY_SETUP = (actions.replica_set("rs-a", 2), actions.replica_set(actions.CANARY, 1))
"""What ``canary=on`` applies before the first step: ``rs-a`` beside ``rs-a-canary``, whose
pods ``rs-a``'s selector also matches."""

ROLLOUT_SETUP = actions.deployment("dep-a", 3, 1)
"""What ``rollout=on`` applies before the first step: ``dep-a`` x3 at template version 1."""

FULL_PER_NODE = 2
"""``rs-b``'s pods a node holds with ``full=on``: two of
:data:`~raftkube_fuzz.cluster.actions.RS_CPU` fit a simulated node, a third does not."""

SLOW_SETTINGS = ("off", "managers", "schedulers", "manager-watches", "endpoints-watches")
SLOW_SCENARIO = 1.0
WATCH_LAG_SCENARIO = 10.0
ENDPOINTS_LAG_SCENARIO = 30.0


def world_config(config: Mapping[str, Any]) -> WorldConfig:
    return WorldConfig(servers=int(config["servers"]))


def quiet_components() -> None:
    """The components log as their production selves do (warnings on every refused
    connection while a peer is down, tracebacks of failed syncs); in a simulation those are
    expected by the thousand and the timeline is the record, so only critical ones print."""
    logging.getLogger("raftkube").setLevel(logging.CRITICAL)


def prepare(run: Run) -> None:
    """Add the control plane and wait until every node is registered and Ready."""
    quiet_components()
    shape = PlaneShape(
        managers=int(run.config["managers"]),
        schedulers=int(run.config["schedulers"]),
        nodes=int(run.config["nodes"]),
        apiservers=int(run.config.get("apiservers", 1)),
        compaction=parse_go_duration(str(run.config.get("compaction", COMPACTION))),
    )
    plane = ControlPlane(run.world, shape, lambda: max(run.written, default=1))
    store_faults = setting(run, "store_faults", ("on", "off"), "on") == "on"
    watch, times = disruption_watch(run, plane, store_faults)
    observer = ClusterObserver(plane.leadership, plane.scheduling, watch, times, plane.ambiguous)
    run.extras["plane"] = plane
    run.extras["observer"] = observer
    plane.conformance.follow(run.written, run.listener.on_written)
    run.listener.on_written.extend((plane.leadership.lease_written,
                                    plane.scheduling.lease_written))  # fmt: skip

    async def started() -> None:
        while True:
            observer.follow(run.written)
            nodes = observer.of("Node")
            if len(nodes) == shape.nodes and not [
                p for p in unreconciled(observer) if p.startswith("node ")
            ]:
                return
            await sleep(checking.POLL)

    run.sim.call(started, limit=STARTUP_LIMIT)
    run.timeline.add(run.sim.now, None, CHECK, f"control plane up: {shape}")
    start_cloud(run, observer)
    cloud_scenario(run, setting(run, "cloud", CLOUD_SETTINGS, "ok"))
    slow = setting(run, "slow", SLOW_SETTINGS, "off")
    if slow == "manager-watches":
        for host in plane.managers:
            plane.lags.set_watches(host.name, WATCH_LAG_SCENARIO)
            run.fault("host_slow", f"{host.name}'s watches lag, each by its own share of "
                      f"{WATCH_LAG_SCENARIO} s", hosts=[host.name])  # fmt: skip
    if slow == "endpoints-watches":
        for host in plane.managers:
            plane.lags.set_watches(host.name, ENDPOINTS_LAG_SCENARIO, frozenset({"endpoints"}))
            run.fault("host_slow", f"{host.name}'s Endpoints watch lags by its share of "
                      f"{ENDPOINTS_LAG_SCENARIO} s", hosts=[host.name])  # fmt: skip
    for host in {"managers": plane.managers, "schedulers": plane.schedulers}.get(slow, []):
        slow_host(run, host, SLOW_SCENARIO)
    user_steps.accounts_at_start(run)
    namespaces.at_start(run)
    if setting(run, "services", ("off", "all"), "off") == "all":
        for target in actions.WORKLOADS:
            obj = actions.service(target)
            user_steps.user_action(run, f"apply svc-{target}",
                         lambda c, obj=obj: actions.apply(c, obj))  # fmt: skip
    if setting(run, "canary", ("off", "on"), "off") == "on":
        user_steps.running_at_start(run, observer, CANARY_SETUP)
    if setting(run, "full", ("off", "on"), "off") == "on":
        user_steps.running_at_start(
            run, observer, (actions.replica_set("rs-b", FULL_PER_NODE * shape.nodes),)
        )
    if setting(run, "rollout", ("off", "on"), "off") == "on":
        user_steps.running_at_start(run, observer, (ROLLOUT_SETUP,))
