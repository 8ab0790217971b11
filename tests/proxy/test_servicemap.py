"""The proxy's decisions as plain functions: where to listen, which endpoints serve a port,
the round-robin ring, and the byte relay with half-closes."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from raftkube.clock import TrioClock
from raftkube.net.streams import TcpNetwork
from raftkube.proxy import (
    LoadBalancerRR,
    Proxier,
    ServicePortName,
    endpoints_map,
    listeners_for,
    splice,
)
from raftkube.proxy.servicemap import service_listeners

Obj = dict[str, Any]


def service(name: str = "web", **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "clusterIP": "127.96.0.10",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            **spec,
        },
    }


def test_cluster_ip_ports_are_listened_on() -> None:
    svc = service(
        ports=[
            {"name": "http", "port": 8080},
            {"name": "dns", "port": 5353, "protocol": "UDP"},
            {"name": "admin", "port": 9090, "protocol": "TCP"},
        ]
    )
    assert service_listeners(svc, "127.0.0.1") == {
        ("127.96.0.10", 8080): ServicePortName("default", "web", "http"),
        ("127.96.0.10", 9090): ServicePortName("default", "web", "admin"),
    }


@pytest.mark.parametrize(
    "spec",
    [{"clusterIP": "None"}, {"clusterIP": ""}, {"type": "ExternalName", "externalName": "x.io"}],
)
def test_services_without_a_cluster_ip_have_no_listener(spec: Obj) -> None:
    assert service_listeners(service(**spec), "127.0.0.1") == {}


def test_node_ports_are_listened_on_at_the_bind_address() -> None:
    svc = service(type="NodePort", ports=[{"name": "", "port": 8080, "nodePort": 30080}])
    spn = ServicePortName("default", "web", "")
    assert service_listeners(svc, "127.5.0.1") == {
        ("127.96.0.10", 8080): spn,
        ("127.5.0.1", 30080): spn,
    }
    # a ClusterIP Service's ports have no node port even if one is left in the object
    plain = service(ports=[{"name": "", "port": 8080, "nodePort": 30080}])
    assert list(service_listeners(plain, "127.5.0.1")) == [("127.96.0.10", 8080)]


def test_a_contested_address_goes_to_the_first_name_in_any_order() -> None:
    a, b = service("a"), service("b")
    assert listeners_for([a, b], "h") == listeners_for([b, a], "h")
    assert listeners_for([b, a], "h")[("127.96.0.10", 8080)].name == "a"


def test_endpoints_map_takes_ready_addresses_by_port_name() -> None:
    eps = {
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [
            {
                "addresses": [{"ip": "127.0.1.2"}, {"ip": "127.0.1.1"}],
                "notReadyAddresses": [{"ip": "127.0.1.9"}],
                "ports": [
                    {"name": "http", "port": 80},
                    {"name": "udp", "port": 53, "protocol": "UDP"},
                ],
            },
            {"addresses": [{"ip": "127.0.2.1"}], "ports": [{"name": "http", "port": 81}]},
            {"notReadyAddresses": [{"ip": "127.0.3.1"}], "ports": [{"name": "admin", "port": 9}]},
        ],
    }
    assert endpoints_map([eps]) == {
        ServicePortName("default", "web", "http"): [
            ("127.0.1.1", 80),
            ("127.0.1.2", 80),
            ("127.0.2.1", 81),
        ]
    }


def test_round_robin_visits_every_endpoint_in_turn() -> None:
    spn = ServicePortName("default", "web", "http")
    lb = LoadBalancerRR(random.Random(1))
    assert lb.next_endpoint(spn) is None
    pairs = [("127.0.0.2", 80), ("127.0.0.3", 80), ("127.0.0.4", 80)]
    lb.on_endpoints_update({spn: pairs})
    first = [lb.next_endpoint(spn) for _ in range(3)]
    assert sorted(first) == pairs  # type: ignore[type-var]
    # an unchanged set keeps the ring and its position
    lb.on_endpoints_update({spn: list(reversed(pairs))})
    assert [lb.next_endpoint(spn) for _ in range(3)] == first
    lb.on_endpoints_update({spn: pairs[:1]})
    assert [lb.next_endpoint(spn) for _ in range(2)] == [pairs[0], pairs[0]]
    lb.on_endpoints_update({})
    assert lb.next_endpoint(spn) is None


def test_routes_are_a_read_only_copy_of_the_balancer() -> None:
    web, api = ServicePortName("default", "web", "http"), ServicePortName("default", "api")
    factory: Any = SimpleNamespace(lister=lambda resource: None)
    proxier = Proxier(factory, network=TcpNetwork(), clock=TrioClock(), rng=random.Random(2))
    assert proxier.routes() == {}
    pairs = [("127.0.0.2", 80), ("127.0.0.3", 80)]
    proxier.balancer.on_endpoints_update({web: pairs, api: [("127.0.0.4", 81)]})
    assert proxier.balancer.service_ports() == [api, web]
    routes = proxier.routes()
    assert sorted(routes[web]) == pairs and routes[api] == [("127.0.0.4", 81)]
    routes[web].clear()
    first = proxier.balancer.next_endpoint(web)
    assert first in pairs and proxier.routes()[web][-1] == first
    proxier.balancer.on_endpoints_update({api: [("127.0.0.4", 81)]})
    assert list(proxier.routes()) == [api]


@pytest.mark.trio
async def test_splice_passes_half_close_on_and_keeps_the_other_way_open() -> None:
    client, proxy_in = trio.testing.memory_stream_pair()
    proxy_out, server = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(splice, proxy_in, proxy_out)
            await client.send_all(b"request")
            await client.send_eof()
            received = b""
            while chunk := await server.receive_some():
                received += chunk
            assert received == b"request"
            await server.send_all(b"answer after the request ended")
            await server.send_eof()
            answer = b""
            while chunk := await client.receive_some():
                answer += chunk
            assert answer == b"answer after the request ended"
    # splice returned once both directions had ended


@pytest.mark.trio
async def test_splice_ends_both_ways_when_one_side_breaks() -> None:
    client, proxy_in = trio.testing.memory_stream_pair()
    proxy_out, _server = trio.testing.memory_stream_pair()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(splice, proxy_in, proxy_out)
            await trio.testing.wait_all_tasks_blocked()
            await proxy_out.aclose()  # the endpoint's side is gone
            await client.send_all(b"into the void")
    # both directions were cancelled although the client never closed
