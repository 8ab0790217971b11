"""rkctl's watch, lease and cluster commands against a real 3-member cluster, plus the pure
parts (txn syntax, durations, endpoints) without one."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import trio

from raftkube.rkctl import main, run
from raftkube.rkctl.connection import parse_duration, split_endpoints
from raftkube.rkctl.errors import UsageError
from raftkube.rkctl.output import go_duration, go_quote
from raftkube.rkctl.txn_parser import TxnSyntaxError, argify, parse_compare
from raftkube_spec.kv.requests import CompareResult, CompareTarget
from tests.helpers.polling import wait_for
from tests.helpers.rkctl import assert_one_error, rkctl_cluster


@pytest.mark.trio
async def test_watch_prints_events_until_cancelled(tmp_path: Path) -> None:
    async with rkctl_cluster(tmp_path) as (cluster, rk):
        assert (await rk("put", "w/a", "old"))[0] == 0
        endpoints = ",".join(cluster.endpoints())

        out = io.StringIO()
        codes: list[int] = []

        async def watcher(*args: str) -> None:
            codes.append(await run(["--endpoints", endpoints, "watch", *args], stdout=out))

        async def printed(text: str) -> None:
            await wait_for(lambda: text in out.getvalue(), f"rkctl watch to print {text!r}")

        async with trio.open_nursery() as inner:
            inner.start_soon(watcher, "--prefix", "w/", "--prev-kv")
            # Writes until the watch (registered asynchronously) reports one.
            while "PUT" not in out.getvalue():
                await rk("put", "w/ready", "1")
                await trio.sleep(0.05)
            await rk("put", "w/a", "new")
            await rk("del", "w/a")
            await printed("DELETE\n")
            inner.cancel_scope.cancel()
        assert codes == []  # cancelled, as Ctrl-C would stop it
        assert out.getvalue().endswith("PUT\nw/a\nold\nw/a\nnew\nDELETE\nw/a\nnew\nw/a\n\n")

        # From an old revision: history is replayed, simple format without prev kv.
        out = io.StringIO()
        async with trio.open_nursery() as inner:
            inner.start_soon(watcher, "w/a", "--rev", "1")
            await printed("DELETE\nw/a\n\n")
            inner.cancel_scope.cancel()
        assert out.getvalue() == "PUT\nw/a\nold\nPUT\nw/a\nnew\nDELETE\nw/a\n\n"

        # A watch from a compacted revision is one Error line. Watches are served by the
        # member they reach, so ask the leader, which has certainly applied the compaction.
        code, rev_json, _ = await rk("get", "w/a", "-w", "json")
        rev = json.loads(rev_json)["header"]["revision"]
        assert (await rk("compaction", str(rev)))[0] == 0
        leader_ep = cluster.running[await cluster.leader()].client_endpoint
        out_s, err_s = io.StringIO(), io.StringIO()
        code = await run(
            ["--endpoints", leader_ep, "watch", "w/a", "--rev", "1"],
            stdout=out_s,
            stderr=err_s,
        )
        assert_one_error(
            code, out_s.getvalue(), err_s.getvalue(), "required revision has been compacted"
        )


@pytest.mark.trio
async def test_lease_commands(tmp_path: Path) -> None:
    async with rkctl_cluster(tmp_path) as (_cluster, rk):
        code, out, _ = await rk("lease", "grant", "30")
        m = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\(30s\)\n", out)
        assert code == 0 and m, out
        lease = m.group(1)

        assert (await rk("put", "--lease", lease, "leased", "v"))[1] == "OK\n"
        assert (await rk("put", f"--lease={lease}", "leased2", "v"))[1] == "OK\n"
        code, out, _ = await rk("lease", "timetolive", lease, "--keys")
        assert re.fullmatch(
            rf"lease {lease} granted with TTL\(30s\), remaining\((29|30)s\), "
            r"attached keys\(\[leased leased2\]\)\n",
            out,
        ), out
        code, out, _ = await rk("lease", "keep-alive", "--once", lease)
        assert out == f"lease {lease} keepalived with TTL(30)\n"
        code, out, _ = await rk("lease", "grant", "10", "-w", "json")
        doc = json.loads(out)
        assert doc["TTL"] == 10 and doc["ID"] > 0 and "revision" in doc

        # A transaction can compare a lease (hex, as etcdctl parses it).
        code, out, _ = await rk("txn", stdin=f'lease("leased") = "{lease}"\n\nget leased\n\n')
        assert out == "SUCCESS\n\nleased\nv\n"

        assert await rk("lease", "revoke", lease) == (0, f"lease {lease} revoked\n", "")
        assert (await rk("get", "leased"))[1] == ""
        assert (await rk("lease", "timetolive", lease))[1] == f"lease {lease} already expired\n"
        assert_one_error(
            *await rk("lease", "keep-alive", "--once", lease), "requested lease not found"
        )
        # The streaming form stops (exit 0) when the lease is gone, as etcdctl's does.
        assert (await rk("lease", "keep-alive", lease))[1] == (
            f"lease {lease} expired or revoked.\n"
        )
        assert_one_error(*await rk("lease", "revoke", "zz"), "expecting ID in Hex")
        code, out, err = await rk("lease")
        assert code == 2 and err.startswith("Error: ") and out == ""


@pytest.mark.trio
async def test_member_list_and_endpoint_commands(tmp_path: Path) -> None:
    async with rkctl_cluster(tmp_path) as (cluster, rk):
        lead = await cluster.leader()
        endpoints = cluster.endpoints()

        code, out, _ = await rk("member", "list")
        rows = out.splitlines()
        assert code == 0 and len(rows) == 3
        for i, row in enumerate(rows):
            peer = cluster.running[i].peer_address
            client = cluster.running[i].client_endpoint
            assert row == f"{i:x}, started, , http://{peer.host}:{peer.port}, {client}, false"

        code, out, _ = await rk("member", "list", "-w", "table")
        lines = out.splitlines()
        assert lines[0].startswith("+") and lines[-1].startswith("+")
        assert re.search(r"\|\s+ID\s+\|\s+STATUS\s+\|\s+NAME\s+\|", lines[1])
        assert sum(1 for ln in lines if "started" in ln) == 3

        code, out, _ = await rk("member", "list", "-w", "json")
        assert len(json.loads(out)["members"]) == 3

        code, out, _ = await rk("endpoint", "status")
        rows = [r.split(", ") for r in out.splitlines()]
        assert code == 0 and [r[0] for r in rows] == endpoints
        leaders = [r[0] for r in rows if r[3] == "true"]
        assert leaders == [cluster.running[lead].client_endpoint]

        code, out, _ = await rk("endpoint", "status", "-w", "table")
        header = out.splitlines()[1]
        for col in ("ENDPOINT", "ID", "VERSION", "IS LEADER", "RAFT TERM", "RAFT INDEX"):
            assert col in header
        assert sum(1 for ln in out.splitlines() if "127.0.0.1" in ln) == 3

        code, out, _ = await rk("endpoint", "status", "--cluster", "-w", "json")
        assert len(json.loads(out)) == 3

        # etcdctl writes the simple health report to stderr.
        code, out, err = await rk("endpoint", "health")
        assert code == 0 and out == ""
        for ep, line in zip(endpoints, err.splitlines(), strict=True):
            assert re.fullmatch(
                rf"{ep} is healthy: successfully committed proposal: took = [0-9.]+(µs|ms|s)",
                line,
            ), line
        code, out, _ = await rk("endpoint", "health", "-w", "table")
        assert code == 0 and out.count("true") == 3

        # A dead endpoint is reported unhealthy and the command fails.
        dead = cluster.running[(lead + 1) % 3].client_endpoint
        await cluster.stop((lead + 1) % 3)
        err_s = io.StringIO()
        code = await run(
            ["--endpoints", dead, "--dial-timeout", "300ms", "endpoint", "health"],
            stdout=io.StringIO(),
            stderr=err_s,
        )
        assert code == 1
        assert err_s.getvalue().startswith(f"{dead} is unhealthy: failed to commit proposal")
        assert err_s.getvalue().splitlines()[-1] == "Error: unhealthy cluster"


def test_txn_syntax() -> None:
    c = parse_compare('value("k") = "v v"')
    assert (c.key, c.target, c.result, c.value) == (
        b"k",
        CompareTarget.VALUE,
        CompareResult.EQUAL,
        b"v v",
    )
    assert parse_compare('mod("k") > "5"').value == 5
    assert parse_compare('ver("k") != "2"').result is CompareResult.NOT_EQUAL
    assert parse_compare('c("k") < "3"').target is CompareTarget.CREATE
    assert parse_compare('lease("k") = "ff"').value == 255
    for bad in ('size("k") = "1"', 'mod("k") > "x"', 'mod("k") >= "1"', "mod(k) > 1"):
        with pytest.raises(TxnSyntaxError):
            parse_compare(bad)
    assert argify('put k "a \\"b\\"\\n" \'c d\' --prev-kv') == [
        "put",
        "k",
        'a "b"\n',
        "c d",
        "--prev-kv",
    ]


def test_flags_helpers_and_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_duration("2s") == 2.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("3") == 3.0
    for bad in ("", "5x", "-1s", "0"):
        with pytest.raises(UsageError):
            parse_duration(bad)
    assert split_endpoints("http://a:1, b:2/,") == ["a:1", "b:2"]
    assert go_duration(0.002538021) == "2.538021ms"
    assert go_duration(1.5) == "1.5s"
    assert go_quote('a"\n\udcff') == '"a\\"\\n\\xff"'

    # main is a plain synchronous entry point; usage errors exit 2 with one Error line.
    assert main(["get"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("Error: ")
    assert len(captured.err.splitlines()) == 1
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("rkctl version: ")


@pytest.mark.trio
async def test_tls_flags_with_client_cert_auth(tmp_path: Path) -> None:
    from raftkube.server.member import MemberConfig
    from raftkube.server.wiring import open_member
    from raftkube.tls import ensure_cluster_certs, server_context

    certs = ensure_cluster_certs(tmp_path / "tls", [0])
    ctx = server_context(
        certs.members[0].cert, certs.members[0].key, certs.ca.cert, client_cert_auth=True
    )
    cfg = MemberConfig(member_id=0, servers=1, cluster_id="tls")
    tls = [
        "--cacert",
        str(certs.ca.cert),
        "--cert",
        str(certs.client.cert),
        "--key",
        str(certs.client.key),
    ]
    with trio.fail_after(20):
        async with open_member(cfg, tmp_path / "m0", client_ssl_context=ctx) as rm:
            ep = ["--endpoints", rm.client_endpoint, "--dial-timeout", "500ms"]
            out, err = io.StringIO(), io.StringIO()
            code = 1
            while code != 0:  # until the single member has elected itself
                out = io.StringIO()
                code = await run([*ep, *tls, "put", "k", "v"], stdout=out, stderr=err)
            assert out.getvalue() == "OK\n"
            out = io.StringIO()
            assert await run([*ep, *tls, "get", "k"], stdout=out, stderr=err) == 0
            assert out.getvalue() == "k\nv\n"
            # Without a client certificate (or without TLS) the member refuses: one Error line.
            for flags in (tls[:2], []):
                out, err = io.StringIO(), io.StringIO()
                code = await run([*ep, *flags, "get", "k"], stdout=out, stderr=err)
                assert_one_error(code, out.getvalue(), err.getvalue(), "Error: ")
            err = io.StringIO()
            code = await run([*ep, "--cert", "/nonexistent", "get", "k"], stderr=err)
            assert (
                code == 2 and err.getvalue() == "Error: --cert and --key must be given together\n"
            )
