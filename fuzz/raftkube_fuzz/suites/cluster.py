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

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from raftkube_fuzz.cluster import accounts, actions, checking, namespaces, user_steps
from raftkube_fuzz.cluster.plane import ControlPlane
from raftkube_fuzz.faults.cloud import CLOUD_FAULTS, FAIL_SHARES, INSTANCE_STEPS, SLOW_SECONDS
from raftkube_fuzz.faults.cluster import SLOW_LATENCIES, plane_of
from raftkube_fuzz.faults.containers import CONTAINER_CRASH
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites.base import Suite, SuiteMachine, evenly, seeds, setting
from raftkube_fuzz.suites.cluster_setup import (
    DEFAULT_CONFIG,
    INSTANCE_SETTINGS,
    prepare,
    world_config,
)

LONG_WAITS = (2.0, 5.0, 10.0, 30.0)
"""A control plane reacts in seconds (leases, grace periods), not in Raft's milliseconds."""

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
