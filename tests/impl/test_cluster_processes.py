"""Real member processes on 127.0.0.1: ``raftkube member`` launched directly and through
``raftkube up``; leader crash (SIGKILL), clean stop and restart from the WALs, bad input.

Every wait is bounded and every process is killed in teardown, whatever happens.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest
import trio

from raftkube.client import Client, ClientError
from tests.helpers.member_processes import member_args, up_args, wait_leader
from tests.helpers.processes import Processes, free_port_block, free_ports, wait_exit, wait_up


async def assert_keys(endpoints: list[str], expected: dict[bytes, bytes]) -> None:
    async with Client(endpoints) as c:
        got = await c.get(b"key/", b"key0")
    assert {kv.key: kv.value for kv in got.kvs} == expected


@pytest.mark.trio
async def test_member_processes_survive_leader_kill_and_restart(
    tmp_path: Path, procs: Processes
) -> None:
    ports = free_ports(6)
    client_ports, peer_ports = ports[:3], ports[3:]
    endpoints = {i: f"127.0.0.1:{p}" for i, p in enumerate(client_ports)}
    data = tmp_path / "data"

    def start(mid: int) -> subprocess.Popen[bytes]:
        return procs.start(member_args(mid, peer_ports, client_ports, data), f"m{mid}")

    members = {i: start(i) for i in range(3)}
    written: dict[bytes, bytes] = {}
    with trio.fail_after(45):
        leader = await wait_leader(endpoints)
        async with Client(list(endpoints.values())) as c:
            for k in range(20):
                await c.put(b"key/%03d" % k, b"before-%d" % k)
                written[b"key/%03d" % k] = b"before-%d" % k

            # SIGKILL the leader: a new one is elected among the two others within seconds,
            # and every write acknowledged before the crash is still there.
            members[leader].send_signal(signal.SIGKILL)
            await wait_exit(members[leader])
            survivors = {i: ep for i, ep in endpoints.items() if i != leader}
            before = trio.current_time()
            new_leader = await wait_leader(survivors, timeout=10)
            assert new_leader != leader
            assert trio.current_time() - before < 10
            for k in range(20, 40):
                await c.put(b"key/%03d" % k, b"after-%d" % k)
                written[b"key/%03d" % k] = b"after-%d" % k
        await assert_keys(list(endpoints.values()), written)

        # The killed member recovers from its WAL and catches up.
        members[leader] = start(leader)

        async def caught_up() -> bool:
            try:
                async with Client([endpoints[leader]], attempts=1) as c:
                    r = await c.get(b"key/039", serializable=True)
                    return bool(r.kvs)
            except (ClientError, ExceptionGroup):  # the Client's nursery wraps errors
                return False

        while not await caught_up():
            await trio.sleep(0.05)

        # SIGTERM stops every member cleanly (exit 0), and a restart keeps every key.
        for p in members.values():
            p.send_signal(signal.SIGTERM)
        for mid, p in members.items():
            assert await wait_exit(p) == 0, Path(p.err_path).read_text()  # type: ignore[attr-defined]
            log = Path(p.err_path).read_text()  # type: ignore[attr-defined]
            assert "stopping on SIGTERM" in log and "storage closed" in log, (mid, log)
        assert any("elected leader" in Path(p.err_path).read_text() for p in procs.procs)  # type: ignore[attr-defined]

        members = {i: start(i) for i in range(3)}
        await wait_leader(endpoints)
        await assert_keys(list(endpoints.values()), written)


@pytest.mark.trio
async def test_up_starts_stops_and_resumes(tmp_path: Path, procs: Processes) -> None:
    base = free_port_block(6)
    data = tmp_path / "cluster"
    endpoints = [f"127.0.0.1:{base + 2 * i}" for i in range(3)]
    with trio.fail_after(50):
        up = procs.start(up_args(data, base), "up")
        text = await wait_up(up)
        assert f"export RKCTL_ENDPOINTS={','.join(endpoints)}" in text
        assert f"peer 127.0.0.1:{base + 1}" in text
        written = {b"key/%d" % k: b"v%d" % k for k in range(10)}
        async with Client(endpoints) as c:
            for k, v in written.items():
                await c.put(k, v)

        up.send_signal(signal.SIGINT)
        assert await wait_exit(up) == 0

        # A different size on the same data dir is refused, with one line.
        bad = procs.start(up_args(data, base, "--servers", "5"), "mismatch")
        assert await wait_exit(bad) == 1
        err = Path(bad.err_path).read_text().strip()  # type: ignore[attr-defined]
        assert len(err.splitlines()) == 1 and "3-member" in err, err
        err = Path(up.err_path).read_text()  # type: ignore[attr-defined]
        assert "[member 0]" in err and "every member stopped" in err
        assert {p.name for p in data.iterdir()} >= {"cluster.json", "member-0", "member-2"}

        # Same data dir: the members recover their WALs; --servers comes from cluster.json.
        up = procs.start(up_args(data, base), "up")
        await wait_up(up)
        await assert_keys(endpoints, written)
        up.send_signal(signal.SIGTERM)
        assert await wait_exit(up) == 0


@pytest.mark.trio
async def test_bad_input_is_one_clear_line(tmp_path: Path, procs: Processes) -> None:
    base = free_port_block(6)
    with trio.fail_after(30), socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 2))
        busy.listen()
        up = procs.start(up_args(tmp_path / "c", base), "busy")
        assert await wait_exit(up) == 1
        err = Path(up.err_path).read_text().strip()  # type: ignore[attr-defined]
        assert len(err.splitlines()) == 1 and f"port {base + 2}" in err, err

        blocker = tmp_path / "a-file"
        blocker.write_text("")
        up = procs.start(up_args(blocker / "sub", base), "unwritable")
        assert await wait_exit(up) == 1
        err = Path(up.err_path).read_text().strip()  # type: ignore[attr-defined]
        assert len(err.splitlines()) == 1 and "data directory" in err, err

        (peer,) = free_ports(1)
        member = procs.start(
            [
                "member",
                "--id",
                "0",
                "--peers",
                f"0=127.0.0.1:{peer}",
                "--client-port",
                str(busy.getsockname()[1]),
                "--data-dir",
                str(tmp_path / "m"),
            ],
            "member-busy",
        )
        assert await wait_exit(member) == 1
        err = Path(member.err_path).read_text()  # type: ignore[attr-defined]
        last = err.strip().splitlines()[-1]
        assert last.startswith("raftkube member 0:") and "in use" in last, err
