"""Crash recovery of real member processes from damaged write-ahead logs.

* A torn tail (a record being written when the process died, cut short, or junk after the
  last record) is truncated at start-up: the member starts, says so in its log, and catches
  up.
* Damage before the tail (a flipped byte in an early record) refuses the start with one line
  naming the file and byte offset, exit code 1; the other two members keep serving.

Every wait is bounded and every process is killed at teardown.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from raftkube.client import Client, ClientError
from raftkube.storage.records import Verdict, read_frame
from tests.helpers.member_processes import member_args, wait_leader
from tests.helpers.processes import Processes, free_ports, wait_exit


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    ps = Processes(tmp_path)
    try:
        yield ps
    finally:
        ps.kill_all()


def frames(path: Path) -> list[tuple[int, int]]:
    """``(start, end)`` of every valid record of a segment, in order."""
    data = path.read_bytes()
    out = []
    offset = 0
    while offset < len(data):
        frame = read_frame(data, offset)
        assert frame.verdict is Verdict.OK, (path, offset, frame.verdict)
        out.append((frame.offset, frame.end))
        offset = frame.end
    return out


def newest_wal(member_dir: Path) -> Path:
    segments = sorted(member_dir.rglob("*.wal"), key=lambda p: p.name)
    assert segments, f"no WAL segment under {member_dir}"
    return segments[-1]


class ThreeMembers:
    def __init__(self, tmp_path: Path, procs: Processes) -> None:
        ports = free_ports(6)
        self.client_ports, self.peer_ports = ports[:3], ports[3:]
        self.endpoints = {i: f"127.0.0.1:{p}" for i, p in enumerate(self.client_ports)}
        self.data = tmp_path / "data"
        self.procs = procs
        self.members = {i: self.start(i) for i in range(3)}

    def start(self, mid: int) -> subprocess.Popen[bytes]:
        args = member_args(mid, self.peer_ports, self.client_ports, self.data)
        return self.procs.start(args, f"m{mid}")

    def member_dir(self, mid: int) -> Path:
        return self.data / f"m{mid}"

    def others(self, mid: int) -> list[str]:
        return [ep for i, ep in self.endpoints.items() if i != mid]


async def put_keys(
    endpoints: list[str], written: dict[bytes, bytes], keys: range, tag: str
) -> None:
    async with Client(endpoints) as c:
        for k in keys:
            key, value = b"key/%03d" % k, b"%s-%d" % (tag.encode(), k)
            await c.put(key, value)
            written[key] = value  # acknowledged


async def read_keys(endpoint_list: list[str], *, serializable: bool) -> dict[bytes, bytes]:
    async with Client(endpoint_list) as c:
        got = await c.get(b"key/", b"key0", serializable=serializable)
    return {kv.key: kv.value for kv in got.kvs}


async def wait_serves(endpoint: str, expected: dict[bytes, bytes]) -> None:
    """Until a serializable read through ``endpoint`` alone returns exactly ``expected``."""
    while True:
        try:
            async with Client([endpoint], attempts=1) as c:
                got = await c.get(b"key/", b"key0", serializable=True)
            if {kv.key: kv.value for kv in got.kvs} == expected:
                return
        except (ClientError, ExceptionGroup):  # the Client's nursery wraps errors
            pass
        await trio.sleep(0.05)


def err_text(proc: subprocess.Popen[bytes]) -> str:
    return Path(proc.err_path).read_text()  # type: ignore[attr-defined]


@pytest.mark.trio
@pytest.mark.parametrize("damage", ["cut-last-record", "junk-after-last-record"])
async def test_torn_wal_tail_is_truncated_and_member_catches_up(
    tmp_path: Path, procs: Processes, damage: str
) -> None:
    cluster = ThreeMembers(tmp_path, procs)
    written: dict[bytes, bytes] = {}
    with trio.fail_after(60):
        leader = await wait_leader(cluster.endpoints)
        follower = (leader + 1) % 3
        everyone = list(cluster.endpoints.values())
        await put_keys(everyone, written, range(30), "before")
        await wait_serves(cluster.endpoints[follower], written)

        cluster.members[follower].send_signal(signal.SIGKILL)
        await wait_exit(cluster.members[follower])
        await put_keys(cluster.others(follower), written, range(30, 45), "while-down")

        wal = newest_wal(cluster.member_dir(follower))
        records = frames(wal)
        assert records, f"{wal} holds no record"
        start, end = records[-1]
        if damage == "cut-last-record":
            # A torn write is of a record the member had not synced, so never acknowledged:
            # one more record, cut one byte short (header intact). Cutting the last record
            # itself would lose an entry the member may have acknowledged, which Raft cannot
            # recover from (the leader never moves a follower's next below its match).
            last = wal.read_bytes()[start:end]
            with wal.open("ab") as f:
                f.write(last[:-1])
            torn_at = end
        else:
            with wal.open("ab") as f:
                f.write(b"RKWL\x01\x00\x00\x00" + b"\xa5" * 13)
            torn_at = end

        cluster.members[follower] = cluster.start(follower)
        await wait_serves(cluster.endpoints[follower], written)
        await put_keys(everyone, written, range(45, 50), "after")
        await wait_serves(cluster.endpoints[follower], written)
        assert await read_keys(everyone, serializable=False) == written

    log = err_text(cluster.members[follower])
    assert cluster.members[follower].poll() is None, log
    assert "torn tail" in log and str(wal) in log, log
    assert f"byte offset {torn_at}" in log, log
    assert "Traceback" not in log, log


@pytest.mark.trio
async def test_corrupt_record_before_the_tail_refuses_start(
    tmp_path: Path, procs: Processes
) -> None:
    cluster = ThreeMembers(tmp_path, procs)
    written: dict[bytes, bytes] = {}
    with trio.fail_after(60):
        leader = await wait_leader(cluster.endpoints)
        victim = (leader + 1) % 3
        everyone = list(cluster.endpoints.values())
        await put_keys(everyone, written, range(30), "before")
        await wait_serves(cluster.endpoints[victim], written)

        cluster.members[victim].send_signal(signal.SIGTERM)
        assert await wait_exit(cluster.members[victim]) == 0

        wal = newest_wal(cluster.member_dir(victim))
        records = frames(wal)
        assert len(records) >= 4, records
        start, end = records[1]  # an early record, well before the last one
        flip_at = end - 1  # inside its payload: the payload checksum no longer matches
        blob = bytearray(wal.read_bytes())
        blob[flip_at] ^= 0xFF
        wal.write_bytes(bytes(blob))

        restarted = cluster.start(victim)
        cluster.members[victim] = restarted
        before = trio.current_time()
        code = await wait_exit(restarted, timeout=15)
        took = trio.current_time() - before
        err = err_text(restarted)
        assert code == 1, err
        assert took < 15, took
        assert "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"raftkube member {victim}:"), err
        assert str(wal) in last and f"byte offset {start}" in last, err
        assert [ln for ln in err.splitlines() if str(wal) in ln] == [last], err

        # The two others still form a majority: reads and new writes work, nothing is lost.
        survivors = cluster.others(victim)
        await put_keys(survivors, written, range(30, 40), "after")
        assert await read_keys(survivors, serializable=False) == written
        for mid, proc in cluster.members.items():
            if mid != victim:
                assert proc.poll() is None, err_text(proc)
