"""The client against a real 3-member cluster: failover on a dead endpoint, leases, errors,
the sync wrapper and a rough throughput figure (printed, not asserted)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from raftkube.api import wire
from raftkube.client import Client, ClientError, KVRequestError, SyncClient
from tests.helpers.member_cluster import Cluster


async def dead_endpoint() -> str:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    return f"127.0.0.1:{port}"


@pytest.mark.trio
async def test_client_ops_failover_and_errors(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery)
            await cluster.start_all()
            await cluster.leader()
            endpoints = [await dead_endpoint(), *cluster.endpoints()]
            async with Client(endpoints, retry_delay=0.01) as c:
                # The dead first endpoint is skipped.
                await c.put(b"a", b"1")
                assert c.endpoint != endpoints[0]

                # Leases: grant, attach, ttl, revoke removes the key.
                g = await c.lease_grant(30)
                assert g.id > 0 and g.ttl == 30
                await c.put(b"leased", b"x", lease=g.id)
                ttl = await c.lease_ttl(g.id, keys=True)
                assert ttl.keys == (b"leased",) and 0 < ttl.ttl <= 30
                await c.lease_keepalive(g.id)
                await c.lease_revoke(g.id)
                assert (await c.get(b"leased")).count == 0

                # Leader-side expiry: a 1 s lease disappears with its key.
                short = await c.lease_grant(1)
                await c.put(b"short", b"x", lease=short.id)
                while (await c.get(b"short")).count:
                    await trio.sleep(0.1)

                # KV errors come back as values.
                with pytest.raises(KVRequestError) as kv_err:
                    await c.get(b"a", revision=10**6)
                assert kv_err.value.code == "FUTURE_REVISION"

                # Oversized and malformed requests are refused by name.
                with pytest.raises(ClientError, match="request is too large"):
                    await c.put(b"big", b"x" * (wire.MAX_REQUEST_BYTES + 1))
                with pytest.raises(ClientError, match=r"body\.bogus"):
                    await c.call("put", {"key": b"k", "bogus": 1})

                status = await c.status()
                assert status["is_leader"] and status["revision"] >= 1
                assert len(await c.member_list()) == 3

                # Throughput: concurrent puts, fsync on (group commit).
                n = 400
                start = time.perf_counter()
                async with trio.open_nursery() as workers:
                    for w in range(20):

                        async def worker(w: int = w) -> None:
                            for k in range(n // 20):
                                await c.put(b"t/%d/%d" % (w, k), b"v")

                        workers.start_soon(worker)
                elapsed = time.perf_counter() - start
                print(f"\nthroughput: {n / elapsed:.0f} puts/s (3 members, fsync on)")
                assert (await c.get(b"t/", b"t0")).count == n

            # The blocking wrapper, from a worker thread (it runs its own trio.run).
            eps = cluster.endpoints()

            def sync_calls() -> bytes:
                sc = SyncClient(eps)
                sc.put(b"sync", b"ok")
                return sc.get(b"sync").kvs[0].value

            assert await trio.to_thread.run_sync(sync_calls) == b"ok"
            nursery.cancel_scope.cancel()
