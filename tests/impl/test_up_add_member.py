"""``raftkube up --add-member``: a running ``raftkube up`` cluster of 3 real member processes
grows to 4 through the membership API (the running ``up`` starts the new member with ``--join``:
a learner first, promoted once in sync), ``rkctl member list`` shows 4 named voters, the
cluster serves writes through every member, and stopping ``up`` stops every process, the
added member's too. Plus the checks made before anything starts, without processes."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
from pathlib import Path

import pytest
import trio
import trio.testing

from raftkube.client import Client
from raftkube.clock import TrioClock
from raftkube.cluster import up
from raftkube.cluster.common import parse_member_names
from raftkube.cluster.join import JoinError, join_ssl_context
from raftkube.cluster.processes import Child
from raftkube.cluster.up_grow import add_member, grown_plan, start_added
from raftkube.cluster.up_plan import MemberPlan, Plan, UpError
from raftkube.rkctl import run as rkctl
from tests.helpers.processes import Processes, wait_exit, wait_up

PORT_RANGE = range(28000, 28500)
"""This file's ports."""


def port_block(count: int) -> int:
    """A base port of :data:`PORT_RANGE` with ``count`` consecutive free ports."""
    for base in range(PORT_RANGE.start, PORT_RANGE.stop - count, count):
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports in the test's range")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    up.register(parser.add_subparsers())
    return parser.parse_args(["up", *argv])


def processes_using(path: Path) -> list[int]:
    """Every process whose command line names ``path`` (our data dir): what must be gone."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(int(entry.name))
    return sorted(found)


async def member_list(endpoints: list[str]) -> list[list[str]]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["--endpoints", ",".join(endpoints), "member", "list"]
    code = await rkctl(argv, stdin=io.StringIO(), stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    return [line.split(", ") for line in out.getvalue().splitlines()]


@pytest.mark.trio
async def test_a_running_up_cluster_grows_by_one_member(tmp_path: Path, procs: Processes) -> None:
    base = port_block(10)  # 4 members, then the API server on base + 9
    data = tmp_path / "cluster"
    flags = ["--data-dir", str(data), "--port-base", str(base)]
    running = procs.start(
        ["up", *flags, "--apiserver-port", str(base + 9), "--nodes", "0", "--stop-timeout", "5"],
        "up",
    )
    with trio.fail_after(90):
        await wait_up(running, timeout=60)
        endpoints = [f"127.0.0.1:{base + 2 * i}" for i in range(3)]
        rows = await member_list(endpoints)
        assert [r[2] for r in rows] == ["member-0", "member-1", "member-2"]

        adding = procs.start(["up", *flags, "--add-member"], "add")
        assert await wait_exit(adding, timeout=60) == 0, procs.err(adding)
        assert "added member-3 (id 3)" in procs.out(adding)
        assert json.loads((data / "cluster.json").read_text())["added"] == 1

        all4 = [*endpoints, f"127.0.0.1:{base + 6}"]
        rows = await member_list(all4)
        assert rows == [
            [str(i), "started", f"member-{i}", f"http://127.0.0.1:{base + 2 * i + 1}",
             f"127.0.0.1:{base + 2 * i}", "false"]
            for i in range(4)
        ]  # fmt: skip
        for endpoint in all4:  # every member serves writes, the new one too
            async with Client([endpoint]) as c:
                await c.put(endpoint.encode(), b"written")
        async with Client([all4[3]]) as c:
            got = await c.get(b"127.0.0.1:", b"127.0.0.2")
        assert len(got.kvs) == 4

        running.send_signal(signal.SIGTERM)
        assert await wait_exit(running, timeout=30) == 0, procs.err(running)
    assert "[member 3]" in procs.err(running)
    assert "every member stopped" in procs.err(running)
    assert processes_using(data) == []


def test_add_member_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    base = port_block(10)
    data = tmp_path / "c"
    clock = TrioClock()
    said: list[str] = []
    args = parse(["--data-dir", str(data), "--port-base", str(base), "--add-member"])
    with pytest.raises(UpError, match="holds no cluster"):
        trio.run(add_member, args, clock, said.append)
    data.mkdir()
    (data / "cluster.json").write_text(json.dumps({"servers": 3, "cluster_id": "raftkube"}))
    with pytest.raises(UpError, match="omit --servers"):
        trio.run(add_member, parse([*args_list(data, base), "--servers", "4"]), clock, said.append)
    with pytest.raises(UpError, match="not 'other'"):
        trio.run(
            add_member, parse([*args_list(data, base), "--cluster-id", "other"]), clock, said.append
        )
    assert json.loads((data / "cluster.json").read_text()) == {
        "servers": 3,
        "cluster_id": "raftkube",
    }

    # No cluster answers: the member is recorded for the next `raftkube up`, which then plans
    # the founders as before and the added member as a --join.
    assert trio.run(add_member, args, clock, said.append) == 0
    assert "next `raftkube up` adds it" in said[0]
    start = ["--data-dir", str(data), "--port-base", str(base), "--nodes", "0"]
    start += ["--apiserver-port", str(base + 9)]
    plan = up.make_plan(parse(start))
    assert [m.name for m in plan.members] == ["member-0", "member-1", "member-2", "member-3"]
    founder = plan.member_argv(plan.members[0])
    assert founder[founder.index("--peer-names") + 1] == "0=member-0,1=member-1,2=member-2"
    assert f"3=127.0.0.1:{base + 7}" not in founder[founder.index("--peers") + 1]
    added = plan.member_argv(plan.members[3])
    assert "--peers" not in added and added[added.index("--name") + 1] == "member-3"
    assert added[added.index("--join") + 1] == ",".join(m.client_endpoint for m in plan.founders)
    assert added[added.index("--peer-address") + 1] == f"127.0.0.1:{base + 7}"
    with pytest.raises(UpError, match="holds a 4-member cluster"):
        up.make_plan(parse([*start, "--servers", "3"]))


def args_list(data: Path, base: int) -> list[str]:
    return ["--data-dir", str(data), "--port-base", str(base), "--add-member"]


def test_member_names_and_join_tls_flags_are_checked() -> None:
    assert parse_member_names(["0=a,1=b", "2=c"]) == {0: "a", 1: "b", 2: "c"}
    for bad, why in (("0", "expected id=name"), ("x=a", "must be a number"), ("0=a,0=b", "twice")):
        with pytest.raises(ValueError, match=why):
            parse_member_names([bad])
    plain = argparse.Namespace(cert=None, key=None, cacert=None, join_cert=None, join_key=None)
    assert join_ssl_context(plain) is None
    with pytest.raises(JoinError, match="need TLS"):
        join_ssl_context(argparse.Namespace(**{**vars(plain), "join_cert": Path("c.crt")}))
    tls = {**vars(plain), "cert": Path("m.crt"), "key": Path("m.key"), "cacert": Path("ca.crt")}
    with pytest.raises(JoinError, match="--join-cert and --join-key"):
        join_ssl_context(argparse.Namespace(**tls))


def test_an_added_member_of_a_tls_cluster_uses_the_data_dirs_certificates(tmp_path: Path) -> None:
    base = port_block(10)
    data = tmp_path / "c"
    start = ["--data-dir", str(data), "--port-base", str(base), "--nodes", "0", "--tls"]
    plan = up.make_plan(parse([*start, "--apiserver-port", str(base + 9)]))
    assert plan.certs is not None and sorted(plan.certs.members) == [0, 1, 2]
    recorded = json.loads((data / "cluster.json").read_text())
    (data / "cluster.json").write_text(json.dumps({**recorded, "added": 1}))

    grown = grown_plan(plan, base)  # what the running `up` does when it sees the record
    assert grown.certs is not None and grown.certs.ca == plan.certs.ca
    assert (data / "tls" / "member-3.crt").is_file()
    argv = grown.member_argv(grown.members[3])
    tls = data / "tls"
    assert argv[argv.index("--join-cert") + 1] == str(tls / "client.crt")
    assert argv[argv.index("--join-key") + 1] == str(tls / "client.key")
    assert argv[argv.index("--cert") + 1] == str(tls / "member-3.crt")
    assert argv[argv.index("--cacert") + 1] == str(tls / "ca.crt")


def test_a_running_up_starts_each_recorded_member_once_and_survives_a_bad_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = port_block(10)
    data = tmp_path / "c"
    start = ["--data-dir", str(data), "--port-base", str(base), "--nodes", "0"]
    plan = up.make_plan(parse([*start, "--apiserver-port", str(base + 9)]))
    begun: list[str] = []

    async def fake_start(m: MemberPlan, current: Plan) -> Child:
        begun.append(current.member_argv(m)[current.member_argv(m).index("--name") + 1])
        return None  # type: ignore[return-value]  # the watcher does not use the child

    async def main() -> None:
        record = json.loads((data / "cluster.json").read_text())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(start_added, plan, base, {0, 1, 2}, fake_start, TrioClock(), "up")
            await trio.sleep(2)
            (data / "cluster.json").write_text(json.dumps({**record, "added": 1}))
            await trio.sleep(2)
            (data / "cluster.json").write_text("{not json")
            await trio.sleep(5)
            (data / "cluster.json").write_text(json.dumps({**record, "added": 2}))
            await trio.sleep(2)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert begun == ["member-3", "member-4"]
    assert capsys.readouterr().err.count("not adding members") == 1
