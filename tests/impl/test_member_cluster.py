"""A real 3-member cluster in one Trio run: election, replication, reads, txn, watch, restart.

Every test is bounded by ``trio.fail_after``; waits poll briefly instead of sleeping blindly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from raftkube.client import Client
from raftkube_spec.kv.requests import (
    Compare,
    CompareResult,
    CompareTarget,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from raftkube_spec.kv.responses import PutResponse, RangeResponse
from raftkube_spec.kv.types import EventType
from tests.helpers.member_cluster import Cluster
from tests.helpers.polling import eventually, wait_for


async def read_everywhere(cluster: Cluster, key: bytes, serializable: bool) -> list[RangeResponse]:
    out = []
    for i in sorted(cluster.running):
        async with Client([cluster.running[i].client_endpoint]) as c:
            out.append(await c.get(key, serializable=serializable))
    return out


@pytest.mark.trio
async def test_three_members_replicate_txn_watch_and_recover(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery)
            await cluster.start_all()
            lead = await cluster.leader()
            async with Client(cluster.endpoints()) as c:
                # Puts commit and are readable linearizably (through failover) ...
                for k in range(20):
                    resp = await c.put(b"k%02d" % k, b"v%d" % k)
                    assert isinstance(resp, PutResponse)
                got = await c.get(b"k00", b"k99")
                assert [kv.value for kv in got.kvs] == [b"v%d" % k for k in range(20)]

                # ... and serializably from every member once applied there.
                async def applied_everywhere() -> bool:
                    rs = await read_everywhere(cluster, b"k19", serializable=True)
                    return all(r.kvs and r.kvs[0].value == b"v19" for r in rs)

                await eventually(applied_everywhere)

                # A txn, guarded on a value.
                txn = TxnRequest(
                    compare=(Compare(b"k00", CompareTarget.VALUE, CompareResult.EQUAL, b"v0"),),
                    success=(PutRequest(b"k00", b"swapped"), RangeRequest(b"k01")),
                    failure=(PutRequest(b"k00", b"nope"),),
                )
                t = await c.txn(txn)
                assert t.succeeded
                assert len(t.responses) == 2
                again = await c.txn(txn)
                assert not again.succeeded
                assert (await c.get(b"k00")).kvs[0].value == b"nope"

                # A watch sees later writes in order.
                async with c.watch(b"w", b"x") as events:
                    await c.put(b"w1", b"a")
                    await c.delete(b"w1")
                    seen = []
                    async for ev in events:
                        seen.append((ev.type, ev.kv.key))
                        if len(seen) == 2:
                            break
                assert seen == [(EventType.PUT, b"w1"), (EventType.DELETE, b"w1")]

            # Restart a follower from its data dir: every key is recovered.
            follower = next(i for i in cluster.running if i != lead)
            await cluster.stop(follower)
            await cluster.start(follower)

            async def recovered() -> bool:
                async with Client([cluster.running[follower].client_endpoint]) as c:
                    r = await c.get(b"k00", b"k99", serializable=True)
                    return r.count == 20 and r.kvs[0].value == b"nope"

            await eventually(recovered)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_follower_redirects_and_leader_loss_keeps_acknowledged_writes(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery)
            await cluster.start_all()
            lead = await cluster.leader()
            follower = next(i for i in cluster.running if i != lead)

            # A follower answers not_leader with the leader's endpoint; the client follows it.
            from raftkube.client.client import ClientError

            async with Client([cluster.running[follower].client_endpoint], attempts=1) as c:
                with pytest.raises(ClientError) as info:
                    await c.put(b"x", b"1")
            assert "not_leader" in str(info.value)
            assert info.value.leader == cluster.running[lead].client_endpoint

            acked: list[bytes] = []
            async with Client(cluster.endpoints()) as c:
                for k in range(10):
                    await c.put(b"a%d" % k, b"1")
                    acked.append(b"a%d" % k)
                assert c.endpoint == cluster.running[lead].client_endpoint

                # Stop the leader: a new one is elected and no acknowledged write is lost.
                await cluster.stop(lead)
                new = await cluster.leader()
                assert new != lead
                for k in range(10, 15):
                    await c.put(b"a%d" % k, b"1")
                    acked.append(b"a%d" % k)
                r = await c.get(b"a", b"b")
                assert sorted(kv.key for kv in r.kvs) == sorted(acked)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_watcher_that_falls_behind_is_cut_off_with_where_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer slower than the watch's buffer must never silently miss events: it gets
    what was buffered, then an error naming the revision to watch again from, and watching
    again from there gives the rest."""
    import raftkube.client.client as client_module
    from raftkube.client import ClientError

    monkeypatch.setattr(client_module, "WATCH_BUFFER", 3)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, n=1)
            await cluster.start_all()
            await cluster.leader()
            async with Client(cluster.endpoints()) as c:
                first = (await c.put(b"w0", b"x")).header.revision
                seen: list[int] = []
                async with c.watch(b"w", b"x", start_revision=first + 1) as events:
                    for k in range(1, 9):
                        await c.put(b"w%d" % k, b"x")
                    # The connection marks the watch once more events arrived than its
                    # buffer holds; only then is the consumer behind.
                    conns = c._conns.values()
                    await wait_for(lambda: any(conn.overflowed for conn in conns), "overflow")
                    with pytest.raises(ClientError) as cut:
                        async for ev in events:
                            seen.append(ev.kv.mod_revision)
                assert cut.value.code == "watch_overflow"
                assert seen == list(range(first + 1, first + 1 + len(seen)))
                assert 0 < len(seen) < 8
                resume = seen[-1] + 1
                assert f"watch again from revision {resume}" in str(cut.value)
                async with c.watch(b"w", b"x", start_revision=resume) as events:
                    async for ev in events:
                        seen.append(ev.kv.mod_revision)
                        if ev.kv.mod_revision == first + 8:
                            break
                assert seen == list(range(first + 1, first + 9))
            nursery.cancel_scope.cancel()
