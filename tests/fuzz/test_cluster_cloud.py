"""The cloud in the ``cluster`` suite: the simulated cloud and the cloud-controller-managers as
hosts, the cloud API's faults, and the cloud's part of eventual stable reconciliation. One
short run of the whole control plane with fixed steps, and hand-made states for the check."""

from __future__ import annotations

from typing import Any

from raftkube.cloud.provider import SimulatedCloud
from raftkube_fuzz.checks.cloud_state import problems_of
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.cluster.cloud import CloudSide
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.faults import REGISTRY
from raftkube_fuzz.faults.cloud import CLOUD_FAULTS
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

Obj = dict[str, Any]

STEPS = [
    Step.of("apply_rs", name="rs-b", replicas=1),
    Step.of("apply_service", target="rs-b", type="LoadBalancer"),
    Step.of("long_wait", seconds=5.0),
    Step.of("cloud_fail", share=1.0),
    Step.of("apply_service", target="rs-a", type="LoadBalancer"),
    Step.of("long_wait", seconds=5.0),
    Step.of("cloud_heal"),
    Step.of("delete", resource="Service", name="svc-rs-b"),
    Step.of("long_wait", seconds=10.0),
]
"""``svc-rs-b`` gets its load balancer; ``svc-rs-a`` asks for one while every cloud request
fails, and gets it after the heal (its sync retried with back-off); ``svc-rs-b`` is deleted,
and its finalizer holds it until its load balancer is gone."""
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off"}


def test_load_balancers_follow_services_through_a_cloud_outage() -> None:
    suite = get_suite("cluster")
    run = run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS)
    # The end check judged the cloud's reconciliation (routes, balancers, statuses).
    assert run.violation is None, run.violation
    side = plane_of(run).cloud_side
    observer: ClusterObserver = run.extras["observer"]
    services = {s["metadata"]["name"]: s for s in observer.of("Service", "default")}
    assert "svc-rs-b" not in services
    balancers = list(side.cloud.load_balancers.values())
    assert [lb["service"] for lb in balancers] == ["default/svc-rs-a"]
    assert balancers[0]["nodes"] == ["sim-0", "sim-1"]
    ingress = services["svc-rs-a"]["status"]["loadBalancer"]["ingress"]
    assert ingress == [{"ip": balancers[0]["ip"]}]
    assert sorted(r["targetNode"] for r in side.cloud.routes.values()) == ["sim-0", "sim-1"]
    assert 5.0 <= side.longest_failure < 5.1  # the fail step's hold, for the reconcile bound
    texts = [line.text for line in run.timeline.lines()]
    assert any("the cloud API fails 100% of its requests" in t for t in texts)
    assert any("cloud-controller-manager and its token: issued" in t for t in texts)


def test_the_cloud_fault_kinds_are_registered_with_their_heals() -> None:
    assert CLOUD_FAULTS == ("cloud_fail", "cloud_slow", "cloud_cut", "cloud_heal")
    assert REGISTRY["cloud_fail"].undo(None, Step.of("cloud_fail", share=0.5)) == (  # type: ignore[arg-type]
        Step.of("cloud_heal"),
    )
    assert REGISTRY["cloud_cut"].undo(None, Step.of("cloud_cut")) == (Step.of("host_heal"),)  # type: ignore[arg-type]
    assert REGISTRY["cloud_heal"].closes == {"cloud_api"}


def test_the_longest_failure_is_kept_for_the_bound() -> None:
    side = CloudSide()
    side.set_faults(10.0, fail_rate=1.0)
    side.set_faults(12.0, delay=3.0, fail_rate=1.0)  # still failing: the span goes on
    side.set_faults(30.0)
    side.set_faults(40.0, delay=0.5)
    side.set_faults(45.0)
    assert side.longest_failure == 20.0
    assert (side.faults.delay, side.faults.fail_rate) == (0.0, 0.0)


# --- the check on hand-made states -------------------------------------------------------------


def _node(name: str, cidr: str, network: str | None = "False") -> Obj:
    conditions = [{"type": "Ready", "status": "True"}]
    if network is not None:
        conditions.append({"type": "NetworkUnavailable", "status": network})
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"conditions": conditions}}  # fmt: skip


def _service(name: str, uid: str, kind: str = "LoadBalancer", ip: str | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": uid}
    if kind == "LoadBalancer":
        meta["finalizers"] = ["service.kubernetes.io/load-balancer-cleanup"]
    status = {"loadBalancer": {"ingress": [{"ip": ip}]}} if ip else {}
    ports = [{"port": 80, "protocol": "TCP", "nodePort": 30080}]
    return {"metadata": meta, "spec": {"type": kind, "ports": ports}, "status": status}


def _reconciled() -> tuple[list[Obj], list[Obj], SimulatedCloud]:
    nodes = [_node("sim-0", "10.0.0.0/24"), _node("sim-1", "10.0.1.0/24")]
    cloud = SimulatedCloud()
    for node in nodes:
        name = node["metadata"]["name"]
        cloud.put_instance(name, {"zone": "z"})
        body = {"cluster": "kubernetes", "targetNode": name,
                "destinationCIDR": node["spec"]["podCIDR"]}  # fmt: skip
        cloud.put_route(f"kubernetes-{name}", body)
    lb = cloud.put_load_balancer("auid1", {
        "cluster": "kubernetes", "service": "default/svc-a", "nodes": ["sim-1", "sim-0"],
        "ports": [{"protocol": "TCP", "port": 80, "nodePort": 30080}]})  # fmt: skip
    services = [_service("svc-a", "uid-1", ip=lb["ip"]), _service("svc-c", "uid-3", "ClusterIP")]
    return nodes, services, cloud


def test_a_reconciled_cloud_has_no_problems() -> None:
    assert problems_of(*_reconciled()) == []


def test_each_way_the_cloud_can_be_wrong_is_named() -> None:
    nodes, services, cloud = _reconciled()
    cloud.load_balancers["auid1"]["nodes"] = ["sim-0"]
    assert problems_of(nodes, services, cloud) == [
        "service default/svc-a: load balancer targets ['sim-0'], not ['sim-0', 'sim-1']"
    ]
    nodes, services, cloud = _reconciled()
    services.append(_service("svc-b", "uid-2"))
    del cloud.routes["kubernetes-sim-1"]
    nodes[0]["status"]["conditions"].pop()
    problems = problems_of(nodes, services, cloud)
    assert problems == [
        "node sim-0: NetworkUnavailable is missing, not False",
        "no route to sim-1 for 10.0.1.0/24",
        "service default/svc-b: 0 load balancers, auid2 missing",
    ]
    nodes, services, cloud = _reconciled()
    services[0]["spec"]["type"] = "ClusterIP"  # no longer wants one: its balancer is left over
    cloud.delete_instance("sim-0")  # the route to it is a blackhole
    problems = problems_of(nodes, services, cloud)
    assert "route kubernetes-sim-0 is a blackhole (no instance sim-0)" in problems
    assert "load balancer auid1 of default/svc-a is left over" in problems
    assert any(p.startswith("service default/svc-a wants no load balancer") for p in problems)
    nodes, services, cloud = _reconciled()
    services[0]["status"] = {}
    assert problems_of(nodes, services, cloud) == [
        f"service default/svc-a: ingress [], load balancer at {cloud.load_balancers['auid1']['ip']}"
    ]
