"""Growing an ``up`` cluster by one member: ``raftkube up --add-member``, and the running
``up``'s side of it.

Why the running ``up`` starts the new member, not the command: every member of an ``up``
cluster must be a child of one supervisor, so that Ctrl-C (or SIGTERM) stops them all in order,
a member never outlives its supervisor (its stdin is a pipe from it), and its log is
interleaved with the others'. A process started by ``--add-member`` would belong to nobody
once that command exits. So the command only *records* the new member in ``cluster.json``
(``added``, written atomically), and the running ``up``, which polls the file every
:data:`WATCH_INTERVAL` seconds, starts it as its own child with ``raftkube member --join``:
``member add`` as a learner, then ``member promote`` once the leader finds it in sync, which is
etcd's runbook. The command waits until ``member list`` shows the new member as a voter.

The record is what makes a later ``raftkube up`` resume every member, the added ones too (they
restart from their data dirs; ``joined.json`` there keeps the id the cluster gave). If no
cluster answers when the command runs, the member is recorded and the next ``raftkube up``
adds it once its founders have a leader.

Member ``i`` of the ``up`` (ports ``PORT_BASE + 2*i``, data dir ``member-<i>``, name
``member-<i>``) gets the Raft id ``member add`` answers, which is ``i`` unless members were
removed by hand (ids are never reused).
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Awaitable, Callable

import attrs
import trio

from raftkube.client import Client, ClientError
from raftkube.clock import Clock, move_on_after, sleep_for
from raftkube.cluster.processes import Child, log_line
from raftkube.cluster.up_plan import (
    MemberPlan,
    Plan,
    UpError,
    check_port_free,
    member_plan,
    read_cluster_file,
    recorded_size,
    write_cluster_file,
)
from raftkube.tls import client_context, ensure_cluster_certs

WATCH_INTERVAL = 0.5
"""Seconds between two reads of ``cluster.json`` by a running ``up``."""

StartMember = Callable[[MemberPlan, Plan], Awaitable[Child]]


def grown_plan(plan: Plan, port_base: int) -> Plan:
    """``plan`` with the members ``cluster.json`` records now (certificates for new ones)."""
    _, total = recorded_size(read_cluster_file(plan.data_dir))
    if total <= len(plan.members):
        return plan
    members = plan.members + tuple(
        member_plan(plan.data_dir, port_base, i) for i in range(len(plan.members), total)
    )
    certs = plan.certs
    if certs is not None:
        certs = ensure_cluster_certs(certs.ca.cert.parent, range(total))
    return attrs.evolve(plan, members=members, certs=certs)


async def start_added(
    plan: Plan, port_base: int, started: set[int], start: StartMember, clock: Clock, who: str
) -> None:
    """Start every added member not started yet, then keep watching ``cluster.json`` for more,
    until cancelled. ``started`` holds the indexes already running; ``start`` makes a member a
    child of the running ``up``."""
    complaint = ""
    while True:
        try:
            plan, complaint = grown_plan(plan, port_base), ""
        except Exception as exc:  # a bad edit of the file must not bring the cluster down
            if str(exc) != complaint:  # said once, not every poll
                complaint = str(exc)
                log_line(f"{who}: not adding members: {exc}")
        for m in plan.members:
            if m.member_id not in started:
                started.add(m.member_id)
                log_line(f"{who}: adding {m.name} (client {m.client_endpoint})")
                await start(m, plan)
        await sleep_for(clock, WATCH_INTERVAL)


async def _answers(endpoints: list[str], ctx: ssl.SSLContext | None, clock: Clock) -> bool:
    with move_on_after(clock, 2.0):
        try:
            async with Client(endpoints, attempts=1, request_timeout=1.0, ssl_context=ctx) as c:
                await c.status()
                return True
        except (ClientError, OSError, trio.TooSlowError, ExceptionGroup):
            return False
    return False


async def _voter(
    endpoints: list[str], ctx: ssl.SSLContext | None, name: str
) -> dict[str, object] | None:
    """The member named ``name`` once ``member list`` shows it as a voter."""
    try:
        async with Client(endpoints, attempts=1, request_timeout=1.0, ssl_context=ctx) as c:
            for m in await c.member_list():
                if m.get("name") == name and not m.get("isLearner"):
                    return m
    except (ClientError, OSError, trio.TooSlowError, ExceptionGroup):  # not answering yet
        pass
    return None


async def add_member(args: argparse.Namespace, clock: Clock, say: Callable[[str], None]) -> int:
    """The ``raftkube up --add-member`` handler's body; raises :class:`UpError`."""
    if args.servers is not None:
        raise UpError("--add-member adds one member; omit --servers")
    recorded = read_cluster_file(args.data_dir)
    if not recorded:
        raise UpError(
            f"{args.data_dir} holds no cluster (no cluster.json): start one with `raftkube up`"
        )
    if args.cluster_id is not None and args.cluster_id != recorded.get("cluster_id"):
        raise UpError(
            f"{args.data_dir} holds cluster {recorded.get('cluster_id')!r}, not {args.cluster_id!r}"
        )
    _, total = recorded_size(recorded)
    new = member_plan(args.data_dir, args.port_base, total)
    if new.peer_port > 65535:
        raise UpError(f"--port-base {args.port_base} leaves no room for member {total}")
    check_port_free(new.client_port, f"{new.name} clients")
    check_port_free(new.peer_port, f"{new.name} peers")
    plans = [member_plan(args.data_dir, args.port_base, i) for i in range(total)]
    endpoints = [m.client_endpoint for m in plans]
    ctx = None
    if args.tls:
        tls = args.data_dir / "tls"
        ctx = client_context(tls / "ca.crt", tls / "client.crt", tls / "client.key")
    running = await _answers(endpoints, ctx, clock)
    recorded["added"] = int(recorded.get("added", 0)) + 1
    write_cluster_file(args.data_dir, recorded)
    if not running:
        say(
            f"raftkube: recorded {new.name} in {args.data_dir}; no member answered at "
            f"{','.join(endpoints)}, so the next `raftkube up` adds it"
        )
        return 0
    found = None
    with move_on_after(clock, args.wait):
        while (found := await _voter(endpoints, ctx, new.name)) is None:
            await sleep_for(clock, WATCH_INTERVAL)
    if found is None:
        raise UpError(
            f"{new.name} is recorded but was not a voting member after {args.wait:g} s; "
            "see the running `raftkube up`'s log (it keeps trying)"
        )
    say(
        f"raftkube: added {new.name} (id {found['ID']:x}) to cluster "
        f"{recorded.get('cluster_id')!r}: client {new.client_endpoint}  peer "
        f"{new.peer_endpoint}  data {new.data_dir}; {total + 1} members"
    )
    say(f"  export RKCTL_ENDPOINTS={','.join([*endpoints, new.client_endpoint])}")
    return 0


__all__ = ["WATCH_INTERVAL", "add_member", "grown_plan", "start_added"]
