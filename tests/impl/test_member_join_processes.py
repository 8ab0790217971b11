"""A member added to a running cluster of real ``raftkube member`` processes with
``raftkube member --join``, which makes etcd's runbook one command (``member add
--learner``, start with ``--initial-cluster-state existing``, ``member promote`` once in sync),
then ``rkctl member remove`` of another and its stop (3 -> 4 -> 3)."""

from __future__ import annotations

import io
import signal
import socket
from pathlib import Path

import pytest
import trio

from raftkube.client import Client
from raftkube.rkctl import run as rkctl
from tests.helpers.member_processes import member_args, wait_leader
from tests.helpers.processes import Processes, wait_exit

PORT_RANGE = range(25100, 25200)
"""This test's ports (the range reserved for membership tests of real processes)."""


def ports(count: int) -> list[int]:
    """``count`` ports of :data:`PORT_RANGE` that are free right now."""
    found: list[int] = []
    for port in PORT_RANGE:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError("no free ports in the test's range")


async def rk(endpoints: list[str], *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await rkctl(
        ["--endpoints", ",".join(endpoints), *argv],
        stdin=io.StringIO(),
        stdout=out,
        stderr=err,
    )
    return code, out.getvalue(), err.getvalue()


@pytest.mark.trio
async def test_a_member_joins_a_running_cluster_and_another_leaves(
    tmp_path: Path,
    procs: Processes,
) -> None:
    free = ports(8)
    peer_ports, client_ports = free[:4], free[4:]
    with trio.fail_after(60):
        first = {
            i: procs.start(member_args(i, peer_ports[:3], client_ports[:3], tmp_path), f"m{i}")
            for i in range(3)
        }
        endpoints = [f"127.0.0.1:{p}" for p in client_ports[:3]]
        await wait_leader(dict(enumerate(endpoints)))
        url = f"http://127.0.0.1:{peer_ports[3]}"
        joiner_client = f"127.0.0.1:{client_ports[3]}"
        join = [
            "member", "--join", ",".join(endpoints), "--name", "m3",
            "--peer-address", f"127.0.0.1:{peer_ports[3]}",
            "--client-port", str(client_ports[3]),
            "--data-dir", str(tmp_path / "m3"), "--cluster-id", "proc-test",
        ]  # fmt: skip
        joiner = procs.start(join, "m3")
        async with Client(endpoints) as c:
            for k in range(20):
                await c.put(b"k%d" % k, b"v")
        while True:  # the joiner promotes itself once the leader finds it in sync
            code, out, err = await rk(endpoints, "member", "list")
            rows = [line.split(", ") for line in out.splitlines()]
            promoted = "promoted to a voting member" in procs.err(joiner)
            if promoted and code == 0 and rows[-1][0] == "3" and rows[-1][-1] == "false":
                break
            assert joiner.poll() is None, procs.err(joiner)
            await trio.sleep(0.1)
        assert rows[-1][2:] == ["m3", url, joiner_client, "false"]
        assert "added to the cluster as member 3 (a learner)" in procs.err(joiner)

        all4 = [*endpoints, joiner_client]
        leader = await wait_leader(dict(enumerate(all4)))
        gone = next(i for i in (0, 1, 2) if i != leader)
        code, out, err = await rk(all4, "member", "remove", f"{gone:x}")
        assert code == 0, err
        first[gone].send_signal(signal.SIGTERM)
        assert await wait_exit(first[gone]) == 0
        left = [ep for i, ep in enumerate(all4) if i != gone]
        async with Client(left) as c:
            await c.put(b"after", b"removal")
            assert (await c.get(b"after")).kvs[0].value == b"removal"
        code, out, _ = await rk(left, "member", "list")
        rows = [line.split(", ") for line in out.splitlines()]
        assert [int(r[0], 16) for r in rows] == sorted({0, 1, 2, 3} - {gone})
        assert rows[-1][2:] == ["m3", url, joiner_client, "false"]

        # The same command again restarts member 3 (recorded in its data dir), a voter now.
        joiner.send_signal(signal.SIGTERM)
        assert await wait_exit(joiner) == 0
        again = procs.start(join, "m3-again")
        while "already a voting member" not in procs.err(again):
            assert again.poll() is None, procs.err(again)
            await trio.sleep(0.1)
        assert "rejoining as member 3" in procs.err(again)
        async with Client([joiner_client, *left]) as c:
            await c.put(b"after", b"restart")
