"""Behaviour scenarios of the traffic mutants (:mod:`raftkube_fuzz.mutants.traffic`): each
patch changes what a small deterministic scenario does, and is fully undone on exit. The
marker diff of every mutant is in ``test_mutants.py``."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from raftkube.controllers.endpoints import EndpointsController
from raftkube.proxy import LoadBalancerRR, ServicePortName
from tests.helpers.mutant_scenarios import Scenario, check_scenario

# --- scenarios: each returns what the mutant changes ---------------------------------------------


def _endpoints(*ips: str) -> dict[str, Any]:
    addresses = [{"ip": ip} for ip in ips]
    subsets = [{"addresses": addresses, "ports": [{"port": 8080, "protocol": "TCP"}]}]
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "svc", "namespace": "default", "resourceVersion": "7"},
        "subsets": subsets if ips else [],
    }


def write_after_own_write_unseen() -> list[str]:
    """A Service whose only pod is gone: the API holds the controller's own last write (the
    pod's address), the informer's cache still the empty Endpoints from before it. The
    requests the sync makes."""
    service = {
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    requests: list[str] = []

    async def get(resource: Any, name: str, namespace: str) -> dict[str, Any]:
        requests.append("get")
        return _endpoints("10.0.0.1")

    async def update(resource: Any, obj: dict[str, Any], namespace: str) -> dict[str, Any]:
        requests.append(f"update subsets={obj['subsets']}")
        return obj

    controller: Any = SimpleNamespace(
        services=SimpleNamespace(get=lambda name, namespace: service),
        pods=SimpleNamespace(list=lambda namespace: []),
        endpoints=SimpleNamespace(get=lambda name, namespace: _endpoints()),
        client=SimpleNamespace(get=get, update=update),
    )
    controller._current = lambda namespace, name: EndpointsController._current(
        controller, namespace, name
    )
    trio.run(EndpointsController.sync_service, controller, "default/svc")
    return requests


def routes_after_pods_left() -> dict[str, list[tuple[str, int]]]:
    """Two Service ports with two ready endpoints each; then one port keeps one endpoint and
    the other has none: where the balancer still routes, by port."""
    web, api = ServicePortName("default", "web"), ServicePortName("default", "api")
    balancer = LoadBalancerRR(random.Random(0))
    balancer.on_endpoints_update(
        {
            web: [("10.0.0.1", 8080), ("10.0.0.2", 8080)],
            api: [("10.0.0.3", 8080), ("10.0.0.4", 8080)],
        }
    )
    balancer.on_endpoints_update({web: [("10.0.0.1", 8080)]})
    return {str(spn): sorted(balancer.endpoints(spn)) for spn in balancer.service_ports()}


SCENARIOS: dict[str, Scenario] = {
    "endpoints-skip-write-on-stale-cache": (
        write_after_own_write_unseen,
        ["get", "update subsets=[]"],
        [],
    ),
    "proxy-keeps-removed-endpoint": (
        routes_after_pods_left,
        {"default/web:": [("10.0.0.1", 8080)]},
        {
            "default/api:": [("10.0.0.3", 8080), ("10.0.0.4", 8080)],
            "default/web:": [("10.0.0.1", 8080), ("10.0.0.2", 8080)],
        },
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])
