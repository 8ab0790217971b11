"""The proxier against a real API server, as ``system:kube-proxy``: Services and Endpoints are
created by the admin, and the "pods" are small Trio TCP servers on their own 127.x addresses
that greet with their name, echo what they receive, and answer ``<eof>`` to a half-close."""

from __future__ import annotations

import argparse
import functools
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from raftkube.apiserver.auth.pki import write_kubeconfig
from raftkube.clock import TrioClock
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.resources import resource
from raftkube.kubeclient import KubeClient
from raftkube.net.streams import TcpNetwork
from raftkube.proxy import Proxier, ServicePortName
from raftkube.proxy.cli import run_from_args
from tests.helpers.api_server import APIHarness
from tests.helpers.polling import wait_for

Obj = dict[str, Any]
SERVICES = resource("", "v1", "services")
ENDPOINTS = resource("", "v1", "endpoints")
SPN = ServicePortName("default", "web", "http")


@attrs.frozen
class Pod:
    name: str
    ip: str
    port: int


async def _pod_connection(name: str, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            await stream.send_all(f"{name}\n".encode())
            while data := await stream.receive_some():
                await stream.send_all(data)
            await stream.send_all(b"<eof>")
        except trio.BrokenResourceError:
            pass


@asynccontextmanager
async def pods(*ips: str) -> AsyncIterator[list[Pod]]:
    """Echo servers on ``ips`` (each on a free port), named pod-0, pod-1, ..."""
    async with trio.open_nursery() as nursery:
        started = []
        for i, ip in enumerate(ips):
            listeners = await trio.open_tcp_listeners(0, host=ip)
            port = listeners[0].socket.getsockname()[1]
            handler = functools.partial(_pod_connection, f"pod-{i}")
            nursery.start_soon(trio.serve_listeners, handler, listeners)
            started.append(Pod(f"pod-{i}", ip, port))
        yield started
        nursery.cancel_scope.cancel()


def service_body(port: int, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": port, "protocol": "TCP"}], **spec},
    }


def endpoints_body(ready: Sequence[Pod], not_ready: Sequence[Pod] = ()) -> Obj:
    """One subset per pod (each listens on its own port), the port named as the Service's."""
    subsets = [
        {"addresses": [{"ip": p.ip}], "ports": [{"name": "http", "port": p.port}]} for p in ready
    ] + [
        {"notReadyAddresses": [{"ip": p.ip}], "ports": [{"name": "http", "port": p.port}]}
        for p in not_ready
    ]
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": subsets,
    }


async def set_endpoints(admin: KubeClient, body: Obj) -> None:
    current = await admin.get(ENDPOINTS, "web", namespace="default")
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    await admin.update(ENDPOINTS, body)


def proxy_kubeconfig(api: APIHarness) -> Any:
    path = api.tmp / "proxy.kubeconfig"
    pair = api.pki.proxy
    write_kubeconfig(path, api.url, api.pki.ca.cert, pair.cert, pair.key, "system:kube-proxy")
    return path


@asynccontextmanager
async def running_proxier(api: APIHarness, bind_address: str) -> AsyncIterator[Proxier]:
    clock = TrioClock()
    async with KubeClient.from_kubeconfig(proxy_kubeconfig(api), clock=clock) as client:
        factory = SharedInformerFactory(client, clock=clock)
        proxier = Proxier(
            factory,
            network=TcpNetwork(),
            clock=clock,
            bind_address=bind_address,
            rng=random.Random(7),
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proxier.run)
            yield proxier
            nursery.cancel_scope.cancel()


@attrs.define
class Conn:
    """A client connection through the proxy, with the greeting of the pod it reached."""

    stream: trio.SocketStream
    pod: str = ""
    buffer: bytes = b""

    async def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = await self.stream.receive_some()
            assert chunk, f"closed before {marker!r}; got {self.buffer!r}"
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    async def echo(self, data: bytes) -> None:
        await self.stream.send_all(data)
        assert await self.read_until(data) == b""


async def connect(host: str, port: int) -> Conn:
    conn = Conn(await trio.open_tcp_stream(host, port))
    conn.pod = (await conn.read_until(b"\n")).decode()
    return conn


async def request(host: str, port: int, data: bytes) -> str:
    """One exchange ended by a half-close: the pod's name, after checking the whole echo and
    the pod's answer to the end of file came back."""
    conn = await connect(host, port)
    async with conn.stream:
        await conn.stream.send_all(data)
        await conn.stream.send_eof()
        rest = conn.buffer
        while chunk := await conn.stream.receive_some():
            rest += chunk
        assert rest == data + b"<eof>"
        return conn.pod


def free_port() -> int:
    return random.randrange(20000, 29000)


async def create_service(api: APIHarness, port: int, ready: list[Pod], **spec: Any) -> Obj:
    svc = await api.admin.create(SERVICES, service_body(port, **spec), namespace="default")
    await api.admin.create(ENDPOINTS, endpoints_body(ready), namespace="default")
    return svc


@pytest.mark.trio
async def test_connections_spread_round_robin_over_ready_endpoints(api: APIHarness) -> None:
    with trio.fail_after(30):
        async with pods("127.0.71.1", "127.0.71.2", "127.0.71.3") as (a, b, c):
            port = free_port()
            svc = await create_service(api, port, [a, b])
            await set_endpoints(api.admin, endpoints_body([a, b], not_ready=[c]))
            ip = svc["spec"]["clusterIP"]
            async with running_proxier(api, "127.0.0.1") as proxier:
                await wait_for(lambda: proxier.listening().get((ip, port)) == SPN, "the listener")
                await wait_for(lambda: len(proxier.balancer.endpoints(SPN)) == 2, "endpoints")
                reached = [await request(ip, port, b"x" * 100_000) for _ in range(6)]
            assert sorted(set(reached)) == ["pod-0", "pod-1"]  # never the not-ready pod-2
            assert reached[0:2] * 3 == reached  # strictly in turn


@pytest.mark.trio
async def test_endpoint_changes_keep_established_connections(api: APIHarness) -> None:
    with trio.fail_after(30):
        async with pods("127.0.72.1", "127.0.72.2", "127.0.72.3") as (a, b, c):
            port = free_port()
            svc = await create_service(api, port, [a, b])
            ip = svc["spec"]["clusterIP"]
            async with running_proxier(api, "127.0.0.1") as proxier:
                await wait_for(lambda: len(proxier.balancer.endpoints(SPN)) == 2, "endpoints")
                await wait_for(lambda: (ip, port) in proxier.listening(), "the listener")
                first, second = await connect(ip, port), await connect(ip, port)
                assert {first.pod, second.pod} == {"pod-0", "pod-1"}
                kept, dropped = (first, second) if first.pod == "pod-0" else (second, first)
                await kept.echo(b"before")
                # pod-1 leaves the Service and pod-2 joins it
                await set_endpoints(api.admin, endpoints_body([a, c]))
                wanted = {(a.ip, a.port), (c.ip, c.port)}
                await wait_for(
                    lambda: set(proxier.balancer.endpoints(SPN)) == wanted, "the new endpoints"
                )
                await kept.echo(b"after the change")
                # the removed endpoint's connection is left to end by itself, as upstream's
                await dropped.echo(b"still served by the removed pod")
                reached = {(await connect(ip, port)).pod for _ in range(4)}
                assert reached == {"pod-0", "pod-2"}
                # no ready endpoint: the connection is accepted and closed at once
                await set_endpoints(api.admin, endpoints_body([], not_ready=[a, c]))
                await wait_for(lambda: not proxier.balancer.endpoints(SPN), "no endpoints")
                async with await trio.open_tcp_stream(ip, port) as lonely:
                    assert await lonely.receive_some() == b""
                await kept.echo(b"established connections survive that too")


@pytest.mark.trio
async def test_a_dead_endpoint_is_skipped_for_the_next(api: APIHarness) -> None:
    with trio.fail_after(30):
        async with pods("127.0.75.1") as (live,):
            dead = Pod("dead", "127.0.75.2", live.port)  # nothing listens there
            port = free_port()
            svc = await create_service(api, port, [live, dead])
            ip = svc["spec"]["clusterIP"]
            async with running_proxier(api, "127.0.0.1") as proxier:
                await wait_for(lambda: len(proxier.balancer.endpoints(SPN)) == 2, "endpoints")
                # The balancer may learn the endpoints before the Service's listener opens.
                await wait_for(lambda: (ip, port) in proxier.listening(), "the listener")
                reached = [await request(ip, port, b"hi") for _ in range(4)]
            assert reached == ["pod-0"] * 4


@pytest.mark.trio
async def test_a_deleted_service_stops_being_listened_on(api: APIHarness) -> None:
    with trio.fail_after(30):
        async with pods("127.0.73.1") as (a,):
            port = free_port()
            svc = await create_service(api, port, [a])
            ip = svc["spec"]["clusterIP"]
            async with running_proxier(api, "127.0.0.1") as proxier:
                await wait_for(lambda: (ip, port) in proxier.listening(), "the listener")
                assert await request(ip, port, b"hello") == "pod-0"
                await api.admin.delete(SERVICES, "web", namespace="default")
                await wait_for(lambda: (ip, port) not in proxier.listening(), "the close")
                with pytest.raises(OSError):
                    await trio.open_tcp_stream(ip, port)


@pytest.mark.trio
async def test_node_port_through_the_command(api: APIHarness) -> None:
    """``raftkube proxy`` itself, with the proxy's own credentials: NodePort and ClusterIP."""
    with trio.fail_after(30):
        async with pods("127.0.74.1", "127.0.74.2") as (a, b):
            port = free_port()
            svc = await create_service(api, port, [a, b], type="NodePort")
            ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
            args = argparse.Namespace(
                kubeconfig=proxy_kubeconfig(api), bind_address="127.0.74.9", sync_period=30.0
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_from_args, args)
                reached = set()
                for host, p in [("127.0.74.9", node_port)] * 2 + [(ip, port)] * 2:
                    while True:
                        try:
                            reached.add(await request(host, p, b"ping"))
                            break
                        except OSError:  # not listening yet
                            await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
            assert reached == {"pod-0", "pod-1"}


@pytest.mark.trio
async def test_an_unbindable_port_is_retried_but_reported_once(
    api: APIHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A Service port someone else holds is tried again at every sync (it may be freed) but
    logged as an error once, not at every Endpoints change; once it can be bound it is served."""
    with trio.fail_after(30):
        async with pods("127.0.77.1") as (a,):
            port = free_port()
            svc = await create_service(api, port, [a])
            ip = svc["spec"]["clusterIP"]
            squatter = trio.socket.socket()
            await squatter.bind((ip, port))
            squatter.listen()
            with caplog.at_level("DEBUG", logger="raftkube.proxy"):
                async with running_proxier(api, "127.0.0.1") as proxier:
                    for i in range(3):  # each Endpoints change is a sync that retries the bind
                        await set_endpoints(api.admin, endpoints_body([a] if i % 2 else []))
                        want = 1 if i % 2 else 0
                        await wait_for(
                            functools.partial(_endpoint_count_is, proxier, want), "endpoints"
                        )
                    failures = [r for r in caplog.records if "cannot listen" in r.getMessage()]
                    assert len(failures) >= 3
                    assert [r.levelname for r in failures].count("ERROR") == 1
                    squatter.close()
                    await set_endpoints(api.admin, endpoints_body([a]))
                    await wait_for(lambda: (ip, port) in proxier.listening(), "the listener")
                    assert await request(ip, port, b"hello") == "pod-0"


def _endpoint_count_is(proxier: Proxier, count: int) -> bool:
    return len(proxier.balancer.endpoints(SPN)) == count
