"""``rkctl member list``, ``endpoint status``, ``endpoint health`` and ``version``: the
commands about the cluster rather than its keys, with etcdctl's output (the rows they gather
are printed by :mod:`raftkube.rkctl.output`). Membership changes are
:mod:`raftkube.rkctl.member_commands`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time
from collections.abc import Sequence
from typing import Any

import trio

from raftkube.api import wire
from raftkube.client import Client
from raftkube.rkctl.commands import Context
from raftkube.rkctl.connection import split_endpoints
from raftkube.rkctl.errors import CommandError, describe, one_line
from raftkube.rkctl.member_commands import member_rows
from raftkube.rkctl.output import HealthRow, MemberRow, StatusRow


def _version() -> str:
    try:
        return importlib.metadata.version("raftkube")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def _member_rows(c: Client) -> tuple[Any, list[MemberRow]]:
    msg = await c.call("member_list", {})
    header = wire.decode_header(msg["header"])
    return header, member_rows(msg["body"].get("members", []))


async def cmd_member_list(ctx: Context, ns: argparse.Namespace) -> int:
    with ctx.deadline():
        async with ctx.settings.client() as c:
            header, rows = await _member_rows(c)
    ctx.printer.member_list(header, rows)
    return 0


async def _target_endpoints(ctx: Context, ns: argparse.Namespace) -> list[str]:
    """``--endpoints``, or with ``--cluster`` every member's client URL (as etcdctl does)."""
    if not ns.cluster:
        return list(ctx.settings.endpoints)
    with ctx.deadline():
        async with ctx.settings.client() as c:
            _, rows = await _member_rows(c)
    urls = [u for m in rows for u in m.client_urls]
    return split_endpoints(",".join(urls)) if urls else list(ctx.settings.endpoints)


async def _each(endpoints: Sequence[str], probe: Any) -> list[Any]:
    """Run ``probe(endpoint)`` for every endpoint concurrently, results in endpoint order."""
    results: list[Any] = [None] * len(endpoints)

    async def one(i: int, ep: str) -> None:
        results[i] = await probe(ep)

    async with trio.open_nursery() as nursery:
        for i, ep in enumerate(endpoints):
            nursery.start_soon(one, i, ep)
    return results


async def cmd_endpoint_status(ctx: Context, ns: argparse.Namespace) -> int:
    endpoints = await _target_endpoints(ctx, ns)

    async def probe(ep: str) -> StatusRow | str:
        try:
            with ctx.deadline():
                async with ctx.settings.client([ep]) as c:
                    st = await c.status()
        except Exception as exc:
            described = describe(exc)
            return described[0] if described else str(exc)
        return StatusRow(
            endpoint=ep,
            header=st["header"],
            version=_version(),
            leader=int(st.get("leader", -1)),
            raft_index=int(st.get("raft_index", 0)),
            raft_applied_index=int(st.get("raft_applied_index", 0)),
            is_learner=bool(st.get("is_learner", False)),
            errors=tuple(str(e) for e in st.get("errors", ())),
        )

    results = await _each(endpoints, probe)
    ok = [r for r in results if isinstance(r, StatusRow)]
    for ep, r in zip(endpoints, results, strict=True):
        if isinstance(r, str):
            ctx.stderr.write(f"Error: failed to get the status of endpoint {ep} ({one_line(r)})\n")
    if ok:
        ctx.printer.endpoint_status(ok)
    return 0 if len(ok) == len(results) else 1


async def cmd_endpoint_health(ctx: Context, ns: argparse.Namespace) -> int:
    """A linearizable read through each endpoint: it needs a leader and a quorum, as etcd's
    health check (a ``get health``) does."""
    endpoints = await _target_endpoints(ctx, ns)

    async def probe(ep: str) -> HealthRow:
        start = time.perf_counter()
        try:
            with ctx.deadline():
                async with ctx.settings.client([ep]) as c:
                    await c.get(b"health")
        except Exception as exc:
            described = describe(exc)
            reason = described[0] if described else str(exc)
            return HealthRow(ep, False, time.perf_counter() - start, one_line(reason))
        return HealthRow(ep, True, time.perf_counter() - start)

    checks = await _each(endpoints, probe)
    ctx.printer.endpoint_health(checks, ctx.stderr)
    if all(c.health for c in checks):
        return 0
    raise CommandError("unhealthy cluster")


async def cmd_version(ctx: Context, ns: argparse.Namespace) -> int:
    ctx.printer.line(f"rkctl version: {_version()}")
    ctx.printer.line("API version: 3")
    return 0
