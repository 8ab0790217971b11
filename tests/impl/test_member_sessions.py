"""Client sessions: a write retried after it committed is applied once.

The fault: the leader commits and applies the put but holds its answer back; the client's
connection is then cut, so the client retries the same put (through the follower's not_leader
redirect back to the leader). With a session the retry carries the same sequence and gets the
cached answer (version 1); without one the put is applied twice (version 2), which shows the
fault really forces a retry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from raftkube.client import Client, ClientError
from raftkube.server.entries import SessionTag
from raftkube.server.member import Member, WriteOutcome
from raftkube_spec.kv.requests import PutRequest, Request
from tests.helpers.member_cluster import Cluster

Submit = Callable[[Request, SessionTag | None, Callable[[WriteOutcome], None]], None]


def hold_first_put_answer(
    monkeypatch: pytest.MonkeyPatch, member: Member, key: bytes
) -> trio.Event:
    """Make ``member`` apply the first put of ``key`` but never answer it; the returned event
    is set once that put is applied. Later writes pass through untouched."""
    applied = trio.Event()
    real: Submit = member.submit

    def submit(
        req: Request, session: SessionTag | None, on_done: Callable[[WriteOutcome], None]
    ) -> None:
        if isinstance(req, PutRequest) and req.key == key and not applied.is_set():
            real(req, session, lambda _outcome: applied.set())
        else:
            real(req, session, on_done)

    monkeypatch.setattr(member, "submit", submit)
    return applied


async def put_with_cut_connection(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, *, session: bool
) -> tuple[int, int]:
    """Put ``k`` once, with the answer lost; returns (version, revisions the put used)."""
    lead = await cluster.leader()
    leader = cluster.member(lead)
    endpoints = cluster.endpoints()
    endpoints.insert(0, endpoints.pop(endpoints.index(cluster.running[lead].client_endpoint)))
    async with Client(endpoints, retry_delay=0.01) as c:
        if session:
            assert await c.open_session() > 0
        await c.put(b"other", b"x")
        applied = hold_first_put_answer(monkeypatch, leader, b"k")
        before = leader.mvcc.revision
        async with trio.open_nursery() as nursery:

            async def cut_when_applied() -> None:
                await applied.wait()
                assert c._conn is not None
                c._conn.close()

            nursery.start_soon(cut_when_applied)
            resp = await c.put(b"k", b"v")
        got = await c.get(b"k")
        assert got.kvs[0].mod_revision == resp.header.revision
        return got.kvs[0].version, leader.mvcc.revision - before


@pytest.mark.trio
async def test_retried_put_applies_once_with_a_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery)
            await cluster.start_all()
            version, revisions = await put_with_cut_connection(cluster, monkeypatch, session=True)
            assert (version, revisions) == (1, 1)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_retried_put_applies_twice_without_a_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery)
            await cluster.start_all()
            version, revisions = await put_with_cut_connection(cluster, monkeypatch, session=False)
            assert (version, revisions) == (2, 2)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_sessions_survive_snapshot_and_refuse_unknown_clients(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, snapshot_every=10)
            await cluster.start_all()
            lead = await cluster.leader()
            async with Client(cluster.endpoints(), retry_delay=0.01) as c:
                client_id = await c.open_session()
                for k in range(25):
                    await c.put(b"s%02d" % k, b"v")
                # A session the cluster never registered is refused, not applied.
                tag = {"client_id": client_id + 10_000, "sequence": 1}
                with pytest.raises(ClientError, match="session_expired"):
                    await c.call("put", {"key": b"x", "value": b"y", "session": tag})
            # The session table is in the snapshots: a restarted member still knows it.
            leader = cluster.member(lead)
            assert leader.snapshots_taken >= 2
            follower = next(i for i in cluster.running if i != lead)
            await cluster.stop(follower)
            await cluster.start(follower)
            assert client_id in cluster.member(follower).mvcc.sessions
            nursery.cancel_scope.cancel()
