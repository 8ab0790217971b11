"""``raftkube up``: a local cluster, one operating-system process per member, on 127.0.0.1.

Port layout, from ``--port-base B`` (default 2379, so member 0 gets etcd's familiar ports):
member ``i`` serves clients on ``B + 2*i`` and Raft peers on ``B + 2*i + 1``; the Kubernetes
API server listens on ``--apiserver-port`` (default 6443, kube-apiserver's). Every port is
checked before anything starts, so a busy port is one clear line instead of a member dying
half-way through an election.

Data layout under ``--data-dir`` (default ``.raftkube/cluster``): ``member-<i>/`` holds member
``i``'s WAL, ``tls/`` the CA and certificates generated once by ``--tls`` and reused, and
``cluster.json`` the size and id of the cluster, so running ``up`` again resumes the same
cluster (every member recovers from its WAL) and a mismatching ``--servers`` is refused rather
than silently starting a different cluster on old logs. Member ``i`` is named ``member-<i>``
(``member list`` shows it); members added later by ``up --add-member`` are recorded there too
and started with ``--join`` (:mod:`raftkube.cluster.up_grow`). The API server's certificates and
kubeconfigs (``pki/``, ``admin.kubeconfig``...) are described in
:mod:`raftkube.cluster.control_plane`.

Start order: the members, then, once they have a leader, the API server (it talks to the store
over the members' client endpoints); ``up`` waits for its ``/readyz`` as ``kubernetes-admin``
before printing how to connect. ``up`` stays in the foreground: it streams every child's log
prefixed by its name (``[member 0]``, ``[apiserver]``) and, on Ctrl-C or SIGTERM, stops the
API server first (it must not see its store vanish under live requests) and then the members:
SIGTERM, ``--stop-timeout`` seconds, then SIGKILL for whatever is left. Children also watch
their stdin, a pipe from ``up``, so they stop even if ``up`` itself is killed.

What is decided before anything starts (the plan, and every check of the flags) is
:mod:`raftkube.cluster.up_plan`; this module starts, supervises and stops the processes.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import trio

from raftkube.apiserver.cli import go_duration
from raftkube.client import Client
from raftkube.clock import Clock, TrioClock, move_on_after, sleep_for
from raftkube.cluster.common import (
    describe,
    expected_error,
    non_negative_int,
    port_number,
    positive_int,
)
from raftkube.cluster.control_plane import (
    DEFAULT_PORT,
    ControlPlanePlan,
    probe_ready,
)
from raftkube.cluster.member import add_compaction_flags, add_read_flags
from raftkube.cluster.processes import Child, log_line, pump_log, spawn, stop_all, watch_exit
from raftkube.cluster.timing import add_timing_flags
from raftkube.cluster.up_grow import add_member, start_added
from raftkube.cluster.up_plan import MemberPlan, Plan, UpError, local_plan, make_plan

T = TypeVar("T")


def register(commands: Any) -> None:
    """Add ``raftkube up`` to the ``raftkube`` command."""
    p = commands.add_parser(
        "up",
        help="start a local cluster, one process per member, until Ctrl-C",
        description="Start (or resume) a local raftkube cluster on 127.0.0.1. Member i serves "
        "clients on PORT_BASE+2*i and peers on PORT_BASE+2*i+1.",
    )
    p.add_argument(
        "--servers",
        type=positive_int,
        default=None,
        help="number of members (default 3, or what the data dir was created with)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".raftkube") / "cluster",
        help="where WALs, certificates and cluster.json live (default .raftkube/cluster)",
    )
    p.add_argument("--port-base", type=port_number, default=2379, help="first port (default 2379)")
    p.add_argument("--cluster-id", default=None, help="cluster id (default raftkube)")
    p.add_argument(
        "--apiserver-port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"the Kubernetes API server's HTTPS port (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--nodes",
        type=non_negative_int,
        default=2,
        help="kubelets to run, each a process with the process runtime (default 2)",
    )
    p.add_argument(
        "--sim-nodes",
        type=non_negative_int,
        default=0,
        help="simulated nodes (kubelets over the simulated runtime, as kwok's) to add, all "
        "served by one process (default 0)",
    )
    p.add_argument(
        "--kubelet-port-base",
        type=port_number,
        default=10250,
        help="kubelet i serves its logs on this port + i (default 10250, the kubelet's)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="generate a CA and certificates in DATA_DIR/tls once, and use TLS everywhere",
    )
    p.add_argument(
        "--client-cert-auth",
        action="store_true",
        help="with --tls: clients must present a certificate (DATA_DIR/tls/client.crt)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for a leader and a ready API server before giving up (default 30)",
    )
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="seconds between SIGTERM and SIGKILL when stopping (default 10)",
    )
    p.add_argument(
        "--add-member",
        action="store_true",
        help="add one member to the cluster in DATA_DIR (same --data-dir, --port-base and "
        "--tls as its `raftkube up`): the running `up` starts it as a learner and promotes "
        "it once in sync; waits until it votes",
    )
    p.add_argument(
        "--etcd-compaction-interval",
        type=_compaction_interval,
        default="5m",
        help="the API server's interval of compaction requests (a Go duration, default 5m; "
        "0 disables them), passed to `raftkube apiserver`",
    )
    add_read_flags(p)
    add_compaction_flags(p)
    add_timing_flags(p)
    p.set_defaults(handler=run_up)


def _compaction_interval(text: str) -> str:
    """Checked as the API server will read it (so a bad one is refused before anything
    starts), and passed on as written."""
    go_duration(text)
    return text.strip()


WHO = "raftkube up"
"""How the launcher names itself in its own log lines."""

POLL_INTERVAL = 0.1
"""Seconds between two probes of a starting cluster (leader, API server readiness)."""

_CLOCK: Clock = TrioClock()
"""The launcher is a real process on wall time; its waits still go through a Clock."""


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _find_leader(plan: Plan, ctx: ssl.SSLContext | None) -> tuple[int, int] | None:
    """One round of ``status`` calls; the leader's id and term if some member leads."""
    for m in plan.members:
        try:
            with move_on_after(_CLOCK, 1.0):
                async with Client(
                    [m.client_endpoint], attempts=1, request_timeout=1.0, ssl_context=ctx
                ) as c:
                    status = await c.status()
                    if status.get("is_leader"):
                        return m.member_id, int(status["header"].raft_term)
        except Exception:
            continue
    return None


async def _poll(
    probe: Callable[[], Awaitable[T | None]], deadline: float, halted: Callable[[], bool]
) -> T | None:
    """Call ``probe`` every :data:`POLL_INTERVAL` until it returns something, ``halted()``
    turns true (it may also raise) or ``deadline`` (on the launcher's clock) passes."""
    with move_on_after(_CLOCK, deadline - _CLOCK.now()):
        while not halted():
            found = await probe()
            if found is not None:
                return found
            await sleep_for(_CLOCK, POLL_INTERVAL)
    return None


async def _wait_ready(cp: ControlPlanePlan, deadline: float, halted: Callable[[], bool]) -> bool:
    """Poll the API server's ``/readyz`` as ``kubernetes-admin`` until it answers 200."""

    async def ready() -> bool | None:
        return True if await probe_ready(client) else None

    async with cp.admin_client() as client:
        return await _poll(ready, deadline, halted) is not None


def _print_ready(
    plan: Plan,
    members: tuple[list[Child], list[MemberPlan]],
    servers: list[Child],
    leader: int,
    term: int,
) -> None:
    lines = [
        f"raftkube: cluster {plan.cluster_id!r} is up with {len(plan.members)} members; "
        f"member {leader} leads (term {term})"
    ]
    for child, m in sorted(zip(*members, strict=True), key=lambda cm: cm[1].member_id):
        lines.append(
            f"  member {m.member_id} ({m.name}): client {m.client_endpoint}  peer "
            f"{m.peer_endpoint}  pid {child.process.pid}  data {m.data_dir}"
        )
    cp = plan.control_plane
    if cp is not None:
        for child in servers:
            where = f"{cp.server}  " if child.name == "apiserver" else ""
            pki = f"  pki {cp.pki.root}" if child.name == "apiserver" else ""
            lines.append(f"  {child.name}: {where}pid {child.process.pid}{pki}")
    lines.append("point rkctl at it:")
    lines.append(f"  export RKCTL_ENDPOINTS={','.join(plan.endpoints)}")
    if plan.certs is not None:
        c = plan.certs
        flags = f"--cacert {c.ca.cert} --cert {c.client.cert} --key {c.client.key}"
        lines.append(f"  rkctl {flags} ...")
    if cp is not None:
        lines.append("point kubectl at it (as kubernetes-admin; `kubectl get ns` works now):")
        lines.append(f"  export KUBECONFIG={cp.admin_kubeconfig}")
    lines.append("press Ctrl-C to stop")
    _say("\n".join(lines))


async def _cancel_after(seconds: float, scope: trio.CancelScope) -> None:
    await sleep_for(_CLOCK, seconds)
    scope.cancel()


Start = Callable[[str, list[str]], Awaitable[Child]]


async def _supervise(plan: Plan, args: argparse.Namespace) -> int:
    members: list[Child] = []
    started: list[MemberPlan] = []
    servers: list[Child] = []
    stop = trio.Event()
    failed = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as outer:

            async def on_signal() -> None:
                async for signum in signals:
                    log_line(f"{WHO}: {signal.Signals(signum).name}: stopping the cluster")
                    stop.set()
                    return

            outer.start_soon(on_signal)
            # Log pumps and exit watchers end by themselves once the children exit; they get
            # two seconds for that once every child was told to stop.
            with trio.CancelScope() as children_scope:
                async with trio.open_nursery() as children:

                    async def start(name: str, argv: list[str]) -> Child:
                        child = await spawn(name, argv, subprocess.PIPE)
                        assert child.process.stdout is not None
                        children.start_soon(pump_log, f"[{name}] ", child.process.stdout)
                        children.start_soon(watch_exit, child, failed, WHO)
                        return child

                    async def start_member(m: MemberPlan, current: Plan) -> Child:
                        child = await start(f"member {m.member_id}", current.member_argv(m))
                        members.append(child)
                        started.append(m)
                        return child

                    async def grow() -> None:
                        """Added members that still need a quorum to join, and any that
                        ``raftkube up --add-member`` records from now on."""
                        have = {m.member_id for m in started}
                        children.start_soon(
                            start_added, plan, args.port_base, have, start_member, _CLOCK, WHO
                        )

                    try:
                        for m in plan.members:
                            # An added member that has not joined yet needs the founders'
                            # leader to answer its `member add`: it waits for one (grow).
                            if not plan.is_added(m) or plan.has_joined(m):
                                await start_member(m, plan)
                        code = await _wait_until_done(
                            plan, args, start, (members, started), servers, stop, failed, grow
                        )
                    finally:
                        clean = await stop_all(servers, args.stop_timeout, _CLOCK, WHO)
                        clean = await stop_all(members, args.stop_timeout, _CLOCK, WHO) and clean
                        outer.start_soon(_cancel_after, 2.0, children_scope)
            log_line(f"{WHO}: every member stopped")
            outer.cancel_scope.cancel()
        return code if clean else max(code, 1)
    raise AssertionError("unreachable: the nursery re-raises whatever ended it early")


async def _wait_until_done(
    plan: Plan,
    args: argparse.Namespace,
    start: Start,
    members: tuple[list[Child], list[MemberPlan]],
    servers: list[Child],
    stop: trio.Event,
    failed: trio.Event,
    grow: Callable[[], Awaitable[None]],
) -> int:
    """Wait for a leader, start the added members still to join and watch for more, start the
    API server and wait until it is ready, print how to connect, then wait for a signal.
    Returns the exit code: 0 after a requested stop, 1 if the cluster never came up."""
    deadline = _CLOCK.now() + args.wait

    def halted() -> bool:
        return stop.is_set() or failed.is_set()

    ctx = plan.client_ssl_context()
    found = await _poll(lambda: _find_leader(plan, ctx), deadline, halted)
    why = f"no leader after {args.wait:g} s"
    cp = plan.control_plane
    if found is not None and not halted():
        await grow()
    if found is not None and cp is not None and not halted():
        servers.append(await start("apiserver", cp.argv(plan.endpoints)))
        if not await _wait_ready(cp, deadline, halted):
            found, why = None, f"the API server was not ready after {args.wait:g} s"
        else:
            servers.append(await start("controller-manager", cp.controller_manager_argv()))
            servers.append(await start("scheduler", cp.scheduler_argv()))
            for node in cp.nodes:
                servers.append(await start(f"kubelet {node.name}", cp.kubelet_argv(node)))
            if cp.sim_nodes:
                servers.append(await start("sim-nodes", cp.sim_nodes_argv()))
            if cp.nodes:
                servers.append(await start("proxy", cp.proxy_argv()))
    if stop.is_set():
        return 0
    if found is None:
        log_line(
            f"{WHO}: the cluster did not come up: {'a process exited' if failed.is_set() else why}"
        )
        return 1
    _print_ready(plan, members, servers, *found)
    await stop.wait()
    return 0


@asynccontextmanager
async def local_cluster(
    plan: Plan,
    *,
    wait: float = 30.0,
    stop_timeout: float = 10.0,
    member_children: list[Child] | None = None,
) -> AsyncIterator[tuple[int, int]]:
    """Start every member of ``plan`` (output to ``DATA_DIR/member-<i>.log``), wait for a
    leader, then start the plan's API server if it has one (output to ``DATA_DIR/apiserver.log``)
    and wait until it is ready; yield the leader's ``(id, term)``. On exit, stop everything as
    ``up`` does, the API server first. ``member_children``, if given, receives each member's
    process as it starts (for a caller that measures them).

    Raises :class:`UpError` if a process exits or the cluster is not up within ``wait``
    seconds."""
    members: list[Child] = [] if member_children is None else member_children
    servers: list[Child] = []
    logs: dict[str, IO[bytes]] = {}

    async def start(name: str, argv: list[str], log_name: str) -> Child:
        log = logs[name] = open(plan.data_dir / log_name, "wb")  # noqa: SIM115
        return await spawn(name, argv, log)

    def halted() -> bool:
        for child in (*members, *servers):
            if child.process.returncode is not None:
                raise UpError(
                    f"{child.name} exited with code {child.process.returncode} "
                    f"(log in {logs[child.name].name})"
                )
        return False

    try:
        deadline = _CLOCK.now() + wait
        for m in plan.members:
            m.data_dir.mkdir(parents=True, exist_ok=True)
            name = f"member {m.member_id}"
            members.append(await start(name, plan.member_argv(m), f"member-{m.member_id}.log"))
        ctx = plan.client_ssl_context()
        found = await _poll(lambda: _find_leader(plan, ctx), deadline, halted)
        if found is None:
            raise UpError(f"no leader after {wait:g} s")
        cp = plan.control_plane
        if cp is not None:
            servers.append(await start("apiserver", cp.argv(plan.endpoints), "apiserver.log"))
            if not await _wait_ready(cp, deadline, halted):
                raise UpError(
                    f"the API server was not ready after {wait:g} s "
                    f"(log in {logs['apiserver'].name})"
                )
        yield found
    finally:
        try:
            await stop_all(servers, stop_timeout, _CLOCK, "raftkube")
            await stop_all(members, stop_timeout, _CLOCK, "raftkube")
        finally:
            for log in logs.values():
                log.close()


def run_up(args: argparse.Namespace) -> int:
    """The ``raftkube up`` handler."""
    try:
        if args.add_member:
            return trio.run(add_member, args, _CLOCK, _say)
        plan = make_plan(args)
    except UpError as exc:
        log_line(f"{WHO}: {exc}")
        return 1
    except Exception as exc:
        cause = expected_error(exc)
        if cause is None:
            raise
        log_line(f"{WHO}: {describe(cause)}")
        return 1
    return trio.run(_supervise, plan, args)


__all__ = [
    "MemberPlan",
    "Plan",
    "UpError",
    "local_cluster",
    "local_plan",
    "make_plan",
    "register",
    "run_up",
]
