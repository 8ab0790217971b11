"""Snapshots and log compaction in a real 3-member cluster.

A small ``snapshot_every`` and 4 KiB WAL segments make compaction and segment release happen
within a few hundred writes. Every test is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import trio

from raftkube.client import Client
from raftkube.mvcc import MvccStore, dump_snapshot, load_snapshot
from raftkube.server import wiring
from raftkube.server.compactor import PERIODIC, AutoCompaction
from raftkube.server.member import Member
from raftkube.server.watches import MemberWatches
from raftkube.storage import RaftLogStore
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.requests import CompactionRequest, PutRequest, RangeRequest
from raftkube_spec.kv.responses import RangeResponse
from tests.helpers.member_cluster import Cluster
from tests.helpers.polling import eventually

SNAPSHOT_EVERY = 40


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Members open their data directory with 4 KiB WAL segments."""
    monkeypatch.setattr(wiring, "RaftLogStore", functools.partial(RaftLogStore, segment_bytes=4096))


def store_of(member: Member) -> RaftLogStore:
    assert isinstance(member.storage, RaftLogStore)
    return member.storage


def local_count(member: Member, prefix: bytes = b"k") -> int:
    result = member.read_local(RangeRequest(prefix, prefix[:-1] + bytes([prefix[-1] + 1])))
    assert isinstance(result, RangeResponse)
    return result.count


async def put_many(c: Client, start: int, stop: int) -> None:
    for k in range(start, stop):
        await c.put(b"k%04d" % k, b"v%d-" % k + b"x" * 100)


@pytest.mark.trio
@pytest.mark.usefixtures("small_segments")
async def test_compaction_releases_wal_and_restart_recovers_from_snapshot(tmp_path: Path) -> None:
    n = 5 * SNAPSHOT_EVERY + 7
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, snapshot_every=SNAPSHOT_EVERY)
            await cluster.start_all()
            await cluster.leader()
            async with Client(cluster.endpoints()) as c:
                await put_many(c, 0, n)

            async def applied_everywhere() -> bool:
                return all(local_count(cluster.member(i)) == n for i in cluster.running)

            await eventually(applied_everywhere)
            for i in sorted(cluster.running):
                member, store = cluster.member(i), store_of(cluster.member(i))
                assert member.snapshots_taken >= 4
                meta = store.snapshot_meta
                assert meta is not None and meta.index >= 4 * SNAPSHOT_EVERY
                # The log no longer starts at 1 and its oldest WAL segments are gone.
                assert store.first_index == meta.index + 1
                assert store.wal.segments[0] > 0
                assert len(store.wal.segments) < 8

            # Restart every member: each rebuilds its store from its snapshot plus the
            # committed tail before hearing from anyone.
            for i in range(cluster.n):
                await cluster.stop(i)
            for i in range(cluster.n):
                await cluster.start(i)
                member = cluster.member(i)
                assert member.applied >= store_of(member).first_index - 1 > 0
                assert local_count(member) == n
            await cluster.leader()
            async with Client(cluster.endpoints()) as c:
                got = await c.get(b"k", b"l")
                assert got.count == n
                assert got.kvs[-1].value.startswith(b"v%d-" % (n - 1))
                await c.put(b"after", b"restart")
            nursery.cancel_scope.cancel()


@pytest.mark.trio
@pytest.mark.usefixtures("small_segments")
async def test_lagging_follower_catches_up_by_install_snapshot(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, snapshot_every=SNAPSHOT_EVERY)
            await cluster.start_all()
            lead = await cluster.leader()
            lagging = next(i for i in cluster.running if i != lead)
            async with Client(cluster.endpoints()) as c:
                await put_many(c, 0, 10)
                await cluster.stop(lagging)
                # The others compact far past the stopped member's log.
                await put_many(c, 10, 4 * SNAPSHOT_EVERY)
                await c.delete(b"k0000")
            leader_snap = store_of(cluster.member(lead)).snapshot_meta
            assert leader_snap is not None and leader_snap.index > 2 * SNAPSHOT_EVERY
            # Everything the leader applied, the delete included (counting keys would not do:
            # one entry before the delete, the keys already number as many as after it).
            target = cluster.member(lead).applied

            await cluster.start(lagging)
            member = cluster.member(lagging)

            async def caught_up() -> bool:
                return member.applied >= target

            await eventually(caught_up)
            assert local_count(member) == 4 * SNAPSHOT_EVERY - 1
            assert member.snapshots_installed >= 1
            meta = store_of(member).snapshot_meta
            assert meta is not None and meta.index >= leader_snap.index
            # The installed store is the leader's: same revision, deletes included.
            assert member.read_local(RangeRequest(b"k0000")).count == 0  # type: ignore[union-attr]

            # And it survives a restart of its own.
            await cluster.stop(lagging)
            await cluster.start(lagging)
            assert local_count(cluster.member(lagging)) == 4 * SNAPSHOT_EVERY - 1
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_snapshots_wait_for_an_image_worth_of_writes(tmp_path: Path) -> None:
    """With ``snapshot_image_ratio`` 1, a store of 40 keys of 2,000 bytes (an image of over
    80 KB) is not snapshotted again until about as many bytes were written after it, however
    many entries that takes; ``snapshot_every`` alone would snapshot every 10 entries."""
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, snapshot_every=10, snapshot_image_ratio=1.0)
            await cluster.start_all()
            lead = await cluster.leader()
            leader = cluster.member(lead)
            async with Client(cluster.endpoints()) as c:
                for k in range(40):
                    await c.put(b"big%03d" % k, b"v" * 2000)
                taken = leader.snapshots_taken
                assert taken >= 1
                # 100 entries of ~120 bytes: ten times snapshot_every, a seventh of an image.
                for _ in range(100):
                    await c.put(b"small", b"s" * 100)
                # (One snapshot may still fall due for bytes written before the small ones.)
                assert leader.snapshots_taken <= taken + 1
                after_small = leader.snapshots_taken
                for k in range(50):
                    await c.put(b"big%03d" % (k % 40), b"w" * 2000)
                assert leader.snapshots_taken > after_small
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_auto_compaction_runs_on_the_leader_and_compacts_every_member(
    tmp_path: Path,
) -> None:
    """Periodic auto-compaction with a 0.4 s retention: the leader proposes compactions
    through the log, so every member ends at the same compact revision, and old revisions
    are refused as compacted while the newest stays readable."""
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, auto_compaction=AutoCompaction(PERIODIC, 0.4))
            await cluster.start_all()
            lead = await cluster.leader()
            async with Client(cluster.endpoints()) as c:
                first = await c.put(b"hot", b"0")
                for k in range(1, 30):
                    await c.put(b"hot", b"%d" % k)
                    await trio.sleep(0.03)
                last = await c.put(b"hot", b"last")

                async def compacted_past_first() -> bool:
                    return cluster.member(lead).mvcc.compact_revision > first.header.revision

                await eventually(compacted_past_first)
                # The writes have stopped: the compactions the leader proposed reach every
                # member through the log, so they come to agree.

                async def all_agree() -> bool:
                    revs = {cluster.member(i).mvcc.compact_revision for i in cluster.running}
                    return len(revs) == 1

                await eventually(all_agree)
                assert cluster.member(lead).auto_compactions >= 1
                followers = [i for i in cluster.running if i != lead]
                assert all(cluster.member(i).auto_compactions == 0 for i in followers)
                got = await c.get(b"hot")
                assert got.kvs[0].value == b"last"
                assert got.kvs[0].mod_revision == last.header.revision
                old = cluster.member(lead).read_local(
                    RangeRequest(b"hot", revision=first.header.revision)
                )
                assert isinstance(old, KVError) and old.code is ErrorCode.COMPACTED
            nursery.cancel_scope.cancel()


def test_watchers_resume_on_an_installed_store() -> None:
    """A store replaced by a newer image: watchers get the skipped revisions as a backlog,
    events already queued are not lost, and ids stay valid."""
    ready: list[int] = []
    old = MvccStore()
    watches = MemberWatches(old, ready.append)
    wid = watches.watch(b"a", b"b")
    doomed = watches.watch(b"z", start_revision=1)
    old.apply(PutRequest(b"a1", b"1"))  # revision 2, queued but not taken yet
    leader = load_snapshot(dump_snapshot(old))
    for k in range(2, 5):  # revisions 3..5: only the leader's store sees them
        leader.apply(PutRequest(b"a%d" % k, b"x"))
    leader.apply(CompactionRequest(3))
    watches.replace_store(load_snapshot(dump_snapshot(leader)))

    assert wid in ready and watches.has_pending(wid)
    taken = watches.take(wid)
    assert isinstance(taken, tuple)
    assert [e.kv.mod_revision for e in taken] == [2, 3, 4, 5]
    # A watcher whose next revision is compacted on the new store is told so.
    assert not isinstance(watches.take(doomed), tuple)
    watches.cancel(wid)
    assert len(watches) == 0
