"""``raftkube bench put --against-etcd``: the etcd side's plan and argument checks, and one
small real run of both stores (skipped, saying why, where Debian's etcd-server or the aetcd
package is not installed)."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from raftkube.bench import etcd as etcd_bench
from raftkube.bench import side_by_side
from raftkube.bench.cputime import members_between


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("1,2,3,4,5", "six distinct ports"),
        ("1,2,3,4,5,5", "six distinct ports"),
        ("1,2,3,4,5,70000", "six distinct ports"),
        ("1,2,x,4,5,6", "not a list of port numbers"),
    ],
)
def test_bad_etcd_ports_are_refused_by_name(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="--etcd-ports") as info:
        side_by_side.parse_ports(text)
    assert why in str(info.value)


def test_etcd_ports_parse() -> None:
    assert side_by_side.parse_ports("7,8,9,10,11,12") == [7, 8, 9, 10, 11, 12]
    assert side_by_side.parse_ports(None) is None


def test_member_argv_is_a_new_three_member_cluster_with_fsync(tmp_path: Path) -> None:
    members = etcd_bench.plan(tmp_path, [101, 102, 103, 104, 105, 106])
    argv = etcd_bench.member_argv("/usr/bin/etcd", members[1], members)
    flags = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert flags["--name"] == "e1"
    assert flags["--listen-client-urls"] == "http://127.0.0.1:103"
    assert flags["--listen-peer-urls"] == "http://127.0.0.1:104"
    assert flags["--initial-cluster"] == (
        "e0=http://127.0.0.1:102,e1=http://127.0.0.1:104,e2=http://127.0.0.1:106"
    )
    assert flags["--initial-cluster-state"] == "new"
    assert flags["--data-dir"] == str(tmp_path / "e1")
    assert not any("fsync" in a for a in argv)  # etcd's default: every WAL write is synced


def test_a_port_in_use_is_refused_before_anything_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(etcd_bench.EtcdError, match=f"port {port} .* not free"),
            etcd_bench.etcd_cluster([port, *etcd_bench.free_ports(5)], binary="/bin/false"),
        ):
            pass


def test_members_between_sums_only_member_processes() -> None:
    before = {"bench": 1.0, "member 0": 2.0, "member 1": 1.0}
    after = {"bench": 5.0, "member 0": 2.5, "member 1": 1.25, "member 2": 0.25, "etcd": 9.0}
    assert members_between(before, after) == pytest.approx(1.0)


@pytest.mark.skipif(shutil.which("etcd") is None, reason="no etcd binary (Debian's etcd-server)")
@pytest.mark.skipif(
    importlib.util.find_spec("aetcd") is None, reason="no aetcd (pip install '.[etcd-bench]')"
)
def test_against_etcd_runs_both_stores_and_cleans_up() -> None:
    before = set(Path(tempfile.gettempdir()).glob("raftkube-bench-*"))
    flags = ["--against-etcd", "--total", "200", "--conns", "2", "--clients", "8", "--rounds", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "raftkube", "bench", "put", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for store in ("raftkube", "etcd"):
        (round_line,) = [ln for ln in lines if ln.startswith(f"{store} ") and "round 1" in ln]
        assert "errors 0" in round_line
        assert "members CPU     - " not in round_line  # both clusters' members were measured
        assert any(ln.startswith(f"{store} ") and "median of 1" in ln for ln in lines)
    # Both clusters' temporary directories are gone, and so are their processes.
    assert set(Path(tempfile.gettempdir()).glob("raftkube-bench-*")) <= before
