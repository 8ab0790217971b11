"""In-world streams read without a task: the handler :meth:`SimStream.set_reader` registers is
called with the bytes as they arrive (level-triggered, as a poller is), never while its host
is paused, and with the end or the reset of the connection; a paused host's non-blocking send
takes nothing. The client library and the client listener read the fuzzer's streams this way
(raftkube.net.nowait)."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
import trio

from raftkube_fuzz.world.driver import Simulation
from raftkube_fuzz.world.host import HostEnv
from raftkube_fuzz.world.streams import SimStream
from raftkube_fuzz.world.world import NullListener, World, WorldConfig

PORT = 9


@attrs.define(eq=False)
class Acceptor:
    """Keeps every connection it accepts in ``accepted``, reading none of them."""

    env: HostEnv
    accepted: list[SimStream] = attrs.Factory(list)

    async def run(self) -> None:
        (listener,) = await self.env.network.open_listeners(self.env.name, PORT)
        while True:
            stream = await listener.accept()
            assert isinstance(stream, SimStream)
            self.accepted.append(stream)


@attrs.define(eq=False)
class Idle:
    async def run(self) -> None:
        await trio.sleep_forever()


@pytest.fixture
def pair() -> Iterator[tuple[Simulation, World, SimStream, SimStream]]:
    """A connection from host ``client`` to host ``server``: (client end, server end)."""
    sim = Simulation(seed=3)
    world = World(WorldConfig(servers=0), 3, NullListener())
    world.add_host("server", Acceptor)
    world.add_host("client", lambda env: Idle())
    sim.start(world.run)
    try:
        server, client = world.other_hosts
        assert isinstance(server.process, Acceptor)
        acceptor = server.process
        stream = sim.call(client.network.open_stream, "server", PORT)
        sim.advance(0.1)
        assert isinstance(stream, SimStream) and len(acceptor.accepted) == 1
        yield sim, world, stream, acceptor.accepted[0]
    finally:
        sim.close()
    assert world.failures == []


class Collector:
    """A reader handler taking at most ``chunk`` bytes per call, as the real ones do."""

    def __init__(self, stream: SimStream, chunk: int) -> None:
        self.stream = stream
        self.chunk = chunk
        self.data = bytearray()
        self.calls = 0
        self.ended: str | None = None

    def __call__(self) -> None:
        self.calls += 1
        try:
            data = self.stream.receive_nowait(self.chunk)
        except trio.BrokenResourceError:
            self.ended = "reset"
        else:
            if data is None:
                return
            if data:
                self.data += data
                return
            self.ended = "end"
        self.stream.set_reader(None)


def test_bytes_reach_the_handler_as_they_arrive_level_triggered(
    pair: tuple[Simulation, World, SimStream, SimStream],
) -> None:
    sim, _, client, server = pair
    assert client.send_nowait(b"early") == 5  # arrives before anyone reads: kept
    sim.advance(0.1)
    collector = Collector(server, chunk=2)
    server.set_reader(collector)  # what is already there is handed over at once
    assert collector.data == b"early" and collector.calls == 3
    assert client.send_nowait(b"0123456789") == 10
    sim.advance(0.1)  # one chunk, read 2 bytes a call, every call made as it arrived
    assert collector.data == b"early0123456789" and collector.calls == 8
    sim.call(client.aclose)
    sim.advance(0.1)
    assert collector.ended == "end"


def test_a_paused_host_reads_nothing_until_it_resumes_and_sends_nothing(
    pair: tuple[Simulation, World, SimStream, SimStream],
) -> None:
    sim, world, client, server = pair
    collector = Collector(server, chunk=1024)
    server.set_reader(collector)
    server_node = world.other_hosts[0].node
    world.pause(server_node)
    assert server.send_nowait(b"answer") == 0  # a stopped process writes nothing
    client.send_nowait(b"request")
    sim.advance(1.0)
    assert collector.calls == 0 and server.receive_nowait(1024) is None
    world.resume(server_node)
    assert collector.data == b"request"


def test_a_reset_reaches_the_handler(
    pair: tuple[Simulation, World, SimStream, SimStream],
) -> None:
    sim, world, client, _ = pair
    collector = Collector(client, chunk=1024)
    client.set_reader(collector)
    world.crash(world.other_hosts[0].node)  # the server's process dies: its peers get a reset
    sim.advance(0.1)
    assert collector.ended == "reset"
    with pytest.raises(trio.BrokenResourceError):
        client.send_nowait(b"late")
