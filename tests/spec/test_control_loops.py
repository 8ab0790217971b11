"""Each control loop's pure function on worked examples."""

from __future__ import annotations

import attrs

from raftkube_spec.control import accounts, cloud, deployment, endpoints, replicaset, scheduler
from raftkube_spec.control.election import Elector, ElectorMemory, JudgesByRemoteClock
from raftkube_spec.control.gc import GarbageCollector, selects_by_label
from raftkube_spec.control.model import Cloud, Instance
from raftkube_spec.control.nodelifecycle import (
    FULL,
    NORMAL,
    LifecycleMemory,
    NodeLifecycle,
    TaintEviction,
    zone_state,
)
from raftkube_spec.control.records import (
    NO_EXECUTE,
    NO_SCHEDULE,
    UNREACHABLE,
    AntiAffinity,
    Deployment,
    Lease,
    Namespace,
    Node,
    OwnerRef,
    Pod,
    ReplicaSet,
    Service,
    ServiceAccount,
    Stamp,
    Taint,
    Token,
    Toleration,
    labels,
    meta,
)
from raftkube_spec.control.slices import seed
from raftkube_spec.control.world import (
    FOREGROUND,
    ORPHAN,
    Bind,
    Create,
    Delete,
    Patch,
    World,
    apply,
)

WEB = labels(app="web")


def node(name: str, cpu: int = 1, **fields: object) -> Node:
    return Node(meta("Node", name), cpu=cpu, **fields)  # type: ignore[arg-type]


def pod(name: str, **fields: object) -> Pod:
    return Pod(meta("Pod", name, labels=WEB, uid=f"uid-{name}"), **fields)  # type: ignore[arg-type]


def default_ns() -> list[Namespace]:
    return [Namespace(meta("Namespace", "default"))]


def bound_to(requests: tuple[object, ...]) -> list[str]:
    return [r.node for r in requests if isinstance(r, Bind)]


def chosen(p: Pod, view: World, placed: tuple[tuple[Pod, str], ...]) -> str | None:
    found = scheduler.choose(p, view, placed)
    return None if found is None else found.meta.name


# -- scheduler -----------------------------------------------------------------------------


def test_scheduler_binds_to_the_least_allocated_fitting_node_and_assumes() -> None:
    view = seed([*default_ns(), node("a", 2), node("b", 2), pod("p1"), pod("p2", node="a")])
    assumed, requests = scheduler.schedule((), view, 0)
    assert bound_to(requests) == ["b"]
    assert len(assumed) == 1
    # The same stale view: the assumed pod is not tried again, and its cpu counts on b.
    _, more = scheduler.schedule(assumed, seed([*view.objects, pod("p3")]), 0)
    assert bound_to(more) == ["a"]  # 1 cpu left on each: the tie goes by name


def test_assumed_capacity_is_counted_while_the_view_lags() -> None:
    view = seed([*default_ns(), node("a"), pod("p1"), pod("p2")])
    assumed, first = scheduler.schedule((), view, 0)
    assert bound_to(first) == ["a"]
    _, second = scheduler.schedule(assumed, view, 0)
    assert second == ()
    _, mutant = scheduler.schedule_ignoring_assumed(assumed, view, 0)
    assert bound_to(mutant) == ["a"]


def test_scheduler_filters() -> None:
    tainted = node("t", 4, taints=(Taint("dedicated", NO_SCHEDULE),))
    cordoned = node("c", 4, unschedulable=True)
    labelled = node("l", 4)
    labelled = attrs.evolve(labelled, meta=attrs.evolve(labelled.meta, labels=labels(disk="ssd")))
    small = node("s", 0)
    view = seed([*default_ns(), tainted, cordoned, labelled, small])
    others: tuple[tuple[Pod, str], ...] = ()
    plain = pod("p")
    assert not scheduler.fits(plain, tainted, view, others)
    assert scheduler.fits(
        attrs.evolve(plain, tolerations=(Toleration("dedicated"),)), tainted, view, others
    )
    assert not scheduler.fits(plain, cordoned, view, others)
    assert not scheduler.fits(plain, small, view, others)
    picky = attrs.evolve(plain, node_selector=labels(disk="ssd"))
    assert chosen(picky, view, others) == "l"


def test_a_pod_requesting_no_cpu_fits_an_overcommitted_node() -> None:
    """Upstream's fitsRequest judges only the resources a pod requests: a pod requesting
    none fits a node whose pods (one bound there by hand) already take more than it has,
    where a pod requesting any cpu does not. The implementation's scheduler binds it there."""
    full = node("a", 1)
    view = seed([*default_ns(), full])
    others = ((pod("hand-1", node="a"), "a"), (pod("hand-2", node="a"), "a"))
    assert scheduler.fits(pod("idle", cpu=0), full, view, others)
    assert not scheduler.fits(pod("busy", cpu=1), full, view, others)


def test_anti_affinity_in_both_directions() -> None:
    a, b = node("a", 4), node("b", 4)
    view = seed([*default_ns(), a, b])
    spread = AntiAffinity(WEB)
    placed = ((pod("x", anti_affinity=spread), "a"),)
    assert chosen(pod("y"), view, placed) == "b"  # the placed pod's term
    alone = ((pod("z"), "a"),)
    assert chosen(pod("y", anti_affinity=spread), view, alone) == "b"
    zoned = (pod("x", anti_affinity=AntiAffinity(WEB, "zone")), "a")
    assert chosen(pod("y"), view, (zoned,)) is None  # one zone for both nodes


# -- ReplicaSet ----------------------------------------------------------------------------


def rs(replicas: int) -> ReplicaSet:
    return ReplicaSet(meta("ReplicaSet", "web", uid="rs-uid"), replicas, WEB, WEB)


def test_replicaset_creates_once_until_its_view_shows_the_pods() -> None:
    view = seed([*default_ns(), rs(2)])
    exp, requests = replicaset.sync(replicaset.Expectations(), view, 0)
    assert [type(r) for r in requests] == [Create, Create]
    exp2, again = replicaset.sync(exp, view, 0)
    assert again == ()
    _, mutant = replicaset.sync_without_expectations(exp, view, 0)
    assert len(mutant) == 2
    later = view
    for r in requests:
        later = apply(later, r) or later
    exp3, none = replicaset.sync(exp2, later, 0)
    assert none == () and exp3.pending == ()


def test_replicaset_deletes_surplus_unbound_first() -> None:
    owner = OwnerRef("ReplicaSet", "web", "rs-uid")
    pods = [
        Pod(meta("Pod", "web-1", labels=WEB, owners=(owner,)), node="a", ready=True),
        Pod(meta("Pod", "web-2", labels=WEB, owners=(owner,))),
    ]
    view = seed([*default_ns(), rs(1), *pods])
    _, requests = replicaset.sync(replicaset.Expectations(), view, 0)
    assert [(type(r), r.ref.name) for r in requests if isinstance(r, Delete)] == [(Delete, "web-2")]


# -- Deployment ----------------------------------------------------------------------------


def test_rolling_update_surges_then_scales_the_old_set_down() -> None:
    d = Deployment(meta("Deployment", "web", uid="d-uid"), 2, WEB, version=2, max_surge=1)
    owner = OwnerRef("Deployment", "web", "d-uid")
    old = ReplicaSet(meta("ReplicaSet", "web-v1", owners=(owner,)), 2, WEB, WEB)
    view = seed([*default_ns(), d, old])
    _, requests = deployment.sync(None, view, 0)
    (create,) = requests
    assert isinstance(create, Create) and isinstance(create.obj, ReplicaSet)
    assert create.obj.replicas == 1  # 2 + maxSurge 1 - the old set's 2
    assert deployment.surge_target(d, 1, 3) == 1
    assert deployment.surge_target(d, 1, 2) == 2


# -- endpoints -----------------------------------------------------------------------------


def test_endpoints_list_ready_selected_pods_only() -> None:
    service = Service(meta("Service", "web"), WEB, target_port=8080)
    pods = [
        pod("b", node="n", ready=True),
        pod("a", node="n", ready=True),
        pod("u", node="n", ready=False),
        Pod(meta("Pod", "o", labels=labels(app="other")), node="n", ready=True),
    ]
    view = seed([*default_ns(), service, *pods])
    _, (create,) = endpoints.sync(None, view, 0)
    assert isinstance(create, Create)
    assert [a.pod for a in create.obj.addresses] == ["a", "b"]  # type: ignore[union-attr]
    _, (mutant,) = endpoints.sync_including_unready(None, view, 0)
    assert [a.pod for a in mutant.obj.addresses] == ["a", "b", "u"]  # type: ignore[union-attr]
    written = apply(view, create)
    assert written is not None and endpoints.sync(None, written, 0) == (None, ())
    gone = apply(written, Delete(written.services[0].meta.ref))
    assert gone is not None
    _, (delete,) = endpoints.sync(None, gone, 0)
    assert isinstance(delete, Delete)


# -- accounts and namespaces ---------------------------------------------------------------


def test_accounts_tokens_and_namespace_deletion() -> None:
    view = seed([*default_ns(), Namespace(meta("Namespace", "team"))])
    _, made = accounts.service_accounts(None, view, 0)
    assert sorted(r.obj.meta.namespace for r in made) == ["default", "team"]  # type: ignore[union-attr]
    for r in made:
        view = apply(view, r) or view
    _, tokens = accounts.tokens(None, view, 0)
    for r in tokens:
        view = apply(view, r) or view
    token = next(view.of(Token))
    assert accounts.authenticates(view, token)
    account = view.get(("ServiceAccount", token.meta.namespace, token.account))
    assert isinstance(account, ServiceAccount)
    without = apply(view, Delete(account.meta.ref))
    assert without is not None and not accounts.authenticates(without, token)
    _, cleanup = accounts.tokens(None, without, 0)
    assert any(isinstance(r, Delete) and r.ref.name == token.meta.name for r in cleanup)
    ns = view.get(("Namespace", "", "team"))
    assert ns is not None
    terminating = apply(view, Delete(ns.meta.ref))
    assert terminating is not None and terminating.get(ns.meta.key) is not None
    assert apply(terminating, Create(ServiceAccount(meta("ServiceAccount", "x", "team")))) is None
    _, emptying = accounts.namespaces(None, terminating, 0)
    assert all(isinstance(r, Delete) for r in emptying) and emptying
    for r in emptying:
        terminating = apply(terminating, r) or terminating
    _, (finalize,) = accounts.namespaces(None, terminating, 0)
    assert isinstance(finalize, Patch)
    assert apply(terminating, finalize).get(ns.meta.key) is None  # type: ignore[union-attr]


# -- node lifecycle ------------------------------------------------------------------------


def lifecycle_view(renew_a: int, renew_b: int, ready: str = "True") -> object:
    objects = [*default_ns(), Namespace(meta("Namespace", "kube-node-lease"))]
    for name, renew in (("a", renew_a), ("b", renew_b)):
        objects.append(node(name, ready=ready))
        objects.append(Lease(meta("Lease", name, "kube-node-lease"), name, Stamp(renew), 40))
    return seed(objects)


def test_zone_states() -> None:
    assert zone_state(["False", "Unknown"], 0.55) == FULL
    assert zone_state(["True", "Unknown"], 0.55) == NORMAL
    assert zone_state(["True", "False", "False", "False"], 0.55) == "PartialDisruption"


def test_a_silent_node_is_marked_unknown_and_tainted_after_the_grace_period() -> None:
    nlc = NodeLifecycle(grace=2, interval=10)
    memory, requests = nlc.sync(LifecycleMemory(), lifecycle_view(0, 0), 0)  # type: ignore[arg-type]
    assert requests == ()
    # a renews (its own clock says 100: never compared with ours), b does not.
    memory, requests = nlc.sync(memory, lifecycle_view(100, 0), 3)  # type: ignore[arg-type]
    (patch,) = requests
    assert isinstance(patch, Patch) and patch.ref.name == "b"
    fields = dict(patch.fields)
    assert fields["ready"] == "Unknown"
    assert {(t.key, t.effect) for t in fields["taints"]} == {
        (UNREACHABLE, NO_SCHEDULE),
        (UNREACHABLE, NO_EXECUTE),
    }


def test_every_node_down_taints_nothing_and_the_mutant_does() -> None:
    from raftkube_spec.control.nodelifecycle import IgnoresDisruption

    view = lifecycle_view(0, 0)
    for nlc in (NodeLifecycle(grace=2), IgnoresDisruption(grace=2)):
        memory, _ = nlc.sync(LifecycleMemory(), view, 0)  # type: ignore[arg-type]
        _, requests = nlc.sync(memory, view, 3)  # type: ignore[arg-type]
        effects = {t.effect for r in requests for t in dict(r.fields)["taints"]}  # type: ignore[union-attr]
        assert (NO_EXECUTE in effects) == isinstance(nlc, IgnoresDisruption)


def test_taint_eviction_waits_for_toleration_seconds_by_its_own_clock() -> None:
    tainted = node("a", taints=(Taint(UNREACHABLE, NO_EXECUTE, Stamp(-1000)),))
    tolerant = pod("p", node="a", tolerations=(Toleration(UNREACHABLE, NO_EXECUTE, 5),))
    intolerant = pod("q", node="a")
    view = seed([*default_ns(), tainted, tolerant, intolerant])
    timers, requests = TaintEviction().sync((), view, 0)
    assert [r.ref.name for r in requests] == ["q"]  # type: ignore[union-attr]
    timers, requests = TaintEviction().sync(timers, view, 4)
    assert [r.ref.name for r in requests] == ["q"]  # type: ignore[union-attr]
    _, requests = TaintEviction().sync(timers, view, 5)
    assert sorted(r.ref.name for r in requests) == ["p", "q"]  # type: ignore[union-attr]
    assert all(isinstance(r, Delete) and not r.force for r in requests)


# -- garbage collector ---------------------------------------------------------------------


def gc_world(policy: str) -> object:
    base = seed([*default_ns(), rs(1)])
    owner = base.get(("ReplicaSet", "default", "web"))
    assert owner is not None
    ref = OwnerRef("ReplicaSet", "web", owner.meta.uid, block=True)
    world = base
    for p in (Pod(meta("Pod", "dep", labels=WEB, owners=(ref,))), pod("stray")):
        world = apply(world, Create(p)) or world
    return apply(world, Delete(owner.meta.ref, propagation=policy))


def test_gc_background_foreground_orphan() -> None:
    gc = GarbageCollector()
    background = gc_world("Background")
    _, (delete,) = gc.sync(None, background, 0)  # type: ignore[arg-type]
    assert isinstance(delete, Delete) and delete.ref.name == "dep"
    foreground = gc_world("Foreground")
    owner = foreground.get(("ReplicaSet", "default", "web"))  # type: ignore[attr-defined]
    assert FOREGROUND in owner.meta.finalizers
    _, requests = gc.sync(None, foreground, 0)  # type: ignore[arg-type]
    assert [r.ref.name for r in requests] == ["dep"]  # type: ignore[union-attr]
    _, mutant = selects_by_label().sync(None, foreground, 0)  # type: ignore[arg-type]
    assert sorted(r.ref.name for r in mutant) == ["dep", "stray"]  # type: ignore[union-attr]
    orphan = gc_world("Orphan")
    assert ORPHAN in orphan.get(("ReplicaSet", "default", "web")).meta.finalizers  # type: ignore[attr-defined]
    _, requests = gc.sync(None, orphan, 0)  # type: ignore[arg-type]
    after = orphan
    for r in requests:
        after = apply(after, r) or after  # type: ignore[arg-type]
    assert after.get(("ReplicaSet", "default", "web")) is None  # type: ignore[attr-defined]
    assert after.get(("Pod", "default", "dep")).meta.owners == ()  # type: ignore[attr-defined]


# -- leader election -----------------------------------------------------------------------


def test_takeover_waits_a_lease_duration_of_local_time_after_the_last_change() -> None:
    view = seed([*default_ns(), Namespace(meta("Namespace", "kube-system"))])
    a, b = Elector("a", 3, 2), Elector("b", 3, 2)
    _, (create,) = a.sync(ElectorMemory("a"), view, 0)
    view = apply(view, create) or view
    mb, none = b.sync(ElectorMemory("b"), view, 1000)  # b's clock is far ahead
    assert none == ()
    mb, none = b.sync(mb, view, 1002)
    assert none == ()
    _, (take,) = b.sync(mb, view, 1003)
    assert isinstance(take, Patch) and dict(take.fields)["holder"] == "b"
    remote = JudgesByRemoteClock("b", 3, 2)
    _, (early,) = remote.sync(ElectorMemory("b"), view, 1000)
    assert isinstance(early, Patch)  # the renewTime (a's clock, 0) looks long expired


# -- cloud ---------------------------------------------------------------------------------


def test_cloud_controllers() -> None:
    nodes = [node("a", pod_cidr="10.0.0.0/24"), node("b", pod_cidr="10.0.1.0/24", ready="Unknown")]
    service = Service(meta("Service", "web"), WEB, load_balancer=True)
    view = seed([*default_ns(), *nodes, service])
    provider = Cloud((Instance("a", "sim://a", "192.0.2.1"), Instance("b", "sim://b", "x", False)))
    _, requests, _ = cloud.cloud_nodes(None, view, provider, 0)
    assert [(type(r).__name__, r.ref.name) for r in requests] == [("Patch", "a"), ("Delete", "b")]  # type: ignore[union-attr]
    _, _, routed = cloud.routes(None, view, provider, 0)
    assert routed.routes == (("a", "10.0.0.0/24"), ("b", "10.0.1.0/24"))
    _, status, balanced = cloud.service_balancers(None, view, routed, 0)
    assert balanced.balancers[0].targets == ("a", "b")  # b not Ready, still a target (1.32)
    going = attrs.evolve(nodes[1], taints=(Taint(cloud.TO_BE_DELETED, NO_SCHEDULE),))
    scaled_in = seed([*default_ns(), nodes[0], going, service])
    _, _, rebalanced = cloud.service_balancers(None, scaled_in, balanced, 0)
    assert rebalanced.balancers[0].targets == ("a",)
    assert dict(status[0].fields)["ingress"] == balanced.balancers[0].ip  # type: ignore[union-attr]
