"""``raftkube up``: a local cluster, one operating-system process per member, on 127.0.0.1.

Port layout, from ``--port-base B`` (default 2379, so member 0 gets etcd's familiar ports):
member ``i`` serves clients on ``B + 2*i`` and Raft peers on ``B + 2*i + 1``. Every port is
checked before anything starts, so a busy port is one clear line instead of a member dying
half-way through an election.

Data layout under ``--data-dir`` (default ``.raftkube/cluster``): ``member-<i>/`` holds member
``i``'s WAL, ``tls/`` the CA and certificates generated once by ``--tls`` and reused, and
``cluster.json`` the size and id of the cluster, so running ``up`` again resumes the same
cluster (every member recovers from its WAL) and a mismatching ``--servers`` is refused rather
than silently starting a different cluster on old logs.

``up`` stays in the foreground: it streams each member's log prefixed by its id and, on Ctrl-C
or SIGTERM, sends SIGTERM to every member, waits ``--stop-timeout`` seconds and then SIGKILLs
whatever is left. Members also watch their stdin, a pipe from ``up``, so they stop even if
``up`` itself is killed.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.client import Client
from raftkube.clock import Clock, TrioClock, move_on_after, sleep_for
from raftkube.cluster.common import describe, expected_error, port_number, positive_int
from raftkube.cluster.member import add_read_flags
from raftkube.tls import ClusterCerts, client_context, ensure_cluster_certs

HOST = "127.0.0.1"


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
        help="seconds to wait for a leader before giving up (default 30)",
    )
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        help="seconds between SIGTERM and SIGKILL when stopping (default 10)",
    )
    add_read_flags(p)
    p.set_defaults(handler=run_up)


class UpError(Exception):
    """Bad input or a failed start, reported as one line."""


@attrs.frozen
class MemberPlan:
    """Where one member listens and keeps its data."""

    member_id: int
    client_port: int
    peer_port: int
    data_dir: Path

    @property
    def client_endpoint(self) -> str:
        return f"{HOST}:{self.client_port}"

    @property
    def peer_endpoint(self) -> str:
        return f"{HOST}:{self.peer_port}"


@attrs.frozen
class Plan:
    """Everything decided before the first process starts."""

    cluster_id: str
    data_dir: Path
    members: tuple[MemberPlan, ...]
    certs: ClusterCerts | None
    client_cert_auth: bool
    member_flags: tuple[str, ...] = ()
    """Flags passed through to every ``raftkube member`` (the read mode)."""

    @property
    def endpoints(self) -> list[str]:
        return [m.client_endpoint for m in self.members]

    def member_argv(self, m: MemberPlan) -> list[str]:
        """The member's command line: ``python -m raftkube.cluster``, which needs no entry
        points and is the same interpreter as ours."""
        peers = ",".join(f"{o.member_id}={o.peer_endpoint}" for o in self.members)
        clients = ",".join(f"{o.member_id}={o.client_endpoint}" for o in self.members)
        argv = [
            sys.executable,
            "-m",
            "raftkube.cluster",
            "member",
            "--id",
            str(m.member_id),
            "--peers",
            peers,
            "--client-endpoints",
            clients,
            "--client-port",
            str(m.client_port),
            "--data-dir",
            str(m.data_dir),
            "--cluster-id",
            self.cluster_id,
            "--stop-on-stdin-eof",
        ]
        if self.certs is not None:
            pair = self.certs.members[m.member_id]
            argv += ["--cert", str(pair.cert), "--key", str(pair.key)]
            argv += ["--cacert", str(self.certs.ca.cert)]
            if self.client_cert_auth:
                argv.append("--client-cert-auth")
        return argv + list(self.member_flags)

    def client_ssl_context(self) -> ssl.SSLContext | None:
        if self.certs is None:
            return None
        return client_context(self.certs.ca.cert, self.certs.client.cert, self.certs.client.key)


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UpError(f"data directory {directory} is not usable: {reason}") from None


def _check_port_free(port: int, what: str) -> None:
    """Bind like trio's listeners do (SO_REUSEADDR), so TIME_WAIT leftovers of a previous run
    do not count as busy but a live listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise UpError(
                f"port {port} ({what}) on {HOST} is not available: {exc.strerror or exc}; "
                "choose another --port-base"
            ) from None


def _cluster_file(args: argparse.Namespace) -> tuple[int, str]:
    """Reconcile the flags with ``cluster.json``: recorded values fill unset flags, and
    conflicting ones are refused."""
    path = args.data_dir / "cluster.json"
    recorded: dict[str, Any] = {}
    if path.exists():
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UpError(f"cannot read {path}: {exc}") from None
    servers = args.servers or recorded.get("servers") or 3
    cluster_id = args.cluster_id or recorded.get("cluster_id") or "raftkube"
    if recorded and recorded.get("servers") != servers:
        raise UpError(
            f"{args.data_dir} holds a {recorded.get('servers')}-member cluster; "
            f"changing it to {servers} members is not supported (use another --data-dir)"
        )
    if recorded and recorded.get("cluster_id") != cluster_id:
        raise UpError(
            f"{args.data_dir} holds cluster {recorded.get('cluster_id')!r}, not {cluster_id!r}"
        )
    return servers, cluster_id


def _record_cluster(data_dir: Path, servers: int, cluster_id: str) -> None:
    """Written only once every check passed, so a failed first start leaves no constraint."""
    path = data_dir / "cluster.json"
    if not path.exists():
        path.write_text(json.dumps({"servers": servers, "cluster_id": cluster_id}) + "\n")


def make_plan(args: argparse.Namespace) -> Plan:
    """Check every input and prepare the data directory; raises :class:`UpError`."""
    if args.client_cert_auth and not args.tls:
        raise UpError("--client-cert-auth needs --tls")
    _check_writable(args.data_dir)
    servers, cluster_id = _cluster_file(args)
    if args.port_base + 2 * servers - 1 > 65535:
        raise UpError(f"--port-base {args.port_base} leaves no room for {servers} members")
    members = tuple(
        MemberPlan(
            member_id=i,
            client_port=args.port_base + 2 * i,
            peer_port=args.port_base + 2 * i + 1,
            data_dir=args.data_dir / f"member-{i}",
        )
        for i in range(servers)
    )
    for m in members:
        _check_port_free(m.client_port, f"member {m.member_id} clients")
        _check_port_free(m.peer_port, f"member {m.member_id} peers")
    certs = ensure_cluster_certs(args.data_dir / "tls", range(servers)) if args.tls else None
    _record_cluster(args.data_dir, servers, cluster_id)
    flags = ("--read-mode", args.read_mode, "--max-clock-drift", repr(args.max_clock_drift))
    return Plan(cluster_id, args.data_dir, members, certs, args.client_cert_auth, flags)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


@attrs.define(eq=False)
class _Running:
    plan: MemberPlan
    process: trio.Process
    stopping: bool = False


async def _pump_log(member_id: int, stream: trio.abc.ReceiveStream) -> None:
    """Copy a member's output to our stderr line by line, prefixed with its id."""
    prefix = f"[member {member_id}] "
    buffer = b""
    try:
        while chunk := await stream.receive_some(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                _log(prefix + line.decode(errors="replace"))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    if buffer:
        _log(prefix + buffer.decode(errors="replace"))


async def _watch_exit(r: _Running, failed: trio.Event) -> None:
    code = await r.process.wait()
    if r.stopping:
        return
    _log(f"raftkube up: member {r.plan.member_id} exited unexpectedly (code {code})")
    failed.set()


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


async def _stop_all(running: list[_Running], timeout: float) -> bool:
    """SIGTERM everyone, wait up to ``timeout``, then SIGKILL; True if all stopped by
    themselves."""
    clean = True
    with trio.CancelScope(shield=True):
        for r in running:
            r.stopping = True
            if r.process.returncode is None:
                r.process.send_signal(signal.SIGTERM)
        with move_on_after(_CLOCK, timeout):
            for r in running:
                await r.process.wait()
        for r in running:
            if r.process.returncode is None:
                clean = False
                _log(f"raftkube up: member {r.plan.member_id} ignored SIGTERM; killing it")
                r.process.kill()
                await r.process.wait()
            if r.process.stdin is not None:
                await trio.aclose_forcefully(r.process.stdin)
    return clean


def _print_ready(plan: Plan, running: list[_Running], leader: int, term: int) -> None:
    lines = [
        f"raftkube: cluster {plan.cluster_id!r} is up with {len(plan.members)} members; "
        f"member {leader} leads (term {term})"
    ]
    for r in running:
        m = r.plan
        lines.append(
            f"  member {m.member_id}: client {m.client_endpoint}  peer {m.peer_endpoint}  "
            f"pid {r.process.pid}  data {m.data_dir}"
        )
    lines.append("point rkctl at it:")
    lines.append(f"  export RKCTL_ENDPOINTS={','.join(plan.endpoints)}")
    if plan.certs is not None:
        c = plan.certs
        flags = f"--cacert {c.ca.cert} --cert {c.client.cert} --key {c.client.key}"
        lines.append(f"  rkctl {flags} ...")
    lines.append("press Ctrl-C to stop")
    _say("\n".join(lines))


_CLOCK: Clock = TrioClock()
"""The launcher is a real process on wall time; its waits still go through a Clock."""


async def _cancel_after(seconds: float, scope: trio.CancelScope) -> None:
    await sleep_for(_CLOCK, seconds)
    scope.cancel()


async def _supervise(plan: Plan, args: argparse.Namespace) -> int:
    running: list[_Running] = []
    stop = trio.Event()
    failed = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as outer:

            async def on_signal() -> None:
                async for signum in signals:
                    _log(f"raftkube up: {signal.Signals(signum).name}: stopping the cluster")
                    stop.set()
                    return

            outer.start_soon(on_signal)
            # Log pumps and exit watchers end by themselves once the members exit; they get
            # two seconds for that once every member was told to stop.
            with trio.CancelScope() as members_scope:
                async with trio.open_nursery() as members:
                    try:
                        for m in plan.members:
                            process = await trio.lowlevel.open_process(
                                plan.member_argv(m),
                                stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                # Ctrl-C reaches only us; we stop the members in order.
                                start_new_session=True,
                            )
                            r = _Running(m, process)
                            running.append(r)
                            assert process.stdout is not None
                            members.start_soon(_pump_log, m.member_id, process.stdout)
                            members.start_soon(_watch_exit, r, failed)
                        code = await _wait_until_done(plan, args, running, stop, failed)
                    finally:
                        clean = await _stop_all(running, args.stop_timeout)
                        outer.start_soon(_cancel_after, 2.0, members_scope)
            _log("raftkube up: every member stopped")
            outer.cancel_scope.cancel()
        return code if clean else max(code, 1)
    raise AssertionError("unreachable: the nursery re-raises whatever ended it early")


async def _wait_until_done(
    plan: Plan,
    args: argparse.Namespace,
    running: list[_Running],
    stop: trio.Event,
    failed: trio.Event,
) -> int:
    """Wait for a leader and print how to connect, then wait for a signal. Returns the exit
    code: 0 after a requested stop, 1 if the cluster never came up."""
    ctx = plan.client_ssl_context()
    found: tuple[int, int] | None = None
    with move_on_after(_CLOCK, args.wait):
        while not (stop.is_set() or failed.is_set()):
            found = await _find_leader(plan, ctx)
            if found is not None:
                break
            await sleep_for(_CLOCK, 0.1)
    if stop.is_set():
        return 0
    if found is None:
        why = "a member exited" if failed.is_set() else f"no leader after {args.wait:g} s"
        _log(f"raftkube up: the cluster did not come up: {why}")
        return 1
    _print_ready(plan, running, *found)
    await stop.wait()
    return 0


def _kernel_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel just handed out on 127.0.0.1 (all bound at once)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def local_plan(data_dir: Path, servers: int = 3, cluster_id: str = "raftkube") -> Plan:
    """A plaintext plan on free ports picked by the kernel, for throw-away clusters (``raftkube
    bench`` without ``--endpoints``); members keep their data under ``data_dir``."""
    ports = _kernel_ports(2 * servers)
    members = tuple(
        MemberPlan(i, ports[2 * i], ports[2 * i + 1], data_dir / f"member-{i}")
        for i in range(servers)
    )
    return Plan(cluster_id, data_dir, members, None, False)


@asynccontextmanager
async def local_cluster(
    plan: Plan, *, wait: float = 30.0, stop_timeout: float = 10.0
) -> AsyncIterator[tuple[int, int]]:
    """Start every member of ``plan`` (output to ``DATA_DIR/member-<i>.log``), wait for a
    leader and yield its ``(id, term)``; on exit, stop every member as ``up`` does.

    Raises :class:`UpError` if a member exits or no leader appears within ``wait`` seconds."""
    running: list[_Running] = []
    logs = []
    try:
        for m in plan.members:
            m.data_dir.mkdir(parents=True, exist_ok=True)
            log = open(plan.data_dir / f"member-{m.member_id}.log", "wb")  # noqa: SIM115
            logs.append(log)
            process = await trio.lowlevel.open_process(
                plan.member_argv(m),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            running.append(_Running(m, process))
        ctx = plan.client_ssl_context()
        found: tuple[int, int] | None = None
        with move_on_after(_CLOCK, wait):
            while found is None:
                for r in running:
                    if r.process.returncode is not None:
                        raise UpError(
                            f"member {r.plan.member_id} exited with code "
                            f"{r.process.returncode} (log in {logs[r.plan.member_id].name})"
                        )
                found = await _find_leader(plan, ctx)
                if found is None:
                    await sleep_for(_CLOCK, 0.1)
        if found is None:
            raise UpError(f"no leader after {wait:g} s")
        yield found
    finally:
        try:
            await _stop_all(running, stop_timeout)
        finally:
            for log in logs:
                log.close()


def run_up(args: argparse.Namespace) -> int:
    """The ``raftkube up`` handler."""
    try:
        plan = make_plan(args)
    except UpError as exc:
        _log(f"raftkube up: {exc}")
        return 1
    except Exception as exc:
        cause = expected_error(exc)
        if cause is None:
            raise
        _log(f"raftkube up: {describe(cause)}")
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
