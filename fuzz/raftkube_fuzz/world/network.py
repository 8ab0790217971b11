"""The simulated network: latency, loss, duplication, partitions, over Trio's virtual clock.

Raft assumes a network that delays, loses, duplicates and reorders messages; this one does all
of that, decided by one seeded :class:`random.Random`, so a run is reproducible from its seed.
Messages are the spec's frozen attrs objects themselves (no encoding): what a member sends is
exactly what the conformance checker sees.

* :meth:`SimNetwork.submit` (called by a member's :class:`SimTransport`) decides loss and
  duplication at once and schedules each copy at ``now + latency``, with latency drawn per
  copy, so duplicates and reordering arise from the same mechanism.
* While :meth:`SimNetwork.run` runs, one timer of the run's
  :class:`~raftkube_fuzz.world.driver.Timers` is armed for the earliest scheduled delivery and
  delivers everything due at that instant in one go (no task wakes for it, no cancel scope).
  The schedule is a heap keyed by ``(time, sequence number)``: equal times deliver in send
  order.
* Partitions are a set of blocked *directed* links checked at delivery time, so healing a
  partition lets through what is still in flight, and cutting a link loses what is in flight
  on it (a TCP connection reset does the same). Links join *nodes*: the members, and any other
  host of the world (:meth:`SimNetwork.add_node`), whose byte streams
  (:mod:`~raftkube_fuzz.world.streams`) obey the same blocked set.
* A message for a crashed member is dropped; one for a paused member waits in its inbox until
  it resumes (the kernel keeps buffering for a stopped process).

Every message the network loses is reported to ``listener.dropped`` and every copy it makes to
``listener.duplicated``: the conformance checker turns these into the spec's DropMessage and
DuplicateMessage events, which is what lets it follow a lossy run step by step.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import attrs
import trio

from raftkube.net.transport import TransportClosedError
from raftkube_fuzz.world.driver import Timer, Timers, current_timers
from raftkube_spec.raft.messages import Message

Link = tuple[int, int]
"""A directed link ``(source, destination)``."""


TIME_UNIT = 1 / 1024
"""The grain of simulated latencies, in seconds: binary-exact, so sums of latencies, offsets
and tick intervals are exact floats and a replay computes the very same instants."""


class NetworkListener(Protocol):
    """Who hears about the network's own decisions (the conformance checker)."""

    def sent(self, message: Message) -> None: ...

    def dropped(self, message: Message) -> None: ...

    def duplicated(self, message: Message) -> None: ...


@attrs.frozen
class LinkFaults:
    """How one link (or, as the default, every link) behaves. Latency is uniform over
    ``[latency_low, latency_high]`` seconds of global time."""

    latency_low: float = 0.001
    latency_high: float = 0.005
    loss: float = 0.0
    duplication: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.latency_low <= self.latency_high:
            raise ValueError(f"bad latency range [{self.latency_low}, {self.latency_high}]")
        for name in ("loss", "duplication"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ValueError(f"{name} probability must be in [0, 1], got {p}")


class SimTransport:
    """One member incarnation's endpoint: raftkube's :class:`~raftkube.net.transport.Transport`.

    While the member is in :meth:`serve`, a message is handed to it the moment the network
    delivers it, from the delivery timer itself: the member steps it with no task switch
    (the run pays per scheduler pass, and this was one pass per message). Otherwise, and
    while paused, arrivals wait in an unbounded inbox (the network, not the endpoint, decides
    losses), so a paused member steps no messages; resuming wakes :meth:`serve`, which hands
    over what waited, in arrival order, before anything newer.
    """

    def __init__(self, network: SimNetwork, member_id: int) -> None:
        self._network = network
        self.member_id = member_id
        self._inbox: deque[Message] = deque()
        self._arrived = trio.Event()
        self._closed = False
        self._paused = False
        self._deliver: Callable[[Message], None] | None = None
        """The serving member's callback, while it may be called directly."""
        self._error: Exception | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pending(self) -> int:
        """Messages that arrived and are not received yet (receivable unless paused)."""
        return len(self._inbox)

    def send(self, peer_id: int, message: Message) -> bool:
        """Hand ``message`` to the network; ``False`` once closed. Never blocks."""
        if message.dest != peer_id:
            raise ValueError(f"message for member {message.dest} sent to peer {peer_id}")
        if self._closed:
            return False
        self._network.submit(message)
        return True

    def deliver(self, message: Message) -> None:
        """An arrived message (the network's side): stepped now if the member serves and
        nothing older waits, else queued."""
        deliver = self._deliver
        if deliver is not None and not self._inbox:
            try:
                deliver(message)
            except Exception as exc:
                self._fail(exc)
            return
        self._inbox.append(message)
        self._wake()

    def _fail(self, exc: Exception) -> None:
        """``deliver`` raised: stop calling it and end :meth:`serve` with the exception, in
        the member's own task, as an exception out of its receive loop would."""
        self._deliver = None
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = trio.Event()

    def pause(self) -> None:
        self._paused = True
        self._deliver = None

    def resume(self) -> None:
        self._paused = False
        self._wake()

    def close(self) -> list[Message]:
        """Stop for good; returns the messages that arrived but were never received."""
        self._closed = True
        self._deliver = None
        left = list(self._inbox)
        self._inbox.clear()
        self._wake()
        return left

    async def serve(self, deliver: Callable[[Message], None]) -> None:
        """Step every message into ``deliver`` until closed (see the class docstring)."""
        try:
            while not self._closed:
                if self._error is not None:
                    raise self._error
                if not self._paused:
                    while self._inbox and not self._paused and not self._closed:
                        deliver(self._inbox.popleft())
                    self._deliver = None if self._paused or self._closed else deliver
                await self._arrived.wait()
        finally:
            self._deliver = None

    async def receive(self) -> Message:
        """The next message; raises TransportClosedError once closed. Always a checkpoint,
        but one pass per message, not two: a receive that had to wait returns as soon as it is
        woken (as a Trio channel hands a value straight to a parked receiver); one that finds a
        message waiting yields once first."""
        waited = False
        while True:
            if self._closed:
                raise TransportClosedError("the simulated transport is closed")
            if self._inbox and not self._paused:
                if waited:
                    return self._inbox.popleft()
                await trio.lowlevel.checkpoint()
                waited = True
                continue
            await self._arrived.wait()
            waited = True

    def __aiter__(self) -> SimTransport:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except TransportClosedError:
            raise StopAsyncIteration from None


class SimNetwork:
    """Every link between the simulated members and the one task that delivers on them."""

    def __init__(
        self,
        rng: random.Random,
        listener: NetworkListener,
        members: Sequence[int],
        defaults: LinkFaults | None = None,
    ) -> None:
        self._rng = rng
        self._latency_units: dict[tuple[float, float], tuple[int, int]] = {}
        """Each latency range as whole time units: (the lowest, how many), by range."""
        self._now: Callable[[], float] = trio.current_time
        """Global virtual time: the run's clock itself while :meth:`run` runs (one call per
        read instead of Trio's run-context lookup; the network reads it per message)."""
        self.listener = listener
        """Hears of every send, loss and copy (:meth:`World.stop_listening` replaces it)."""
        self.members: tuple[int, ...] = tuple(members)
        self.nodes: list[int] = list(self.members)
        """Every host of the topology: the members first, then :meth:`add_node`'s."""
        self.defaults = defaults if defaults is not None else LinkFaults()
        self._base_defaults = self.defaults
        self._links: dict[Link, LinkFaults] = {}
        self.blocked: set[Link] = set()
        self._endpoints: dict[int, SimTransport] = {}
        self._heap: list[tuple[float, int, Message]] = []
        self._seq = 0
        self._timers: Timers | None = None
        """The run's timers while :meth:`run` runs."""
        self._armed: Timer | None = None
        """The timer for the earliest scheduled delivery."""
        self.stats: dict[str, int] = {
            "sent": 0,
            "delivered": 0,
            "duplicated": 0,
            "dropped_loss": 0,
            "dropped_partition": 0,
            "dropped_down": 0,
            "dropped_crash": 0,
        }

    # -- endpoints ------------------------------------------------------------------------

    def attach(self, member_id: int) -> SimTransport:
        """A fresh endpoint for a new incarnation of ``member_id`` (the member is up)."""
        if member_id not in self.members:
            raise ValueError(f"unknown member {member_id}")
        old = self._endpoints.get(member_id)
        if old is not None and not old.closed:
            raise ValueError(f"member {member_id} is already attached")
        endpoint = SimTransport(self, member_id)
        self._endpoints[member_id] = endpoint
        return endpoint

    def endpoint(self, member_id: int) -> SimTransport | None:
        """The endpoint of ``member_id``'s current incarnation, or None while it is down."""
        return self._endpoints.get(member_id)

    def detach(self, member_id: int) -> None:
        """The member crashed: close its endpoint; what waited in its inbox is lost."""
        endpoint = self._endpoints.pop(member_id, None)
        if endpoint is None:
            return
        for message in endpoint.close():
            self._drop(message, "dropped_crash")

    # -- faults ---------------------------------------------------------------------------

    def faults(self, link: Link) -> LinkFaults:
        return self._links.get(link, self.defaults)

    def set_faults(self, faults: LinkFaults, link: Link | None = None) -> None:
        """Set the behaviour of one link, or the default of every link without its own."""
        if link is None:
            self.defaults = faults
        else:
            self._links[link] = faults

    def update_faults(self, link: Link | None = None, **changes: float) -> None:
        """Change some fields (``latency_low``, ``latency_high``, ``loss``, ``duplication``)."""
        current = self.defaults if link is None else self.faults(link)
        self.set_faults(attrs.evolve(current, **changes), link)

    def reset_faults(self) -> None:
        """Every link back to the construction-time defaults."""
        self._links.clear()
        self.defaults = self._base_defaults

    def add_node(self, node: int) -> None:
        """A host that is not a member (it exchanges byte streams, never Raft messages)."""
        if node in self.nodes:
            raise ValueError(f"node {node} exists")
        self.nodes.append(node)

    def _all_links(self) -> Iterable[Link]:
        return ((a, b) for a in self.nodes for b in self.nodes if a != b)

    def isolate(self, member_id: int) -> None:
        """Cut every link to and from node ``member_id`` (added to the current blocks)."""
        self.blocked.update(link for link in self._all_links() if member_id in link)

    def one_way(self, source: int, dest: int) -> None:
        """Cut the link ``source -> dest`` only (added to the current blocks)."""
        self.blocked.add((source, dest))

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Replace the topology by ``groups`` that talk only inside themselves; a member in
        no group is alone, another node in no group still reaches everyone (a client is
        cut off only when a group names it)."""
        side = {m: k for k, group in enumerate(groups) for m in group}
        alone = len(groups)
        for member in self.members:
            side.setdefault(member, alone + member)
        self.blocked = {
            (a, b) for a, b in self._all_links() if a in side and b in side and side[a] != side[b]
        }

    def bridge(self, side_a: Sequence[int], side_b: Sequence[int], bridge_node: int) -> None:
        """Replace the topology: ``side_a`` and ``side_b`` cannot talk to each other, and
        ``bridge_node`` talks to everyone (the two sides reach each other only through it)."""
        a = set(side_a) - {bridge_node}
        b = set(side_b) - {bridge_node}
        self.blocked = {
            (x, y) for x, y in self._all_links() if (x in a and y in b) or (x in b and y in a)
        }

    def heal(self) -> None:
        """Unblock every link (latency, loss and duplication settings stay)."""
        self.blocked = set()

    # -- sending and delivering -----------------------------------------------------------

    def _latency(self, faults: LinkFaults) -> float:
        """A whole number of :data:`TIME_UNIT` within the link's range (at least one unit).
        Discrete latencies make deliveries coincide, and the simulation pays per distinct
        instant, not per message: the same runs cost about half the scheduler passes."""
        low = max(1, math.ceil(faults.latency_low / TIME_UNIT))
        high = max(low, math.floor(faults.latency_high / TIME_UNIT))
        # randint(low, high) is this very call (the same draw), one Python call deeper.
        return self._rng.randrange(low, high + 1) * TIME_UNIT

    def _schedule(self, message: Message, faults: LinkFaults) -> None:
        at = self._now() + self._latency(faults)
        self._seq += 1
        earliest = not self._heap or at < self._heap[0][0]
        heapq.heappush(self._heap, (at, self._seq, message))
        if earliest:
            self._arm()

    def submit(self, message: Message) -> None:
        """Accept a sent message: maybe lose it, maybe copy it, schedule what is left."""
        self.stats["sent"] += 1
        self.listener.sent(message)
        if message.dest not in self.members:
            self._drop(message, "dropped_down")
            return
        faults = self.faults((message.source, message.dest))
        if faults.loss and self._rng.random() < faults.loss:
            self._drop(message, "dropped_loss")
            return
        self._schedule(message, faults)
        if faults.duplication and self._rng.random() < faults.duplication:
            self.stats["duplicated"] += 1
            self.listener.duplicated(message)
            self._schedule(message, faults)

    def _drop(self, message: Message, reason: str) -> None:
        self.stats[reason] += 1
        self.listener.dropped(message)

    def _deliver(self, message: Message) -> None:
        if (message.source, message.dest) in self.blocked:
            self._drop(message, "dropped_partition")
            return
        endpoint = self._endpoints.get(message.dest)
        if endpoint is None or endpoint.closed:
            self._drop(message, "dropped_down")
            return
        self.stats["delivered"] += 1
        endpoint.deliver(message)

    @property
    def in_flight(self) -> int:
        """Messages scheduled but not yet delivered or dropped."""
        return len(self._heap)

    def _arm(self) -> None:
        """Point the delivery timer at the earliest scheduled delivery (if running)."""
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None
        if self._timers is not None and self._heap:
            self._armed = self._timers.at(self._heap[0][0], self._deliver_due)

    def _deliver_due(self) -> None:
        self._armed = None
        now = self._now()
        while self._heap and self._heap[0][0] <= now:
            _, _, message = heapq.heappop(self._heap)
            self._deliver(message)
        self._arm()

    async def run(self) -> None:
        """Deliver scheduled messages at their times until cancelled."""
        self._timers = current_timers()
        self._now = trio.lowlevel.current_clock().current_time
        try:
            self._deliver_due()
            await trio.sleep_forever()
        finally:
            self._timers = None
            self._arm()
