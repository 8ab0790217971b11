"""The real client library over the simulated streams: writes whose answers are lost are
retried once with a session (and applied once), never without one (and reported Unknown)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from raftkube_fuzz.checks.history import Failed, History, Ok, Unknown
from raftkube_fuzz.world.client import WatchHandle
from raftkube_fuzz.world.driver import Simulation
from raftkube_fuzz.world.wire_client import WireClient
from raftkube_fuzz.world.world import NullListener, World, WorldConfig
from raftkube_spec.kv.requests import CompactionRequest, PutRequest, RangeRequest
from raftkube_spec.kv.responses import PutResponse, RangeResponse


@pytest.fixture
def cluster() -> Iterator[tuple[Simulation, World, History]]:
    sim = Simulation(seed=3)
    world = World(WorldConfig(servers=3), 3, NullListener())
    history = History()
    sim.start(world.run)
    try:
        yield sim, world, history
    finally:
        sim.close()
    assert world.failures == []


def _leader(sim: Simulation, world: World) -> int:
    async def wait() -> int:
        while (lead := world.leader()) is None:
            await trio.sleep(0.01)
        return lead

    return sim.call(wait, limit=5.0)


def _put_with_lost_answers(
    sim: Simulation, world: World, client: WireClient, key: bytes
) -> tuple[object, object]:
    """Put ``key`` at the leader while its answers to the client stall (a one-way cut) for
    2.5 request timeouts; then read it back. Returns both outcomes."""
    lead = _leader(sim, world)
    # Warm the connection up (and open the session) before the cut.
    assert isinstance(sim.call(client.request, RangeRequest(b"x"), member=lead, timeout=5), Ok)

    async def scenario() -> tuple[object, object]:
        world.network.one_way(lead, client.host.node)
        async with trio.open_nursery() as nursery:

            async def heal_later() -> None:
                await trio.sleep(2.5 * world.config.request_timeout)
                world.heal()

            nursery.start_soon(heal_later)
            put = await client.request(PutRequest(key, b"v"), member=lead, timeout=20)
        read = await client.request(RangeRequest(key), member=lead, timeout=5)
        return put, read

    return sim.call(scenario, limit=60)


def test_a_session_write_is_retried_across_timeouts_and_applied_once(
    cluster: tuple[Simulation, World, History],
) -> None:
    sim, world, history = cluster
    client = WireClient(world, 0, history, session=True)
    put, read = _put_with_lost_answers(sim, world, client, b"s")
    assert isinstance(put, Ok) and isinstance(put.result, PutResponse)
    assert isinstance(read, Ok) and isinstance(read.result, RangeResponse)
    (kv,) = read.result.kvs
    assert kv.version == 1  # the retries were answered from the session, not applied again
    assert kv.mod_revision == put.result.header.revision


def test_a_write_without_a_session_is_not_resent_after_its_answer_is_lost(
    cluster: tuple[Simulation, World, History],
) -> None:
    sim, world, history = cluster
    client = WireClient(world, 1, history, session=False)
    put, read = _put_with_lost_answers(sim, world, client, b"n")
    assert isinstance(put, Unknown)
    assert isinstance(read, Ok) and isinstance(read.result, RangeResponse)
    assert [kv.version for kv in read.result.kvs] == [1]


def test_a_refused_connection_is_a_definite_failure(
    cluster: tuple[Simulation, World, History],
) -> None:
    sim, world, history = cluster
    client = WireClient(world, 2, history, session=False)
    for member in range(3):
        world.crash(member)
    outcome = sim.call(client.request, PutRequest(b"k", b"v"), member=0, timeout=30, limit=40)
    assert isinstance(outcome, Failed)


def test_watches_over_the_wire_deliver_in_order_and_report_compaction(
    cluster: tuple[Simulation, World, History],
) -> None:
    sim, world, history = cluster
    client = WireClient(world, 0, history, session=True)
    lead = _leader(sim, world)
    follower = (lead + 1) % 3

    async def scenario() -> tuple[WatchHandle, WatchHandle, int]:
        live = await client.watch(follower, b"k", b"l")
        for n in range(5):
            await client.request(PutRequest(b"k%d" % n, b"v"), member=lead, timeout=5)
        compacted_at = live.start_revision + 3
        await client.request(CompactionRequest(compacted_at), member=lead, timeout=5)
        await trio.sleep(0.1)
        old = await client.watch(follower, b"k", b"l", start_revision=live.start_revision)
        await trio.sleep(0.1)
        return live, old, compacted_at

    live, old, compacted_at = sim.call(scenario, limit=30)
    assert live.end == "open"
    assert [e.kv.key for e in live.events] == [b"k%d" % n for n in range(5)]
    assert [e.kv.mod_revision for e in live.events] == list(
        range(live.start_revision, live.start_revision + 5)
    )
    assert (old.end, old.compact_revision, old.events) == ("compacted", compacted_at, [])
    world.crash(follower)
    sim.advance(0.1)
    assert live.end == "cancelled"  # the member's crash reset the watch's connection


def test_a_redirect_keeps_the_connection_it_came_from(
    cluster: tuple[Simulation, World, History],
) -> None:
    """Writes aimed at a follower are redirected to the leader every time, over the two
    connections made for the first one: a not_leader answer closes nothing."""
    sim, world, history = cluster
    client = WireClient(world, 0, history, session=False)
    follower = (_leader(sim, world) + 1) % 3
    for n in range(5):
        outcome = sim.call(client.request, PutRequest(b"r%d" % n, b"v"), member=follower, timeout=5)
        assert isinstance(outcome, Ok)
    assert world.streams.stats["connections"] == 2
