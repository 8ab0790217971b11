"""A faulty simulated run whose digest of everything that happened is compared across runs of
the same seed, in one process and in a fresh one (which imports this module by name, so it must
not import Hypothesis or anything else that would change the run)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import trio

from raftkube.server.member import Member
from raftkube_fuzz.checks.history import History
from raftkube_fuzz.world.client import RequestClient, SimClient
from raftkube_fuzz.world.disk import SimDisk
from raftkube_fuzz.world.driver import Simulation
from raftkube_fuzz.world.wire_client import WireClient
from raftkube_fuzz.world.world import World, WorldConfig
from raftkube_spec.kv.requests import PutRequest, RangeRequest
from raftkube_spec.raft.messages import Message


class Recording:
    """A listener that writes everything it hears, with the virtual time, into ``lines``."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _log(self, text: str) -> None:
        self.lines.append(f"{trio.current_time():.9f} {text}")

    def observer_for(self, member_id: int) -> Callable[[Any], None]:
        return lambda event: self._log(f"m{member_id} {event!r}")

    def sent(self, message: Message) -> None:
        pass

    def dropped(self, message: Message) -> None:
        self._log(f"drop {message!r}")

    def duplicated(self, message: Message) -> None:
        self._log(f"dup {message!r}")

    def crashed(self, member_id: int, disk: SimDisk) -> None:
        self._log(f"crash m{member_id} {disk.durable_state()!r}")

    def restarted(self, member_id: int, member: Member) -> None:
        self._log(f"restart m{member_id} term={member.term}")

    def synced(self, member_id: int, disk: SimDisk) -> None:
        self._log(f"sync m{member_id} {disk.synced_count}")


def scenario(seed: int, wire: bool = False) -> str:
    """A faulty run with concurrent clients; the digest of everything that happened. With
    ``wire`` the clients are the real client library over the simulated streams, one with a
    session and one without."""
    listener = Recording()
    world = World(WorldConfig(servers=3, snapshot_every=16), seed, listener)
    history = History()
    clients: list[RequestClient] = [
        WireClient(world, c, history, session=c == 0) if wire else SimClient(world, c, history)
        for c in range(2)
    ]

    async def load(c: int, n: int) -> None:
        client = clients[c]
        for k in range(n):
            target = (k + c) % 3
            await client.request(PutRequest(b"k%d" % (k % 5), b"%d" % k), member=target, timeout=1)
            await client.request(RangeRequest(b"k", b"l"), member=target, timeout=1)

    with Simulation(seed) as sim:
        sim.start(world.run)
        world.set_loss(0.05)
        world.set_duplication(0.05)
        world.clock_rate(1, 1.05)
        tasks = [sim.spawn(load, c, 40, limit=60) for c in range(len(clients))]
        sim.advance(0.5)
        lead = world.leader()
        if lead is not None:
            world.crash(lead, torn_records=1)
        sim.advance(0.5)
        world.partition([[0, 1], [2]])
        sim.advance(0.5)
        world.heal_all()
        for task in tasks:
            sim.wait(task)
    listener.lines.append(repr(history.operations()))
    listener.lines.append(repr(world.network.stats))
    listener.lines.append(repr(world.streams.stats))
    assert world.failures == []
    assert len(listener.lines) > 500
    return hashlib.sha256("\n".join(listener.lines).encode()).hexdigest()
