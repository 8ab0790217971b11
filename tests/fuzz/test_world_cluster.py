"""A simulated cluster of real Members: election, client writes and reads, crash/restart of the
leader, pause/resume, watches, and a clean Simulation shutdown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from raftkube_fuzz.checks.history import Failed, History, Ok, Unknown
from raftkube_fuzz.world.client import SimClient, is_read
from raftkube_fuzz.world.driver import Simulation, SimulationTimeout
from raftkube_fuzz.world.world import NullListener, World, WorldConfig
from raftkube_spec.kv.requests import (
    CompactionRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from raftkube_spec.kv.responses import PutResponse, RangeResponse


@pytest.fixture
def cluster() -> Iterator[tuple[Simulation, World]]:
    sim = Simulation(seed=11)
    world = World(WorldConfig(servers=3), 11, NullListener())
    sim.start(world.run)
    try:
        yield sim, world
    finally:
        sim.close()
    assert world.failures == []


def await_leader(sim: Simulation, world: World, *, limit: float = 5.0) -> int:
    """The leader once one is elected that every up member follows."""

    async def wait() -> int:
        while True:
            lead = world.leader()
            if lead is not None:
                term = world.hosts[lead].member.term  # type: ignore[union-attr]
                members = [h.member for h in world.hosts if h.member is not None and not h.paused]
                if all(m.leader == lead and m.term == term for m in members):
                    return lead
            await trio.sleep(0.01)

    return sim.call(wait, limit=limit)


def test_elects_a_leader_quickly_and_serves_writes(cluster: tuple[Simulation, World]) -> None:
    sim, world = cluster
    lead = await_leader(sim, world, limit=2.0)
    assert sim.now < 2.0
    history = History()
    client = SimClient(world, 0, history)
    follower = (lead + 1) % 3

    async def work() -> list[object]:
        out: list[object] = []
        for k in range(10):  # sent to a follower: redirected to the leader
            out.append(
                await client.request(PutRequest(b"k%d" % k, b"v"), member=follower, timeout=2)
            )
        out.append(await client.request(RangeRequest(b"k", b"l"), member=follower, timeout=2))
        return out

    out = sim.call(work, limit=30)
    assert all(isinstance(o, Ok) and isinstance(o.result, PutResponse) for o in out[:-1])
    read = out[-1]
    assert isinstance(read, Ok) and isinstance(read.result, RangeResponse)
    assert len(read.result.kvs) == 10
    ops = history.operations()
    assert [op.op_id for op in ops] == list(range(11))
    assert all(op.ret is not None and op.call <= op.ret for op in ops)


def test_crash_and_restart_of_the_leader(cluster: tuple[Simulation, World]) -> None:
    sim, world = cluster
    old = await_leader(sim, world)
    client = SimClient(world, 0, History())
    assert isinstance(sim.call(client.request, PutRequest(b"a", b"1"), member=old, timeout=2), Ok)
    world.crash(old)
    assert not world.up(old) and world.members[old] is None
    new = await_leader(sim, world)
    assert new != old
    sim.advance(0.5)
    world.restart(old)
    assert world.up(old)
    sim.advance(1.0)
    assert world.hosts[old].incarnation == 2

    async def read() -> object:
        return await client.request(RangeRequest(b"a"), member=old, timeout=2)

    got = sim.call(read, limit=5)
    assert isinstance(got, Ok) and isinstance(got.result, RangeResponse)
    assert got.result.kvs[0].value == b"1"


def test_crash_mid_write_is_unknown_and_down_member_is_skipped(
    cluster: tuple[Simulation, World],
) -> None:
    sim, world = cluster
    lead = await_leader(sim, world)
    history = History()
    client = SimClient(world, 0, history)
    world.partition([[lead]])  # the write cannot commit
    task = sim.spawn(client.request, PutRequest(b"x", b"1"), member=lead, timeout=3.0)
    sim.advance(0.05)
    world.crash(lead)
    world.heal()
    assert isinstance(sim.wait(task), Unknown)
    # With the target down, the client moves on to a live member.
    got = sim.call(client.request, PutRequest(b"y", b"2"), member=lead, timeout=3.0)
    assert isinstance(got, Ok)


def test_no_quorum_gives_failed_or_unknown(cluster: tuple[Simulation, World]) -> None:
    sim, world = cluster
    lead = await_leader(sim, world)
    client = SimClient(world, 0, History())
    others = [i for i in range(3) if i != lead]
    world.crash(others[0])
    world.crash(others[1])
    sim.advance(1.0)  # check_quorum: the leader steps down
    got = sim.call(client.request, PutRequest(b"z", b"1"), member=lead, timeout=0.5)
    assert isinstance(got, Failed | Unknown)
    read = sim.call(client.request, RangeRequest(b"z"), member=lead, timeout=0.5)
    assert isinstance(read, Failed)


def test_pause_and_resume(cluster: tuple[Simulation, World]) -> None:
    sim, world = cluster
    lead = await_leader(sim, world)
    world.pause(lead)
    assert world.paused(lead)
    sim.advance(1.0)
    new = await_leader(sim, world)  # the others elect a new leader meanwhile
    assert new != lead
    world.resume(lead)
    sim.advance(0.5)
    member = world.members[lead]
    assert member is not None and not member.is_leader and member.leader == new


def test_watch_collects_events_and_ends_on_crash(cluster: tuple[Simulation, World]) -> None:
    sim, world = cluster
    lead = await_leader(sim, world)
    follower = (lead + 1) % 3
    client = SimClient(world, 0, History())
    handle = sim.call(client.watch, follower, b"w", b"x")

    async def writes() -> None:
        for k in range(5):
            await client.request(PutRequest(b"w%d" % k, b"v"), member=lead, timeout=2)
        await trio.sleep(0.2)

    sim.call(writes, limit=10)
    assert [e.kv.key for e in handle.events] == [b"w%d" % k for k in range(5)]
    assert handle.end == "open"
    world.crash(follower)
    sim.advance(0.01)
    assert handle.end == "cancelled"


def test_reads_and_writes_are_classified() -> None:
    assert is_read(RangeRequest(b"a"))
    assert is_read(TxnRequest(success=(RangeRequest(b"a"),)))
    assert not is_read(TxnRequest(success=(PutRequest(b"a"),)))
    assert not is_read(CompactionRequest(1))


def test_call_limit_and_clean_close() -> None:
    sim = Simulation(seed=3)
    sim.start()
    with pytest.raises(SimulationTimeout):
        sim.call(trio.sleep_forever, limit=1.0)
    assert sim.now == pytest.approx(1.0)
    sim.close()
    assert sim.finished and sim.run_error is None
    # A second simulation in the same thread starts fine after a close.
    with Simulation(seed=4) as again:
        again.start()
        again.advance(2.0)
        assert again.now == pytest.approx(2.0)
