"""``raftkube bench`` as a real command: with no ``--endpoints`` it starts (and removes) its own
3-member cluster; with ``--endpoints`` it drives a cluster someone else started.

Every wait is bounded; every member process is killed at teardown.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from raftkube.client import Client
from tests.helpers.member_processes import member_args, wait_leader
from tests.helpers.processes import Processes, free_ports

REPORT_LINES = ("Requests/sec", "99% in")


def _bench_temp_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("raftkube-bench-*")}


def test_bench_put_starts_and_removes_a_local_cluster() -> None:
    before = _bench_temp_dirs()
    result = subprocess.run(
        [sys.executable, "-m", "raftkube", "bench", "put", "--total", "50", "--clients", "4"],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    for line in REPORT_LINES:
        assert line in result.stdout, result.stdout
    started = [ln for ln in result.stderr.splitlines() if "started a local 3-member cluster" in ln]
    assert len(started) == 1, result.stderr
    # The temporary data directory named in that line is gone afterwards.
    where = started[0].split(" in ", 1)[1].split(" ", 1)[0]
    assert Path(where).name.startswith("raftkube-bench-")
    assert not Path(where).exists()
    assert _bench_temp_dirs() <= before


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    ps = Processes(tmp_path)
    try:
        yield ps
    finally:
        ps.kill_all()


@pytest.mark.trio
async def test_bench_range_against_given_endpoints(tmp_path: Path, procs: Processes) -> None:
    ports = free_ports(6)
    client_ports, peer_ports = ports[:3], ports[3:]
    endpoints = {i: f"127.0.0.1:{p}" for i, p in enumerate(client_ports)}
    for mid in range(3):
        procs.start(member_args(mid, peer_ports, client_ports, tmp_path / "data"), f"m{mid}")
    with trio.fail_after(60):
        await wait_leader(endpoints)
        async with Client(list(endpoints.values())) as c:
            await c.put(b"bench/key", b"value")
        for consistency in ("l", "s"):
            result = await trio.run_process(
                [
                    sys.executable,
                    "-m",
                    "raftkube",
                    "bench",
                    "range",
                    "bench/key",
                    "--endpoints",
                    ",".join(endpoints.values()),
                    "--total",
                    "50",
                    "--clients",
                    "4",
                    "--consistency",
                    consistency,
                ],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                stdin=b"",
            )
            out, err = result.stdout.decode(), result.stderr.decode()
            assert result.returncode == 0, err
            for line in REPORT_LINES:
                assert line in out, out
            assert "local" not in err, err
    for p in procs.procs:
        assert p.poll() is None, Path(p.err_path).read_text()  # type: ignore[attr-defined]
