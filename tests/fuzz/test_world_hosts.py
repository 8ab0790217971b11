"""Generic hosts on the stream network: an echo server that is no Raft member, reached over
in-world byte streams, cut off by partitions and one-way cuts, frozen in its own time by a
pause, reset, crashed and restarted like any member."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
import trio

from raftkube.clock import move_on_after, sleep_for
from raftkube.net.streams import Network
from raftkube_fuzz.world.driver import CancelAfter, Simulation
from raftkube_fuzz.world.host import HostEnv
from raftkube_fuzz.world.streams import RETRANSMIT
from raftkube_fuzz.world.world import NullListener, World, WorldConfig

PORT = 7


@attrs.define(eq=False)
class EchoServer:
    """Answers every chunk with ``<its clock's reading>:<chunk>``, and counts seconds of its
    own clock in ``ticks``; ``slow`` is answered ``timeout:<reading>`` once 0.5 s of its
    clock have passed."""

    env: HostEnv
    ticks: int = 0
    requests: int = 0

    async def run(self) -> None:
        listeners = await self.env.network.open_listeners(self.env.name, PORT)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._tick)
            await trio.serve_listeners(self._serve, listeners)

    async def _tick(self) -> None:
        while True:
            await sleep_for(self.env.clock, 1.0)
            self.ticks += 1

    async def _serve(self, stream: trio.abc.Stream) -> None:
        try:
            while data := await stream.receive_some():
                self.requests += 1
                with move_on_after(self.env.clock, 0.5):
                    if data == b"slow":
                        await trio.sleep_forever()
                reply = b"timeout" if data == b"slow" else data
                await stream.send_all(b"%.3f:%s" % (self.env.clock.now(), reply))
        except trio.BrokenResourceError:
            pass


@attrs.define(eq=False)
class Idle:
    """A client machine's program: the test drives its network from outside."""

    async def run(self) -> None:
        await trio.sleep_forever()


@pytest.fixture
def echo_world() -> Iterator[tuple[Simulation, World]]:
    sim = Simulation(seed=5)
    world = World(WorldConfig(servers=0), 5, NullListener())
    world.add_host("echo", EchoServer, offset=100.0)
    world.add_host("client", lambda env: Idle())
    sim.start(world.run)
    try:
        yield sim, world
    finally:
        sim.close()
    assert world.failures == []


def _parts(world: World) -> tuple[EchoServer, int, int, Network]:
    echo, client = world.other_hosts
    assert isinstance(echo.process, EchoServer)
    return echo.process, echo.node, client.node, client.network


async def _ask(stream: trio.abc.Stream, data: bytes, within: float) -> bytes | None:
    """Send ``data`` and return the answer, or None if none came within ``within`` seconds
    of global time."""
    await stream.send_all(data)
    with CancelAfter(within):
        return await stream.receive_some()
    return None


def test_an_echo_host_answers_over_the_stream_network(
    echo_world: tuple[Simulation, World],
) -> None:
    sim, world = echo_world
    server, _, _, net = _parts(world)

    async def talk() -> tuple[bytes | None, float]:
        start = trio.current_time()
        async with await net.open_stream("echo", PORT) as stream:
            answer = await _ask(stream, b"hello", 1.0)
        return answer, trio.current_time() - start

    answer, took = sim.call(talk)
    assert answer is not None and answer.endswith(b":hello")
    assert float(answer.split(b":")[0]) >= 100.0  # the server's own clock, offset 100 s
    assert 0 < took < 0.1  # a connect round trip and a request round trip
    assert server.requests == 1


def test_a_partition_stalls_a_stream_until_it_heals(echo_world: tuple[Simulation, World]) -> None:
    sim, world = echo_world
    server, echo, client, net = _parts(world)

    async def scenario() -> list[bytes | None]:
        answers = []
        async with await net.open_stream("echo", PORT) as stream:
            world.partition([[echo], [client]])
            answers.append(await _ask(stream, b"cut", 2.0))  # stalls, nothing lost
            assert server.requests == 0
            world.heal()
            with CancelAfter(2 * RETRANSMIT + 0.1):
                answers.append(await stream.receive_some())
            world.network.one_way(echo, client)  # requests arrive, answers stall
            answers.append(await _ask(stream, b"one-way", 1.0))
            assert server.requests == 2
            world.heal()
            with CancelAfter(2 * RETRANSMIT + 0.1):
                answers.append(await stream.receive_some())
        return answers

    first, healed, one_way, healed_again = sim.call(scenario)
    assert first is None and one_way is None
    assert healed is not None and healed.endswith(b":cut")
    assert healed_again is not None and healed_again.endswith(b":one-way")


def test_a_paused_host_is_frozen_in_its_own_time(echo_world: tuple[Simulation, World]) -> None:
    sim, world = echo_world
    server, echo, _, net = _parts(world)

    async def scenario() -> tuple[bytes | None, bytes | None, bytes | None, int, int, float]:
        async with await net.open_stream("echo", PORT) as stream:
            await trio.sleep(1.25)
            unanswered = await _ask(stream, b"slow", 0.25)  # read; 0.5 s timeout running
            before = server.ticks
            world.pause(echo)
            paused_at = world.host(echo).clock.now()
            nothing = await _ask(stream, b"ping", 10.0)  # not even read while stopped
            frozen = server.ticks
            assert server.requests == 1
            world.resume(echo)
            with CancelAfter(1.0):
                answer = await stream.receive_some()
            return unanswered, nothing, answer, before, frozen, paused_at

    unanswered, nothing, answer, before, frozen, paused_at = sim.call(scenario)
    assert unanswered is None and nothing is None
    # The server's timeout fired by its own clock after the resume, 10 s later, not 0.25 s
    # into the pause as global time would have it.
    assert answer is not None and answer.endswith(b":timeout")
    assert float(answer.split(b":")[0]) >= paused_at + 10.0
    assert before == frozen == 1  # no tick during 10 s of global time
    assert server.ticks >= 2  # the overdue tick fires on resume


def test_crash_reset_and_restart_apply_to_any_host(echo_world: tuple[Simulation, World]) -> None:
    sim, world = echo_world
    _, echo, client, net = _parts(world)

    async def scenario() -> list[str]:
        seen = []
        stream = await net.open_stream("echo", PORT)
        world.crash(echo)
        await trio.sleep(0.1)
        try:
            await stream.receive_some()
        except trio.BrokenResourceError:
            seen.append("reset by the crash")
        try:
            await net.open_stream("echo", PORT)
        except ConnectionRefusedError:
            seen.append("refused while down")
        world.restart(echo)
        await trio.sleep(0.01)
        stream = await net.open_stream("echo", PORT)
        if await _ask(stream, b"again", 1.0):
            seen.append("answered after restart")
        world.reset_connections(client)
        try:
            await stream.send_all(b"x")
        except trio.BrokenResourceError:
            seen.append("reset")
        return seen

    assert sim.call(scenario) == [
        "reset by the crash",
        "refused while down",
        "answered after restart",
        "reset",
    ]
    assert world.host(echo).incarnation == 2


def test_loss_on_a_stream_is_a_retransmission_not_a_gap(
    echo_world: tuple[Simulation, World],
) -> None:
    sim, world = echo_world
    _, _, _, net = _parts(world)

    async def scenario() -> tuple[list[bytes], float]:
        async with await net.open_stream("echo", PORT) as stream:
            world.set_loss(1.0)  # every chunk is lost once and sent again
            start = trio.current_time()
            answers = []
            for word in (b"a", b"b", b"c"):
                answer = await _ask(stream, word, 2.0)
                assert answer is not None
                answers.append(answer.split(b":")[1])
            return answers, trio.current_time() - start

    answers, took = sim.call(scenario)
    assert answers == [b"a", b"b", b"c"]
    assert took >= 6 * RETRANSMIT  # three round trips, each leg retransmitted once
