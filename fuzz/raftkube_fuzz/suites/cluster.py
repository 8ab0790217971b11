"""Suite ``cluster``: the whole control plane in the simulated world, driven as a user would.

The world (:mod:`raftkube_fuzz.cluster.plane`): the store's members (the world's own), one
API server (two with ``apiservers=2``, each component pinned to one of them, the user's steps
each through the one it names), two leader-elected controller managers, two leader-elected
schedulers and 2-4 kubelets on the simulated runtime, each node's kube-proxy on its kubelet's
machine, the simulated cloud and two leader-elected cloud-controller-managers
(:mod:`raftkube_fuzz.cluster.cloud`), every one the production code (a host of its own for
each but kube-proxy), with its own credentials, over the simulated streams (TLS included). The
user is a machine of its own acting as ``kubernetes-admin``.

Steps: the user applies, scales, rolls out and deletes ReplicaSets and Deployments,
creates and deletes Services (ClusterIP or LoadBalancer), cordons and uncordons nodes
(:mod:`raftkube_fuzz.cluster.actions`), creates and deletes
ServiceAccounts and asks for their tokens (:mod:`raftkube_fuzz.cluster.accounts`), each in
``default`` or in a second namespace, ``team-a``, which the user creates at the start and a
step deletes (``kubectl delete namespace``) or creates again
(:mod:`raftkube_fuzz.cluster.namespaces`); faults
crash, restart,
pause and resume any component, cut one from the API server (both ways), jump or skew its
clock, step its wall clock, crash a pod's container on a node
(:mod:`raftkube_fuzz.faults.containers`), make the cloud API fail, slow or cut off
(:mod:`raftkube_fuzz.faults.cloud`), and heal; the store's own fault rules (the base
machine's) hit its members as in the other suites. Every choice is a step argument, so a
trace replays; what a client step sends is :mod:`raftkube_fuzz.cluster.user_steps`'s.

Checks (:mod:`raftkube_fuzz.cluster.checking`): after every step, the spec's safety properties
on every revision the store committed
(:mod:`raftkube_fuzz.checks.cluster_state`) and on what the machines run, that every write of
the ReplicaSet controller, the endpoints controller and the scheduler is one the spec's loop
allows from the view its sync read, a view that must be a state the API had
(:mod:`raftkube_fuzz.checks.request_conformance`, :mod:`raftkube_fuzz.checks.views`, again at
the end), and that each token
the user keeps authenticates exactly while its account lives
(:mod:`raftkube_fuzz.checks.account_tokens`, again at the end); at the end, once
every fault healed, eventual stable reconciliation within a bound derived from the timeouts
(:mod:`raftkube_fuzz.checks.reconciliation`), every kube-proxy's routes included
(:mod:`raftkube_fuzz.checks.proxy_routes`), and the linearizability of every client's
single-object requests, the components' and the user's
(:mod:`raftkube_fuzz.checks.object_linearizability`); and, as in every suite, nothing
may escape a component (an exception out of a host is a failure).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from raftkube.server.compactor import parse_go_duration
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.checks.reconciliation import unreconciled
from raftkube_fuzz.cluster import accounts, actions, checking, namespaces, user_steps
from raftkube_fuzz.cluster.cloud_run import CLOUD_SETTINGS, cloud_scenario, start_cloud
from raftkube_fuzz.cluster.disturbances import disruption_watch
from raftkube_fuzz.cluster.plane import ControlPlane, PlaneShape
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults.cloud import CLOUD_FAULTS, FAIL_SHARES, INSTANCE_STEPS, SLOW_SECONDS
from raftkube_fuzz.faults.cluster import SLOW_LATENCIES, plane_of, slow_host
from raftkube_fuzz.faults.containers import CONTAINER_CRASH
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites.base import Suite, SuiteMachine, evenly, seeds, setting
from raftkube_fuzz.timeline import CHECK
from raftkube_fuzz.world.driver import sleep
from raftkube_fuzz.world.world import WorldConfig

STARTUP_LIMIT = 60.0
"""Virtual seconds the cluster gets to come up (every node registered and Ready) before the
first step."""

LONG_WAITS = (2.0, 5.0, 10.0, 30.0)
"""A control plane reacts in seconds (leases, grace periods), not in Raft's milliseconds."""

COMPACTION = "10s"
"""The ``compaction`` setting's default: every API server's ``--etcd-compaction-interval`` on
its own clock (a Go duration; ``0`` disables it). 10 s, not upstream's 5 min, so that an
example of a minute or two compacts several times and what follows is judged: lists at a
compacted revision are 410, watch caches that resume below a compaction and the informers
they leave behind list again."""

FAULT_HOLDS = (0.002, 1.0, 5.0)

OUTAGE_HOLDS = (1.0, 30.0, 60.0)
"""How long a ``nodes_cut`` step lets the outage last before the next step: long enough, in
one step, for the node lifecycle controller to judge every node lost (its grace period is
20 s) and act on it, which the search would otherwise need several waits without a heal for."""

EVERY_NODE = "every node"
"""What :meth:`ClusterMachine.component_partition` may cut off besides one component: the
control plane from every node (a second way to draw ``nodes_cut``, so that an example whose
swarm disabled that rule can still lose every node at once)."""

CLOCK_JUMPS = (1.0, 5.0, 30.0)
CLOCK_RATES = (0.5, 0.75, 1.25, 1.5)
WALL_OFFSETS = (-30.0, -20.0, 20.0, 30.0)
"""How far ``host_wall_offset`` steps a host's wall clock (either way, as NTP does): more than
a 15 s Lease's margin, so a candidate that compared another host's renewTime with its own
clock would misjudge it; under the API server's 60 s token leeway, so a step back does not
make fresh tokens not yet valid."""

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
kubelet's admission, the scheduler's fit, pods waiting for room). ``instances=shutdown`` (the
default) lets steps shut down and start nodes' cloud instances (their machines stop and boot;
the final heal starts every one left shut down), ``instances=delete`` delete them too, for
good: the user's nodes then are fewer at the end, their pods replaced on the others (a changed
desired state, so a setting), and ``instances=off`` neither
(:mod:`raftkube_fuzz.faults.cloud`). ``cloud=failing`` has the cloud API fail half its
requests from the first step on (until a ``cloud_heal`` step or the final heal), so every
cloud loop's calls fail now and then, whatever else the search draws: a search about the cloud
loops' handling of errors (:func:`~raftkube_fuzz.cluster.cloud_run.cloud_scenario`)."""

INSTANCE_SETTINGS = ("shutdown", "delete", "off")

CANARY_SETUP = (("rs-a", 2), (actions.CANARY, 1))
"""What ``canary=on`` applies before the first step: ``rs-a`` beside ``rs-a-canary``, whose
pods ``rs-a``'s selector also matches."""

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
        user_steps.running_at_start(run, observer, (("rs-b", FULL_PER_NODE * shape.nodes),))


# --- the machine ------------------------------------------------------------------------------


VIA = st.integers(0, 1)
"""Which API server a user step goes through (drawn by every user rule; recorded in the step
only with ``apiservers=2``)."""


class ClusterMachine(SuiteMachine):
    @initialize(seed=seeds(), servers=evenly((1, 3)), nodes=evenly((2, 3, 4)))
    def init(self, seed: int, servers: int, nodes: int) -> None:
        self.start({"servers": servers, "nodes": nodes}, seed)

    def _plane(self) -> ControlPlane:
        assert self.run is not None
        return plane_of(self.run)

    def user_step(self, via: int, kind: str, **args: Any) -> None:
        """Apply the user step ``kind``, through API server ``via`` when there are two."""
        if len(self._plane().apiservers) > 1:
            args["via"] = via
        self.apply(Step.of(kind, **args))

    def _api_names(self) -> set[str]:
        return {host.name for host in self._plane().apiservers}

    @rule(
        name=st.sampled_from(actions.RS_NAMES),
        replicas=st.integers(0, 4),
        via=VIA,
        namespace=namespaces.namespace_choice(),
    )
    def apply_replica_set(self, name: str, replicas: int, via: int, namespace: str) -> None:
        self.user_step(via, "apply_rs", name=name, replicas=replicas, namespace=namespace)

    @rule(
        name=st.sampled_from(actions.DEPLOYMENT_NAMES),
        replicas=st.integers(0, 4),
        version=st.integers(1, 3),
        via=VIA,
        namespace=namespaces.namespace_choice(),
    )
    def apply_deployment(
        self, name: str, replicas: int, version: int, via: int, namespace: str
    ) -> None:
        self.user_step(via, "apply_deployment", name=name, replicas=replicas, version=version,
                       namespace=namespace)  # fmt: skip

    @rule(node=st.integers(0, 3), via=VIA)
    def create_pinned(self, node: int, via: int) -> None:
        """A pod the user binds to a node itself (of those there are)."""
        plane = self._plane()
        nodes = [n.name for n in plane.pki.plan.sim_nodes[: plane.shape.nodes]]
        self.user_step(via, "create_pinned", node=nodes[node % len(nodes)])

    @rule(kind=evenly(("cordon", "uncordon")), node=st.integers(0, 3), via=VIA)
    def cordon(self, kind: str, node: int, via: int) -> None:
        """``kubectl cordon`` or ``uncordon`` of a node (of those there are): the scheduler
        places no new pod there while it is cordoned, and the pods it runs stay. A cordon is
        the user's intent, not a fault: the final heal leaves it."""
        plane = self._plane()
        nodes = [n.name for n in plane.pki.plan.sim_nodes[: plane.shape.nodes]]
        self.user_step(via, kind, node=nodes[node % len(nodes)])

    @rule(
        workload=st.sampled_from(actions.WORKLOADS),
        service_type=evenly(("ClusterIP", "LoadBalancer")),
        namespace=namespaces.namespace_choice(),
        via=VIA,
    )
    def apply_service(self, workload: str, service_type: str, namespace: str, via: int) -> None:
        """``kubectl apply`` of a workload's Service, of ``type: ClusterIP`` or
        ``LoadBalancer`` (a change of type included): a LoadBalancer one is the cloud
        controllers' to give a load balancer (:mod:`raftkube_fuzz.cluster.cloud`)."""
        self.user_step(via, "apply_service", target=workload, type=service_type,
                       namespace=namespace)  # fmt: skip

    @rule(
        kind=evenly(("delete_account", "create_account")),
        name=evenly(accounts.ACCOUNT_NAMES),
        via=VIA,
        namespace=namespaces.namespace_choice(),
    )
    def service_account(self, kind: str, name: str, via: int, namespace: str) -> None:
        """Delete or create a ServiceAccount (drawn evenly: a ``sampled_from`` drew the first
        of the two 43 times in 44)."""
        self.user_step(via, kind, name=name, namespace=namespace)

    @rule(name=evenly(accounts.ACCOUNT_NAMES), via=VIA, namespace=namespaces.namespace_choice())
    def account_token(self, name: str, via: int, namespace: str) -> None:
        """Ask for a ServiceAccount's token, which the user keeps
        (:mod:`raftkube_fuzz.checks.account_tokens` presents it after later steps)."""
        self.user_step(via, "request_token", name=name, namespace=namespace)

    @rule(kind=evenly(namespaces.STEP_KINDS), via=VIA)
    def namespace(self, kind: str, via: int) -> None:
        """``kubectl create namespace team-a`` or ``kubectl delete namespace team-a``: its
        deletion empties it through the namespace controller, and what the steps then put in
        it is refused until it is gone and created again."""
        self.user_step(via, kind, name=actions.TEAM)

    @rule(
        which=st.sampled_from(
            [("ReplicaSet", n) for n in actions.RS_NAMES]
            + [("Deployment", n) for n in actions.DEPLOYMENT_NAMES]
            + [("Service", f"svc-{n}") for n in actions.WORKLOADS]
            + [("Pod", f"pinned-sim-{i}") for i in range(4)]
        ),
        via=VIA,
        namespace=namespaces.namespace_choice(),
    )
    def delete(self, which: tuple[str, str], via: int, namespace: str) -> None:
        if which[0] == "Pod":
            namespace = actions.NAMESPACE  # the pinned pods live in default
        self.user_step(via, "delete", resource=which[0], name=which[1], namespace=namespace)

    @rule(
        which=st.sampled_from(
            [("ReplicaSet", n) for n in actions.RS_NAMES]
            + [("Deployment", n) for n in actions.DEPLOYMENT_NAMES]
        ),
        via=VIA,
        namespace=namespaces.namespace_choice(),
    )
    def delete_foreground(self, which: tuple[str, str], via: int, namespace: str) -> None:
        """``kubectl delete --cascade=foreground`` of a workload: it stays, marked, until the
        garbage collector has deleted the dependents that name it as owner (and only them)."""
        self.user_step(via, "delete", resource=which[0], name=which[1], cascade="foreground",
                       namespace=namespace)  # fmt: skip

    @rule(seconds=st.sampled_from(LONG_WAITS))
    def long_wait(self, seconds: float) -> None:
        self.apply(Step.of("long_wait", seconds=seconds))

    def _names(self, up: bool | None = None, paused: bool | None = None) -> list[str]:
        return [
            h.name
            for h in self._plane().components
            if (up is None or h.up == up) and (paused is None or h.paused == paused)
        ]

    @rule(data=st.data())
    def component_crash(self, data: st.DataObject) -> None:
        """Crash a running component, or restart a crashed one."""
        down = self._names(up=False)
        kinds = ["host_crash", "host_restart"] if down else ["host_crash"]
        kind = data.draw(evenly(kinds), label="kind")
        names = down if kind == "host_restart" else self._names(up=True)
        if not names:
            return
        host = data.draw(st.sampled_from(names), label="host")
        hold = data.draw(evenly(FAULT_HOLDS), label="hold")
        self.apply(Step.of(kind, host=host, hold=hold))

    @rule(data=st.data())
    def component_pause(self, data: st.DataObject) -> None:
        """Stop a component's process without killing it, or let a stopped one go on."""
        paused = self._names(up=True, paused=True)
        kinds = ["host_pause", "host_resume"] if paused else ["host_pause"]
        kind = data.draw(evenly(kinds), label="kind")
        names = paused if kind == "host_resume" else self._names(up=True, paused=False)
        if not names:
            return
        host = data.draw(st.sampled_from(names), label="host")
        hold = data.draw(evenly(FAULT_HOLDS), label="hold")
        self.apply(Step.of(kind, host=host, hold=hold))

    @rule(data=st.data())
    def component_partition(self, data: st.DataObject) -> None:
        """Cut a component (a kubelet, a manager, a scheduler) off from the API servers, or
        the control plane from every node (as :meth:`nodes_cut`), or heal the network."""
        if data.draw(st.booleans(), label="heal"):
            self.apply(Step.of("host_heal"))
            return
        names = [n for n in self._names() if n not in self._api_names()]
        host = data.draw(st.sampled_from([*names, EVERY_NODE]), label="host")
        if host == EVERY_NODE:
            self.apply(Step.of("nodes_cut", hold=data.draw(evenly(OUTAGE_HOLDS), label="hold")))
            return
        hold = data.draw(evenly(FAULT_HOLDS), label="hold")
        self.apply(Step.of("host_cut", host=host, hold=hold))

    @rule(hold=evenly(OUTAGE_HOLDS))
    def nodes_cut(self, hold: float) -> None:
        """Cut the control plane off from every node at once (a heal drawn by
        :meth:`component_partition` ends it): every node looks down together."""
        self.apply(Step.of("nodes_cut", hold=hold))

    def _store_faults(self) -> bool:
        assert self.run is not None
        return setting(self.run, "store_faults", ("on", "off"), "on") == "on"

    # The store's fault rules are not drawn at all with ``store_faults=off`` (a precondition,
    # not an early return): a rule that draws nothing still takes one of the example's steps,
    # and five of them took a fifth of every example the control-plane mutants are hunted with.

    @precondition(lambda self: self._store_faults())
    @rule(data=st.data())
    def crash_fault(self, data: st.DataObject) -> None:
        """The base rule, unless ``store_faults=off``."""
        SuiteMachine.crash_fault(self, data)

    @precondition(lambda self: self._store_faults())
    @rule(data=st.data())
    def pause_fault(self, data: st.DataObject) -> None:
        """The base rule, unless ``store_faults=off``."""
        SuiteMachine.pause_fault(self, data)

    @precondition(lambda self: self._store_faults())
    @rule(data=st.data())
    def network_fault(self, data: st.DataObject) -> None:
        """The base rule, unless ``store_faults=off``."""
        SuiteMachine.network_fault(self, data)

    @precondition(lambda self: self._store_faults())
    @rule(data=st.data())
    def clock_fault(self, data: st.DataObject) -> None:
        """The base rule, unless ``store_faults=off``."""
        SuiteMachine.clock_fault(self, data)

    @precondition(lambda self: self._store_faults())
    @rule(data=st.data())
    def partition_fault(self, data: st.DataObject) -> None:
        """The store's partitions (the base rule's) with three members; with one, there is no
        minority to split off, so the member is isolated (cut from the API server) or the
        network healed. None with ``store_faults=off``."""
        if self.servers >= 3:
            SuiteMachine.partition_fault(self, data)
            return
        if data.draw(st.booleans(), label="heal"):
            self.apply(Step.of("heal"))
        else:
            hold = data.draw(evenly(FAULT_HOLDS), label="hold")
            self.apply(Step.of("isolate", member=0, hold=hold))

    @rule(data=st.data())
    def component_slow(self, data: st.DataObject) -> None:
        """Slow a component's traffic with the API server, out of order across its
        connections (until the final heal): watches delivered late and reordered."""
        names = [n for n in self._names() if n not in self._api_names()]
        host = data.draw(st.sampled_from(names), label="host")
        seconds = data.draw(evenly(SLOW_LATENCIES), label="seconds")
        self.apply(Step.of("host_slow", host=host, seconds=seconds))

    @rule(data=st.data())
    def component_clock(self, data: st.DataObject) -> None:
        """Jump a component's clock forward or change its rate."""
        host = data.draw(st.sampled_from(self._names()), label="host")
        if data.draw(st.booleans(), label="jump"):
            seconds = data.draw(evenly(CLOCK_JUMPS), label="seconds")
            self.apply(Step.of("host_clock_jump", host=host, seconds=seconds))
        else:
            rate = data.draw(evenly(CLOCK_RATES), label="rate")
            self.apply(Step.of("host_clock_rate", host=host, rate=rate))

    @rule(data=st.data())
    def component_wall_clock(self, data: st.DataObject) -> None:
        """Step a component's wall clock (its system time, what it stamps into records) off
        true time, as NTP does; its monotonic clock, which timeouts use, is not touched."""
        host = data.draw(st.sampled_from(self._names()), label="host")
        seconds = data.draw(evenly(WALL_OFFSETS), label="seconds")
        self.apply(Step.of("host_wall_offset", host=host, seconds=seconds))

    @rule(data=st.data())
    def container_crash(self, data: st.DataObject) -> None:
        """A container dies on a node (a crash, an OOM kill): the kubelet must notice and
        restart it after its back-off, and the pod's Services follow its readiness."""
        host = data.draw(st.sampled_from([h.name for h in self._plane().kubelets]), label="host")
        which = data.draw(st.integers(0, 7), label="which")
        self.apply(Step.of(CONTAINER_CRASH, host=host, which=which))

    @rule(data=st.data())
    def cloud_fault(self, data: st.DataObject) -> None:
        """The cloud API fails (503) on a share of its requests or answers late (until a
        ``cloud_heal``), or the cloud is cut off from the cloud-controller-managers (until a
        ``host_heal``) (:mod:`raftkube_fuzz.faults.cloud`)."""
        kind = data.draw(evenly(CLOUD_FAULTS), label="kind")
        if kind == "cloud_fail":
            self.apply(Step.of(kind, share=data.draw(evenly(FAIL_SHARES), label="share")))
        elif kind == "cloud_slow":
            self.apply(Step.of(kind, seconds=data.draw(evenly(SLOW_SECONDS), label="seconds")))
        else:
            self.apply(Step.of(kind))

    def _instances(self) -> str:
        assert self.run is not None
        return setting(self.run, "instances", INSTANCE_SETTINGS, "shutdown")

    @precondition(lambda self: self._instances() != "off")
    @rule(data=st.data())
    def cloud_instance(self, data: st.DataObject) -> None:
        """Shut down, start or (with ``instances=delete``) delete a node's cloud instance,
        and its machine with it (:mod:`raftkube_fuzz.faults.cloud`)."""
        kinds = INSTANCE_STEPS if self._instances() == "delete" else INSTANCE_STEPS[:2]
        kind = data.draw(evenly(kinds), label="kind")
        host = data.draw(evenly([h.name for h in self._plane().kubelets]), label="host")
        self.apply(Step.of(kind, host=host))


SUITE = Suite(
    name="cluster",
    description="the whole control plane (API server, controller managers, schedulers, "
    "kubelets) under user actions and component faults; safety on every committed "
    "revision, eventual stable reconciliation at the end",
    world_config=world_config,
    execute_client=user_steps.execute_client,
    machine=ClusterMachine,
    default_config=DEFAULT_CONFIG,
    prepare=prepare,
    check_step=checking.check_step,
    check_end=checking.check_end,
    sole_writers=False,
    collect_each_example=True,
    checks=checking.cluster_checks,
)
ClusterMachine.suite = SUITE
