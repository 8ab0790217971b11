"""A full disk for real: the data dir on a tiny tmpfs, so that the kernel itself answers a write
with a short count and then ENOSPC, leaving a torn record at the end of the log.

Root ignores file permissions, so ``chmod`` cannot make a directory fail honestly; a size-
limited tmpfs can, and mounting one needs root with CAP_SYS_ADMIN, so these tests are skipped
(saying why) where mounting is not allowed. Growing the tmpfs afterwards (``remount,size=``)
is what freeing space is. A read-only data dir cannot be produced this way while the member
holds its log open (the kernel refuses ``remount,ro`` on a busy mount); that case is checked
in the simulated world (``tests/fuzz/test_disk_faults.py``) and by the classification below.
"""

from __future__ import annotations

import errno
import io
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest
import trio

from raftkube.api.wire import WireHeader
from raftkube.client import Client, ClientError
from raftkube.rkctl.output import Printer, StatusRow
from raftkube.server.disk_faults import DISK_FAILED, NO_SPACE, describe_disk_fault
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import open_member
from raftkube.storage.wal import WriteAheadLog

VALUE = b"v" * 10_000
"""Not a multiple of a page: the write that meets the end of the space stops inside a record."""


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def grow(where: Path, size: str) -> None:
    """Free space: the tmpfs may now hold ``size``."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def test_the_wal_after_enospc_keeps_every_synced_record_and_drops_the_torn_one(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "256k") as disk:
        wal, _ = WriteAheadLog.open(disk / "wal")
        synced = 0
        with pytest.raises(OSError) as full:
            for i in range(1000):
                wal.append(1, {"n": i, "v": VALUE})
                wal.sync()
                synced = i + 1
        assert full.value.errno == errno.ENOSPC and wal.failed
        wal.close()
        grow(disk, "1m")
        wal, recovery = WriteAheadLog.open(disk / "wal")
        assert recovery.torn_tail is not None, "the kernel wrote part of the last record"
        numbers = [r.payload["n"] for r in recovery.records]
        # Every synced record, in order; the one whose sync failed only if it fully landed.
        assert numbers[:synced] == list(range(synced)) and len(numbers) <= synced + 1
        with wal:
            wal.append(1, {"n": -1, "v": b"after"})
            wal.sync()
        wal, recovery = WriteAheadLog.open(disk / "wal")
        with wal:
            assert recovery.torn_tail is None
            assert recovery.records[-1].payload == {"n": -1, "v": b"after"}


@pytest.mark.trio
async def test_a_member_on_a_full_disk_refuses_writes_serves_reads_and_loses_nothing(
    tmp_path: Path,
) -> None:
    cfg = MemberConfig(member_id=0, servers=1, cluster_id="full")
    acknowledged: dict[bytes, bytes] = {}
    with tmpfs(tmp_path / "disk", "512k") as disk, trio.fail_after(60):
        async with (
            open_member(cfg, disk / "m0") as rm,
            Client([rm.client_endpoint], retry_delay=0.01, attempts=3) as c,
        ):
            while not rm.member.is_leader:
                await trio.sleep(0.01)
            with pytest.raises(ClientError) as refused:
                for i in range(1000):
                    key = b"k%04d" % i
                    await c.put(key, VALUE)
                    acknowledged[key] = VALUE
            assert acknowledged, "some writes fit before the disk filled"
            # The write in flight when the sync failed is of unknown outcome; the next
            # ones are refused at once, naming the cause as etcd does.
            with pytest.raises(ClientError) as again:
                await c.put(b"later", b"x")
            assert again.value.code == NO_SPACE
            assert "etcdserver: no space" in again.value.message
            assert "No space left on device" in again.value.message
            assert refused.value.code in (NO_SPACE, "unavailable")
            # Serializable reads are still served, every acknowledged write in them.
            got = await c.get(b"k", b"l", serializable=True)
            assert {kv.key: kv.value for kv in got.kvs}.items() >= acknowledged.items()
            status = await c.status()
            assert not status["is_leader"] and "no space" in status["errors"][0]
            with pytest.raises(ClientError) as linearizable:
                await c.get(b"k0000")
            assert "no space" in linearizable.value.message
        grow(disk, "4m")
        async with (
            open_member(cfg, disk / "m0") as rm,
            Client([rm.client_endpoint], retry_delay=0.01) as c,
        ):
            while not rm.member.is_leader:
                await trio.sleep(0.01)
            got = await c.get(b"k", b"l")
            assert {kv.key: kv.value for kv in got.kvs}.items() >= acknowledged.items()
            await c.put(b"later", b"x")
            assert (await c.get(b"later")).kvs[0].value == b"x"


def test_disk_faults_are_named_by_cause() -> None:
    code, message = describe_disk_fault(2, OSError(errno.ENOSPC, "No space left on device"))
    assert code == NO_SPACE and message.startswith("etcdserver: no space (member 2:")
    code, message = describe_disk_fault(2, OSError(errno.EROFS, "Read-only file system"))
    assert code == DISK_FAILED and "Read-only file system" in message and "member 2" in message


def test_endpoint_status_shows_a_fenced_members_error_as_etcdctl_shows_alarms() -> None:
    error = "no_space: etcdserver: no space (member 1: [Errno 28] No space left on device)"
    row = StatusRow("127.0.0.1:2379", WireHeader("c", 1, 5, 2), "0.1.0", -1, 9, 9, errors=(error,))
    for fmt in ("simple", "table", "fields", "json"):
        out = io.StringIO()
        Printer(out, fmt).endpoint_status([row])
        assert error in out.getvalue(), (fmt, out.getvalue())
    out = io.StringIO()
    Printer(out, "json").endpoint_status([attrs.evolve(row, errors=())])
    assert "errors" not in out.getvalue()  # omitted when empty, as etcdctl's JSON does
