"""The simulated world: members and other hosts, the networks between them, and the faults a
suite injects.

:class:`World` owns everything a run consists of and nothing a suite decides: which fault to
inject and when is the suite's business (through the methods here), and what to check is the
checkers' (through the ``listener``). Every random choice the world makes comes from generators
seeded from ``seed`` alone, one per concern (network, clock offsets, each member incarnation),
so adding a draw in one place does not shift the choices made in another.

Hosts are generic (:class:`~raftkube_fuzz.world.host.Host`): the Raft members are built
through :class:`~raftkube_fuzz.world.host.MemberHost`, and :meth:`World.add_host` adds any
other program (a client machine, an API server, an echo server in a test) with its own clock,
optional disk and stream network. Every host has a node id (members: their member id; others:
numbered after them), and the fault methods take node ids, so crash, restart, pause, resume,
partitions, link cuts, connection resets and clock faults apply to every host alike.

The ``listener`` is how the checkers follow the run: ``observer_for(member_id)`` returns the
callable a member passes to its Raft core (every spec event), ``dropped``/``duplicated`` come
from the network, ``crashed``/``restarted`` from the hosts, and ``synced`` from the disks after
every durability point. :class:`NullListener` ignores everything (for tests of the world itself).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio

from raftkube.server.member import Member, MemberConfig
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.clock import SimClock
from raftkube_fuzz.world.disk import SimDisk
from raftkube_fuzz.world.host import CLIENT_PORT, Boot, Host, MemberHost
from raftkube_fuzz.world.network import Link, LinkFaults, SimNetwork
from raftkube_fuzz.world.streams import StreamNetwork
from raftkube_spec.raft.messages import Message


class WorldListener(Protocol):
    """Everything the world reports; see the module docstring."""

    def observer_for(self, member_id: int) -> Callable[[Any], None] | None: ...

    def sent(self, message: Message) -> None: ...

    def dropped(self, message: Message) -> None: ...

    def duplicated(self, message: Message) -> None: ...

    def crashed(self, member_id: int, disk: SimDisk) -> None: ...

    def restarted(self, member_id: int, member: Member) -> None: ...

    def synced(self, member_id: int, disk: SimDisk) -> None: ...


class NullListener:
    """A listener that ignores everything."""

    def observer_for(self, member_id: int) -> Callable[[Any], None] | None:
        return None

    def sent(self, message: Message) -> None:
        pass

    def dropped(self, message: Message) -> None:
        pass

    def duplicated(self, message: Message) -> None:
        pass

    def crashed(self, member_id: int, disk: SimDisk) -> None:
        pass

    def restarted(self, member_id: int, member: Member) -> None:
        pass

    def synced(self, member_id: int, disk: SimDisk) -> None:
        pass


@attrs.frozen
class WorldConfig:
    """The shape of a simulated cluster. Timings are in seconds of (local) member time.

    ``snapshot_every`` is small so that snapshots, log compaction and InstallSnapshot happen in
    short runs; ``max_clock_offset`` bounds the members' initial clock offsets (drawn from the
    seed); ``member_overrides`` replaces :class:`MemberConfig` fields for single members, e.g.
    ``{2: {"election_ticks": 20}}``.
    """

    servers: int = 3
    tick_interval: float = 10 / 1024
    """About 10 ms, binary-exact (see :data:`~raftkube_fuzz.world.network.TIME_UNIT`)."""
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    request_timeout: float = 1.0
    snapshot_every: int = 64
    lease_check_interval: float = 0.1
    max_batch: int = 256
    latency_low: float = 0.001
    latency_high: float = 0.005
    max_clock_offset: float = 1.0
    clock_rates: tuple[float, ...] = (1.0,)
    """Initial clock rates, one drawn per member from the seed: real oscillators drift, so a
    suite may start every example with some drift instead of waiting for a fault to add it."""
    sync_latency: float = 0.0
    """Virtual seconds a member's fsync takes. Above 0 a member syncs as the real runner does
    (its ``run_sync`` hook): its event loop goes on meanwhile, so a leader's appends are out
    and answered while its own write is in flight, acknowledgements commit and apply during a
    sync, log-rewriting messages wait for it, and a crash in it loses the write."""
    member_overrides: Mapping[int, Mapping[str, Any]] = attrs.field(factory=dict)
    member_defaults: Mapping[str, Any] = attrs.field(factory=dict)
    """MemberConfig fields for every member, e.g. ``{"read_mode": "lease"}``."""

    def member_config(self, member_id: int) -> MemberConfig:
        base = MemberConfig(
            member_id=member_id,
            servers=self.servers,
            cluster_id="sim",
            tick_interval=self.tick_interval,
            election_ticks=self.election_ticks,
            heartbeat_ticks=self.heartbeat_ticks,
            max_batch=self.max_batch,
            request_timeout=self.request_timeout,
            lease_check_interval=self.lease_check_interval,
            snapshot_every=self.snapshot_every,
        )
        fields = {**self.member_defaults, **self.member_overrides.get(member_id, {})}
        return attrs.evolve(base, **fields)


class World:
    """A simulated cluster; ``await nursery.start(world.run)`` inside the simulation's run."""

    def __init__(self, config: WorldConfig, seed: int, listener: WorldListener) -> None:
        self.config = config
        self.seed = seed
        self.listener = listener
        self.failures: list[tuple[int, str]] = []
        """(member id, traceback text) of every exception that escaped a member: bugs."""
        self.violations: list[Violation] = []
        """Violations a checker raised from inside a member (via its observer)."""
        ids = list(range(config.servers))
        self.network = SimNetwork(
            random.Random(f"network:{seed}"),
            listener,
            ids,
            LinkFaults(config.latency_low, config.latency_high),
        )
        self.streams = StreamNetwork(random.Random(f"streams:{seed}"), self.network)
        """Byte streams between hosts, over the same links and partitions."""
        offsets = random.Random(f"clocks:{seed}")
        # Offsets are multiples of 1/1024 s: binary-exact, so clock arithmetic is exact too.
        steps = int(config.max_clock_offset * 1024)
        self.client_endpoints = {i: f"m{i}:{CLIENT_PORT}" for i in ids}
        """Every member's client address (``host:port`` on the stream network)."""
        self.hosts: list[MemberHost] = [
            MemberHost(
                config.member_config(i),
                seed=seed,
                disk=SimDisk(i, on_sync=listener.synced),
                clock=SimClock(
                    offsets.randint(0, steps) / 1024, offsets.choice(config.clock_rates)
                ),
                network=self.network,
                streams=self.streams,
                client_endpoints=self.client_endpoints,
                listener=listener,
                failures=self.failures,
                violations=self.violations,
                sync_latency=config.sync_latency,
            )
            for i in ids
        ]
        self.other_hosts: list[Host] = []
        """Hosts added by :meth:`add_host`, in node order after the members."""
        self.nursery: trio.Nursery | None = None

    def add_host(
        self,
        name: str,
        boot: Boot,
        *,
        disk: SimDisk | None = None,
        offset: float = 0.0,
        rate: float = 1.0,
    ) -> Host:
        """Add a machine running ``boot``'s program, reachable as ``name`` on the stream
        network; it boots at once if the world runs, else when it starts. Its node id (what
        the fault methods take) is ``host.node``."""
        node = len(self.hosts) + len(self.other_hosts)
        self.network.add_node(node)
        host = Host(
            name,
            node,
            boot,
            seed=self.seed,
            clock=SimClock(offset, rate),
            streams=self.streams,
            disk=disk,
            failures=self.failures,
            violations=self.violations,
        )
        self.other_hosts.append(host)
        if self.nursery is not None:
            host.clock.use_run_clock()
            host.start(self.nursery)
        return host

    def host(self, node: int) -> Host:
        """The host with node id ``node`` (a member's is its member id)."""
        if node < len(self.hosts):
            return self.hosts[node]
        return self.other_hosts[node - len(self.hosts)]

    @property
    def all_hosts(self) -> list[Host]:
        return [*self.hosts, *self.other_hosts]

    def stop_listening(self) -> None:
        """Report nothing more, and keep no reference to the listener, once the run it belongs
        to has ended. An ended world is cyclic garbage (a member and its parts call each other
        back), which only Python's cyclic collector frees: whatever the world still
        references is kept alive until then and traversed by the collector with it. A fuzz
        run's listener holds everything the run recorded (events, histories, spec states),
        so it must not be among that; :meth:`Run.close <raftkube_fuzz.example.Run.close>` calls
        this."""
        null = NullListener()
        self.listener = null
        self.network.listener = null
        for host in self.hosts:
            host.listener = null
            host.disk.on_sync = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the network and every member until cancelled."""
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(self.network.run, name="network")
            self.streams.use_run_clock()
            for host in self.all_hosts:
                host.clock.use_run_clock()
                host.start(nursery)
            task_status.started()

    # -- queries --------------------------------------------------------------------------

    @property
    def members(self) -> list[Member | None]:
        """The current Member of every host (None while down)."""
        return [host.member for host in self.hosts]

    def up(self, node: int) -> bool:
        return self.host(node).up

    def paused(self, node: int) -> bool:
        return self.host(node).paused

    def leader(self) -> int | None:
        """The up member that believes it leads in the highest term, if any."""
        best: tuple[int, int] | None = None
        for host in self.hosts:
            m = host.member
            if m is not None and m.is_leader and (best is None or m.term > best[0]):
                best = (m.term, host.member_id)
        return None if best is None else best[1]

    # -- host faults ----------------------------------------------------------------------

    def crash(self, node: int, torn_records: int = 0) -> None:
        self.host(node).crash(torn_records)

    def restart(self, node: int) -> None:
        self.host(node).restart()

    def pause(self, node: int) -> None:
        self.host(node).pause()

    def resume(self, node: int) -> None:
        self.host(node).resume()

    def disk_fault(self, member_id: int, err: int | None) -> None:
        """Make member ``member_id``'s disk fail every sync with ``err`` (``errno.ENOSPC``:
        full; ``errno.EROFS``: read-only), or take writes again (None). A member fenced by
        the fault stays fenced until it is restarted (a crash and a restart)."""
        self.hosts[member_id].disk.inject_fault(err)

    def fenced(self, member_id: int) -> bool:
        """Member ``member_id`` is up but fenced by a disk fault."""
        member = self.hosts[member_id].member
        return member is not None and member.disk_fault is not None

    def reset_connections(self, node: int) -> None:
        """Break every byte stream of ``node`` (both ends see a reset)."""
        self.streams.reset(node)

    # -- network faults -------------------------------------------------------------------

    def isolate(self, member_id: int) -> None:
        self.network.isolate(member_id)

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        self.network.partition(groups)

    def one_way(self, source: int, dest: int) -> None:
        self.network.one_way(source, dest)

    def bridge(self, side_a: Sequence[int], side_b: Sequence[int], bridge_node: int) -> None:
        self.network.bridge(side_a, side_b, bridge_node)

    def heal(self) -> None:
        self.network.heal()

    def set_loss(self, probability: float, link: Link | None = None) -> None:
        self.network.update_faults(link, loss=probability)

    def set_duplication(self, probability: float, link: Link | None = None) -> None:
        self.network.update_faults(link, duplication=probability)

    def set_latency(self, low: float, high: float, link: Link | None = None) -> None:
        self.network.update_faults(link, latency_low=low, latency_high=high)

    # -- clock faults ---------------------------------------------------------------------

    def clock_jump(self, node: int, seconds: float) -> None:
        self.host(node).clock.jump(seconds)

    def clock_rate(self, node: int, rate: float) -> None:
        self.host(node).clock.set_rate(rate)

    def resync_all(self) -> None:
        for host in self.all_hosts:
            host.clock.resync()

    def heal_all(self) -> None:
        """Undo every fault: links healed and back to default behaviour, clocks resynced,
        paused members resumed, disks writable again and members fenced by them restarted
        (what an operator does once space is freed), crashed members restarted. What a
        liveness check starts from."""
        self.network.heal()
        self.network.reset_faults()
        self.resync_all()
        for member_id, member_host in enumerate(self.hosts):
            member_host.disk.inject_fault(None)
            if self.fenced(member_id):
                member_host.crash()
        for host in self.all_hosts:
            if host.paused:
                host.resume()
            if not host.up:
                host.restart()
