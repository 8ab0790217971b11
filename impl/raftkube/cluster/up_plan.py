"""What ``raftkube up`` decides before the first process starts: the plan (ports, data
directories, certificates, the members' command lines, the API server), built from the flags
with every input checked (``make_plan``), or on free ports for throw-away clusters
(``local_plan``). Starting and supervising the processes is :mod:`raftkube.cluster.up`'s job.

Every check raises :class:`UpError` with one line naming the flag to change, before anything
is written except the data directory itself; ``cluster.json`` is recorded only once every
check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

import attrs

from raftkube.cluster.control_plane import (
    ControlPlanePlan,
    plan_control_plane,
)
from raftkube.cluster.join import JOINED_FILE
from raftkube.cluster.member import compaction_argv
from raftkube.cluster.timing import TimingConfigError, raft_timing, timing_argv
from raftkube.server.compactor import AutoCompaction, CompactionConfigError
from raftkube.tls import ClusterCerts, client_context, ensure_cluster_certs

HOST = "127.0.0.1"


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
    def name(self) -> str:
        """What ``member list`` shows: the name of its data directory (etcd's tooling names
        members the same way: ``infra1``..., one name per data dir)."""
        return f"member-{self.member_id}"

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
    """Flags passed through to every ``raftkube member`` (read mode, auto-compaction)."""
    control_plane: ControlPlanePlan | None = None
    """The API server, or None for a store alone (``raftkube bench put|range``)."""
    initial: int | None = None
    """How many of ``members`` formed the cluster (``--peers``); the others were added later
    through the membership API (``raftkube up --add-member``). None: all of them."""

    @property
    def endpoints(self) -> list[str]:
        return [m.client_endpoint for m in self.members]

    @property
    def founders(self) -> tuple[MemberPlan, ...]:
        """The members the cluster was created with."""
        return self.members if self.initial is None else self.members[: self.initial]

    def is_added(self, m: MemberPlan) -> bool:
        return m not in self.founders

    def has_joined(self, m: MemberPlan) -> bool:
        """Whether an added member already got its id from the cluster (a restart, which may
        be needed for a quorum), rather than still having to ask for one (which needs one)."""
        return (m.data_dir / JOINED_FILE).exists()

    def member_argv(self, m: MemberPlan) -> list[str]:
        """The member's command line: ``python -m raftkube.cluster``, which needs no entry
        points and is the same interpreter as ours. An added member is started with
        ``--join`` (learner first, promoted once in sync; a restart if it already joined)."""
        if self.is_added(m):
            return self._join_argv(m)
        founders = self.founders
        peers = ",".join(f"{o.member_id}={o.peer_endpoint}" for o in founders)
        clients = ",".join(f"{o.member_id}={o.client_endpoint}" for o in founders)
        names = ",".join(f"{o.member_id}={o.name}" for o in founders)
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
            "--name",
            m.name,
            "--peer-names",
            names,
        ]
        return argv + self._common_argv(m)

    def _join_argv(self, m: MemberPlan) -> list[str]:
        others = ",".join(o.client_endpoint for o in self.members if o != m)
        argv = [sys.executable, "-m", "raftkube.cluster", "member", "--join", others]
        argv += ["--name", m.name, "--peer-address", m.peer_endpoint]
        if self.certs is not None:  # the join's own requests, as rkctl's --cert/--key
            argv += ["--join-cert", str(self.certs.client.cert)]
            argv += ["--join-key", str(self.certs.client.key)]
        return argv + self._common_argv(m)

    def _common_argv(self, m: MemberPlan) -> list[str]:
        argv = ["--client-port", str(m.client_port), "--data-dir", str(m.data_dir)]
        argv += ["--cluster-id", self.cluster_id, "--stop-on-stdin-eof"]
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


def check_port_free(port: int, what: str, flag: str = "--port-base") -> None:
    """Bind like trio's listeners do (SO_REUSEADDR), so TIME_WAIT leftovers of a previous run
    do not count as busy but a live listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise UpError(
                f"port {port} ({what}) on {HOST} is not available: {exc.strerror or exc}; "
                f"choose another {flag}"
            ) from None


CLUSTER_FILE = "cluster.json"
"""In the data dir: ``servers`` (the members the cluster was created with), ``cluster_id``,
and ``added`` (members added since, by ``raftkube up --add-member``)."""


def read_cluster_file(data_dir: Path) -> dict[str, Any]:
    """The data dir's record, or ``{}`` before the first start; raises :class:`UpError`."""
    path = data_dir / CLUSTER_FILE
    if not path.exists():
        return {}
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UpError(f"cannot read {path}: {exc}") from None
    if not isinstance(recorded, dict):
        raise UpError(f"cannot read {path}: not a JSON object")
    return recorded


def write_cluster_file(data_dir: Path, recorded: dict[str, Any]) -> None:
    """Replace the record atomically: a running ``up`` reads it while it watches for added
    members, and must never see half a file."""
    tmp = data_dir / (CLUSTER_FILE + ".tmp")
    tmp.write_text(json.dumps(recorded, sort_keys=True) + "\n")
    os.replace(tmp, data_dir / CLUSTER_FILE)


def recorded_size(recorded: dict[str, Any]) -> tuple[int, int]:
    """``(founders, all members)`` of a record."""
    founders = int(recorded.get("servers", 0))
    return founders, founders + int(recorded.get("added", 0))


def _cluster_file(args: argparse.Namespace) -> tuple[int, int, str]:
    """Reconcile the flags with ``cluster.json``: recorded values fill unset flags, and
    conflicting ones are refused. Returns the founders' count, all members' and the id."""
    recorded = read_cluster_file(args.data_dir)
    founders, total = recorded_size(recorded)
    servers = args.servers or total or 3
    cluster_id = args.cluster_id or recorded.get("cluster_id") or "raftkube"
    if recorded and total != servers:
        raise UpError(
            f"{args.data_dir} holds a {total}-member cluster; starting it with {servers} "
            "members is not supported (add members with `raftkube up --add-member`, or use "
            "another --data-dir)"
        )
    if recorded and recorded.get("cluster_id") != cluster_id:
        raise UpError(
            f"{args.data_dir} holds cluster {recorded.get('cluster_id')!r}, not {cluster_id!r}"
        )
    return founders or servers, servers, cluster_id


def _record_cluster(data_dir: Path, servers: int, cluster_id: str) -> None:
    """Written only once every check passed, so a failed first start leaves no constraint."""
    if not (data_dir / CLUSTER_FILE).exists():
        write_cluster_file(data_dir, {"servers": servers, "cluster_id": cluster_id})


def member_plan(data_dir: Path, port_base: int, i: int) -> MemberPlan:
    """Member ``i`` of an ``up`` cluster: its ports from ``--port-base``, its data dir."""
    return MemberPlan(i, port_base + 2 * i, port_base + 2 * i + 1, data_dir / f"member-{i}")


def make_plan(args: argparse.Namespace) -> Plan:
    """Check every input and prepare the data directory; raises :class:`UpError`."""
    if args.client_cert_auth and not args.tls:
        raise UpError("--client-cert-auth needs --tls")
    try:
        AutoCompaction.parse(args.auto_compaction_mode, args.auto_compaction_retention)
        raft_timing(args.heartbeat_interval, args.election_timeout)
    except (CompactionConfigError, TimingConfigError) as exc:
        raise UpError(str(exc)) from None
    _check_writable(args.data_dir)
    founders, servers, cluster_id = _cluster_file(args)
    if args.port_base + 2 * servers - 1 > 65535:
        raise UpError(f"--port-base {args.port_base} leaves no room for {servers} members")
    members = tuple(member_plan(args.data_dir, args.port_base, i) for i in range(servers))
    for m in members:
        if args.apiserver_port in (m.client_port, m.peer_port):
            raise UpError(
                f"--apiserver-port {args.apiserver_port} is member {m.member_id}'s port; "
                "choose another --apiserver-port or --port-base"
            )
        check_port_free(m.client_port, f"member {m.member_id} clients")
        check_port_free(m.peer_port, f"member {m.member_id} peers")
    check_port_free(args.apiserver_port, "the API server", "--apiserver-port")
    kubelet_ports = [args.kubelet_port_base + i for i in range(args.nodes)]
    taken = {args.apiserver_port, *(p for m in members for p in (m.client_port, m.peer_port))}
    for i, port in enumerate(kubelet_ports):
        if port in taken or port > 65535:
            raise UpError(f"kubelet {i}'s port {port} is taken by the cluster; "
                          "choose another --kubelet-port-base")  # fmt: skip
        check_port_free(port, f"kubelet {i}", "--kubelet-port-base")
    certs = ensure_cluster_certs(args.data_dir / "tls", range(servers)) if args.tls else None
    control_plane = plan_control_plane(
        args.data_dir, HOST, args.apiserver_port, certs,
        nodes=args.nodes, kubelet_ports=kubelet_ports, sim_nodes=args.sim_nodes,
        etcd_compaction_interval=args.etcd_compaction_interval,
    )  # fmt: skip
    _record_cluster(args.data_dir, servers, cluster_id)
    flags: tuple[str, ...] = ("--read-mode", args.read_mode, "--max-clock-drift")
    flags += (repr(args.max_clock_drift), *compaction_argv(args), *timing_argv(args))
    return Plan(
        cluster_id, args.data_dir, members, certs, args.client_cert_auth, flags, control_plane,
        initial=founders,
    )  # fmt: skip


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


def local_plan(
    data_dir: Path,
    servers: int = 3,
    cluster_id: str = "raftkube",
    *,
    apiserver: bool = False,
    member_flags: tuple[str, ...] = (),
) -> Plan:
    """A plaintext plan on free ports picked by the kernel, for throw-away clusters (``raftkube
    bench`` without ``--endpoints`` or ``--kubeconfig``); members keep their data under
    ``data_dir`` and get ``member_flags``. With ``apiserver``, an API server too, its PKI and
    kubeconfigs in ``data_dir``."""
    ports = _kernel_ports(2 * servers + (1 if apiserver else 0))
    members = tuple(
        MemberPlan(i, ports[2 * i], ports[2 * i + 1], data_dir / f"member-{i}")
        for i in range(servers)
    )
    control_plane = plan_control_plane(data_dir, HOST, ports[-1]) if apiserver else None
    return Plan(
        cluster_id, data_dir, members, None, False, member_flags, control_plane=control_plane
    )
