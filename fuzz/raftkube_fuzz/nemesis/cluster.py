"""The cluster under test: ``raftkube member`` processes on loopback, wired through relays.

Members are started as ``raftkube up`` starts them (``python -m raftkube.cluster member``,
each in its own session and process group, stdin a pipe from us with
``--stop-on-stdin-eof``, so they stop by themselves even if the nemesis is killed), in
plaintext (the relays forward bytes and would not care about TLS; the fault handling under
test is the same). Each member's ``--peers`` names its own real Raft address and, for every
other member, the port of the :class:`~raftkube_fuzz.nemesis.relay.Relay` in between.

A member with a planted bug runs the same command through
:mod:`raftkube_fuzz.nemesis.mutant_member`, which patches one of
:data:`raftkube_fuzz.mutants.MUTANTS` in first: production has no flag for it.

Ports are ``base`` + small offsets (:class:`Ports`); every process is stopped by
:func:`open_cluster`'s exit, whatever ends it (the time budget, a failure, Ctrl-C).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import IO

import attrs
import trio

from raftkube.clock import TrioClock
from raftkube.cluster.processes import Child, spawn, stop_all
from raftkube_fuzz.nemesis.relay import Relay

HOST = "127.0.0.1"
STOP_TIMEOUT = 5.0
"""Seconds a member gets to stop on SIGTERM before it is killed."""


class NemesisError(Exception):
    """The run could not be carried out (not a finding about the cluster)."""


@attrs.frozen
class Ports:
    """Where everything listens: member ``i`` serves clients on ``base + i`` and Raft on
    ``base + 10 + i``; the relay clients reach it through is on ``base + 50 + i``, the relay
    from ``i`` to ``j`` on ``base + 100 + 10 * i + j``."""

    base: int

    def client(self, i: int) -> int:
        return self.base + i

    def peer(self, i: int) -> int:
        return self.base + 10 + i

    def client_relay(self, i: int) -> int:
        return self.base + 50 + i

    def relay(self, source: int, dest: int) -> int:
        return self.base + 100 + 10 * source + dest


@attrs.define(eq=False)
class MemberProcess:
    """One member's process slot: its current child (None while killed) and its state."""

    index: int
    argv: list[str]
    log_path: Path
    child: Child | None = None
    paused: bool = False
    _log: IO[bytes] | None = None

    @property
    def up(self) -> bool:
        return self.child is not None and self.child.process.returncode is None


@attrs.define(eq=False)
class ProcessCluster:
    """The running members and relays, and the faults the nemesis can apply to them."""

    servers: int
    ports: Ports
    members: list[MemberProcess]
    relays: dict[tuple[int, int], Relay]
    client_relays: list[Relay]
    unexpected_exits: list[str] = attrs.Factory(list)
    """Members that exited without being killed or stopped by us (with their exit codes): a
    member must survive every fault the nemesis injects."""

    @property
    def client_endpoints(self) -> list[str]:
        """Where clients reach the members: through the client relays."""
        return [f"{HOST}:{self.ports.client_relay(i)}" for i in range(self.servers)]

    def check_started(self) -> None:
        """Raise :class:`NemesisError` if a member has exited on its own, with the last line
        of its log (a port in use, a bad data directory)."""
        for m in self.members:
            if m.child is not None and m.child.process.returncode is not None:
                lines = m.log_path.read_text(errors="replace").strip().splitlines()
                last = lines[-1] if lines else "(no output)"
                raise NemesisError(
                    f"member {m.index} exited with code {m.child.process.returncode} at start: "
                    f"{last} (log: {m.log_path})"
                )

    def note_exits(self) -> None:
        """Record every member that has exited on its own since it was last started."""
        for m in self.members:
            if m.child is not None and m.child.process.returncode is not None:
                code = m.child.process.returncode
                self.unexpected_exits.append(f"member {m.index} exited with code {code}")
                m.child = None

    async def start(self, i: int) -> None:
        """Start member ``i`` (again, after a kill), on the data it left behind."""
        m = self.members[i]
        if m.up:
            return
        self.note_exits()
        if m._log is None:
            m._log = m.log_path.open("ab")
        m.child = await spawn(f"member {i}", m.argv, m._log)
        m.paused = False

    async def kill(self, i: int) -> None:
        """SIGKILL member ``i``'s process group and reap it: no clean shutdown, no flush."""
        m = self.members[i]
        if m.child is None:
            return
        _signal_group(m.child, signal.SIGKILL)
        await m.child.process.wait()
        if m.child.process.stdin is not None:
            await trio.aclose_forcefully(m.child.process.stdin)
        m.child = None
        m.paused = False

    def pause(self, i: int) -> None:
        """SIGSTOP member ``i``'s process group: it keeps its sockets but does nothing."""
        m = self.members[i]
        if m.child is not None and not m.paused:
            _signal_group(m.child, signal.SIGSTOP)
            m.paused = True

    def resume(self, i: int) -> None:
        m = self.members[i]
        if m.child is not None and m.paused:
            _signal_group(m.child, signal.SIGCONT)
            m.paused = False

    def cut(self, source: int, dest: int) -> None:
        """Stall every message ``source`` sends ``dest`` (one way)."""
        self.relays[source, dest].cut()

    def reset_clients(self, i: int) -> int:
        """Break every client connection to member ``i``; returns how many there were."""
        return self.client_relays[i].reset()

    def heal_network(self) -> None:
        for relay in self.relays.values():
            relay.heal()

    async def heal_all(self) -> None:
        """Undo every fault: the network healed, paused members resumed, killed restarted."""
        self.heal_network()
        for i in range(self.servers):
            self.resume(i)
            await self.start(i)

    async def stop(self) -> None:
        """Stop every member: resumed first (a stopped process cannot act on SIGTERM), then
        SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`."""
        with trio.CancelScope(shield=True):
            for i in range(self.servers):
                self.resume(i)
            children = [m.child for m in self.members if m.child is not None]
            await stop_all(children, STOP_TIMEOUT, TrioClock(), "raftkube fuzz nemesis")
            for m in self.members:
                m.child = None
                if m._log is not None:
                    m._log.close()
                    m._log = None


def _signal_group(child: Child, signum: int) -> None:
    # Each member leads its own session (spawn's start_new_session), so its pid is its
    # process group's id; the group also takes any process the member might have started.
    with suppress(ProcessLookupError):
        os.killpg(child.process.pid, signum)


def member_argv(
    i: int, servers: int, ports: Ports, data_dir: Path, mutant: str | None
) -> list[str]:
    """Member ``i``'s command line: its own Raft address, and a relay for every other one."""
    peers = ",".join(
        f"{j}={HOST}:{ports.peer(j) if j == i else ports.relay(i, j)}" for j in range(servers)
    )
    # Leader hints name the client relays, so a client that follows one stays behind them.
    clients = ",".join(f"{j}={HOST}:{ports.client_relay(j)}" for j in range(servers))
    if mutant is None:
        head = [sys.executable, "-m", "raftkube.cluster"]
    else:
        head = [sys.executable, "-m", "raftkube_fuzz.nemesis.mutant_member", mutant]
    return [
        *head,
        "member",
        "--id",
        str(i),
        "--peers",
        peers,
        "--client-endpoints",
        clients,
        "--client-port",
        str(ports.client(i)),
        "--data-dir",
        str(data_dir / f"member-{i}"),
        "--cluster-id",
        "nemesis",
        "--stop-on-stdin-eof",
    ]


@asynccontextmanager
async def open_cluster(
    data_dir: Path, base_port: int, *, servers: int = 3, mutant: str | None = None
) -> AsyncIterator[ProcessCluster]:
    """Start the relays and the members; on exit, however it comes, stop them all."""
    ports = Ports(base_port)
    data_dir.mkdir(parents=True, exist_ok=True)
    relays = {
        (s, d): Relay(s, d, ports.relay(s, d), ports.peer(d))
        for s in range(servers)
        for d in range(servers)
        if s != d
    }
    client_relays = [Relay(-1, i, ports.client_relay(i), ports.client(i)) for i in range(servers)]
    members = [
        MemberProcess(
            i, member_argv(i, servers, ports, data_dir, mutant), data_dir / f"member-{i}.log"
        )
        for i in range(servers)
    ]
    cluster = ProcessCluster(servers, ports, members, relays, client_relays)
    async with trio.open_nursery() as nursery:
        try:
            for relay in [*relays.values(), *client_relays]:
                try:
                    await nursery.start(relay.run)
                except OSError as exc:
                    raise NemesisError(
                        f"cannot listen on {HOST}:{relay.listen_port} for the relay from "
                        f"{'clients' if relay.source < 0 else f'member {relay.source}'} to "
                        f"member {relay.dest}: {exc.strerror or exc}; choose other ports with "
                        "--port"
                    ) from None
            for i in range(servers):
                await cluster.start(i)
            yield cluster
        finally:
            await cluster.stop()
            nursery.cancel_scope.cancel()
