"""In-world byte streams: raftkube's stream :class:`~raftkube.net.streams.Network`, simulated.

Hosts dial and listen by ``(host name, port)`` exactly as over TCP; the bytes travel through
this module instead of sockets, decided by the world's seed. Each direction of a connection
is an ordered queue of chunks (one per ``send_all``); a chunk is due ``latency`` after it was
sent but never before the chunk ahead of it, so a stream stays in order as TCP keeps it.

The faults are TCP's, not a datagram network's:

* **Partitions** are the very same blocked links as the Raft messages' (the
  :class:`~raftkube_fuzz.world.network.SimNetwork`'s ``blocked`` set, by node id), checked
  when a chunk is due. A blocked chunk is not lost but *stalls*: it is retried every
  :data:`RETRANSMIT` seconds (TCP retransmitting) and everything behind it waits, so a healed
  link delivers what waited, in order. A one-way cut stalls one direction only.
* **Loss** (the link's ``loss`` probability) is a retransmission: the chunk arrives
  :data:`RETRANSMIT` seconds late. Duplicates never reach a TCP reader, so there are none.
* **Resets** (:meth:`StreamNetwork.reset`) break every connection of a host at once: both
  ends raise :class:`trio.BrokenResourceError` from then on, as after an RST.
* **Crash**: a host's connections are reset towards its peers (the reset travels like data,
  so a partitioned peer only notices once the link heals, or by its own timeout) and its
  listeners vanish, so new connections are refused.
* **Pause**: a stopped process's kernel still receives, but nothing is read, written or
  accepted until it resumes.

Connecting takes a round trip (SYN out, SYN-ACK or RST back), each leg stalling while its
link is blocked; nobody listening is a :class:`ConnectionRefusedError`. Nothing here has a
timeout of its own: like a real client, a dialler bounds its wait with its own clock.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from typing import Final

import trio

from raftkube.net.nowait import NotifyingStream
from raftkube.net.streams import Listener
from raftkube_fuzz.world.driver import Timer, Timers, Wakeup, current_timers, sleep
from raftkube_fuzz.world.network import TIME_UNIT, SimNetwork

RETRANSMIT: Final = 205 * TIME_UNIT
"""About TCP's minimum retransmission timeout (200 ms), binary-exact."""

_FIN: Final = b""
"""A chunk that ends the direction (an orderly close)."""


class _Reset:
    """The chunk that breaks the receiving end (an RST)."""


_RST: Final = _Reset()

Chunk = bytes | _Reset


class _Direction:
    """One direction of a connection: chunks from ``source`` to the ``to`` end."""

    __slots__ = ("armed", "chunks", "dest", "last_due", "source", "to")

    def __init__(self, source: int, dest: int, to: SimStream) -> None:
        self.source = source
        self.dest = dest
        self.to = to
        self.chunks: deque[tuple[float, Chunk]] = deque()
        self.last_due = 0.0
        self.armed = False


class _Resumer:
    """Calls a stream's reader back once its host resumes (a :meth:`StreamNetwork.on_resume`
    waiter that is a callback instead of a parked task)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: SimStream) -> None:
        self._stream = stream

    def wake(self) -> None:
        self._stream._resume_pending = False
        self._stream._notify()


class SimStream(NotifyingStream):
    """One end of an in-world connection, owned by the host ``node``.

    Read either by a task (``receive_some``) or, as the client library and the client
    listener read it, by a handler it calls itself when bytes arrive (:meth:`set_reader`):
    the handler runs in whatever delivers them (the world's timer callbacks), so no task
    wakes per arriving chunk, as one poller task reads every real TCP connection."""

    def __init__(self, network: StreamNetwork, node: int) -> None:
        self._network = network
        self.node = node
        self.out: _Direction | None = None
        """Where this end's writes go (set once the pair is made)."""
        self._inbox = bytearray()
        self._eof = False
        self.broken = False
        self.closed = False
        self._reader: Wakeup | None = None
        self._handler: Callable[[], None] | None = None
        self._resume_pending = False
        """A :class:`_Resumer` waits for the paused host to resume."""

    def _wake(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.wake()
        if self._handler is not None:
            self._notify()

    def _notify(self) -> None:
        """Call the handler while it has something to take (level-triggered, as epoll's
        readiness is): a paused host reads nothing until it resumes."""
        handler = self._handler
        while handler is not None and handler is self._handler:
            if not (self.closed or self.broken or self._eof or self._inbox):
                return
            if self._network.paused(self.node):
                if not self._resume_pending:
                    self._resume_pending = True
                    self._network.on_resume(self.node, _Resumer(self))
                return
            unread = len(self._inbox)
            handler()
            if len(self._inbox) >= unread:
                # It took no bytes (the end or an error, which the handler then stops on;
                # or nothing, and it must not be called in a loop).
                return

    def set_reader(self, handler: Callable[[], None] | None) -> None:
        self._handler = handler
        if handler is not None:
            self._notify()

    def _arrive(self, chunk: Chunk) -> None:
        if self.closed:
            return
        if isinstance(chunk, _Reset):
            self.broken = True
        elif chunk == _FIN:
            self._eof = True
        else:
            self._inbox += chunk
        self._wake()

    def reset(self) -> None:
        """This end is reset: every later call raises :class:`trio.BrokenResourceError`."""
        self.broken = True
        self._wake()

    def receive_nowait(self, max_bytes: int) -> bytes | None:
        if self.closed:
            raise trio.ClosedResourceError("the stream is closed")
        if self.broken:
            raise trio.BrokenResourceError("connection reset")
        if self._network.paused(self.node):
            return None
        if self._inbox:
            data = bytes(self._inbox[:max_bytes])
            del self._inbox[:max_bytes]
            return data
        return b"" if self._eof else None

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise trio.ClosedResourceError("the stream is closed")
        if self.broken:
            raise trio.BrokenResourceError("connection reset")
        if self._network.paused(self.node):
            return 0  # A stopped process writes nothing: its writer task waits to resume.
        assert self.out is not None
        if data:
            self._network.send(self.out, bytes(data))
        return len(data)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._network.wait_running(self.node)
        if self.closed:
            raise trio.ClosedResourceError("the stream is closed")
        if self.broken:
            raise trio.BrokenResourceError("connection reset")
        assert self.out is not None
        if data:
            self._network.send(self.out, bytes(data))
        # A cancellation point but no schedule point: the writer loops that call this park
        # right afterwards anyway, and a yield here would cost a scheduler pass per write.
        await trio.lowlevel.checkpoint_if_cancelled()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        waited = False
        while True:
            if self.closed:
                raise trio.ClosedResourceError("the stream is closed")
            if self.broken:
                raise trio.BrokenResourceError("connection reset")
            if not self._network.paused(self.node):
                if self._inbox:
                    size = len(self._inbox) if max_bytes is None else max_bytes
                    data = bytes(self._inbox[:size])
                    del self._inbox[:size]
                    if not waited:
                        await trio.lowlevel.checkpoint()
                    return data
                if self._eof:
                    if not waited:
                        await trio.lowlevel.checkpoint()
                    return b""
            reader = self._reader = Wakeup()
            self._network.on_resume(self.node, reader)
            await reader.wait()
            waited = True

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            if not self.broken and self.out is not None:
                self._network.send(self.out, _FIN)
            self._network.forget(self)
            self._wake()
        await trio.lowlevel.checkpoint()


class SimListener(trio.abc.Listener[trio.abc.Stream]):
    """Connections to ``(name, port)`` of one host; ``address`` says where it listens."""

    def __init__(self, network: StreamNetwork, node: int, address: tuple[str, int]) -> None:
        self._network = network
        self.node = node
        self._address = address
        self.backlog: deque[SimStream] = deque()
        self._waiter: Wakeup | None = None
        self.closed = False

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    def _offer(self, stream: SimStream) -> None:
        self.backlog.append(stream)
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.wake()

    async def accept(self) -> trio.abc.Stream:
        while True:
            if self.closed:
                raise trio.ClosedResourceError("the listener is closed")
            if self.backlog and not self._network.paused(self.node):
                await trio.lowlevel.checkpoint()
                return self.backlog.popleft()
            waiter = self._waiter = Wakeup()
            self._network.on_resume(self.node, waiter)
            await waiter.wait()

    async def aclose(self) -> None:
        self._network.unlisten(self)
        await trio.lowlevel.checkpoint()

    def _close(self) -> None:
        self.closed = True
        for stream in self.backlog:
            stream.reset()
        self.backlog.clear()
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.wake()


class HostNetwork:
    """The :class:`~raftkube.net.streams.Network` one host dials and listens through."""

    def __init__(self, network: StreamNetwork, node: int) -> None:
        self._network = network
        self.node = node

    async def open_stream(self, host: str, port: int) -> trio.abc.Stream:
        return await self._network.connect(self.node, host, port)

    async def open_listeners(self, host: str, port: int) -> list[Listener]:
        return [self._network.listen(self.node, host, port)]


class StreamNetwork:
    """Every in-world connection, over the topology and link faults of ``links``."""

    def __init__(self, rng: random.Random, links: SimNetwork) -> None:
        self._rng = rng
        self.links = links
        self._names: dict[str, int] = {}
        self._listeners: dict[tuple[str, int], SimListener] = {}
        self._streams: dict[int, dict[SimStream, None]] = {}
        """Each host's open ends, in creation order (so resets run in replayable order)."""
        self._paused: set[int] = set()
        self._resumers: dict[int, list[Wakeup | _Resumer]] = {}
        self._heap: list[tuple[float, int, _Direction]] = []
        self._seq = 0
        self._now: Callable[[], float] = trio.current_time
        self._timers: Timers | None = None
        self._armed: Timer | None = None
        self._armed_at = math.inf
        self._delivering = False
        """Set while due chunks are handed over: the timer is re-armed once, afterwards."""
        self._next_port = 49152
        self.stats: dict[str, int] = {
            "connections": 0,
            "refused": 0,
            "chunks": 0,
            "bytes": 0,
            "stalled": 0,
            "retransmitted": 0,
            "resets": 0,
        }

    # -- hosts ----------------------------------------------------------------------------

    def add_host(self, name: str, node: int) -> HostNetwork:
        """Make ``name`` resolve to node ``node`` (an id of the links' topology)."""
        if self._names.get(name, node) != node:
            raise ValueError(f"host name {name!r} is taken")
        self._names[name] = node
        self._streams.setdefault(node, {})
        return HostNetwork(self, node)

    def paused(self, node: int) -> bool:
        return node in self._paused

    def pause(self, node: int) -> None:
        self._paused.add(node)

    def resume(self, node: int) -> None:
        self._paused.discard(node)
        for waiter in self._resumers.pop(node, []):
            waiter.wake()

    def on_resume(self, node: int, waiter: Wakeup | _Resumer) -> None:
        """Wake ``waiter`` when ``node`` resumes (a parked reader also wakes on data)."""
        if node in self._paused:
            self._resumers.setdefault(node, []).append(waiter)

    async def wait_running(self, node: int) -> None:
        while node in self._paused:
            waiter = Wakeup()
            self.on_resume(node, waiter)
            await waiter.wait()

    def reset(self, node: int) -> None:
        """Break every connection of ``node``, both ends, now."""
        for stream in list(self._streams.get(node, {})):
            self.stats["resets"] += 1
            stream.reset()
            if stream.out is not None:
                stream.out.to.reset()

    def crash(self, node: int) -> None:
        """``node``'s process died: its listeners vanish and its peers are sent a reset."""
        for key, listener in list(self._listeners.items()):
            if listener.node == node:
                del self._listeners[key]
                listener._close()
        streams = self._streams.get(node, {})
        for stream in list(streams):
            stream.reset()
            if stream.out is not None:
                self.send(stream.out, _RST)
        streams.clear()

    def forget(self, stream: SimStream) -> None:
        self._streams.get(stream.node, {}).pop(stream, None)

    # -- listening and connecting ---------------------------------------------------------

    def listen(self, node: int, host: str, port: int) -> SimListener:
        if self._names.get(host) != node:
            raise OSError(f"cannot bind {host}:{port}: not this host's name")
        if port == 0:
            while (host, self._next_port) in self._listeners:
                self._next_port += 1
            port = self._next_port
        if (host, port) in self._listeners:
            raise OSError(f"address {host}:{port} already in use")
        listener = SimListener(self, node, (host, port))
        self._listeners[host, port] = listener
        return listener

    def unlisten(self, listener: SimListener) -> None:
        if self._listeners.get(listener.address) is listener:
            del self._listeners[listener.address]
        listener._close()

    async def _leg(self, source: int, dest: int) -> None:
        """One packet's trip ``source -> dest``: a latency, then retransmissions while the
        link is blocked."""
        await sleep(self._latency(source, dest))
        while (source, dest) in self.links.blocked:
            self.stats["stalled"] += 1
            await sleep(RETRANSMIT)

    async def connect(self, node: int, host: str, port: int) -> SimStream:
        dest = self._names.get(host)
        if dest is None:
            raise OSError(f"unknown host {host!r}")
        await self.wait_running(node)
        await self._leg(node, dest)
        listener = self._listeners.get((host, port))
        if listener is None:
            await self._leg(dest, node)
            self.stats["refused"] += 1
            raise ConnectionRefusedError(f"nobody listens on {host}:{port}")
        client, server = SimStream(self, node), SimStream(self, dest)
        client.out = _Direction(node, dest, server)
        server.out = _Direction(dest, node, client)
        self._streams[node][client] = None
        self._streams[dest][server] = None
        self.stats["connections"] += 1
        listener._offer(server)
        await self._leg(dest, node)
        return client

    # -- carrying chunks ------------------------------------------------------------------

    def _latency(self, source: int, dest: int) -> float:
        faults = self.links.faults((source, dest))
        low = max(1, math.ceil(faults.latency_low / TIME_UNIT))
        high = max(low, math.floor(faults.latency_high / TIME_UNIT))
        latency = self._rng.randrange(low, high + 1) * TIME_UNIT  # randint's own draw
        if faults.loss and self._rng.random() < faults.loss:
            self.stats["retransmitted"] += 1
            latency += RETRANSMIT
        return latency

    def send(self, direction: _Direction, chunk: Chunk) -> None:
        due = max(direction.last_due, self._now() + self._latency(direction.source, direction.dest))
        direction.last_due = due
        direction.chunks.append((due, chunk))
        if not direction.armed:
            self._push(direction, due)

    def _push(self, direction: _Direction, due: float) -> None:
        direction.armed = True
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, direction))
        if due < self._armed_at and not self._delivering:
            self._arm()

    def _arm(self) -> None:
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None
        self._armed_at = math.inf
        timers = self._timers or current_timers()
        if self._heap:
            self._armed_at = self._heap[0][0]
            self._armed = timers.at(self._armed_at, self._deliver_due)

    def _deliver_due(self) -> None:
        self._armed = None
        self._armed_at = math.inf
        now = self._now()
        heap = self._heap
        self._delivering = True
        try:
            while heap and heap[0][0] <= now:
                _, _, direction = heapq.heappop(heap)
                direction.armed = False
                self._deliver_head(direction, now)
        finally:
            self._delivering = False
        if heap:
            self._arm()

    def _deliver_head(self, direction: _Direction, now: float) -> None:
        """Deliver what is due at the head of ``direction``; stall it while blocked."""
        chunks = direction.chunks
        if (direction.source, direction.dest) in self.links.blocked:
            self.stats["stalled"] += 1
            self._push(direction, now + RETRANSMIT)
            return
        while chunks and chunks[0][0] <= now:
            _, chunk = chunks.popleft()
            self.stats["chunks"] += 1
            if isinstance(chunk, bytes):
                self.stats["bytes"] += len(chunk)
            receiver = direction.to
            if receiver.closed and isinstance(chunk, bytes) and chunk:
                # Data for a closed socket is answered with a reset.
                back = receiver.out
                if back is not None:
                    back.to.reset()
                continue
            receiver._arrive(chunk)
        if chunks:
            self._push(direction, max(chunks[0][0], now))

    def use_run_clock(self) -> None:
        """Read the run's clock and timers directly (call inside the run)."""
        self._now = trio.lowlevel.current_clock().current_time
        self._timers = current_timers()
