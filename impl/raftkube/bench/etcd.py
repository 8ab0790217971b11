"""The same write workload against etcd, for ``raftkube bench put --against-etcd``.

Issue 16 asks for raftkube's write rate *beside etcd's, measured in one run*: on a shared
2-core machine two figures taken minutes apart say as much about the neighbours as about the
two stores. This module starts a throw-away 3-member etcd cluster (Debian's ``etcd-server``,
fsync on as etcd always does it, peers and clients on loopback, data in a temporary
directory), drives it with the workload ``raftkube bench put`` sent to raftkube (the same keys,
the same value, ``--conns`` connections carrying ``--clients`` requesters, each requester one
request at a time), and reports it in the same :class:`~raftkube.bench.report.Summary`.

Why a Python gRPC client and not etcd's own ``benchmark`` tool: Debian ships no ``benchmark``
binary (only ``etcd`` and ``etcdctl``), and ``etcdctl check perf`` runs fixed, rate-limited
loads (its ``s`` load is 150 puts/s from 50 clients) that cannot be set to this workload. The
driver here uses `aetcd <https://aetcd.readthedocs.io>`_ (etcd's v3 gRPC API over grpcio, on
asyncio), one gRPC channel per ``--conns``, each on its own TCP connection (gRPC would
otherwise share one connection between channels to the same address, as etcd's benchmark tool
avoids too). Both stores are thus driven by a Python client on the same two cores, and the
benchmark's own CPU per acknowledged write is reported for each, so how much of the machine
each client took is visible beside the rates. Every request goes to the leader, as
raftkube's client ends up doing (it follows ``not_leader`` hints); etcd's followers would
forward proposals to it anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from raftkube.bench.report import Summary

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
"""Seconds the etcd members have to elect a leader."""
REQUEST_TIMEOUT = 10
"""Seconds a put may take before it counts as an error (raftkube's client waits as long)."""


class EtcdError(Exception):
    """etcd (or its Python client) is missing, or the cluster did not come up."""


@attrs.frozen
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"


def plan(data_dir: Path, ports: Sequence[int]) -> tuple[EtcdMember, ...]:
    """Members ``e0``, ``e1``, ... with client and peer ports taken two by two from ``ports``."""
    if len(ports) % 2:
        raise ValueError("ports come in pairs: a client port and a peer port per member")
    return tuple(
        EtcdMember(f"e{i}", ports[2 * i], ports[2 * i + 1], data_dir / f"e{i}")
        for i in range(len(ports) // 2)
    )


def member_argv(binary: str, member: EtcdMember, members: Sequence[EtcdMember]) -> list[str]:
    """The command line of one member of a new cluster (defaults otherwise: fsync on)."""
    cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
    return [
        binary,
        "--name",
        member.name,
        "--data-dir",
        str(member.data_dir),
        "--listen-client-urls",
        member.client_url,
        "--advertise-client-urls",
        member.client_url,
        "--listen-peer-urls",
        member.peer_url,
        "--initial-advertise-peer-urls",
        member.peer_url,
        "--initial-cluster",
        cluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "raftkube-bench",
        "--logger",
        "zap",
        "--log-level",
        "error",
    ]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel hands out on loopback (all bound at once, then
    released for etcd to take)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]


def _check_free(ports: Sequence[int]) -> None:
    """Refuse ports a server already listens on: the driver would find that server instead
    of the cluster it started, and measure it."""
    for port in ports:
        with socket.socket() as s:
            # As etcd (Go) binds: a port left in TIME_WAIT by the previous round is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError as exc:
                raise EtcdError(f"port {port} on {HOST} is not free: {exc.strerror}") from None


def find_binary(name: str = "etcd") -> str:
    """The etcd binary on PATH; raises :class:`EtcdError` saying how to get it."""
    found = shutil.which(name)
    if found is None:
        raise EtcdError(
            f"no {name!r} on PATH: install Debian's etcd-server (apt-get install etcd-server)"
        )
    return found


def _client_module() -> Any:
    try:
        import aetcd  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise EtcdError(
            "the etcd driver needs the aetcd package: pip install 'raftkube[etcd-bench]'"
        ) from None
    return aetcd


@contextlib.contextmanager
def etcd_cluster(ports: Sequence[int], binary: str | None = None) -> Iterator[str]:
    """Start a fresh etcd cluster (one member per pair of ``ports``) in a temporary directory
    and yield its leader's client endpoint (``host:port``); stop the members (SIGTERM, then
    SIGKILL after 10 s) and remove the directory on exit."""
    etcd = binary or find_binary()
    _client_module()
    _check_free(ports)
    with tempfile.TemporaryDirectory(prefix="raftkube-bench-etcd-") as tmp:
        members = plan(Path(tmp), ports)
        procs: list[subprocess.Popen[bytes]] = []
        logs = []
        try:
            for m in members:
                log = open(Path(tmp) / f"{m.name}.log", "wb")  # noqa: SIM115
                logs.append(log)
                procs.append(
                    subprocess.Popen(
                        member_argv(etcd, m, members),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            yield asyncio.run(_wait_for_leader(members, procs))
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            for log in logs:
                log.close()


async def _wait_for_leader(
    members: Sequence[EtcdMember], procs: Sequence[subprocess.Popen[bytes]]
) -> str:
    aetcd = _client_module()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        for m, p in zip(members, procs, strict=True):
            if p.poll() is not None:
                raise EtcdError(f"etcd member {m.name} exited with code {p.returncode}")
        client = aetcd.Client(host=HOST, port=members[0].client_port, timeout=1)
        try:
            status = await client.status()
            if status.leader is not None and status.leader.client_urls:
                return str(status.leader.client_urls[0]).removeprefix("http://")
            last = "no leader yet"
        except Exception as exc:  # Any failure means "not up yet": retried.
            last = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                await client.close()
        await asyncio.sleep(0.2)
    raise EtcdError(f"the etcd cluster had no leader within {STARTUP_TIMEOUT:g} s ({last})")


def drive_puts(
    endpoint: str, conns: int, clients: int, keys: Sequence[bytes], value: bytes
) -> Summary:
    """Put ``keys[n]`` = ``value`` for every n, through ``conns`` channels to ``endpoint``
    shared by ``clients`` requesters (requester i uses channel i mod conns), as
    ``raftkube bench put`` does against raftkube."""
    return asyncio.run(_drive_puts(endpoint, conns, clients, keys, value))


async def _drive_puts(
    endpoint: str, conns: int, clients: int, keys: Sequence[bytes], value: bytes
) -> Summary:
    aetcd = _client_module()
    host, _, port = endpoint.rpartition(":")
    # Without a local subchannel pool, gRPC gives every channel to one address the same TCP
    # connection, and --conns would change nothing.
    options = {"grpc.use_local_subchannel_pool": 1}
    pool = [
        aetcd.Client(host=host, port=int(port), timeout=REQUEST_TIMEOUT, options=options)
        for _ in range(conns)
    ]
    latencies: list[float] = []
    errors = 0
    counter = iter(range(len(keys)))

    async def requester(client: Any) -> None:
        nonlocal errors
        for n in counter:
            started = time.perf_counter()
            try:
                await client.put(keys[n], value)
            except Exception:  # Counted, as raftkube's driver counts its errors.
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    try:
        for client in pool:
            await client.connect()
            await client.status()  # The connection is up before the clock starts.
        started = time.perf_counter()
        await asyncio.gather(*(requester(pool[n % conns]) for n in range(clients)))
        elapsed = time.perf_counter() - started
    finally:
        for client in pool:
            await client.close()
    return Summary(elapsed, tuple(latencies), errors)
