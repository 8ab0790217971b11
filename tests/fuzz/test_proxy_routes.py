"""The end check on kube-proxy's routing table: each proxier routes every Service port to
exactly the ready addresses of its Endpoints, by port name, and nothing else."""

from __future__ import annotations

from typing import Any

from raftkube.proxy import ServicePortName
from raftkube_fuzz.checks.proxy_routes import misrouted, ready_routes

WEB = ServicePortName("default", "web", "http")


def endpoints(ready: list[str], not_ready: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [
            {
                "addresses": [{"ip": ip} for ip in ready],
                "notReadyAddresses": [{"ip": ip} for ip in not_ready],
                "ports": [
                    {"name": "http", "port": 8080},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ],
            }
        ],
    }


def test_ready_addresses_by_port_name_only() -> None:
    assert ready_routes([endpoints(["10.0.0.2", "10.0.0.1"], ("10.0.0.3",))]) == {
        WEB: [("10.0.0.1", 8080), ("10.0.0.2", 8080)]
    }
    assert ready_routes([endpoints([], ("10.0.0.3",))]) == {}


def test_a_proxier_matching_its_endpoints_in_any_order_is_right() -> None:
    objs = [endpoints(["10.0.0.1", "10.0.0.2"])]
    routes = {WEB: [("10.0.0.2", 8080), ("10.0.0.1", 8080)]}
    assert misrouted(objs, {"sim-0": routes, "sim-1": dict(routes)}) == []


def test_a_kept_a_missing_and_a_stray_route_are_each_reported() -> None:
    objs = [endpoints(["10.0.0.1"], ("10.0.0.2",))]
    stale = {WEB: [("10.0.0.1", 8080), ("10.0.0.2", 8080)]}
    stray = {ServicePortName("default", "gone"): [("10.0.0.9", 80)]}
    problems = misrouted(objs, {"sim-0": stale, "sim-1": {}, "sim-2": stray, "sim-3": None})
    assert problems == [
        "kube-proxy on sim-0 routes default/web:http to [10.0.0.1:8080, 10.0.0.2:8080], "
        "its Endpoints list [10.0.0.1:8080]",
        "kube-proxy on sim-1 routes default/web:http to nothing, its Endpoints list "
        "[10.0.0.1:8080]",
        "kube-proxy on sim-2 routes default/gone: to [10.0.0.9:80], its Endpoints list nothing",
        "kube-proxy on sim-2 routes default/web:http to nothing, its Endpoints list "
        "[10.0.0.1:8080]",
        "kube-proxy on sim-3 has not started",
    ]
