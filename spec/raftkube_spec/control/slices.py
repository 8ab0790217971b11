"""The composed model in slices, each small enough to check exhaustively.

The product of every loop, node, fault and user change is far too large to exhaust, so the
model is checked in slices: each puts the loops that act on the same objects together, with
the environment that can disturb them, small initial objects, bounds, the safety properties
that concern them, and the predicate ESR must reach. Every slice is a :class:`Model` of the
same composed world; only the loops, objects and faults differ.

=================  ====================================================================
slice              what it composes
=================  ====================================================================
workloads          scheduler, ReplicaSet controller, two kubelets; crashes, scaling
rollout            Deployment, ReplicaSet, scheduler, a kubelet; crashes, a new template
endpoints          endpoints controller; crashes, readiness flips
node-lifecycle     node lifecycle, taint eviction, two kubelets with Leases; partitions,
                   crashes, a clock
garbage-collector  garbage collector; crashes, deletion of an owner with each policy
leader-election    two candidates on one Lease with offset clocks; crashes, a clock
accounts           namespace, service account and token controllers; crashes,
                   namespace and account deletion
cloud              cloud node, route and service controllers on a simulated cloud;
                   crashes, instance loss, Service type changes
=================  ====================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from raftkube_spec.control import (
    accounts,
    cloud,
    deployment,
    endpoints,
    properties,
    replicaset,
    scheduler,
)
from raftkube_spec.control.election import LEASE_KEY, Elector, ElectorMemory, acting_leaders
from raftkube_spec.control.gc import GarbageCollector
from raftkube_spec.control.kubelet import kubelet
from raftkube_spec.control.model import (
    Cloud,
    ClusterState,
    Component,
    Instance,
    Loop,
    Machine,
    Model,
)
from raftkube_spec.control.nodelifecycle import LifecycleMemory, NodeLifecycle, TaintEviction
from raftkube_spec.control.records import (
    NO_EXECUTE,
    NOT_READY,
    UNREACHABLE,
    Deployment,
    Endpoints,
    Lease,
    Namespace,
    Node,
    OwnerRef,
    Pod,
    Record,
    ReplicaSet,
    Service,
    ServiceAccount,
    Token,
    Toleration,
    labels,
    meta,
)
from raftkube_spec.control.world import Create, Delete, Patch, World, apply

WEB = labels(app="web")
RS_WATCHES = ("ReplicaSet", "Pod")
ENDPOINTS_WATCHES = ("Service", "Pod", "Endpoints")


@attrs.frozen
class Slice:
    name: str
    model: Model
    initial: tuple[ClusterState, ...]
    converged: Callable[[ClusterState], bool]
    invariants: tuple[properties.StateProperty, ...] = ()
    step_properties: tuple[properties.StepProperty, ...] = ()
    esr_bound: int = 10
    """Rounds of the fair schedule within which every reachable state must be reconciled."""

    def with_loop(self, loop: Loop) -> Slice:
        """This slice with the loop of the same name replaced (how a mutant is planted)."""
        loops = tuple(loop if x.name == loop.name else x for x in self.model.loops)
        return attrs.evolve(self, model=attrs.evolve(self.model, loops=loops))


def seed(records: Iterable[Record]) -> World:
    """A World holding ``records``, created in order so the server assigns their uids."""
    world = World()
    for record in records:
        after = apply(world, Create(record))
        assert after is not None, record
        world = after
    return world


def start(
    model: Model, api: World, *, faults: int, changes: int = 0, **fields: object
) -> ClusterState:
    comps = tuple(
        Component(None if loop.live else loop.project(api), loop.initial) for loop in model.loops
    )
    return ClusterState(api, comps, faults=faults, changes=changes, **fields)  # type: ignore[arg-type]


def _namespaces(*names: str) -> list[Record]:
    return [Namespace(meta("Namespace", n)) for n in names]


def _node(name: str, cpu: int = 1, **fields: object) -> Node:
    return Node(meta("Node", name), cpu=cpu, **fields)  # type: ignore[arg-type]


def _scale(replicas: int) -> Callable[[ClusterState], ClusterState | None]:
    def change(s: ClusterState) -> ClusterState | None:
        rs = s.api.get(("ReplicaSet", "default", "web"))
        if not isinstance(rs, ReplicaSet):
            return None
        api = apply(s.api, Patch(rs.meta.ref, (("replicas", replicas),)))
        return None if api is None else attrs.evolve(s, api=api)

    return change


def _pods_settled(s: ClusterState) -> bool:
    """Every pod bound, running where bound and ready; no pod left terminating."""
    running = {(name, m.name) for m in s.machines for name in m.running}
    pods = s.api.pods
    if any(p.meta.deleting or not p.node or not p.ready for p in pods):
        return False
    return running == {(p.meta.name, p.node) for p in pods}


# -- workloads ---------------------------------------------------------------------------


def _workloads_converged(s: ClusterState) -> bool:
    for rs in s.api.replica_sets:
        if len(replicaset.active_pods(rs, s.api)) != rs.replicas:
            return False
    return _pods_settled(s)


def workloads(replicas: int = 2, max_pods: int = 4) -> Slice:
    loops = (
        Loop("scheduler", scheduler.schedule, (), watches=("Node", "Pod")),
        Loop("replicaset", replicaset.sync, replicaset.Expectations(), watches=RS_WATCHES),
    )
    rs = ReplicaSet(meta("ReplicaSet", "web"), replicas, WEB, WEB)
    api = seed([*_namespaces("default"), _node("node-a"), _node("node-b"), rs])
    limit = api.serial + max_pods
    model = Model(
        loops,
        user=(("scale web to 1", _scale(1)), ("scale web to 2", _scale(2))),
        kubelet=kubelet,
        constraint=lambda s: s.api.serial <= limit,
    )
    machines = (Machine("node-a"), Machine("node-b"))
    return Slice(
        "workloads",
        model,
        (start(model, api, faults=1, changes=1, machines=machines),),
        _workloads_converged,
        (
            properties.node_within_allocatable,
            properties.no_over_creation(2),
            properties.pod_runs_on_one_node,
        ),
        (properties.bound_once,),
    )


# -- rollout -------------------------------------------------------------------------------


def _new_template(s: ClusterState) -> ClusterState | None:
    d = s.api.get(("Deployment", "default", "web"))
    if not isinstance(d, Deployment) or d.version != 1:
        return None
    api = apply(s.api, Patch(d.meta.ref, (("version", 2),)))
    return None if api is None else attrs.evolve(s, api=api)


def _rollout_converged(s: ClusterState) -> bool:
    for d in s.api.of(Deployment):
        for rs in deployment.owned_sets(d, s.api):
            wanted = d.replicas if rs.meta.name == deployment.new_set_name(d) else 0
            if rs.replicas != wanted or len(replicaset.active_pods(rs, s.api)) != wanted:
                return False
        if not any(rs.meta.name == deployment.new_set_name(d) for rs in s.api.replica_sets):
            return False
    return _pods_settled(s)


def surge_bound(s: ClusterState) -> properties.Violation | None:
    """The ReplicaSets of a Deployment never ask for more than replicas + maxSurge pods."""
    for d in s.api.of(Deployment):
        asked = sum(rs.replicas for rs in deployment.owned_sets(d, s.api))
        if asked > d.replicas + d.max_surge:
            return "DeploymentSurgeBound", f"{d.meta.name}: ReplicaSets ask for {asked} pods"
    return None


def rollout(max_pods: int = 4) -> Slice:
    loops = (
        Loop("deployment", deployment.sync, None, watches=("Deployment", "ReplicaSet", "Pod")),
        Loop("replicaset", replicaset.sync, replicaset.Expectations(), watches=RS_WATCHES),
        Loop("scheduler", scheduler.schedule, (), watches=("Node", "Pod")),
    )
    d = Deployment(meta("Deployment", "web"), 1, WEB, max_surge=1, max_unavailable=0)
    api = seed([*_namespaces("default"), _node("node-a", cpu=2), d])
    limit = api.serial + 2 + max_pods
    model = Model(
        loops,
        user=(("roll out template v2", _new_template),),
        kubelet=kubelet,
        constraint=lambda s: s.api.serial <= limit,
    )
    return Slice(
        "rollout",
        model,
        (start(model, api, faults=1, changes=1, machines=(Machine("node-a"),)),),
        _rollout_converged,
        (properties.node_within_allocatable, surge_bound, properties.pod_runs_on_one_node),
        (properties.bound_once,),
        esr_bound=16,
    )


# -- endpoints -----------------------------------------------------------------------------


def _flip(pod_name: str) -> Callable[[ClusterState], ClusterState | None]:
    def change(s: ClusterState) -> ClusterState | None:
        pod = s.api.get(("Pod", "default", pod_name))
        if not isinstance(pod, Pod):
            return None
        api = apply(s.api, Patch(pod.meta.ref, (("ready", not pod.ready),)))
        return None if api is None else attrs.evolve(s, api=api)

    return change


def _endpoints_converged(s: ClusterState) -> bool:
    for service in s.api.services:
        ep = s.api.get(("Endpoints", "default", service.meta.name))
        if not isinstance(ep, Endpoints) or ep.addresses != endpoints.addresses(service, s.api):
            return False
    return True


def endpoints_slice(flips: int = 3) -> Slice:
    loops = (Loop("endpoints", endpoints.sync, None, watches=ENDPOINTS_WATCHES),)
    pods = [
        Pod(meta("Pod", "web-1", labels=WEB), node="node-a", ready=True),
        Pod(meta("Pod", "web-2", labels=WEB), node="node-a", ready=False),
        Pod(meta("Pod", "other-1", labels=labels(app="other")), node="node-a", ready=True),
    ]
    service = Service(meta("Service", "web"), WEB)
    api = seed([*_namespaces("default"), _node("node-a", cpu=3), *pods, service])
    model = Model(
        loops, user=tuple((f"{p.meta.name} readiness flips", _flip(p.meta.name)) for p in pods)
    )
    return Slice(
        "endpoints",
        model,
        (start(model, api, faults=1, changes=flips),),
        _endpoints_converged,
        (),
        (properties.endpoints_list_only_ready,),
    )


# -- node lifecycle ------------------------------------------------------------------------

DEFAULT_TOLERATIONS = (
    Toleration(NOT_READY, NO_EXECUTE, 1),
    Toleration(UNREACHABLE, NO_EXECUTE, 1),
)
"""What the DefaultTolerationSeconds admission plugin adds (300 s upstream; 1 s here)."""


def _lifecycle_converged(s: ClusterState) -> bool:
    up = {m.name for m in s.machines if m.connected}
    for node in s.api.nodes:
        no_execute = [t for t in node.taints if t.effect == NO_EXECUTE]
        if node.meta.name in up:
            if node.ready != "True" or node.taints:
                return False
        elif not up:
            if node.ready == "True" or no_execute:
                return False
        else:
            if node.ready != "Unknown" or [t.key for t in no_execute] != [UNREACHABLE]:
                return False
            if any(p.node == node.meta.name and not p.meta.deleting for p in s.api.pods):
                return False
    return all(p.meta.deleting or p.ready for p in s.api.pods if p.node in up)


def node_lifecycle(
    controller: NodeLifecycle | None = None, faults: int = 1, crashes: bool = False, ticks: int = 2
) -> Slice:
    controller = controller or NodeLifecycle(grace=1, interval=1)
    loops = (
        Loop("node-lifecycle", controller.sync, LifecycleMemory(), watches=("Node", "Lease")),
        Loop("taint-eviction", TaintEviction().sync, (), watches=("Node", "Pod")),
    )
    names = ("node-a", "node-b")
    objects: list[Record] = [*_namespaces("default", "kube-node-lease")]
    for name in names:
        objects.append(_node(name))
        objects.append(Lease(meta("Lease", name, "kube-node-lease"), name, None, 40))
        objects.append(
            Pod(
                meta("Pod", f"pod-{name[-1]}"),
                node=name,
                tolerations=DEFAULT_TOLERATIONS,
                ready=True,
            )
        )
    api = seed(objects)
    model = Model(loops, kubelet=kubelet, crashes=crashes, partitions=True, ticks=True, horizon=2)
    machines = tuple(Machine(n, running=(f"pod-{n[-1]}",)) for n in names)
    return Slice(
        "node-lifecycle",
        model,
        (start(model, api, faults=faults, machines=machines, ticks=ticks),),
        _lifecycle_converged,
        (properties.pod_runs_on_one_node,),
        (properties.no_tainting_in_full_disruption, properties.bound_once),
    )


# -- garbage collector ---------------------------------------------------------------------


def _delete_owner(policy: str) -> Callable[[ClusterState], ClusterState | None]:
    def change(s: ClusterState) -> ClusterState | None:
        rs = s.api.get(("ReplicaSet", "default", "web"))
        if rs is None or rs.meta.deleting:
            return None
        api = apply(s.api, Delete(rs.meta.ref, propagation=policy))
        return None if api is None else attrs.evolve(s, api=api)

    return change


def _gc_converged(s: ClusterState) -> bool:
    for obj in s.api.objects:
        if obj.meta.deleting:
            return False
        if obj.meta.owners and all(s.api.by_uid(r.uid) is None for r in obj.meta.owners):
            return False
    return True


def garbage_collector(gc: GarbageCollector | None = None) -> Slice:
    loops = (Loop("garbage-collector", (gc or GarbageCollector()).sync, None),)
    base = seed([*_namespaces("default")])
    rs = ReplicaSet(meta("ReplicaSet", "web"), 1, WEB, WEB)
    base = seed([*base.objects, rs])
    owner = base.get(("ReplicaSet", "default", "web"))
    assert owner is not None
    ref = OwnerRef("ReplicaSet", "web", owner.meta.uid, block=True)
    api = World(base.objects, base.serial)
    for pod in (
        Pod(meta("Pod", "web-1", labels=WEB, owners=(ref,))),
        Pod(meta("Pod", "stray-1", labels=WEB)),
    ):
        after = apply(api, Create(pod))
        assert after is not None
        api = after
    model = Model(
        loops,
        user=tuple(
            (f"delete web ({p})", _delete_owner(p)) for p in ("Background", "Foreground", "Orphan")
        ),
    )
    return Slice(
        "garbage-collector",
        model,
        (start(model, api, faults=1, changes=1),),
        _gc_converged,
        (),
        (properties.gc_deletes_only_dependents,),
    )


# -- leader election -----------------------------------------------------------------------


def _election_converged(s: ClusterState) -> bool:
    leaders = acting_leaders(s)
    lease = s.api.get(LEASE_KEY)
    return len(leaders) == 1 and isinstance(lease, Lease) and lease.holder == leaders[0]


def leader_election(
    elector: type[Elector] = Elector, offsets: tuple[int, ...] = (0, 4), ticks: int = 8
) -> Slice:
    names = ("candidate-a", "candidate-b")
    loops = tuple(
        Loop(n, elector(n, lease_duration=3, renew_deadline=2).sync, ElectorMemory(n), live=True)
        for n in names
    )
    api = seed(_namespaces("default", "kube-system"))
    model = Model(loops, ticks=True, horizon=3 + 2 * max(offsets) + 1)
    initial = tuple(
        start(model, api, faults=1, ticks=ticks, offsets=((names[0], 0), (names[1], b)))
        for b in offsets
    )
    return Slice(
        "leader-election",
        model,
        initial,
        _election_converged,
        (properties.at_most_one_leader,),
        (),
    )


# -- accounts ------------------------------------------------------------------------------


def _delete(key: tuple[str, str, str]) -> Callable[[ClusterState], ClusterState | None]:
    def change(s: ClusterState) -> ClusterState | None:
        obj = s.api.get(key)
        if obj is None or obj.meta.deleting:
            return None
        api = apply(s.api, Delete(obj.meta.ref))
        return None if api is None else attrs.evolve(s, api=api)

    return change


def _accounts_converged(s: ClusterState) -> bool:
    api = s.api
    for ns in api.of(Namespace):
        if ns.meta.deleting:
            return False
        if api.get(("ServiceAccount", ns.meta.name, "default")) is None:
            return False
    for account in api.of(ServiceAccount):
        if not any(t.account_uid == account.meta.uid for t in api.of(Token)):
            return False
    return all(accounts.authenticates(api, t) for t in api.of(Token))


def accounts_slice() -> Slice:
    loops = (
        Loop("namespace", accounts.namespaces, None),
        Loop(
            "serviceaccount",
            accounts.service_accounts,
            None,
            watches=("Namespace", "ServiceAccount"),
        ),
        Loop("token", accounts.tokens, None, watches=("ServiceAccount", "Token")),
    )
    api = seed(_namespaces("default", "team"))
    model = Model(
        loops,
        user=(
            ("delete namespace team", _delete(("Namespace", "", "team"))),
            (
                "delete serviceaccount default/default",
                _delete(("ServiceAccount", "default", "default")),
            ),
        ),
    )
    return Slice(
        "accounts",
        model,
        (start(model, api, faults=1, changes=2),),
        _accounts_converged,
        (properties.deleted_accounts_authenticate_nobody,),
        (),
    )


# -- cloud ---------------------------------------------------------------------------------


def _lose_instance(node: str) -> Callable[[ClusterState], ClusterState | None]:
    """The instance is terminated; its node stops being Ready (the node lifecycle controller's
    part, checked in its own slice)."""

    def change(s: ClusterState) -> ClusterState | None:
        found = s.api.get(("Node", "", node))
        if not isinstance(found, Node):
            return None
        instances = tuple(
            attrs.evolve(i, exists=i.node != node and i.exists) for i in s.cloud.instances
        )
        if instances == s.cloud.instances:
            return None
        api = apply(s.api, Patch(found.meta.ref, (("ready", "Unknown"),))) or s.api
        return attrs.evolve(s, api=api, cloud=attrs.evolve(s.cloud, instances=instances))

    return change


def _toggle_lb(s: ClusterState) -> ClusterState | None:
    svc = s.api.get(("Service", "default", "web"))
    if not isinstance(svc, Service):
        return None
    api = apply(s.api, Patch(svc.meta.ref, (("load_balancer", not svc.load_balancer),)))
    return None if api is None else attrs.evolve(s, api=api)


def _calls_cloud(memory: None, view: World, now: int) -> tuple[None, tuple[()]]:
    """The step of a loop that :attr:`Model.cloud_loops` runs with the cloud's state instead."""
    raise AssertionError("a cloud loop is run through Model.cloud_loops")


def cloud_slice() -> Slice:
    loops = (
        Loop("cloud-node", _calls_cloud, None, watches=("Node",)),
        Loop("route", _calls_cloud, None, watches=("Node",)),
        Loop("service", _calls_cloud, None, watches=("Node", "Service")),
    )
    nodes = [
        _node("node-a", pod_cidr="10.244.0.0/24"),
        _node("node-b", pod_cidr="10.244.1.0/24"),
    ]
    service = Service(meta("Service", "web"), WEB, load_balancer=True)
    api = seed([*_namespaces("default"), *nodes, service])
    instances = tuple(
        Instance(n.meta.name, f"sim://{n.meta.name}", f"192.0.2.{i + 1}")
        for i, n in enumerate(nodes)
    )
    model = Model(
        loops,
        user=(
            ("terminate instance node-b", _lose_instance("node-b")),
            ("flip web's type", _toggle_lb),
        ),
        cloud_loops=(
            ("cloud-node", cloud.cloud_nodes),
            ("route", cloud.routes),
            ("service", cloud.service_balancers),
        ),
    )
    return Slice(
        "cloud",
        model,
        (start(model, api, faults=1, changes=2, cloud=Cloud(instances)),),
        lambda s: cloud.matches_cloud(s.api, s.cloud),
        (),
        (),
    )


SLICES: dict[str, Callable[[], Slice]] = {
    "workloads": workloads,
    "rollout": rollout,
    "endpoints": endpoints_slice,
    "node-lifecycle": node_lifecycle,
    "garbage-collector": garbage_collector,
    "leader-election": leader_election,
    "accounts": accounts_slice,
    "cloud": cloud_slice,
}
