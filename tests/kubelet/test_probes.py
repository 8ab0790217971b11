"""The network prober against real sockets: what passes, and what a failure says (the text the
kubelet's ``Unhealthy`` event quotes, in upstream's words)."""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.kubelet.probes import NetworkProber, ProbeResult
from raftkube.runtime import SimulatedRuntime
from tests.helpers.clocks import FastClock

CONTAINER: dict[str, Any] = {"name": "web", "ports": [{"name": "http", "containerPort": 0}]}


@asynccontextmanager
async def http_server(answer: bytes | None) -> AsyncIterator[int]:
    """A server on 127.0.0.1 that reads a request and sends ``answer`` (None: never answers);
    yields its port."""

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                request += chunk
            if answer is None:
                await trio.sleep_forever()
            await stream.send_all(answer)

    async with trio.open_nursery() as nursery:
        [listener] = await nursery.start(
            functools.partial(trio.serve_tcp, host="127.0.0.1"), serve, 0
        )
        yield listener.socket.getsockname()[1]
        nursery.cancel_scope.cancel()


def free_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prober() -> NetworkProber:
    return NetworkProber(SimulatedRuntime(FastClock(), "127.1.0.0/24", {}), TrioClock())


async def get(port: int, **action: Any) -> ProbeResult:
    spec = {"httpGet": {"path": "/healthz", "port": port, "host": "127.0.0.1", **action}}
    return await prober().probe(spec, CONTAINER, "127.0.0.1", "")


@pytest.mark.trio
async def test_http_passes_on_2xx_and_3xx() -> None:
    for status in (b"200 OK", b"302 Found"):
        async with http_server(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n") as port:
            assert await get(port) == ProbeResult(True)


@pytest.mark.trio
async def test_http_fails_with_the_status_it_got() -> None:
    answer = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    async with http_server(answer) as port:
        assert await get(port) == ProbeResult(False, "HTTP probe failed with statuscode: 503")


@pytest.mark.trio
async def test_http_to_a_closed_port_is_a_refused_dial() -> None:
    port = free_port()
    assert await get(port) == ProbeResult(
        False,
        f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: '
        "connection refused",
    )


@pytest.mark.trio
async def test_http_that_is_not_http_fails_and_says_so() -> None:
    async with http_server(b"SSH-2.0-OpenSSH\r\n\r\n") as port:
        result = await get(port)
    assert not result.ok
    assert result.output.startswith(f'Get "http://127.0.0.1:{port}/healthz": ')


@pytest.mark.trio
async def test_http_that_never_answers_times_out() -> None:
    async with http_server(None) as port:
        with trio.fail_after(5):
            result = await get(port)
    assert result == ProbeResult(
        False,
        f'Get "http://127.0.0.1:{port}/healthz": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)",
    )


@pytest.mark.trio
async def test_tcp_passes_when_something_listens_and_says_refused_otherwise() -> None:
    async with http_server(None) as port:
        spec = {"tcpSocket": {"port": port}}
        assert await prober().probe(spec, CONTAINER, "127.0.0.1", "") == ProbeResult(True)
    closed = free_port()
    spec = {"tcpSocket": {"port": closed}}
    assert await prober().probe(spec, CONTAINER, "127.0.0.1", "") == ProbeResult(
        False, f"dial tcp 127.0.0.1:{closed}: connect: connection refused"
    )


@pytest.mark.trio
async def test_a_named_port_the_container_lacks_fails_the_probe() -> None:
    result = await prober().probe({"tcpSocket": {"port": "grpc"}}, CONTAINER, "127.0.0.1", "")
    assert result == ProbeResult(False, "port 'grpc' is not a port of container web")
