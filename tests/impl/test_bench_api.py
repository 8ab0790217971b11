"""``raftkube bench api``: the driver's bookkeeping, and real runs, with a local cluster of its
own and against a cluster's kubeconfig, of every operation.

Every wait is bounded; every process is stopped at teardown.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import trio

from raftkube.bench.api import Failures, delivery_latencies, drive
from raftkube.cluster.up import local_cluster, local_plan
from raftkube.kubeclient import KubeAPIError, KubeClient


def test_delivery_latency_counts_from_the_acknowledgement_and_misses_as_errors() -> None:
    acknowledged = {"a": 10.0, "b": 11.0}
    arrivals = [{"a": 10.5, "b": 10.9}, {"a": 12.0}]
    latencies, missed = delivery_latencies(acknowledged, arrivals)
    # Watcher 0 read b's event before b's creator read the answer: 0, not negative.
    assert latencies == [0.5, 0.0, 2.0]
    assert missed == 1


@pytest.mark.trio
async def test_drive_sends_total_requests_with_bounded_concurrency() -> None:
    in_flight = peak = 0
    seen: list[int] = []
    errors = Failures()

    async def request(k: int, n: int) -> object:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await trio.sleep(0)
        in_flight -= 1
        seen.append(n)
        if n % 10 == 3:
            raise KubeAPIError({"code": 409, "reason": "Conflict", "message": f"no {n}"})
        return n

    with trio.fail_after(10):
        summary = await drive(4, 50, request, errors)
    assert sorted(seen) == list(range(50))
    assert peak == 4
    assert summary.errors == errors.count == 5
    assert len(summary.latencies) == 45
    assert "no 3" in errors.first


def bench_api(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftkube", "bench", "api", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def titles(stdout: str) -> list[str]:
    """The phase titles: the line before each report's ``Summary:``."""
    lines = stdout.splitlines()
    return [lines[i - 1] for i, line in enumerate(lines) if line == "Summary:"]


def test_bench_api_starts_and_removes_a_local_cluster() -> None:
    before = {p.name for p in Path(tempfile.gettempdir()).glob("raftkube-bench-*")}
    result = bench_api("--total", "40", "--clients", "4")
    assert result.returncode == 0, result.stderr
    assert titles(result.stdout) == ["create configmaps: 40 requests, 4 clients, 4 connections"]
    assert "Requests/sec" in result.stdout and "99% in" in result.stdout
    assert "Errors" not in result.stdout
    started = [ln for ln in result.stderr.splitlines() if "started a local 3-member" in ln]
    assert len(started) == 1, result.stderr
    where = Path(started[0].split(" in ", 1)[1].split(" ", 1)[0])
    assert where.name.startswith("raftkube-bench-") and not where.exists()
    assert {p.name for p in Path(tempfile.gettempdir()).glob("raftkube-bench-*")} <= before


@pytest.mark.trio
async def test_every_op_against_a_kubeconfig(tmp_path: Path) -> None:
    plan = local_plan(tmp_path, apiserver=True)
    assert plan.control_plane is not None
    kubeconfig = str(plan.control_plane.admin_kubeconfig)
    with trio.fail_after(240):
        async with local_cluster(plan):
            runs = {
                "get": ["--op", "get", "--objects", "5"],
                "list": ["--op", "list", "--objects", "5", "--resource", "pods"],
                "update": ["--op", "update", "--objects", "2"],
                "watch": ["--op", "watch", "--watchers", "3"],
            }
            for op, extra in runs.items():
                argv = ["--kubeconfig", kubeconfig, "--total", "20", "--clients", "3", *extra]
                result = await trio.to_thread.run_sync(lambda argv=argv: bench_api(*argv))
                assert result.returncode == 0, (op, result.stderr)
                assert "Errors" not in result.stdout, (op, result.stdout)
                found = titles(result.stdout)
                if op == "watch":
                    assert found == [
                        "create configmaps: 20 requests, 3 clients, 3 connections",
                        "watch delivery configmaps: 20 creates, 3 watchers",
                    ]
                else:
                    kind = "pods" if op == "list" else "configmaps"
                    setup = 3 if op == "update" else 5  # update: an object per requester
                    assert found == [
                        f"create (setup) {kind}: {setup} requests, 3 clients, 3 connections",
                        f"{op} {kind}: 20 requests, 3 clients, 3 connections",
                    ]

            # Against a kubeconfig, the run's namespace is removed afterwards.
            async with KubeClient.from_kubeconfig(kubeconfig) as kube:
                namespaces = (await kube.list("/api/v1/namespaces"))["items"]
            left = [
                n["metadata"]["name"]
                for n in namespaces
                if n["metadata"]["name"].startswith("bench-")
                and not n["metadata"].get("deletionTimestamp")
            ]
            assert left == []
