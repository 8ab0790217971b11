"""Running rkctl in-process against a real 3-member cluster, as the rkctl tests do, and the
shape etcdctl gives a failure.

Commands run through :func:`raftkube.rkctl.run` inside the cluster's Trio run, with
``StringIO`` streams, so each check sees exactly what a terminal would.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from raftkube.rkctl import run
from tests.helpers.member_cluster import Cluster


class Rk:
    """Runs rkctl commands against ``cluster``; returns ``(exit code, stdout, stderr)``."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def __call__(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        endpoints = ",".join(self.cluster.endpoints())
        code = await run(
            ["--endpoints", endpoints, *argv],
            stdin=io.StringIO(stdin),
            stdout=out,
            stderr=err,
        )
        return code, out.getvalue(), err.getvalue()


@asynccontextmanager
async def rkctl_cluster(tmp_path: Path) -> AsyncIterator[tuple[Cluster, Rk]]:
    """A 3-member cluster with a leader, and an ``Rk`` pointed at it; bounded in time."""
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery)
            await cluster.start_all()
            await cluster.leader()
            yield cluster, Rk(cluster)
            nursery.cancel_scope.cancel()


def assert_one_error(code: int, out: str, err: str, expected: str) -> None:
    """etcdctl's failure shape: nothing on stdout, one ``Error:`` line, non-zero exit."""
    assert code != 0
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    assert expected in lines[0]
