"""Leadership transfer on graceful shutdown: no election timeout is waited out.

The election timeout is set to 50 ticks of 20 ms (1 to 2 s), so a successor that appears in
well under a second can only come from the transfer, not from an election after a timeout.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from raftkube.client import Client
from raftkube.server.member import MemberError
from raftkube_spec.kv.requests import PutRequest
from tests.helpers.member_cluster import Cluster

ELECTION_TICKS = 50
TICK = 0.02


@pytest.mark.trio
async def test_graceful_stop_of_leader_hands_over_leadership(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, election_ticks=ELECTION_TICKS, tick_interval=TICK)
            await cluster.start_all()
            lead = await cluster.leader()
            async with Client(cluster.endpoints(), retry_delay=0.01) as c:
                for k in range(20):
                    await c.put(b"t%02d" % k, b"v")
                old_term = cluster.member(lead).term

                # A follower has nothing to hand over.
                follower = next(i for i in cluster.running if i != lead)
                assert await cluster.member(follower).transfer_leadership() is None

                start = time.monotonic()
                successor = await cluster.member(lead).transfer_leadership()
                elapsed = time.monotonic() - start
                await cluster.stop(lead)

                # A new leader exists right away, one term later, well inside the minimum
                # election timeout.
                assert successor is not None and successor != lead
                assert cluster.member(successor).is_leader
                assert cluster.member(successor).term == old_term + 1
                assert elapsed < ELECTION_TICKS * TICK / 2
                # It was the most up-to-date follower: it holds every acknowledged write.
                await c.put(b"after", b"transfer")
                got = await c.get(b"t", b"u")
                assert got.count == 20
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_stop_gracefully_refuses_new_writes(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, election_ticks=ELECTION_TICKS)
            await cluster.start_all()
            lead = await cluster.leader()
            member = cluster.member(lead)
            await member.stop_gracefully()
            assert not member.is_leader
            with pytest.raises(MemberError, match="stopped"):
                await member.write(PutRequest(b"k", b"v"))
            nursery.cancel_scope.cancel()
