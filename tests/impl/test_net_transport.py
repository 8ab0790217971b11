"""TcpTransport on loopback: delivery, reconnect, overflow, TLS and refusal of strangers.

Every wait is bounded by ``trio.fail_after`` and polls briefly instead of sleeping a fixed
time, so the tests are as fast as the machine allows and fail instead of hanging.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
import trio
import trio.testing
import trustme

from raftkube.clock import TrioClock
from raftkube.net import chunks
from raftkube.net.codec import CodecError, encode
from raftkube.net.framing import FrameReader, FrameTooLargeError, encode_frame, send_frame
from raftkube.net.transport import (
    BackoffPolicy,
    PeerAddress,
    TcpTransport,
    TlsConfig,
    Transport,
    TransportClosedError,
    TransportConfig,
    UnknownPeerError,
    open_tcp_transport,
)
from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    InstallSnapshotRequest,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
)
from raftkube_spec.raft.types import Entry
from tests.helpers.polling import wait_for

FAST = BackoffPolicy(initial=0.01, maximum=0.1, multiplier=2.0, jitter=0.5)
CLUSTER = "test-cluster"


def config(member: int, **overrides: Any) -> TransportConfig:
    settings: dict[str, Any] = {
        "member_id": member,
        "cluster_id": CLUSTER,
        "backoff": FAST,
        "connect_timeout": 2.0,
        "handshake_timeout": 2.0,
    }
    settings.update(overrides)
    return TransportConfig(**settings)


def vote(source: int, dest: int, term: int = 1) -> RequestVoteRequest:
    return RequestVoteRequest(term, source, dest, 0, 0)


async def receive_n(transport: TcpTransport, n: int, timeout: float = 5.0) -> list[Message]:
    with trio.fail_after(timeout):
        return [await transport.receive() for _ in range(n)]


@asynccontextmanager
async def cluster(members: list[int], **overrides: Any) -> AsyncIterator[dict[int, TcpTransport]]:
    """Fully connected transports on ephemeral loopback ports."""
    async with AsyncExitStack() as stack:
        nodes = {
            m: await stack.enter_async_context(open_tcp_transport(config(m, **overrides)))
            for m in members
        }
        for m, node in nodes.items():
            for other, peer in nodes.items():
                if other != m:
                    node.add_peer(other, peer.listen_address)
        yield nodes


@pytest.mark.trio
async def test_three_members_exchange_messages() -> None:
    async with cluster([1, 2, 3]) as nodes:
        assert isinstance(nodes[1], Transport)
        for source, node in nodes.items():
            for dest in nodes:
                if dest != source:
                    assert node.send(dest, vote(source, dest, term=source * 10 + dest))
        for dest, node in nodes.items():
            got = await receive_n(node, 2)
            assert sorted(got) == sorted(vote(s, dest, s * 10 + dest) for s in nodes if s != dest)
        await wait_for(lambda: all(n.is_connected(p) for n in nodes.values() for p in n.peer_ids()))


@pytest.mark.trio
async def test_a_large_append_batch_arrives_intact_and_in_order() -> None:
    async with cluster([1, 2]) as nodes:
        entries = tuple(Entry(5, bytes([i % 256]) * 100) for i in range(5000))
        big = AppendEntriesRequest(5, 1, 2, 10, 4, entries, 9, 3)
        for i in range(20):
            assert nodes[1].send(2, RequestVoteResponse(i, 1, 2, True))
        assert nodes[1].send(2, big)
        got = await receive_n(nodes[2], 21)
        assert got[:20] == [RequestVoteResponse(i, 1, 2, True) for i in range(20)]
        assert got[20] == big


@pytest.mark.trio
async def test_reconnects_after_a_peer_restarts_on_the_same_port() -> None:
    async with open_tcp_transport(config(1)) as a:
        async with open_tcp_transport(config(2)) as b:
            port = b.listen_address.port
            a.add_peer(2, b.listen_address)
            a.send(2, vote(1, 2, term=1))
            assert await receive_n(b, 1) == [vote(1, 2, term=1)]
        # b is gone: a keeps accepting sends (they are queued or lost) without blocking.
        await wait_for(lambda: not a.is_connected(2))
        for term in range(2, 5):
            a.send(2, vote(1, 2, term=term))
        async with open_tcp_transport(config(2, listen_port=port)) as b2:
            with trio.fail_after(5):
                term = 100
                while True:  # resend until one gets through, as Raft would
                    a.send(2, vote(1, 2, term=term))
                    with trio.move_on_after(0.05):
                        message = await b2.receive()
                        break
                    term += 1
            assert message.source == 1
            assert a.stats.connections_established >= 2


async def stalling_peer(task_status: trio.TaskStatus[int], *, handshake: bool) -> None:
    """A fake member 2 that accepts connections and then never reads again — before or after
    answering the hello."""

    async def handler(stream: trio.SocketStream) -> None:
        if handshake:
            reader = FrameReader(stream)
            hello = msgpack.unpackb(await reader.receive_frame(), raw=False)
            assert hello[2:] == [CLUSTER, 1, 2]
            welcome = ["raftkube-welcome", 1, CLUSTER, 2]
            await send_frame(stream, msgpack.packb(welcome, use_bin_type=True))
        await trio.sleep_forever()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, listeners)
        task_status.started(port)


@pytest.mark.trio
async def test_a_stalled_handshake_overflows_the_queue_without_blocking() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(lambda task_status: stalling_peer(task_status, handshake=False))
        async with open_tcp_transport(config(1, queue_capacity=4)) as a:
            a.add_peer(2, PeerAddress("127.0.0.1", port))
            await trio.testing.wait_all_tasks_blocked()  # the link is stuck in its handshake
            results = [a.send(2, vote(1, 2, term=t)) for t in range(100)]
            assert results == [True] * 4 + [False] * 96
            assert a.stats.dropped_overflow == 96
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_peer_that_stops_reading_costs_only_its_own_queue() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(lambda task_status: stalling_peer(task_status, handshake=True))
        async with cluster([1, 3], queue_capacity=8) as nodes:
            a = nodes[1]
            a.add_peer(2, PeerAddress("127.0.0.1", port))
            await wait_for(lambda: a.is_connected(2))
            payload = (Entry(1, b"p" * (1 << 20)),)
            big = AppendEntriesRequest(1, 1, 2, 0, 0, payload, 0)
            with trio.fail_after(10):
                # Kernel socket buffers absorb some megabytes, then the pump blocks, the queue
                # fills and send() starts dropping: it returns at once every time.
                while a.stats.dropped_overflow == 0:
                    a.send(2, big)
                    await trio.sleep(0)
            # The healthy peer is unaffected by the stuck one.
            assert a.send(3, vote(1, 3))
            assert await receive_n(nodes[3], 1) == [vote(1, 3)]
        nursery.cancel_scope.cancel()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_config(ca: trustme.CA, *, require_client_cert: bool, present_cert: bool) -> TlsConfig:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    if require_client_cert:
        server.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    if present_cert:
        cert.configure_cert(client)
    return TlsConfig(server_context=server, client_context=client)


@pytest.mark.trio
@pytest.mark.parametrize("require_client_cert", [False, True], ids=["server-auth", "mutual"])
async def test_tls_peers_exchange_messages(ca: trustme.CA, require_client_cert: bool) -> None:
    tls = tls_config(ca, require_client_cert=require_client_cert, present_cert=True)
    async with cluster([1, 2], tls=tls) as nodes:
        assert nodes[1].send(2, vote(1, 2))
        assert nodes[2].send(1, vote(2, 1))
        assert await receive_n(nodes[2], 1) == [vote(1, 2)]
        assert await receive_n(nodes[1], 1) == [vote(2, 1)]


@pytest.mark.trio
async def test_tls_client_without_a_certificate_is_refused(ca: trustme.CA) -> None:
    strict = tls_config(ca, require_client_cert=True, present_cert=True)
    anonymous = tls_config(ca, require_client_cert=True, present_cert=False)
    async with (
        open_tcp_transport(config(2, tls=strict)) as b,
        open_tcp_transport(config(1, tls=anonymous)) as a,
    ):
        a.add_peer(2, b.listen_address)
        a.send(2, vote(1, 2))
        await wait_for(lambda: b.stats.connections_refused >= 2)
        await wait_for(lambda: a.stats.connect_failures >= 2)
        assert a.stats.connections_established == 0
        assert b.stats.received == 0


@pytest.mark.trio
async def test_plaintext_client_of_a_tls_member_is_refused(ca: trustme.CA) -> None:
    tls = tls_config(ca, require_client_cert=False, present_cert=True)
    async with open_tcp_transport(config(2, tls=tls)) as b, open_tcp_transport(config(1)) as a:
        a.add_peer(2, b.listen_address)
        a.send(2, vote(1, 2))
        await wait_for(lambda: a.stats.connect_failures >= 2)
        assert b.stats.received == 0


@pytest.mark.trio
async def test_a_member_of_another_cluster_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="raftkube.net.transport")
    async with (
        open_tcp_transport(config(2, cluster_id="blue")) as b,
        open_tcp_transport(config(1, cluster_id="green")) as a,
    ):
        a.add_peer(2, b.listen_address)
        a.send(2, vote(1, 2))
        await wait_for(lambda: a.stats.connect_failures >= 1)
        assert b.stats.connections_refused >= 1
        assert b.stats.received == 0
        assert a.stats.connections_established == 0
    assert "cluster id 'green' does not match this member's 'blue'" in caplog.text


@pytest.mark.trio
async def test_dialing_the_wrong_member_is_refused() -> None:
    async with cluster([1, 2]) as nodes:
        nodes[1].add_peer(3, nodes[2].listen_address)  # member 3's address is really member 2's
        nodes[1].send(3, vote(1, 3))
        await wait_for(lambda: nodes[2].stats.connections_refused >= 1)
        assert not nodes[1].is_connected(3)


async def raw_client(address: PeerAddress, hello: list[Any]) -> tuple[trio.SocketStream, list[Any]]:
    stream = await trio.open_tcp_stream(address.host, address.port)
    await send_frame(stream, msgpack.packb(hello, use_bin_type=True))
    reply = await FrameReader(stream).receive_frame()
    assert reply is not None
    return stream, msgpack.unpackb(reply, raw=False)


@pytest.mark.trio
async def test_bad_input_costs_a_connection_never_the_member() -> None:
    async with open_tcp_transport(config(2)) as b:
        address = b.listen_address
        with trio.fail_after(5):
            # Garbage instead of a hello.
            stream = await trio.open_tcp_stream(address.host, address.port)
            await stream.send_all(b"\x00\x00\x00\x03abc")
            assert await stream.receive_some() == b""
            # An absurd frame length is refused from the header alone.
            stream = await trio.open_tcp_stream(address.host, address.port)
            await stream.send_all(b"\xff\xff\xff\xff")
            assert await stream.receive_some() == b""
            # Handshaken, then an undecodable message (skipped), then a good one (delivered).
            stream, reply = await raw_client(address, ["raftkube-hello", 1, CLUSTER, 5, 2])
            assert reply == ["raftkube-welcome", 1, CLUSTER, 2]
            await stream.send_all(
                encode_frame(b"\x93\x63\x01\x02") + encode_frame(encode(vote(5, 2)))
            )
            assert await b.receive() == vote(5, 2)
            assert b.stats.decode_errors == 1
            # A forged source closes the connection without delivering.
            await stream.send_all(encode_frame(encode(vote(7, 2))))
            assert await stream.receive_some() == b""
            # Wrong protocol version: an explicit refusal with a reason.
            _, reply = await raw_client(address, ["raftkube-hello", 99, CLUSTER, 5, 2])
            assert reply[0] == "raftkube-reject" and "protocol version 99" in reply[1]
        assert b.stats.received == 1
        await wait_for(lambda: b.stats.connections_refused == 3)
        # And the member still works.
        async with open_tcp_transport(config(1)) as a:
            a.add_peer(2, address)
            a.send(2, vote(1, 2))
            assert await receive_n(b, 1) == [vote(1, 2)]


@pytest.mark.trio
async def test_send_rejects_misaddressed_and_unknown_peers() -> None:
    async with cluster([1, 2]) as nodes:
        with pytest.raises(ValueError, match="message for member 3 sent to peer 2"):
            nodes[1].send(2, vote(1, 3))
        with pytest.raises(UnknownPeerError):
            nodes[1].send(3, vote(1, 3))
        with pytest.raises(ValueError, match="own peer"):
            nodes[1].add_peer(1, nodes[2].listen_address)
        nodes[1].remove_peer(2)
        with pytest.raises(UnknownPeerError):
            nodes[1].send(2, vote(1, 2))


@pytest.mark.trio
async def test_close_ends_receiving_and_leaves_no_tasks() -> None:
    transport = TcpTransport(config(1), peers={2: PeerAddress("127.0.0.1", 9)})
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(transport.run)
            assert address == transport.listen_address
            assert transport.send(2, vote(1, 2))  # queued; peer unreachable

            async def consume() -> None:
                assert [m async for m in transport] == []

            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            transport.close()
        # The nursery exited, so run() and every task it started have finished.
    with pytest.raises(TransportClosedError):
        await transport.receive()
    assert not transport.send(2, vote(1, 2))
    with pytest.raises(RuntimeError, match="only once"):
        await transport.run()


@pytest.mark.trio
async def test_serve_hands_each_message_to_the_callback_until_closed() -> None:
    async with cluster([1, 2]) as nodes:
        got: list[Message] = []
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(nodes[2].serve, got.append)
                for term in range(3):
                    assert nodes[1].send(2, vote(1, 2, term))
                await wait_for(lambda: len(got) == 3)
                nodes[2].close()  # serve returns, so the nursery can exit
        assert got == [vote(1, 2, term) for term in range(3)]


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value

    def randrange(self, start: int, stop: int) -> int:
        return start + int(self.value * (stop - start))


def test_backoff_grows_exponentially_to_a_cap_with_bounded_jitter() -> None:
    policy = BackoffPolicy(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.5)
    no_jitter = [policy.delay(n, FixedRandom(0.0)) for n in range(6)]
    assert no_jitter == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert policy.delay(3, FixedRandom(0.999)) == pytest.approx(0.8 * (1 - 0.5 * 0.999))
    assert policy.delay(10**9, FixedRandom(0.0)) == pytest.approx(1.0)


class RecordingClock:
    """Trio's clock, remembering how long each sleep was asked to be."""

    def __init__(self) -> None:
        self.inner = TrioClock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.inner.now()

    async def sleep_until(self, deadline: float) -> None:
        self.sleeps.append(deadline - self.now())
        await self.inner.sleep_until(deadline)

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        return self.inner.cancel_scope_at(deadline)


@pytest.mark.trio
async def test_reconnect_backoff_uses_the_injected_clock_and_random_source() -> None:
    with trio.socket.socket() as probe:  # find a port nobody listens on
        await probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    clock = RecordingClock()
    backoff = BackoffPolicy(initial=0.001, maximum=0.004, multiplier=2.0, jitter=0.5)
    cfg = config(1, backoff=backoff)
    peers = {2: PeerAddress("127.0.0.1", dead_port)}
    async with open_tcp_transport(cfg, peers=peers, clock=clock, rng=FixedRandom(0.0)):
        await wait_for(lambda: len(clock.sleeps) >= 5)
    assert clock.sleeps[:5] == pytest.approx([0.001, 0.002, 0.004, 0.004, 0.004], abs=1e-4)


@pytest.mark.trio
async def test_a_snapshot_over_the_frame_limit_arrives_whole_in_chunks() -> None:
    limit = 4096
    async with cluster([1, 2], max_frame_size=limit) as nodes:
        image = tuple(Entry(3, bytes([i % 256]) * 1000) for i in range(40))  # ~10 frames
        snapshot = InstallSnapshotRequest(3, 1, 2, 40, 3, image)
        assert nodes[1].send(2, vote(1, 2))
        assert nodes[1].send(2, snapshot)
        assert nodes[1].send(2, vote(1, 2, term=2))
        assert await receive_n(nodes[2], 3) == [vote(1, 2), snapshot, vote(1, 2, term=2)]
        # Any other message over the limit is still refused where it is sent.
        with pytest.raises(FrameTooLargeError):
            nodes[1].send(2, AppendEntriesRequest(3, 1, 2, 0, 0, image, 0, 0))


@pytest.mark.trio
async def test_a_chunked_snapshot_is_queued_whole_or_not_at_all() -> None:
    limit = 4096
    async with open_tcp_transport(config(1, max_frame_size=limit, queue_capacity=8)) as a:
        a.add_peer(2, PeerAddress("127.0.0.1", 1))  # nobody listens: the queue only fills
        image = tuple(Entry(3, b"x" * 1000) for i in range(40))  # ~10 chunks: over 8
        assert not a.send(2, InstallSnapshotRequest(3, 1, 2, 40, 3, image))
        assert a.stats.dropped_overflow == 1
        assert a.send(2, vote(1, 2))  # Nothing of the snapshot took a place in the queue.


def test_chunks_out_of_sequence_are_dropped_and_malformed_ones_refused() -> None:
    payload = bytes(range(256)) * 50
    frames = [f[4:] for f in chunks.split(payload, 1024)]  # payloads, without the headers
    assert len(frames) > 3 and all(chunks.is_chunk(f) for f in frames)
    joiner = chunks.Joiner()
    assert [joiner.add(f) for f in frames[:-1]] == [None] * (len(frames) - 1)
    assert joiner.add(frames[-1]) == payload
    # A sequence seen from its middle (a connection that broke) gives nothing...
    assert all(joiner.add(f) is None for f in frames[2:])
    # ... and does not spoil the next whole one.
    assert [joiner.add(f) for f in frames][-1] == payload
    with pytest.raises(CodecError, match="chunk"):
        joiner.add(bytes((0x94, chunks.CHUNK_TAG, 5, 2, 0xC0)))
