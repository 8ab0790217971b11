"""The API server's compactor (``--etcd-compaction-interval``) against a real one-member store:
which of several servers compacts in an interval, at which revision, after a restart, when
disabled and when the store cannot be reached."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from raftkube.apiserver.compactor import COMPACT_REV_KEY, Compactor
from raftkube.client import Client
from raftkube.client.client import KVRequestError
from raftkube.clock import TrioClock
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import open_member
from tests.helpers.clocks import JumpClock

CONFIG = MemberConfig(member_id=0, servers=1, cluster_id="t")


async def compacted_below(client: Client, revision: int) -> bool:
    """Whether the store refuses a read just below ``revision`` as compacted and serves one at
    it: that is, it was compacted at exactly ``revision``."""
    await client.get(b"k", revision=revision)
    with pytest.raises(KVRequestError) as err:
        await client.get(b"k", revision=revision - 1)
    return err.value.error.code.name == "COMPACTED"


async def write(client: Client, n: int) -> int:
    for i in range(n):
        last = await client.put(b"k", str(i).encode())
    return last.header.revision


@pytest.mark.trio
async def test_two_servers_compact_once_per_interval_one_interval_behind(tmp_path: Path) -> None:
    clock = TrioClock()
    with trio.fail_after(20):
        async with (
            open_member(CONFIG, tmp_path / "m0") as member,
            Client([member.client_endpoint]) as client,
        ):
            a, b = Compactor(client, clock), Compactor(client, clock)
            await write(client, 3)
            # Interval 1: a wins the key but has no revision from before: it only records one.
            await a.compact_once()
            await b.compact_once()
            assert (a.compact_time, b.compact_time) == (1, 1)
            assert a.compactions == b.compactions == 0
            recorded = a.revision
            await write(client, 3)
            # Interval 2: a wins again and compacts at what it recorded an interval ago; b
            # loses and learns where a compacted.
            await a.compact_once()
            await b.compact_once()
            assert (a.compactions, b.compactions) == (1, 0)
            assert a.compact_revision == b.compact_revision == recorded
            assert await compacted_below(client, recorded)
            # Interval 3, b first: b wins now, at the revision its lost transaction saw.
            behind = b.revision
            await write(client, 3)
            await b.compact_once()
            await a.compact_once()
            assert (a.compactions, b.compactions) == (1, 1)
            assert await compacted_below(client, behind)
            assert a.compact_time == b.compact_time == 3
            key = await client.get(COMPACT_REV_KEY)
            assert key.kvs[0].version == 3 and int(key.kvs[0].value) == behind


@pytest.mark.trio
async def test_a_restarted_server_starts_from_scratch(tmp_path: Path) -> None:
    clock = TrioClock()
    with trio.fail_after(20):
        async with (
            open_member(CONFIG, tmp_path / "m0") as member,
            Client([member.client_endpoint]) as client,
        ):
            before = Compactor(client, clock)
            await before.compact_once()
            await before.compact_once()
            # The server restarts: its compactor knows nothing; the key's version is 2.
            after = Compactor(client, clock)
            await after.compact_once()
            assert (after.compact_time, after.compactions) == (2, 0)
            seen = after.revision
            await write(client, 2)
            await after.compact_once()
            assert (after.compact_time, after.compactions) == (3, 1)
            assert await compacted_below(client, seen)


@pytest.mark.trio
async def test_runs_every_interval_of_its_clock_and_not_at_all_with_0(tmp_path: Path) -> None:
    clock = JumpClock()
    with trio.fail_after(20):
        async with (
            open_member(CONFIG, tmp_path / "m0") as member,
            Client([member.client_endpoint]) as client,
            trio.open_nursery() as nursery,
        ):
            off = Compactor(client, clock, 0.0)
            await off.run()  # returns at once: disabled
            on = Compactor(client, clock, 300.0)
            nursery.start_soon(on.run)
            await trio.sleep(0.2)
            assert on.compact_time == 0
            assert not (await client.get(COMPACT_REV_KEY)).kvs
            clock.advance(300.0)
            while on.compact_time < 1:
                await trio.sleep(0.01)
            clock.advance(300.0)
            while on.compactions < 1:  # the second interval compacts; fail_after bounds it
                await trio.sleep(0.01)
            assert on.compact_time == 2
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_an_unreachable_store_is_logged_and_tried_next_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, "raftkube.apiserver")
    clock = JumpClock()
    with trio.fail_after(20):
        async with (
            Client(["127.0.0.1:1"], attempts=1, request_timeout=1.0) as client,
            trio.open_nursery() as nursery,
        ):
            compactor = Compactor(client, clock, 300.0, endpoints=("127.0.0.1:1",))
            nursery.start_soon(compactor.run)
            for failures in (1, 2):
                await trio.sleep(0.05)
                clock.advance(300.0)
                while caplog.text.count("compact failed") < failures:
                    await trio.sleep(0.01)
            assert "etcd: endpoint ([127.0.0.1:1]) compact failed" in caplog.text
            assert compactor.compact_time == 0 and compactor.revision == 0
            nursery.cancel_scope.cancel()
