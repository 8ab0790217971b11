"""A member added to a running cluster of real ``raftkube member`` processes, as etcd's
runbook does it: ``rkctl member add --learner``, start the new member with
``--initial-cluster-state existing``, ``rkctl member promote`` once it is in sync, then
``rkctl member remove`` another and stop it (3 -> 4 -> 3)."""

from __future__ import annotations

import io
import re
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
        code, out, err = await rk(
            endpoints,
            "member",
            "add",
            "m3",
            f"--peer-urls={url}",
            f"--client-urls={joiner_client}",
            "--learner",
        )
        assert code == 0, err
        match = re.match(r"Member +([0-9a-f]+) added as learner to cluster", out)
        assert match is not None and int(match.group(1), 16) == 3
        assert 'ETCD_INITIAL_CLUSTER_STATE="existing"' in out

        peers = ",".join(f"{i}=127.0.0.1:{p}" for i, p in enumerate(peer_ports))
        clients = ",".join(f"{i}=127.0.0.1:{p}" for i, p in enumerate(client_ports))
        joiner = procs.start(
            [
                "member",
                "--id",
                "3",
                "--name",
                "m3",
                "--initial-cluster-state",
                "existing",
                "--peers",
                peers,
                "--client-endpoints",
                clients,
                "--client-port",
                str(client_ports[3]),
                "--data-dir",
                str(tmp_path / "m3"),
                "--cluster-id",
                "proc-test",
            ],
            "m3",
        )
        async with Client(endpoints) as c:
            for k in range(20):
                await c.put(b"k%d" % k, b"v")
        while True:  # etcd's runbook too: retry the promotion until the learner is in sync
            code, out, err = await rk(endpoints, "member", "promote", "3")
            if code == 0:
                break
            assert "in sync with leader" in err, err
            await trio.sleep(0.1)
        assert out == f"Member {3:16x} promoted in cluster {'proc-test':>16}\n"

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
        assert joiner.poll() is None
