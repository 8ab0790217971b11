"""The stream seam: TCP and TLS networks, bound addresses, handshakes bounded on a Clock."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from raftkube.clock import TrioClock
from raftkube.net.streams import Network, TcpNetwork, TlsNetwork, bound_address
from raftkube.tls import client_context, ensure_cluster_certs, server_context


async def _echo_once(listener: trio.abc.Listener[trio.abc.Stream]) -> None:
    stream = await listener.accept()
    async with stream:
        data = await stream.receive_some()
        await stream.send_all(data.upper())


def test_the_networks_satisfy_the_protocol() -> None:
    assert isinstance(TcpNetwork(), Network)
    assert isinstance(TlsNetwork(TcpNetwork(), TrioClock()), Network)


@pytest.mark.trio
async def test_tcp_network_dials_what_it_listens_on() -> None:
    net = TcpNetwork()
    with trio.fail_after(10):
        listeners = await net.open_listeners("127.0.0.1", 0)
        host, port = bound_address(listeners[0])
        assert host == "127.0.0.1" and port > 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_echo_once, listeners[0])
            async with await net.open_stream(host, port) as stream:
                await stream.send_all(b"ping")
                assert await stream.receive_some() == b"PING"
        for listener in listeners:
            await listener.aclose()


@pytest.mark.trio
async def test_tls_network_round_trip(tmp_path: Path) -> None:
    certs = ensure_cluster_certs(tmp_path / "tls", range(1))
    member = certs.members[0]
    net = TlsNetwork(
        TcpNetwork(),
        TrioClock(),
        client_context=client_context(certs.ca.cert),
        server_context=server_context(member.cert, member.key),
    )
    with trio.fail_after(10):
        listeners = await net.open_listeners("127.0.0.1", 0)
        host, port = bound_address(listeners[0])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_echo_once, listeners[0])
            stream = await net.open_stream(host, port)
            assert isinstance(stream, trio.SSLStream)
            async with stream:
                await stream.send_all(b"secret")
                assert await stream.receive_some() == b"SECRET"
        for listener in listeners:
            await listener.aclose()


@pytest.mark.trio
async def test_a_silent_server_fails_the_handshake_on_the_clients_clock(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A server that accepts and then says nothing: the client gives up after its handshake
    timeout by its clock (virtual here), instead of hanging."""
    certs = ensure_cluster_certs(tmp_path / "tls", range(1))
    tcp = TcpNetwork()
    listeners = await tcp.open_listeners("127.0.0.1", 0)
    host, port = bound_address(listeners[0])
    held: list[trio.abc.Stream] = []

    async def accept_and_hold() -> None:
        held.append(await listeners[0].accept())
        await trio.sleep_forever()

    clock = TrioClock()
    net = TlsNetwork(
        tcp, clock, client_context=client_context(certs.ca.cert), handshake_timeout=30.0
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_and_hold)
        start = clock.now()
        with pytest.raises(trio.TooSlowError):
            await net.open_stream(host, port)
        assert clock.now() - start == pytest.approx(30.0)
        nursery.cancel_scope.cancel()
    for stream in held:
        await stream.aclose()
    for listener in listeners:
        await listener.aclose()


@pytest.mark.trio
async def test_a_tls_network_without_a_side_refuses_it() -> None:
    net = TlsNetwork(TcpNetwork(), TrioClock())
    with pytest.raises(ValueError, match="client context"):
        await net.open_stream("127.0.0.1", 1)
    with pytest.raises(ValueError, match="server context"):
        await net.open_listeners("127.0.0.1", 0)
