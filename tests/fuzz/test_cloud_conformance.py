"""The cloud controllers' request-conformance rules (:mod:`raftkube_fuzz.checks.cloud_conformance`)
on hand-built views and cloud answers, each with a request allowed and one refused; and the
monitor's wiring (:mod:`raftkube_fuzz.cluster.cloud_monitor`), from a sync's start through its
cloud calls' answers to a judged status write."""

from __future__ import annotations

import json
from typing import Any

import pytest

from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.synctrace import listen_to_syncs, sync_started
from raftkube_fuzz.checks import cloud_conformance as rules
from raftkube_fuzz.checks.cloud_conformance import CloudCall
from raftkube_fuzz.cluster.cloud_monitor import cloud_tracer
from raftkube_fuzz.cluster.conformance_monitor import CURRENT, ConformanceMonitor
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue
from tests.helpers.informers import cached_informer

Obj = dict[str, Any]


def node(name: str, ready: str = "True", *, cidr: str = "", rv: int = 1, **meta: Any) -> Obj:
    spec: Obj = {"podCIDRs": [cidr]} if cidr else {}
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": str(rv), **meta},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def service(kind: str = "LoadBalancer", *, deleting: bool = False, rv: int = 1) -> Obj:
    meta: Obj = {"name": "svc", "namespace": "default", "uid": "1-2", "resourceVersion": str(rv)}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"type": kind, "ports": [{"port": 80}]}}


def call(method: str, path: str, status: int | None, obj: Obj | None = None) -> CloudCall:
    return CloudCall(method, path, status, obj)


INSTANCE = "/v1/instances/n1"
GONE = call("GET", INSTANCE, 404)
ADDRESSES = [{"type": "InternalIP", "address": "10.0.0.1"}]
RUNNING = call(
    "GET",
    INSTANCE,
    200,
    {"providerID": "raftkube://z/n1", "state": "running", "addresses": ADDRESSES},
)
SHUT = call("GET", INSTANCE, 200, {**(RUNNING.obj or {}), "state": "shutdown"})


def test_a_node_is_deleted_only_not_ready_and_with_its_instance_answered_gone() -> None:
    assert rules.node_delete(node("n1", "Unknown"), GONE) is None
    assert (
        rules.node_delete(node("n1", "True"), GONE) is not None
    )  # upstream asks Ready ones nothing
    assert rules.node_delete(node("n1", "False"), RUNNING) is not None
    why = rules.node_delete(node("n1", "Unknown"), call("GET", INSTANCE, 503))
    assert why is not None and "answered 503" in why
    assert rules.node_delete(node("n1", "Unknown"), None) is not None
    assert rules.node_delete(None, GONE) == "its view has no such node"


def test_the_shutdown_taint_follows_readiness_and_the_instances_state() -> None:
    assert rules.shutdown_taint(node("n1", "Unknown"), True, SHUT) is None
    assert rules.shutdown_taint(node("n1", "True"), True, SHUT) is not None
    assert rules.shutdown_taint(node("n1", "Unknown"), True, RUNNING) is not None
    assert rules.shutdown_taint(node("n1", "True"), False, None) is None
    assert rules.shutdown_taint(node("n1", "Unknown"), False, RUNNING) is None
    assert (
        rules.shutdown_taint(node("n1", "Unknown"), False, call("GET", INSTANCE, 503)) is not None
    )


def test_provider_id_and_addresses_are_the_instances() -> None:
    assert rules.node_initialized(node("n1"), "raftkube://z/n1", RUNNING) is None
    assert rules.node_initialized(node("n1"), "raftkube://z/other", RUNNING) is not None
    assert rules.node_initialized(node("n1"), "raftkube://z/n1", None) is not None
    with_id = node("n1")
    with_id["spec"]["providerID"] = "custom://n1"  # set already: upstream keeps it
    assert rules.node_initialized(with_id, "custom://n1", RUNNING) is None
    assert rules.node_initialized(with_id, "raftkube://z/n1", RUNNING) is not None
    internal = {"type": "InternalIP", "address": "10.0.0.1"}
    hostname = {"type": "Hostname", "address": "n1"}  # kept: the cloud reports none
    assert rules.node_addresses(node("n1"), [internal, hostname], RUNNING) is None
    assert rules.node_addresses(node("n1"), [{**internal, "address": "10.9.9.9"}], RUNNING)
    assert rules.node_addresses(node("n1"), [internal], call("GET", INSTANCE, 503)) is not None


def test_routes_follow_the_views_pod_cidrs() -> None:
    nodes = [node("n1", cidr="10.1.0.0/24")]
    assert rules.route_create(nodes, "n1", "10.1.0.0/24") is None
    assert rules.route_create(nodes, "n1", "10.2.0.0/24") is not None
    assert rules.route_create(nodes, "n2", "10.1.0.0/24") is not None
    route = {"name": "kubernetes-uid-n1", "targetNode": "n1", "destinationCIDR": "10.1.0.0/24"}
    assert rules.route_delete(nodes, route) is not None  # its node still wants it
    assert rules.route_delete(nodes, {**route, "blackhole": True}) is None
    assert rules.route_delete(nodes, {**route, "destinationCIDR": "10.7.0.0/24"}) is None
    assert rules.route_delete([], route) is None
    assert rules.route_delete(nodes, None) is not None
    put = call("PUT", "/v1/routes/kubernetes-uid-n1", 200, route)
    failed = call("PUT", "/v1/routes/kubernetes-uid-n1", 503, {"targetNode": "n1"})
    assert rules.network_condition(nodes[0], "False", [], [put]) is None
    assert rules.network_condition(nodes[0], "False", [route], []) is None
    assert rules.network_condition(nodes[0], "False", [], []) is not None
    assert rules.network_condition(nodes[0], "False", [], [failed]) is not None
    assert rules.network_condition(nodes[0], "True", [], [failed]) is None
    assert rules.network_condition(nodes[0], "True", [route], [put]) is not None


LB = "/v1/loadbalancers/a12"


def test_balancers_follow_the_views_services_and_nodes() -> None:
    nodes = [node("n1"), node("n2", "False"), node("n3", labels={rules.EXCLUDE_LABEL: ""})]
    # readiness is not a target's criterion (StableLoadBalancerNodeSet), the label is
    assert rules.balancer_ensure(service(), nodes, "a12", ["n1", "n2"]) is None
    assert rules.balancer_ensure(service(), nodes, "a12", ["n1"]) is not None
    assert rules.balancer_ensure(service("ClusterIP"), nodes, "a12", ["n1", "n2"]) is not None
    assert rules.balancer_ensure(service(), nodes, "aother", ["n1", "n2"]) is not None
    assert rules.balancer_delete(service("ClusterIP"), "a12") is None
    assert rules.balancer_delete(service(deleting=True), "a12") is None
    assert rules.balancer_delete(service(), "a12") is not None


def test_a_services_status_carries_the_address_answered_or_is_cleared_after_the_balancer() -> None:
    put = call("PUT", LB, 200, {"ip": "127.240.0.1"})
    assert rules.ingress_written(service(), "127.240.0.1", put) is None
    assert rules.ingress_written(service(), "127.240.0.9", put) is not None
    assert rules.ingress_written(service(), "127.240.0.1", call("PUT", LB, 503)) is not None
    assert rules.ingress_written(service("ClusterIP"), "127.240.0.1", put) is not None
    assert rules.ingress_cleared(service("ClusterIP"), call("DELETE", LB, 200, {})) is None
    assert rules.ingress_cleared(service(deleting=True), call("GET", LB, 404)) is None
    assert rules.ingress_cleared(service("ClusterIP"), call("GET", LB, 200, {})) is not None
    assert rules.ingress_cleared(service("ClusterIP"), call("DELETE", LB, 503)) is not None
    assert rules.ingress_cleared(service(), call("DELETE", LB, 200, {})) is not None
    assert rules.finalizer_added(service()) is None
    assert rules.finalizer_added(service("ClusterIP")) is not None


# --- the monitor's wiring ------------------------------------------------------------------------


def informer(resource: str, items: list[Obj], version: int) -> SharedIndexInformer:
    return cached_informer("", resource, items, version)


def put(obj: Obj, resource: str) -> KeyValue:
    meta = obj["metadata"]
    scope = f"{meta['namespace']}/" if meta.get("namespace") else ""
    key = f"/registry/{resource}/{scope}{meta['name']}".encode()
    return KeyValue(key, version=1, value=json.dumps(obj).encode())


@pytest.mark.parametrize(("written", "violates"), [("127.240.0.1", False), ("127.240.0.7", True)])
def test_the_monitor_judges_an_ingress_against_the_balancer_put_its_sync_saw_answered(
    written: str, violates: bool
) -> None:
    monitor = ConformanceMonitor()
    svc, nodes = service(rv=2), [node("n1", rv=3)]
    monitor.history.written(2, (put(svc, "services"),))
    monitor.history.written(3, (put(nodes[0], "nodes"),))
    monitor.watch("ccm-0")
    trace = monitor.tracer()
    cloud = cloud_tracer(monitor.tracer(), CURRENT.get)
    caches = (informer("services", [svc], 3), informer("nodes", nodes, 3))
    try:
        sync_started("service", "default/svc", caches)
        cloud("GET", LB, None, None)(404, b'{"error": "not found"}')
        body = {"cluster": "kubernetes", "service": "default/svc", "nodes": ["n1"], "ports": []}
        answer = {**body, "name": "a12", "ip": "127.240.0.1"}
        cloud("PUT", LB, None, body)(200, json.dumps(answer).encode())
        patch = {"status": {"loadBalancer": {"ingress": [{"ip": written}]}}}
        trace("PATCH", "/api/v1/namespaces/default/services/svc/status", None, patch)
    finally:
        CURRENT.set(None)
        listen_to_syncs(None)
    if violates:
        with pytest.raises(Violation, match="RequestConformance"):
            monitor.check()
    else:
        monitor.check()
        assert monitor.judged == {"service": 2}  # the balancer PUT and the status PATCH
