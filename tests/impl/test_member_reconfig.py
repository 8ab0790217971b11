"""Membership changes on a real cluster in one Trio run: 3 members, a learner added (its
address reaching the others only through the log), promoted, a voter removed (3 -> 4 -> 3),
a restart that recovers the configuration from a snapshot, and bad requests that change
nothing. Every test is bounded by ``trio.fail_after``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from raftkube.client import Client, ClientError
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import RunningMember, open_member
from raftkube_spec.raft.types import Membership
from tests.helpers.member_cluster import Cluster
from tests.helpers.polling import eventually

MAX_MEMBERS = 8


@asynccontextmanager
async def joiner(tmp_path: Path, cluster: Cluster, member_id: int) -> AsyncIterator[RunningMember]:
    """A new member process: it knows the others (etcd's ``--initial-cluster``), but they
    learn of it only from the ``member_attrs`` entry ``member add`` commits."""
    config = MemberConfig(
        member_id=member_id,
        servers=cluster.n,
        cluster_id="test",
        max_members=MAX_MEMBERS,
        snapshot_every=20,
    )
    async with open_member(config, tmp_path / f"m{member_id}") as rm:
        for j, other in cluster.running.items():
            rm.add_peer(j, other.peer_address, other.client_endpoint)
        yield rm


def url(rm: RunningMember) -> str:
    return f"http://{rm.peer_address.host}:{rm.peer_address.port}"


async def refused(call: object, text: str, code: str | None = None) -> None:
    with pytest.raises(ClientError) as info:
        await call  # type: ignore[misc]
    assert info.value.message == text
    if code is not None:  # callers tell the refusals apart by code, never by text
        assert info.value.code == code


@pytest.mark.trio
async def test_three_to_four_to_three(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, max_members=MAX_MEMBERS, snapshot_every=20)
            await cluster.start_all()
            await cluster.leader()
            async with Client(cluster.endpoints()) as c:
                for k in range(50):  # past two snapshots, so the joiner gets one
                    await c.put(b"k%02d" % k, b"v")
                async with joiner(tmp_path, cluster, 3) as new:
                    assert new.member.node.membership == Membership((0, 1, 2))
                    body = (
                        await c.member_add(
                            "m3", [url(new)], client_urls=[new.client_endpoint], learner=True
                        )
                    )["body"]
                    assert body["member"] == {
                        "ID": 3,
                        "name": "m3",
                        "peerURLs": [url(new)],
                        "clientURLs": [new.client_endpoint],
                        "isLearner": True,
                    }
                    assert [m["ID"] for m in body["members"]] == [0, 1, 2, 3]
                    # Another learner is refused, as etcd's default --max-learners=1 does.
                    await refused(
                        c.member_add("m4", ["http://127.0.0.1:1"], learner=True),
                        "etcdserver: too many learner members in cluster",
                    )
                    await refused(
                        c.member_add("again", [url(new)]), "etcdserver: Peer URLs already exists"
                    )

                    async def caught_up() -> bool:
                        return new.member.applied >= cluster.member(0).applied > 50

                    await eventually(caught_up)
                    assert new.member.mvcc.revision == cluster.member(0).mvcc.revision
                    assert new.member.snapshots_installed == 1
                    for i in (0, 1, 2):  # told by the log, not by the test
                        assert 3 in cluster.running[i].transport.peer_ids()
                        # ... and the others' URLs, which the leader published first.
                        known = new.member.reconfig.table.get(i)
                        assert known is not None
                        assert known.client_urls == (cluster.running[i].client_endpoint,)
                    assert new.member.node.membership == Membership((0, 1, 2), (3,))
                    async with Client([new.client_endpoint]) as alone:
                        assert (await alone.status())["is_learner"] is True

                    await c.member_promote(3)
                    for i in (0, 1, 2):
                        assert cluster.member(i).node.membership.voters == (0, 1, 2, 3)
                    await refused(
                        c.member_promote(3),
                        "etcdserver: can only promote a learner member",
                        "member_not_learner",
                    )
                    lead = await cluster.leader()
                    gone = next(i for i in (0, 1, 2) if i != lead)
                    listed = (await c.member_remove(gone))["body"]["members"]
                    assert [m["ID"] for m in listed] == sorted({0, 1, 2, 3} - {gone})
                    await cluster.stop(gone)
                    for k in range(10):  # three voters of four members' ids still commit
                        await c.put(b"after%d" % k, b"v")

                    async def four_left() -> bool:
                        return new.member.node.membership.voters == tuple(
                            sorted({0, 1, 2, 3} - {gone})
                        )

                    await eventually(four_left)

                    async def unlinked() -> bool:  # nobody sends to the removed member
                        others = [r for i, r in cluster.running.items() if i != gone] + [new]
                        return all(gone not in r.transport.peer_ids() for r in others)

                    await eventually(unlinked)
                    await refused(c.member_remove(gone), "etcdserver: member not found")
                    members = await c.member_list()
                    assert [m["ID"] for m in members] == sorted({0, 1, 2, 3} - {gone})
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_bad_requests_change_nothing_and_a_restart_recovers_the_configuration(
    tmp_path: Path,
) -> None:
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, max_members=MAX_MEMBERS, snapshot_every=20)
            await cluster.start_all()
            await cluster.leader()
            initial = Membership((0, 1, 2))
            async with Client(cluster.endpoints()) as c:
                before = await c.member_list()
                await refused(c.member_remove(42), "etcdserver: member not found")
                await refused(c.member_promote(42), "etcdserver: member not found")
                await refused(c.member_promote(0), "etcdserver: can only promote a learner member")
                await refused(
                    c.member_add("x", ["nope"]),
                    "peer URL 'nope': expected http://HOST:PORT or https://HOST:PORT",
                )
                await refused(c.member_add("x", []), "member peer urls not provided")
                await refused(
                    c.call("member_remove", {"ID": "1"}, write=True),
                    "body.ID: expected a non-negative integer",
                )
                await refused(
                    c.call("member_add", {"name": "x", "peerURLs": [], "port": 1}, write=True),
                    "body.port: unknown field",
                )
                assert await c.member_list() == before
                for i in (0, 1, 2):
                    assert cluster.member(i).node.membership == initial

                # A learner that never started cannot be promoted (its log is empty).
                absent = "http://127.0.0.1:25001"
                await c.member_add("ghost", [absent], learner=True)
                await refused(
                    c.member_promote(3),
                    "etcdserver: can only promote a learner member which is in sync with leader",
                    "learner_not_ready",
                )
                await c.member_remove(3)
                for k in range(50):  # the changes end up inside a snapshot
                    await c.put(b"k%02d" % k, b"v")
                lead = await cluster.leader()
                follower = next(i for i in (0, 1, 2) if i != lead)

                async def snapshotted() -> bool:
                    return cluster.member(follower).snapshots_taken >= 2

                await eventually(snapshotted)
                await cluster.stop(follower)
                await cluster.start(follower)
                restarted = cluster.member(follower)
                assert restarted.node.membership == initial
                assert restarted.node.membership_index > 0  # from the snapshot, not the flag
                ghost = restarted.reconfig.table.get(3)
                assert ghost is not None and ghost.peer_urls == (absent,)
                # The next new member gets a fresh id: 3 is never reused.
                added = (await c.member_add("m4", ["http://127.0.0.1:25002"], learner=True))[
                    "body"
                ]["member"]
                assert added["ID"] == 4
                await c.member_remove(4)
                # Removing the leader: it hands over, the client retries at the successor.
                lead = await cluster.leader()
                await c.member_remove(lead)
                assert lead not in [m["ID"] for m in await c.member_list()]
                assert not cluster.member(lead).is_leader
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_the_last_voter_is_not_removed(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, n=1, max_members=2)
            await cluster.start_all()
            await cluster.leader()
            async with Client(cluster.endpoints()) as c:
                await refused(c.member_remove(0), "raftkube: cannot remove the last voting member")
                assert cluster.member(0).node.membership == Membership((0,))
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_data_dir_from_before_membership_changes_starts_with_them_on(
    tmp_path: Path,
) -> None:
    """A snapshot file without a configuration (membership changes off when it was written,
    as every data dir before them) is read as the initial configuration."""
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            old = Cluster(tmp_path, nursery, snapshot_every=20)
            await old.start_all()
            await old.leader()
            async with Client(old.endpoints()) as c:
                for k in range(50):
                    await c.put(b"k%02d" % k, b"v")

            async def snapshotted() -> bool:
                return all(old.member(i).snapshots_taken >= 1 for i in (0, 1, 2))

            await eventually(snapshotted)
            for i in (0, 1, 2):
                await old.stop(i)
            new = Cluster(tmp_path, nursery, max_members=MAX_MEMBERS, snapshot_every=20)
            await new.start_all()
            await new.leader()
            for i in (0, 1, 2):
                assert new.member(i).node.membership == Membership((0, 1, 2))
            async with Client(new.endpoints()) as c:
                assert len((await c.get(b"k", b"l")).kvs) == 50
                await c.member_add("m3", ["http://127.0.0.1:25012"], learner=True)
                assert [m["ID"] for m in await c.member_list()] == [0, 1, 2, 3]
            nursery.cancel_scope.cancel()
